// Runs a parsed pipework command line (shared by `nslab pipework` and the `pipework` bin).
import { existsSync } from 'node:fs';
import { reportError, requireRoot } from './output.js';

/**
 * Runs pipework's grammar: attach, `route`/`rule`/`tc` inside the guest, or `--wait`.
 * @returns the process exit code
 */
export async function runPipework(argv: string[]): Promise<number> {
  try {
    const { ExecRunner } = await import('../exec/runner.js');
    const r = new ExecRunner();
    // Later pipework's --save (record the attach, for a container's restarts) and --restore CONTAINER.
    const save = argv[0] === '--save';
    if (save) argv = argv.slice(1);
    if (argv[0] === '--restore') {
      const { invalid } = await import('../errors.js');
      if (argv.length !== 2) throw invalid(`pipework --restore takes one container (name or ID), got ${argv.length - 1} arguments`);
      requireRoot();
      const { restoreContainer } = await import('../engine/docker/lifecycle.js');
      const rep = await restoreContainer(r, argv[1]!);
      for (const l of [...rep.done, ...rep.errors.map((e) => `failed: ${e}`)]) process.stdout.write(`${l}\n`);
      return rep.errors.length ? 1 : 0;
    }
    const { parsePipework } = await import('../model/pipework.js');
    const cmd = parsePipework(argv);
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
      const rep = await attach(r, cmd.request, { persist: save });
      for (const n of rep.notes ?? []) process.stderr.write(`pipework: note: ${n}\n`);
      if (save && !rep.container) process.stderr.write(`pipework: --save is for Docker containers; ${cmd.request.guest} is not one (attached, not saved)\n`);
      return 0;
    }
    if (save) {
      const { invalid } = await import('../errors.js');
      throw invalid('pipework --save goes with an attach (pipework --save HOSTIF GUEST ADDR...), not with route, rule or tc');
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
