// Entry of the attach commands' startup snapshot (dist/snapshot/attach.blob; bin/nslab starts
// `attach` (also `-f FILE`, many guests in one batch) and `detach` from it): yargs, the attach file
// loader and the engine, evaluated at build time.
import { runCommands } from './yargs-cli.js';
import { attachCommand, detachCommand } from './attach.js';
import { exitNow, startFromSnapshot } from './snapshot.js';
// Imported here, not on demand as the commands do, so that the snapshot holds them evaluated.
import '../model/attach-flags.js';
import '../model/attach-file.js';
import '../engine/attach.js';
import '../engine/guest.js';
import '../exec/runner.js';

startFromSnapshot(async (args) => {
  await runCommands(args, [attachCommand, detachCommand]);
  exitNow(Number(process.exitCode ?? 0));
});
