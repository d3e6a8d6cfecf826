// Entry of the pipework drop-in's V8 startup snapshot (dist/snapshot, made by `npm run build`, started
// by bin/nslab and bin/pipework): its modules are evaluated when the snapshot is built, so a call skips
// Node's module loading, most of a call's cost. Only the pipework path: each MB of snapshot costs ~5 ms
// to load here, so the rest of the CLI (yargs, labs, verify) stays in the ESM bundle, loaded on demand.
import v8 from 'node:v8';
import { runPipework } from './pipework-run.js';
import { ExecRunner } from '../exec/runner.js';
// Imported here, not on demand as pipework-run.ts does, so that the snapshot holds them evaluated.
import '../model/pipework.js';
import '../engine/attach.js';
import '../engine/guest.js';

/** Runs `[pipework] [--] ARGS` (bin/nslab passes `pipework` first, bin/pipework adds `--`). */
async function main(args: string[]): Promise<void> {
  if (args[0] === 'pipework') args = args.slice(1);
  if (args[0] === '--') args = args.slice(1);
  // Exit at once: on Linux, stdout and stderr writes are synchronous, so nothing is lost, and Node's
  // own teardown of the snapshot's heap took 25-30 ms here after the last command had finished.
  process.exit(await runPipework(args));
}

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  // Started from the snapshot, process.argv has no script: [node, ...args].
  v8.startupSnapshot.setDeserializeMainFunction(() => void main(process.argv.slice(1)));
  // execa's first call costs ~15 ms more than later ones (lazy set-up): pay it here, once.
  void new ExecRunner().run({ argv: ['true'] });
} else void main(process.argv.slice(2));
