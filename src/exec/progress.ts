// Progress of long work (up, down, clean): the engine says how far it got; the CLI decides whether to show it.

/** Receives "done of total, now doing what". */
export type ProgressSink = (done: number, total: number, what: string) => void;

let sink: ProgressSink | null = null;

/** Sets where progress goes (the CLI's progress line on a terminal), or null for nowhere (the default). */
export function setProgressSink(s: ProgressSink | null): void {
  sink = s;
}

/**
 * Reports progress: `done` of `total` units (steps, undo commands), `what` is being done now.
 * Does nothing unless the CLI set a sink: tests, the library and piped runs pay nothing.
 */
export function progress(done: number, total: number, what: string): void {
  sink?.(done, total, what);
}
