// Entry of the pipework drop-in's startup snapshot (dist/snapshot/pipework.blob; bin/nslab and
// bin/pipework start `pipework` from it). Only pipework's path: no yargs, no YAML.
import { runPipework } from './pipework-run.js';
import { exitNow, startFromSnapshot } from './snapshot.js';
// Imported here, not on demand as pipework-run.ts does, so that the snapshot holds them evaluated.
import '../model/pipework.js';
import '../engine/attach/guest.js';

/** Runs `[pipework] [--] ARGS` (bin/nslab passes `pipework` first, bin/pipework adds `--`). */
startFromSnapshot(async (args) => {
  if (args[0] === 'pipework') args = args.slice(1);
  if (args[0] === '--') args = args.slice(1);
  exitNow(await runPipework(args));
});
