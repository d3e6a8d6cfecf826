// `nslab verify FILE`: read the kernel back and compare it with a topology; one line per mismatch.
// `nslab verify lab ID` checks a lab's outcomes; `nslab verify attachments [GUEST]` what attaches made.
import { existsSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';
import { loadFor, withFile } from './topology.js';
import { JUNIT_OPTION, writeJunit } from './junit-out.js';

interface VerifyArgs {
  file: string;
  host?: string;
  id?: string;
  json: boolean;
  junit?: string;
}

/** `nslab verify FILE [--json]` */
export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify <file> [id]',
  describe: 'Compare the live kernel with a topology: one line per mismatch, exit 1 on any (reads only)',
  builder: (y) =>
    withFile(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'topology file (YAML), "lab" followed by a lab id, or "attachments" [GUEST]' })
      .option('junit', JUNIT_OPTION)
      .example('$0 verify examples/star.yaml', 'prints e.g. "h1: eth0: address 10.0.0.1/24 missing"; exit 0 when all matches')
      .positional('id', { type: 'string', describe: 'with "lab": the lab id (nslab verify lab 08 = nslab lab verify 08); with "attachments": one guest (netns, PID, container name or ID, cni:ID)' })
      .example('$0 verify attachments', 'what attach, pipework, nodes and nslab-cni wired, checked against their marks, Docker records and the CNI cache')
      .example('$0 verify attachments c1 --json', "one guest's attachments, as JSON")
      .example('$0 verify lab 08', 'check a lab built by hand (e.g. from `nslab lab script 08`)')
      .example('$0 verify examples/chain.yaml --json', 'the report as JSON (mismatches with kind, expected, actual)') as Argv<VerifyArgs>,
  handler: async (a) => {
    try {
      if (a.file === 'lab') {
        const { invalid } = await import('../errors.js');
        if (!a.id) throw invalid('verify lab needs a lab id: nslab verify lab 08 (nslab lab ls)');
        const { loadLab } = await import('../model/lab.js');
        const lab = await loadLab(a.id);
        requireRoot();
        const { ExecRunner } = await import('../exec/runner.js');
        const { labVerify } = await import('../engine/labs/lab.js');
        const checks = await labVerify(new ExecRunner(), lab);
        const { paint } = await import('../exec/terminal.js');
        const { checkCases } = await import('../verify/junit.js');
        await writeJunit(a.junit, `nslab lab verify ${lab.id}`, checkCases(`lab ${lab.id} verify`, checks));
        if (a.json) printJson({ ok: checks.every((c) => c.ok), checks });
        else for (const c of checks) process.stdout.write(`${c.ok ? paint('✓', 'green') : paint('✗', 'red')} ${c.text}${c.ok || !c.detail ? '' : `  [${c.detail}]`}\n`);
        if (!checks.every((c) => c.ok)) process.exitCode = EXIT.failed;
        return;
      }
      // `attachment` too: the singular is what a user types first, and no topology file has that name.
      if ((a.file === 'attachments' || a.file === 'attachment') && !existsSync(a.file)) {
        if (a.host !== undefined) {
          const { invalid } = await import('../errors.js');
          throw invalid(`--host ${JSON.stringify(a.host)}: verify attachments reads this machine's attachments; --host is for a multi-host topology file`);
        }
        requireRoot();
        const { ExecRunner } = await import('../exec/runner.js');
        const { verifyAttachments } = await import('../verify/attachments.js');
        const rep = await verifyAttachments(new ExecRunner(), a.id);
        if (a.id && rep.attachments.length === 0) {
          const { NslabError } = await import('../errors.js');
          throw new NslabError('NOT_FOUND', `guest ${JSON.stringify(a.id)}: nslab attached nothing to it here`, { hint: 'nslab inspect lists what nslab made, `attach GUEST` rows included' });
        }
        const { checkCases } = await import('../verify/junit.js');
        await writeJunit(a.junit, 'nslab verify attachments', checkCases('verify attachments', rep.attachments.map((x) => {
          const mine = rep.mismatches.filter((y) => y.guest === x.guest && y.ifname === x.ifname);
          return { ok: x.ok, text: `attach ${x.name}: ${x.ifname}`, ...(mine.length ? { detail: mine.map((y) => `${y.text}${y.because ? ` (${y.because})` : ''}`).join('; ') } : {}) };
        })));
        if (a.json) printJson(rep);
        else if (rep.attachments.length === 0) process.stdout.write('verify attachments: none here (nothing made by nslab attach, pipework, network modes or nslab-cni)\n');
        else if (rep.ok) process.stdout.write(`verify attachments: ok (${rep.attachments.length} attachment${rep.attachments.length === 1 ? '' : 's'}, ${rep.checked} facts checked${rep.downOnPurpose.length ? `; down on purpose (nslab link down): ${rep.downOnPurpose.join(', ')}` : ''})\n`);
        else process.stdout.write(rep.mismatches.map((x) => x.message).join('\n') + '\n');
        if (!rep.ok) process.exitCode = EXIT.failed;
        return;
      }
      const m = (await loadFor(a)).model;
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { verify } = await import('../verify/verify.js');
      const rep = await verify(new ExecRunner(), m);
      const { verifyCases } = await import('../verify/junit.js');
      await writeJunit(a.junit, `nslab verify ${rep.topology}`, verifyCases(m, rep));
      if (a.json) printJson(rep);
      else if (rep.ok) process.stdout.write(`verify ${rep.topology}: ok (${rep.checked} facts checked${rep.downOnPurpose.length ? `; down on purpose (nslab link down): ${rep.downOnPurpose.join(', ')}` : ''})\n`);
      else process.stdout.write(rep.mismatches.map((x) => x.message).join('\n') + '\n');
      if (!rep.ok) process.exitCode = EXIT.failed;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
