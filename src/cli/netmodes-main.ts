// Entry of the network-mode commands' startup snapshot (dist/snapshot/netmodes.blob; bin/nslab starts
// `node` and `network` from it): yargs, zod, the state file and the engine of network modes, evaluated
// and compiled at build time. A `node run` per container is what a user scripts by the hundred
// (issue 21: 150-180 ms a call, most of it loading and compiling modules, against node's own 25-31 ms).
import v8 from 'node:v8';
import { runCommands } from './yargs-cli.js';
import { nodeCommand } from './node.js';
import { networkCommand } from './network.js';
import { exitNow, startFromSnapshot } from './snapshot.js';
import { packageVersion } from './version.js';
// Imported here, not on demand as the commands do, so that the snapshot holds them evaluated.
import { checkName, parseExpose, parseLink, parseNetMode, parsePortSpec } from '../model/netmodes.js';
import { checkRunRequest } from '../engine/netmodes/node.js';
import '../engine/netmodes/network.js';
import '../exec/runner.js';

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  // Check a node run request once while the snapshot is built: V8 compiles a function on its first
  // call, and the snapshot keeps what was compiled. (Not through yargs' handler: the subcommand's own
  // would run, and a started process is a handle a snapshot cannot hold.)
  checkRunRequest({
    name: checkName('node', 'warm-up'),
    mode: parseNetMode('bridge'),
    ip: null,
    hostname: null,
    publish: ['8080:80', '127.0.0.1::53/udp'].map(parsePortSpec),
    publishAll: false,
    expose: [parseExpose('80')],
    links: [parseLink('web:db')],
    cmd: null,
  });
}

startFromSnapshot(async (args) => {
  // `nslab node ls | head`: a closed pipe ends the output, as in run.ts.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  await runCommands(args, [nodeCommand, networkCommand], { version: packageVersion() });
  exitNow(Number(process.exitCode ?? 0));
});
