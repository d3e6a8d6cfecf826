// Entry of the topology commands' startup snapshot (dist/snapshot/topology.blob; bin/nslab starts
// `up`, `down`, `plan`, `verify`, `pingall` and `gen` from it): yargs, zod, the YAML readers and the
// engine, evaluated and compiled at build time. Loading them cost 250-300 ms of CPU per call here
// (zod alone 100-200 ms), four to five times node's own start, for a `plan` of a 3-node file.
import v8 from 'node:v8';
import { runCommands } from './yargs-cli.js';
import { downCommand, planCommand, upCommand } from './topology.js';
import { verifyCommand } from './verify.js';
import { pingallCommand } from './pingall.js';
import { genCommand } from './gen.js';
import { exitNow, startFromSnapshot } from './snapshot.js';
import { packageVersion } from './version.js';
// Imported here, not on demand as the commands do, so that the snapshot holds them evaluated.
import { plan } from '../engine/topology.js';
import { resolveTopology } from '../model/resolve.js';
import { parseSpec } from '../model/load.js';
import { TopologyRaw } from '../model/schema.js';
import { genTopology } from '../model/gen.js';
import '../verify/verify.js';
import '../verify/pingall.js';
import '../exec/runner.js';

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  // Read, resolve and plan a small topology once while the snapshot is built: V8 compiles a function
  // on its first call, and the snapshot keeps what was compiled.
  void plan(resolveTopology(parseSpec(genTopology({ kind: 'tree', nodes: 6, fanout: 3 }), 'warm-up', TopologyRaw).value, 'warm-up'));
  // And yargs: parse a plan command line, to a handler that does nothing.
  void runCommands(['plan', 'warm-up.yaml'], [{ ...planCommand, handler: () => undefined }], { version: '0' });
  // Its apply reads NSLAB_KILL_AT and counts steps: engine/apply.ts forgets both when the snapshot is
  // serialized, so a command started from it reads them afresh (the fault suite kills `up` by it).
}

startFromSnapshot(async (args) => {
  // `nslab plan FILE | head`: a closed pipe ends the output, as in run.ts.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  await runCommands(args, [upCommand, downCommand, planCommand, verifyCommand, pingallCommand, genCommand], { version: packageVersion() });
  exitNow(Number(process.exitCode ?? 0));
});
