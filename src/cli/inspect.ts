// `nslab inspect`: what nslab owns on this machine now, found by its marks in the kernel.
import type { Argv, CommandModule } from 'yargs';
import { printJson, reportError, requireRoot } from './output.js';

interface InspectArgs {
  json: boolean;
}

/** `nslab inspect [--json]` */
export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect',
  describe: 'List everything nslab owns here, found by its marks: netns (with their interfaces and processes), links, OVS ports, iptables rules, DHCP clients; by topology, network, node or attach (reads only)',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' })
      .example('$0 inspect', 'a table: owner (topology star, network nw-01, node web, attach c1), object, what it holds')
      .example('$0 sandbox -- sh -c "nslab up examples/star.yaml && nslab inspect --json"', 'the same as JSON, in a sandbox') as Argv<InspectArgs>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { inspect, formatInspect } = await import('../verify/inspect.js');
      const rep = await inspect(new ExecRunner());
      if (a.json) printJson(rep);
      else process.stdout.write(await formatInspect(rep));
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
