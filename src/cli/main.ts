#!/usr/bin/env node
// nslab's command line: parses flags and calls one engine function per command (STYLE.md §7).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { attachCommand, detachCommand, pipeworkCommand } from './attach.js';
import { doctorCommand } from './doctor.js';
import { networkCommand } from './network.js';
import { nodeCommand } from './node.js';
import { EXIT } from './output.js';
import { sandboxCommand } from './sandbox.js';
import { downCommand, planCommand, upCommand } from './topology.js';

await yargs(hideBin(process.argv))
  .scriptName('nslab')
  .usage('$0 <command> [options]\n\nWire network namespaces, veth pairs and bridges by hand, reproducibly.')
  .command(upCommand)
  .command(downCommand)
  .command(planCommand)
  .command(attachCommand)
  .command(detachCommand)
  .command(pipeworkCommand)
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
