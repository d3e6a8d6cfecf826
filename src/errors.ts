// One error type for everything nslab reports: a one-line message, a hint, and the underlying cause.

/** Machine-readable error classes; the CLI maps every one to an exit code ({@link EXIT_CODE}). */
export type ErrorCode =
  | 'INVALID_INPUT' // bad file, flag or value: nothing was changed
  | 'COMMAND_FAILED' // an external command exited non-zero
  | 'APPLY_FAILED' // a step failed; what was applied before it was rolled back
  | 'NOT_ROOT'
  | 'MISSING_TOOL' // a program or daemon nslab needs is not installed or not running
  | 'NOT_FOUND' // a named object (guest, node, network, netns, lab) does not exist: nothing was changed
  | 'INTERRUPTED'; // Ctrl-C (SIGINT) or end of input at a --step pause; what was done was undone

/**
 * nslab's one exit-code contract (README "Exit codes"): 0 ok; 1 a step or a check failed (after
 * rollback); 2 bad input or a missing object, nothing changed; 3 a needed tool, daemon or privilege is
 * missing (with the install/start hint); 130 interrupted, after cleanup (128 + SIGINT, as shells report
 * a command Ctrl-C ended). A Record over the union, so a new code cannot go without its exit code.
 */
export const EXIT_CODE: Record<ErrorCode, number> = {
  INVALID_INPUT: 2,
  NOT_FOUND: 2,
  COMMAND_FAILED: 1,
  APPLY_FAILED: 1,
  MISSING_TOOL: 3,
  NOT_ROOT: 3,
  INTERRUPTED: 130,
};

/**
 * An error that names the bad value and what was expected (STYLE.md §6).
 * `message` is one line; `hint` says what to do; `cause` keeps the underlying error.
 */
export class NslabError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NslabError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  /** A JSON form for `--json` output. */
  toJSON(): Record<string, unknown> {
    const cause = this.cause instanceof NslabError ? this.cause.toJSON() : this.cause instanceof Error ? { message: this.cause.message } : undefined;
    return { code: this.code, message: this.message, hint: this.hint, ...this.details, cause };
  }
}

/** Shorthand for an `INVALID_INPUT` error. */
export function invalid(message: string, hint?: string): NslabError {
  return new NslabError('INVALID_INPUT', message, { hint });
}
