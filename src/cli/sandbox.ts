// `nslab sandbox -- CMD...`: run a command in a private network + mount namespace.
import type { Argv, CommandModule } from 'yargs';
import { reportError, requireRoot } from './output.js';

interface SandboxArgs {
  cmd?: string[];
  _: Array<string | number>;
}

/** `nslab sandbox -- CMD...` */
export const sandboxCommand: CommandModule<object, SandboxArgs> = {
  command: 'sandbox [cmd..]',
  describe: 'Run CMD (default: a shell) in a private sandbox: new netns and mount namespace, own /run/netns, lo up',
  builder: (y) =>
    y
      .positional('cmd', { type: 'string', array: true, describe: 'command and its arguments, after --' })
      .example('$0 sandbox -- nslab up examples/star.yaml', 'build a topology without touching the host')
      .example('$0 sandbox', 'an interactive shell in a fresh sandbox') as Argv<SandboxArgs>,
  handler: async (a) => {
    try {
      requireRoot();
      const { sandboxArgv, binDir } = await import('../exec/sandbox.js');
      const { spawn } = await import('node:child_process');
      // Words after `--` land in `_` (after the command's own name).
      const words = [...(a.cmd ?? []), ...a._.slice(1)].map(String);
      const cmd = words.length ? words : [process.env.SHELL || '/bin/sh'];
      const [file, ...args] = sandboxArgv(cmd);
      const env = { ...process.env, PATH: `${binDir()}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
      const child = spawn(file!, args, { stdio: 'inherit', env });
      const code = await new Promise<number>((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 128 + 1 : 1))));
      process.exitCode = code;
    } catch (err) {
      reportError(err, false);
    }
  },
};
