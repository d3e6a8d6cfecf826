// `nslab pingall FILE`: the reachability matrix, compared with what the topology expects.
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';
import { loadFor, withFile } from './topology.js';
import { JUNIT_OPTION, writeJunit } from './junit-out.js';

interface PingallArgs {
  file: string;
  host?: string;
  id?: string;
  json: boolean;
  concurrency?: string;
  tool?: string;
  neighbours?: string;
  junit?: string;
  sample?: string;
  'sample-pairs'?: string;
}

/** `nslab pingall FILE [--json] [--concurrency N] [--tool fping|ping]` */
export const pingallCommand: CommandModule<object, PingallArgs> = {
  command: 'pingall <file> [id]',
  describe: 'Ping every address of a topology from every node; compare with what its routes and ip_forward allow (exit 1 on a difference)',
  builder: (y) =>
    withFile(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'topology file (YAML), or "lab" followed by a lab id' })
      .positional('id', { type: 'string', describe: 'with "lab": the lab id; the lab must be up here (nslab lab up ID), it is read from the kernel' })
      .option('junit', JUNIT_OPTION)
      .option('concurrency', { type: 'string', describe: 'probe processes at once (default 16)' })
      .option('tool', { type: 'string', describe: 'fping (one process per node, default when installed) or ping (one process per probe)' })
      .option('neighbours', {
        type: 'string',
        describe: 'auto (default): the kernel resolves ARP/ND unless the probes outgrow its neighbour table in one round, then MACs read from the kernel are seeded as entries (removed after); resolve: always ARP/ND, in rounds; seed: always seed',
      })
      .option('sample', { type: 'string', describe: 'probe a sample, not all pairs: every node probes K fixed addresses (spread over the topology)' })
      .option('sample-pairs', { type: 'string', describe: 'with --sample: also all pairs among the first M nodes (e.g. one leaf of a tree)' })
      .example('$0 pingall examples/star.yaml', 'the matrix; then one line per probe that went against the topology')
      .example('$0 pingall tree.yaml --sample 50 --sample-pairs 1000', '4000 nodes: each reaches 50 fixed addresses, the first leaf all pairs')
      .example('$0 pingall examples/chain.yaml --json', 'every probe with what was expected and why')
      .example('$0 pingall lab 04', 'lab 04 as it is up here: expected from its routes, bridges and forwarding as read') as Argv<PingallArgs>,
  handler: async (a) => {
    try {
      const { pingall, formatPingall, parsePingallFlags, requireUp } = await import('../verify/pingall.js');
      const opts = parsePingallFlags(a); // bad flags first: one line, exit 2, before anything is read
      const { ExecRunner } = await import('../exec/runner.js');
      const r = new ExecRunner();
      let m;
      if (a.file === 'lab') {
        const { invalid } = await import('../errors.js');
        if (!a.id) throw invalid('pingall lab needs a lab id: nslab pingall lab 04 (nslab lab ls)');
        const { loadLab } = await import('../model/lab.js');
        const lab = await loadLab(a.id);
        requireRoot();
        const { readLabModel } = await import('../engine/labs/lab.js');
        m = await readLabModel(r, lab, { build: false });
      } else {
        const t = await loadFor(a);
        requireRoot();
        await requireUp(r, t.model, `nslab up ${a.file}${t.host ? ` --host ${t.host}` : ''} first, or nslab verify ${a.file} to see what differs`);
        // Multi-host: this host's nodes probe every address of every host (expected from all as one).
        if (t.merged) {
          m = t.merged;
          opts.from = [...t.nodeHosts].filter(([, h]) => h === t.host).map(([n]) => n);
        } else m = t.model;
      }
      const rep = await pingall(r, m, opts);
      const { pingallCases } = await import('../verify/junit.js');
      await writeJunit(a.junit, `nslab pingall ${rep.topology}`, pingallCases(rep));
      if (a.json) printJson(rep);
      else process.stdout.write(await formatPingall(rep, { live: a.file === 'lab' }));
      if (!rep.ok) process.exitCode = EXIT.failed;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
