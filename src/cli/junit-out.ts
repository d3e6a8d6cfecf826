// `--junit FILE` for verify, pingall, lab verify and lab run: the option and the writing of the file.
import { writeFileSync } from 'node:fs';
import type { JunitCase } from '../verify/junit.js';

/** The option's description. */
export const JUNIT_OPTION = { type: 'string', describe: 'also write the results as JUnit XML to FILE (one test case per check)' } as const;

/**
 * Writes cases as JUnit XML to `file` (nothing when `file` is undefined).
 * @throws NslabError `INVALID_INPUT` when the file cannot be written (its folder missing, say)
 */
export async function writeJunit(file: string | undefined, title: string, cases: JunitCase[]): Promise<void> {
  if (file === undefined) return;
  const { toJunit } = await import('../verify/junit.js');
  try {
    writeFileSync(file, toJunit(title, cases));
  } catch (err) {
    const { invalid } = await import('../errors.js');
    throw invalid(`--junit ${JSON.stringify(file)}: cannot write it (${(err as NodeJS.ErrnoException).code ?? String(err)}): expected a file in a folder that exists`);
  }
}
