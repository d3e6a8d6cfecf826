#!/usr/bin/env node
// nslab's command line: parses flags and calls one engine function per command (STYLE.md §7).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { attachCommand, detachCommand, pipeworkCommand } from './attach.js';
import { doctorCommand } from './doctor.js';
import { labCommand } from './lab.js';
import { networkCommand } from './network.js';
import { nodeCommand } from './node.js';
import { EXIT } from './output.js';
import { graphCommand } from './graph.js';
import { inspectCommand } from './inspect.js';
import { pingallCommand } from './pingall.js';
import { sandboxCommand } from './sandbox.js';
import { downCommand, planCommand, upCommand } from './topology.js';
import { verifyCommand } from './verify.js';

// pipework's drop-in is called once per attach, as pipework is: skip yargs (its grammar is its own).
const argv = hideBin(process.argv);
if (argv[0] === 'pipework' && !argv.includes('--help')) {
  const { runPipework } = await import('./pipework-run.js');
  process.exitCode = await runPipework(argv.slice(argv[1] === '--' ? 2 : 1));
} else await yargs(argv)
  .scriptName('nslab')
  .usage('$0 <command> [options]\n\nWire network namespaces, veth pairs and bridges by hand, reproducibly.')
  .command(upCommand)
  .command(downCommand)
  .command(planCommand)
  .command(attachCommand)
  .command(detachCommand)
  .command(pipeworkCommand)
  .command(labCommand)
  .command(verifyCommand)
  .command(pingallCommand)
  .command(graphCommand)
  .command(inspectCommand)
  .command(networkCommand)
  .command(nodeCommand)
  .command(sandboxCommand)
  .command(doctorCommand)
  .demandCommand(1, 'name a command: nslab --help lists them')
  .strict()
  .parserConfiguration({ 'populate--': false })
  .example('$0 sandbox -- sh -c "nslab up examples/star.yaml && ip netns exec h1 ping -c1 10.0.0.2"', 'build and ping, in a sandbox')
  .fail((msg, err) => {
    process.stderr.write(`nslab: ${msg ?? err?.message}\n`);
    process.exit(EXIT.usage);
  })
  .help()
  .version()
  .wrap(Math.min(110, process.stdout.columns || 100))
  .parseAsync();
