// One error type for everything nslab reports: a one-line message, a hint, and the underlying cause.

/** Machine-readable error classes; the CLI maps every one to a non-zero exit. */
export type ErrorCode =
  | 'INVALID_INPUT' // bad file, flag or value: nothing was changed
  | 'COMMAND_FAILED' // an external command exited non-zero
  | 'APPLY_FAILED' // a step failed; what was applied before it was rolled back
  | 'NOT_ROOT'
  | 'MISSING_TOOL'
  | 'NOT_FOUND';

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
