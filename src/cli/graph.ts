// `nslab graph FILE --format dot|mermaid|svg`: the topology as a picture.
import type { Argv, CommandModule } from 'yargs';
import { reportError } from './output.js';

interface GraphArgs {
  file: string;
  format: string;
}

/** `nslab graph FILE [--format dot|mermaid|svg]` */
export const graphCommand: CommandModule<object, GraphArgs> = {
  command: 'graph <file>',
  describe: 'Draw a topology: nodes, bridges, veths with interface names and addresses (no root needed)',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'topology file (YAML)' })
      .option('format', { type: 'string', default: 'dot', describe: 'dot (Graphviz), mermaid (renders on code hosts) or svg (runs graphviz dot)' })
      .example('$0 graph examples/star.yaml', 'the DOT text')
      .example('$0 graph examples/chain.yaml --format svg > chain.svg', 'a picture (needs graphviz: apt-get install graphviz)')
      .example('$0 graph examples/star.yaml --format mermaid', 'a Mermaid flowchart for a README') as Argv<GraphArgs>,
  handler: async (a) => {
    try {
      const { loadTopology } = await import('../engine/topology.js');
      const { renderGraph } = await import('../verify/graph.js');
      const { ExecRunner } = await import('../exec/runner.js');
      process.stdout.write(await renderGraph(new ExecRunner(), await loadTopology(a.file), a.format));
    } catch (err) {
      reportError(err, false);
    }
  },
};
