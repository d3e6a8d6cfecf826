// `nslab sandbox -- CMD...`: run a command in a private network + mount namespace.
import type { Argv, CommandModule } from 'yargs';
import { reportError } from './output.js';

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
      // No root needed: without it the sandbox is a user namespace of its own (exec/sandbox.ts).
      const { runInSandbox } = await import('../exec/sandbox.js');
      // Words after `--` land in `_` (after the command's own name).
      const words = [...(a.cmd ?? []), ...a._.slice(1)].map(String);
      process.exitCode = await runInSandbox(words.length ? words : [process.env.SHELL || '/bin/sh']);
    } catch (err) {
      reportError(err, false);
    }
  },
};
