// Runs a parsed pipework command line (shared by `nslab pipework` and the `pipework` bin).
import { existsSync } from 'node:fs';
import { reportError, requireRoot } from './output.js';

/**
 * Runs pipework's grammar: attach, `route`/`rule`/`tc` inside the guest, or `--wait`.
 * @returns the process exit code
 */
export async function runPipework(argv: string[]): Promise<number> {
  try {
    const { parsePipework } = await import('../model/pipework.js');
    const cmd = parsePipework(argv);
    const { ExecRunner } = await import('../exec/runner.js');
    const r = new ExecRunner();
    if (cmd.kind === 'wait') {
      // pipework --wait: inside a guest, block until the interface shows up.
      while (!existsSync(`/sys/class/net/${cmd.ifname}`)) await new Promise((res) => setTimeout(res, 100));
      return 0;
    }
    requireRoot();
    const { openJournal } = await import('../engine/clean/journal.js');
    openJournal(cmd.kind === 'attach' ? `attach ${cmd.request.guest}` : 'pipework', ['pipework', ...argv]);
    if (cmd.kind === 'attach') {
      const { attach } = await import('../engine/attach/attach.js');
      await attach(r, cmd.request);
      return 0;
    }
    const { resolveGuest } = await import('../engine/attach/guest.js');
    const g = await resolveGuest(r, cmd.guest);
    const argvIn = cmd.kind === 'tc' ? ['tc', ...cmd.args] : ['ip', cmd.kind, ...cmd.args];
    const res = await r.run({ argv: argvIn, netns: g.netns }, { check: false });
    process.stdout.write(res.stdout);
    process.stderr.write(res.stderr);
    return res.exitCode;
  } catch (err) {
    reportError(err, false);
    return Number(process.exitCode ?? 1);
  }
}
