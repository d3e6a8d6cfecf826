// nslab's version, as `nslab --version` prints it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

/**
 * nslab's version, from its package.json (yargs' own lookup starts from the working directory and
 * said "unknown" anywhere but the source tree).
 * @returns the `version` field, or `unknown` when package.json cannot be read
 */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
