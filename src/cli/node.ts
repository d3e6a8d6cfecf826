// `nslab node run|ls|inspect|exec|rm`: Docker's network modes on named netns, with ports and links.
import type { Argv, CommandModule } from 'yargs';
import { printJson, printTable, reportError, requireRoot } from './output.js';

interface RunArgs {
  name: string;
  cmd?: string[];
  net: string;
  ip?: string;
  hostname?: string;
  publish?: string[];
  'publish-all': boolean;
  expose?: string[];
  link?: string[];
  json: boolean;
  _: Array<string | number>;
}

/** Words after `--` land in `_`, after the command's own words (`node run`). */
function trailing(a: { cmd?: string[]; _: Array<string | number> }, words: number): string[] {
  return [...(a.cmd ?? []), ...a._.slice(words)].map(String);
}

const run: CommandModule<object, RunArgs> = {
  command: 'run <name> [cmd..]',
  describe: 'Run a node: a netns in a network mode (none, host, bridge, container:NODE, NETWORK), with an optional long-running command',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'node name (also its netns name)' })
      .positional('cmd', { type: 'string', array: true, describe: 'the node\'s process and its arguments, after --' })
      .option('net', { alias: 'network', type: 'string', default: 'bridge', describe: 'none | host | bridge | container:NODE | NETWORK' })
      .option('ip', { type: 'string', describe: 'static address (networks created with --subnet only)' })
      .option('hostname', { type: 'string', describe: 'host name inside the node (default: its name)' })
      .option('publish', { alias: 'p', type: 'string', array: true, describe: 'publish a port: [IP:][HOSTPORT:]PORT[/udp], repeatable' })
      .option('publish-all', { alias: 'P', type: 'boolean', default: false, describe: 'publish every --expose port on a host port from 49000-49900' })
      .option('expose', { type: 'string', array: true, describe: 'PORT[/udp] the node offers (for -P and --link)' })
      .option('link', { type: 'string', array: true, describe: 'NODE[:ALIAS]: a name in /etc/hosts and ALIAS_PORT_… variables' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 node run test00 --net nw-01', 'a node on network nw-01 (eth0 172.19.0.2)')
      .example('$0 node run web -p 8080:80 -- busybox httpd -f -p 80 -h /srv/www', 'httpd on the default bridge, published on the host\'s port 8080')
      .example('$0 node run side --net container:web', 'share web\'s netns: one interface set')
      .example('$0 node run c2 --link web:webdb -- sh -c "env; sleep 1d"', 'WEBDB_PORT_80_TCP_ADDR=… and webdb in /etc/hosts') as unknown as Argv<RunArgs>,
  handler: async (a) => {
    try {
      const m = await import('../model/netmodes.js');
      const cmd = trailing(a, 2);
      const req = {
        name: m.checkName('node', a.name),
        mode: m.parseNetMode(a.net),
        ip: a.ip ?? null,
        hostname: a.hostname ?? null,
        publish: (a.publish ?? []).map(String).map(m.parsePortSpec),
        publishAll: a['publish-all'],
        expose: (a.expose ?? []).map(String).map(m.parseExpose),
        links: (a.link ?? []).map(String).map(m.parseLink),
        cmd: cmd.length ? cmd : null,
      };
      const { checkRunRequest, runNode } = await import('../engine/netmodes/node.js');
      checkRunRequest(req);
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const n = await runNode(new ExecRunner(), req);
      if (a.json) return printJson(n);
      const addrs = n.endpoints.map((e) => `${e.ifname} ${e.ip}/${e.prefix} on ${e.network}`).join(', ');
      const ports = n.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`).join(', ');
      process.stdout.write(`${n.name}: ${addrs || `--net ${a.net}`}${ports ? `; ${ports}` : ''}${n.pid ? `; pid ${n.pid}` : ''}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

const ls: CommandModule<object, { json: boolean }> = {
  command: 'ls',
  describe: 'List nodes: network mode, addresses, published ports, process',
  builder: (y) => y.option('json', { type: 'boolean', default: false }).example('$0 node ls', 'as docker ps') as Argv<{ json: boolean }>,
  handler: async (a) => {
    try {
      const { listNodes } = await import('../engine/netmodes/node.js');
      const { formatNetMode } = await import('../model/netmodes.js');
      const nodes = await listNodes();
      if (a.json) return printJson(nodes);
      await printTable(
        ['NAME', 'NETWORK MODE', 'ADDRESSES', 'PORTS', 'COMMAND', 'STATUS'],
        nodes.map((n) => [
          n.name,
          formatNetMode(n.mode),
          n.endpoints.map((e) => `${e.ifname} ${e.ip}`).join(', '),
          n.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`).join(', '),
          n.cmd ? n.cmd.join(' ').slice(0, 30) : '',
          n.cmd ? (n.running ? `running (pid ${n.pid})` : 'exited') : 'up',
        ]),
      );
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

const inspect: CommandModule<object, { names: string[] }> = {
  command: 'inspect <names..>',
  describe: 'Print nodes as JSON (docker inspect\'s shape: State, Config, HostConfig, NetworkSettings)',
  builder: (y) => y.positional('names', { type: 'string', array: true, demandOption: true }).example('$0 node inspect web', 'its addresses, published ports, PID') as unknown as Argv<{ names: string[] }>,
  handler: async (a) => {
    try {
      const { inspectNodes } = await import('../engine/netmodes/node.js');
      printJson(await inspectNodes(a.names.map(String)));
    } catch (err) {
      reportError(err, false);
    }
  },
};

const exec: CommandModule<object, { name: string; cmd?: string[]; _: Array<string | number> }> = {
  command: 'exec <name> [cmd..]',
  describe: 'Run a command in a node (its netns, /etc/hosts, hostname and --link variables)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .positional('cmd', { type: 'string', array: true })
      .example('$0 node exec test00 -- ping -c1 test01', 'names resolve on user-defined networks')
      .example('$0 node exec test00 -- ip addr', 'its interfaces') as unknown as Argv<{ name: string; cmd?: string[]; _: Array<string | number> }>,
  handler: async (a) => {
    try {
      const cmd = trailing(a, 2);
      const { invalid } = await import('../errors.js');
      if (!cmd.length) throw invalid('node exec: name a command after --, such as: nslab node exec test00 -- ip addr');
      requireRoot();
      const { execNode } = await import('../engine/netmodes/node.js');
      process.exitCode = await execNode(a.name, cmd);
    } catch (err) {
      reportError(err, false);
    }
  },
};

const rmCmd: CommandModule<object, { names: string[]; json: boolean }> = {
  command: 'rm <names..>',
  describe: 'Remove nodes: stop their processes, unpublish their ports, release their addresses, delete their netns',
  builder: (y) =>
    y
      .positional('names', { type: 'string', array: true, demandOption: true })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: "accepted as docker rm -f: node rm always stops a node's processes" })
      .option('json', { type: 'boolean', default: false })
      .example('$0 node rm test00 test01', 'two nodes') as unknown as Argv<{ names: string[]; json: boolean }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { removeNodes } = await import('../engine/netmodes/node.js');
      const out = await removeNodes(new ExecRunner(), a.names.map(String));
      if (a.json) printJson(out);
      else for (const n of out.removed) process.stdout.write(`${n}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab node …` */
export const nodeCommand: CommandModule = {
  command: 'node <command>',
  describe: 'Nodes in Docker\'s network modes (run, ls, inspect, exec, rm)',
  builder: (y) =>
    y
      .command(run)
      .command(ls)
      .command(inspect)
      .command(exec)
      .command(rmCmd)
      .demandCommand(1, 'name a node command: nslab node --help lists them')
      .example('$0 node run test00 --net nw-01 && $0 node exec test00 -- ip addr', 'a node and its interfaces'),
  handler: () => undefined,
};
