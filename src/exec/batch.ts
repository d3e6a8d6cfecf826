// Encoding lines for `ip/tc/bridge -batch -` and decoding which lines failed.
import type { BatchLineError } from './command.js';
import { invalid } from '../errors.js';

/**
 * Joins one batch line. iproute2's makeargs() splits on blanks, honours double quotes and treats `#`
 * as a comment, so an argument with a blank is quoted and one with `"`, `#` or a newline is refused.
 */
export function batchLine(args: string[]): string {
  return args
    .map((a) => {
      if (/["#\n\\]/.test(a)) throw invalid(`batch argument ${JSON.stringify(a)} contains a character ip -batch cannot carry (", #, \\ or newline)`);
      return a === '' || /\s/.test(a) ? `"${a}"` : a;
    })
    .join(' ');
}

/**
 * Reads the failed lines out of a batch's stderr: each failure is the tool's message followed by
 * `Command failed -:N` (N counts from 1).
 */
export function parseBatchErrors(stderr: string): BatchLineError[] {
  const out: BatchLineError[] = [];
  let buf: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)\s*$/.exec(line);
    if (m) {
      out.push({ index: Number(m[1]) - 1, message: buf.join(' ').trim() || 'failed' });
      buf = [];
    } else if (line.trim()) {
      buf.push(line.trim());
    }
  }
  return out;
}

/**
 * Several read-only `ip` queries in one process: `ip -j [GLOBAL...] -batch -`, one JSON array per line
 * of output, in order. Global options such as -d or -6 apply to every line (ip refuses them in a line).
 * @returns one parsed JSON array per query
 */
export async function queryJson(r: import('./runner.js').Runner, netns: string | null, queries: string[][], global: string[] = []): Promise<unknown[][]> {
  const res = await r.run({ argv: ['ip', '-j', ...global, '-batch', '-'], netns, input: queries.map(batchLine).join('\n') + '\n' });
  const lines = res.stdout.split('\n').filter((l) => l.trim());
  return queries.map((_, i) => (lines[i] ? (JSON.parse(lines[i]!) as unknown[]) : []));
}
