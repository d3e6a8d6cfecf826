// `nslab docker ...`: Docker containers through their life (watch, restore) and Docker's network plugin.
import type { Argv, CommandModule } from 'yargs';
import { printJson, reportError, requireRoot } from './output.js';

/** `nslab docker watch`: follows `docker events`, re-applies persisted attaches, cleans up dead containers. */
const watchCommand: CommandModule<object, { json: boolean }> = {
  command: 'watch',
  describe: 'Follow `docker events`: apply persisted attaches again when a container (re)starts, remove everything of a container when it dies or is removed (DHCP client, OVS port, unused bridge). Runs until SIGINT/SIGTERM',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line instead of text' })
      .example('$0 docker watch', 'keep attaches made with --persist across `docker restart`')
      .example('systemctl enable --now nslab-docker-watch', 'as a service: see the README, "Docker containers"') as Argv<{ json: boolean }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { watchDocker } = await import('../engine/docker/watch.js');
      const stop = new Promise<void>((res) => {
        process.once('SIGINT', () => res());
        process.once('SIGTERM', () => res());
      });
      const log = (line: string) => process.stdout.write(a.json ? `${JSON.stringify({ at: new Date().toISOString(), line })}\n` : `${line}\n`);
      const code = await watchDocker(new ExecRunner(), { log, stop, ready: () => log('watching docker events') });
      process.exitCode = code === 0 ? 0 : 1;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab docker restore CONTAINER`: what watch does on `start`, by hand (pipework --restore). */
const restoreCommand: CommandModule<object, { container: string; json: boolean }> = {
  command: 'restore <container>',
  describe: "Apply a container's persisted attaches again (after `docker restart`, when no watcher runs)",
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true, describe: 'name, ID or ID prefix of a running container' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 docker restore c1', 'c1 gets back the interfaces `nslab attach c1 ... --persist` gave it') as unknown as Argv<{ container: string; json: boolean }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { restoreContainer } = await import('../engine/docker/lifecycle.js');
      const rep = await restoreContainer(new ExecRunner(), a.container);
      if (a.json) printJson({ ok: rep.errors.length === 0, ...rep });
      else for (const l of [...rep.done, ...rep.errors.map((e) => `failed: ${e}`)]) process.stdout.write(`${l}\n`);
      if (rep.errors.length) process.exitCode = 1;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab docker plugin`: Docker's remote network driver and IPAM, on a unix socket. */
const pluginCommand: CommandModule<object, { socket: string }> = {
  command: 'plugin',
  describe: 'Serve Docker\'s network driver and IPAM plugin protocol (docker network create -d nslab --ipam-driver nslab ...). Runs until SIGINT/SIGTERM',
  builder: (y) =>
    y
      .option('socket', { type: 'string', default: '/run/docker/plugins/nslab.sock', describe: 'the unix socket dockerd finds the plugin by (its name: nslab)' })
      .example('$0 docker plugin &', 'then: docker network create -d nslab --ipam-driver nslab --subnet 10.20.0.0/24 -o nslab.bridge=br20 lan')
      .example('docker network create -d nslab -o nslab.bridge=ovs-br0 -o nslab.vlan=10 --subnet 10.10.0.0/24 v10', 'containers on an OVS bridge, VLAN tag 10')
      .example('docker network create -d nslab -o nslab.parent=eth0 --subnet 192.168.1.0/24 mv', 'containers as macvlan children of eth0') as Argv<{ socket: string }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { servePlugin } = await import('../engine/docker/plugin.js');
      const server = await servePlugin(new ExecRunner(), a.socket, (l) => process.stdout.write(`${l}\n`));
      process.stdout.write(`nslab Docker plugin listening on ${a.socket}\n`);
      await new Promise<void>((res) => {
        process.once('SIGINT', () => res());
        process.once('SIGTERM', () => res());
      });
      await new Promise((res) => server.close(() => res(undefined)));
    } catch (err) {
      reportError(err, false);
    }
  },
};

/** `nslab docker SUBCOMMAND` */
export const dockerCommand: CommandModule<object, object> = {
  command: 'docker <command>',
  describe: 'Docker containers through their life: watch (re-attach on restart, clean up on rm), restore, plugin (a Docker network driver)',
  builder: (y) => y.command(watchCommand).command(restoreCommand).command(pluginCommand).demandCommand(1, 'name a subcommand: watch, restore, plugin') as Argv<object>,
  handler: () => {},
};
