// `nslab verify FILE`: read the kernel back and compare it with a topology; one line per mismatch.
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';
import { withFile } from './topology.js';

interface VerifyArgs {
  file: string;
  json: boolean;
}

/** `nslab verify FILE [--json]` */
export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify <file>',
  describe: 'Compare the live kernel with a topology: one line per mismatch, exit 1 on any (reads only)',
  builder: (y) =>
    withFile(y)
      .example('$0 verify examples/star.yaml', 'prints e.g. "h1: eth0: address 10.0.0.1/24 missing"; exit 0 when all matches')
      .example('$0 verify examples/chain.yaml --json', 'the report as JSON (mismatches with kind, expected, actual)') as Argv<VerifyArgs>,
  handler: async (a) => {
    try {
      const { loadTopology } = await import('../engine/topology.js');
      const m = await loadTopology(a.file);
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { verify } = await import('../verify/verify.js');
      const rep = await verify(new ExecRunner(), m);
      if (a.json) printJson(rep);
      else if (rep.ok) process.stdout.write(`verify ${rep.topology}: ok (${rep.checked} facts checked)\n`);
      else process.stdout.write(rep.mismatches.map((x) => x.message).join('\n') + '\n');
      if (!rep.ok) process.exitCode = EXIT.failed;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
