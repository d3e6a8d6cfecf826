// How the CLI prints results and errors: one line per error (plus a hint), JSON with --json.
import { NslabError } from '../errors.js';

/** Exit codes: 0 ok, 1 a command or step failed, 2 bad input (nothing was changed). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Prints an error as `nslab: MESSAGE` and `  hint: HINT` (or as JSON) and sets the exit code. */
export function reportError(err: unknown, json: boolean): void {
  const e = err instanceof NslabError ? err : new NslabError('COMMAND_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
  if (json) {
    process.stdout.write(JSON.stringify({ ok: false, error: e.toJSON() }, null, 2) + '\n');
  } else {
    process.stderr.write(`nslab: ${e.message}\n`);
    if (e.hint && e.code !== 'INVALID_INPUT') process.stderr.write(`  hint: ${e.hint}\n`);
    if (process.env.NSLAB_DEBUG && e.stack) process.stderr.write(e.stack + '\n');
  }
  process.exitCode = e.code === 'INVALID_INPUT' ? EXIT.usage : EXIT.failed;
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
 * ls` do), through cli-table3.
 */
export async function printTable(head: string[], rows: string[][]): Promise<void> {
  const { default: Table } = await import('cli-table3');
  const none = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '   ' };
  const t = new Table({ head, chars: none, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } });
  t.push(...rows);
  process.stdout.write(t.toString().split('\n').map((l) => l.trimEnd()).join('\n') + '\n');
}
