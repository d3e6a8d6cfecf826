// `nslab gen star|chain|tree --nodes N [--fanout F]`: print a topology file for scale tests.
import type { Argv, CommandModule } from 'yargs';
import { reportError } from './output.js';

interface GenArgs {
  kind: string;
  nodes?: string;
  fanout?: string;
  name?: string;
}

/** `nslab gen KIND --nodes N [--fanout F] [--name NAME]` */
export const genCommand: CommandModule<object, GenArgs> = {
  command: 'gen <kind>',
  describe: 'Print a topology file of N nodes: star (one bridge), chain, or tree (core bridge + leaf bridges), for scale tests',
  builder: (y) =>
    y
      .positional('kind', { type: 'string', demandOption: true, describe: 'star (at most 1023 nodes: one bridge), chain, or tree' })
      .option('nodes', { type: 'string', describe: 'how many nodes (1 to 60000)' })
      .option('fanout', { type: 'string', describe: 'tree: nodes per leaf bridge (1 to 1022, default 1000)' })
      .option('name', { type: 'string', describe: 'topology name (default KIND-N)' })
      .example('$0 gen tree --nodes 4000 > tree.yaml', '4 leaf bridges of 1000 nodes under one core bridge')
      .example('$0 gen chain --nodes 100 | tee chain.yaml && nslab up chain.yaml', 'a 100-node chain, built') as Argv<GenArgs>,
  handler: async (a) => {
    try {
      const { genTopology, GenOptions, GEN_KINDS, GEN_MAX_NODES, BRIDGE_MAX_PORTS } = await import('../model/gen.js');
      const { invalid } = await import('../errors.js');
      const whole = (flag: string, text: string | undefined, max: number): number | undefined => {
        if (text === undefined) return undefined;
        if (!/^\d+$/.test(String(text).trim()) || Number(text) < 1 || Number(text) > max) throw invalid(`${flag} ${JSON.stringify(text)}: expected a whole number from 1 to ${max}`);
        return Number(text);
      };
      if (!(GEN_KINDS as readonly string[]).includes(a.kind)) throw invalid(`gen ${JSON.stringify(a.kind)}: expected one of ${GEN_KINDS.join(', ')}`);
      if (a.nodes === undefined) throw invalid(`gen ${a.kind}: --nodes is missing: expected --nodes N (1 to ${GEN_MAX_NODES})`);
      if (a.fanout !== undefined && a.kind !== 'tree') throw invalid(`--fanout ${a.fanout}: only a tree has leaves: expected no --fanout for a ${a.kind}`);
      if (a.name !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(a.name)) throw invalid(`--name ${JSON.stringify(a.name)}: expected 1 to 64 letters, digits, _ . -`);
      const opts = GenOptions.parse({ kind: a.kind, nodes: whole('--nodes', a.nodes, GEN_MAX_NODES), fanout: whole('--fanout', a.fanout, BRIDGE_MAX_PORTS - 1), name: a.name });
      process.stdout.write(genTopology(opts));
    } catch (err) {
      reportError(err, false);
    }
  },
};
