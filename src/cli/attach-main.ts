// Entry of the attach commands' startup snapshot (dist/snapshot/attach.blob; bin/nslab starts
// `attach` (also `-f FILE`, many guests in one batch) and `detach` from it): yargs, the attach file
// loader and the engine, evaluated at build time.
import { runCommands } from './yargs-cli.js';
import { attachCommand, detachCommand } from './attach.js';
import v8 from 'node:v8';
import { exitNow, startFromSnapshot } from './snapshot.js';
import { attachFileSchema } from '../model/attach-file.js';
import { parseSpec } from '../model/load.js';
// Imported here, not on demand as the commands do, so that the snapshot holds them evaluated.
import '../model/attach-flags.js';
import '../engine/attach/attach.js';
import '../engine/attach/guest.js';
import '../exec/runner.js';

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  // Parse and validate an attach file once while the snapshot is built: V8 compiles a function on its
  // first call, and the YAML parser and zod's checks cost 20-30 ms of compiling in every `attach -f`.
  parseSpec('- { guest: g1, to: br0, ip: [10.0.0.1/24, "fd00::1/64"], gw: 10.0.0.254, mtu: 1400 }\n- guest: g2\n  to: br0\n  dhcp: true\n', 'warm-up', attachFileSchema());
  // And yargs: parse an attach command line, to a handler that does nothing.
  void runCommands(['attach', '-f', 'warm-up.yaml'], [{ ...attachCommand, handler: () => undefined }]);
}

startFromSnapshot(async (args) => {
  await runCommands(args, [attachCommand, detachCommand]);
  exitNow(Number(process.exitCode ?? 0));
});
