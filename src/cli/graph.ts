// `nslab graph FILE|lab ID --format dot|mermaid|svg`: the topology as a picture.
import type { Argv, CommandModule } from 'yargs';
import { reportError, requireRoot } from './output.js';

interface GraphArgs {
  file: string;
  id?: string;
  format: string;
  live: boolean;
  build: boolean;
}

/** `nslab graph FILE [--format dot|mermaid|svg]`, `nslab graph lab ID [--live]` */
export const graphCommand: CommandModule<object, GraphArgs> = {
  command: 'graph <file> [id]',
  describe: 'Draw a topology: nodes, bridges, OVS ports with VLAN tags, macvlans, interfaces and addresses',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'topology file (YAML), or "lab"' })
      .positional('id', { type: 'string', describe: 'with "lab": the lab id (nslab lab ls)' })
      .option('format', { type: 'string', default: 'dot', describe: 'dot (Graphviz), mermaid (renders on code hosts) or svg (runs graphviz dot)' })
      .option('live', { type: 'boolean', default: false, describe: 'with lab: draw the lab as it is up here now (read from the kernel), not a fresh build' })
      .option('build', { type: 'boolean', default: false, hidden: true, describe: 'with lab, inside a sandbox: build the lab, draw it, take it down' })
      .example('$0 graph examples/star.yaml', 'the DOT text (no root needed)')
      .example('$0 graph examples/chain.yaml --format svg > chain.svg', 'a picture (needs graphviz: apt-get install graphviz)')
      .example('$0 graph lab 09 --format mermaid', 'build lab 09 in a fresh sandbox, read it back from the kernel, draw it (root)')
      .example('$0 graph lab 08 --live', 'draw lab 08 as it is up in this namespace') as Argv<GraphArgs>,
  handler: async (a) => {
    try {
      const { ExecRunner } = await import('../exec/runner.js');
      const { renderGraph, GRAPH_FORMATS } = await import('../verify/graph.js');
      const { invalid } = await import('../errors.js');
      // The flag first: a bad --format names itself, whatever the file holds.
      if (!(GRAPH_FORMATS as readonly string[]).includes(a.format)) throw invalid(`--format ${JSON.stringify(a.format)}: expected one of ${GRAPH_FORMATS.join(', ')}`);
      if (a.file !== 'lab') {
        const { loadTopology } = await import('../engine/topology.js');
        process.stdout.write(await renderGraph(new ExecRunner(), await loadTopology(a.file), a.format));
        return;
      }
      if (!a.id) throw invalid('graph lab needs a lab id: nslab graph lab 08 (nslab lab ls)');
      const { loadLab } = await import('../model/lab.js');
      const lab = await loadLab(a.id);
      requireRoot();
      const { inSandbox, runInSandbox } = await import('../exec/sandbox.js');
      if (!a.live && !a.build) {
        // Built where it cannot disturb anything: a fresh sandbox (nested when this is one already).
        process.exitCode = await runInSandbox([process.execPath, process.argv[1]!, 'graph', 'lab', lab.id, '--format', a.format, '--build']);
        return;
      }
      if (a.build && !(await inSandbox())) throw invalid('graph lab --build changes the network of the namespace it runs in: leave it out (nslab builds the lab in a fresh sandbox)');
      const { readLabModel } = await import('../engine/labs/lab.js');
      const r = new ExecRunner();
      process.stdout.write(await renderGraph(r, await readLabModel(r, lab, { build: a.build, hint: `nslab lab up ${lab.id} first (in a sandbox), or leave out --live to build it in a fresh one` }), a.format));
    } catch (err) {
      reportError(err, false);
    }
  },
};
