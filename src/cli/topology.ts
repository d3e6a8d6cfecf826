// `nslab up|down|plan FILE`: bring a topology up, tear it down, or print what up would run.
import type { Argv, CommandModule } from 'yargs';
import { printJson, reportError, requireRoot } from './output.js';

interface FileArgs {
  file: string;
  host?: string;
  json: boolean;
  'dry-run'?: boolean;
  'fault-at'?: number;
}

/** The FILE positional and `--json`, shared by the commands that take a topology file. */
export const withFile = (y: Argv) =>
  y
    .positional('file', { type: 'string', demandOption: true, describe: 'topology file (YAML)' })
    .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' })
    .option('host', { type: 'string', describe: "multi-host topology (hosts:): this host's part (default: the host whose address this machine has)" });

/**
 * Reads FILE for this host (`--host`, else found by address; see engine/topology.ts loadTopologyFor);
 * with `notes` (up, plan), prints what a multi-host part decided (MTUs lowered for VXLAN) on stderr.
 */
export async function loadFor(a: { file: string; host?: string }, o: { notes?: boolean } = {}): Promise<import('../engine/topology.js').HostTopology> {
  const { loadTopologyFor } = await import('../engine/topology.js');
  const { ExecRunner } = await import('../exec/runner.js');
  const t = await loadTopologyFor(new ExecRunner(), a.file, a.host ?? null);
  if (o.notes) for (const n of t.model.notes ?? []) process.stderr.write(`note: ${n}\n`);
  return t;
}

/** `nslab up FILE` */
export const upCommand: CommandModule<object, FileArgs> = {
  command: 'up <file>',
  describe: 'Create the namespaces, veths, bridges, addresses and routes of a topology',
  builder: (y) =>
    withFile(y)
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the commands instead of running them' })
      .option('fault-at', { type: 'number', hidden: true, describe: 'fail step K on purpose (tests rollback)' })
      .example('$0 up examples/star.yaml', 'build the 3-node star')
      .example('$0 sandbox -- nslab up examples/star.yaml', 'the same, in a private sandbox') as Argv<FileArgs>,
  handler: async (a) => {
    try {
      const { up, plan } = await import('../engine/topology.js');
      const m = (await loadFor(a, { notes: true })).model;
      if (a['dry-run']) {
        const p = await plan(m, a.file);
        if (a.json) printJson(p.steps);
        else process.stdout.write(p.script);
        return;
      }
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const rep = await up(new ExecRunner(), m, { faultAt: a['fault-at'] });
      if (a.json) printJson({ ok: true, ...rep });
      else process.stdout.write(`up ${rep.topology}: ${rep.steps} steps in ${(rep.ms / 1000).toFixed(2)} s\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab down FILE` */
export const downCommand: CommandModule<object, FileArgs> = {
  command: 'down <file>',
  describe: 'Remove what `up` made for a topology (only objects carrying its mark); safe to repeat',
  builder: (y) => withFile(y).example('$0 down examples/star.yaml', 'tear the star down (again: a no-op)') as Argv<FileArgs>,
  handler: async (a) => {
    try {
      const { down } = await import('../engine/topology.js');
      const m = (await loadFor(a)).model;
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const rep = await down(new ExecRunner(), m);
      if (a.json) printJson({ ok: true, ...rep });
      else {
        process.stdout.write(`down ${rep.topology}: ${rep.commands} undo commands in ${(rep.ms / 1000).toFixed(2)} s\n`);
        for (const s of rep.skipped) process.stdout.write(`  left alone: ${s}\n`);
      }
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab plan FILE` */
export const planCommand: CommandModule<object, FileArgs> = {
  command: 'plan <file>',
  describe: 'Print the shell script `up` would run (changes nothing; no root needed)',
  builder: (y) =>
    withFile(y)
      .example('$0 plan examples/star.yaml', 'the plain ip commands, to read or run by hand')
      .example('$0 plan examples/star.yaml --json', 'the steps with their undo') as Argv<FileArgs>,
  handler: async (a) => {
    try {
      const { plan } = await import('../engine/topology.js');
      const p = await plan((await loadFor(a, { notes: true })).model, a.file);
      if (a.json) printJson(p.steps);
      else process.stdout.write(p.script);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
