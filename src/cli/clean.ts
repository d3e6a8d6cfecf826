// `nslab clean`: remove everything nslab owns here (or what named owners own), also after a crash.
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, printTable, reportError, requireRoot } from './output.js';

interface CleanArgs {
  targets?: string[];
  'dry-run': boolean;
  json: boolean;
}

/** `nslab clean [--dry-run] [--json] [TOPOLOGY|NETWORK|NODE|LAB…]` */
export const cleanCommand: CommandModule<object, CleanArgs> = {
  command: 'clean [targets..]',
  describe: 'Remove what nslab owns here, found by its journal and marks: netns, links, OVS ports, iptables rules, sysctls it changed, processes, files; also what a killed command left half-made. Never touches what is not nslab\'s',
  builder: (y) =>
    y
      .positional('targets', { type: 'string', array: true, describe: 'only these owners: a topology (name or file), network, node or lab id; default: everything' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print what would be removed, change nothing' })
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' })
      .example('$0 clean', 'after Ctrl-C, a killed lab or "File exists": remove every leftover of nslab')
      .example('$0 clean --dry-run', 'what would go, and which command left it (incomplete: from a killed ...)')
      .example('$0 clean examples/star.yaml 03', 'only topology star and lab 03') as Argv<CleanArgs>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { clean } = await import('../engine/clean/clean.js');
      const rep = await clean(new ExecRunner(), { dryRun: a['dry-run'], targets: (a.targets ?? []).map(String) });
      if (a.json) printJson({ ok: rep.errors.length === 0, ...rep });
      else {
        if (rep.removed.length === 0) process.stdout.write('clean: nslab owns nothing here\n');
        else await printTable(['OWNER', a['dry-run'] ? 'WOULD REMOVE' : 'REMOVED'], rep.removed.map((x) => [x.owner, x.what]));
        for (const s of rep.running) process.stdout.write(`left alone (its command still runs): ${s}\n`);
        for (const s of rep.leftAlone) process.stdout.write(`left alone (not nslab's): ${s}\n`);
        for (const e of rep.errors) process.stderr.write(`nslab: clean: ${e}\n`);
      }
      if (rep.errors.length) process.exitCode = EXIT.failed;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
