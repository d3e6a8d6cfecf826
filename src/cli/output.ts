// How the CLI prints results and errors: one line per error (plus a hint), JSON with --json.
import { EXIT_CODE, NslabError } from '../errors.js';
import { isInterrupted } from '../exec/interrupt.js';
import { clearProgress } from '../exec/terminal.js';

/**
 * Exit codes (README "Exit codes"; errors.ts EXIT_CODE maps each error code onto them): 0 ok, 1 a
 * step or check failed (after rollback), 2 bad input or a missing object (nothing changed), 3 a needed
 * tool, daemon or privilege is missing, 130 interrupted (after cleanup).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, missing: 3, interrupted: 130 } as const;

/**
 * Prints an error as `nslab: MESSAGE` and `  hint: HINT` (or as JSON) and sets the exit code from
 * errors.ts EXIT_CODE; any error after Ctrl-C is an interruption (130), whatever step it stopped.
 */
export function reportError(err: unknown, json: boolean): void {
  let e = err instanceof NslabError ? err : new NslabError('COMMAND_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
  clearProgress();
  if (isInterrupted() && e.code !== 'INTERRUPTED') e = new NslabError('INTERRUPTED', `interrupted: ${e.message}`, { hint: e.hint, cause: e, details: e.details });
  if (json) {
    process.stdout.write(JSON.stringify({ ok: false, error: e.toJSON() }, null, 2) + '\n');
  } else {
    // One line: a tool's message may hold several (udhcpc's usage text); the first says what went wrong.
    process.stderr.write(`nslab: ${oneLine(e.message)}\n`);
    if (e.hint && e.code !== 'INVALID_INPUT') process.stderr.write(`  hint: ${oneLine(e.hint)}\n`);
    if (process.env.NSLAB_DEBUG && e.stack) process.stderr.write(e.stack + '\n');
  }
  process.exitCode = EXIT_CODE[e.code];
}

/** A message as one line: line breaks (and the blanks around them) become "; ". */
function oneLine(s: string): string {
  return s.trim().replace(/\s*\n\s*/g, '; ');
}

/** Prints a JSON value. */
export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/** Refuses to go on without root, before anything is changed. */
export function requireRoot(): void {
  if (process.geteuid?.() !== 0) throw new NslabError('NOT_ROOT', 'nslab needs root to change network namespaces and links here', { hint: 'run it inside `nslab sandbox -- ...`, which works without root (a user namespace of its own), or as root' });
}

/**
 * Prints rows under a header as aligned columns without borders (as `docker ps` and `docker network
 * ls` do), fitted to the terminal (exec/terminal.ts: `COLUMNS`, the TTY's width, 80 in a pipe,
 * unlimited with `--wide`), long cells cut with `…`.
 */
export async function printTable(head: string[], rows: string[][]): Promise<void> {
  const { renderTable } = await import('../exec/terminal.js');
  process.stdout.write(await renderTable(head, rows));
}
