// Ctrl-C as "stop and undo": the first SIGINT stops new changes and lets rollback run; the second ends at once.
import v8 from 'node:v8';
import { NslabError } from '../errors.js';

let interrupted = false;
let installed = false;
const listeners: Array<() => void> = [];

/** True once this process got SIGINT (or {@link interrupt} was called: end of input at a --step pause). */
export function isInterrupted(): boolean {
  return interrupted;
}

/**
 * Marks the process interrupted and tells the listeners (a `--step` pause waiting for Enter). From
 * then on the real runner refuses to start new changes (see {@link checkInterrupted}); undo still runs.
 */
export function interrupt(): void {
  if (interrupted) return;
  interrupted = true;
  for (const l of listeners.splice(0)) l();
}

/** Calls `fn` when the process is interrupted (at once when it is already). Returns the unsubscribe. */
export function onInterrupt(fn: () => void): () => void {
  if (interrupted) {
    fn();
    return () => {};
  }
  listeners.push(fn);
  return () => {
    const i = listeners.indexOf(fn);
    if (i >= 0) listeners.splice(i, 1);
  };
}

/**
 * Installs the SIGINT handler of a CLI process. A terminal's Ctrl-C reaches the whole foreground
 * process group, so the `ip` running at that moment ends too and its step fails; the handler keeps
 * node alive so that the rollback of apply (engine/apply.ts) and a lab's teardown run, and the CLI
 * exits 130 after them (as shells report a command that SIGINT ended: 128 + 2). The second Ctrl-C
 * ends the process at once (what it leaves, `nslab clean` finds in its journal).
 */
export function catchInterrupts(): void {
  // A signal handler is a libuv handle, which a V8 startup snapshot cannot hold (the attach snapshot
  // runs a command line while it is built): installed when the command really runs.
  if (installed || v8.startupSnapshot?.isBuildingSnapshot()) return;
  installed = true;
  process.on('SIGINT', function first() {
    process.removeListener('SIGINT', first);
    process.once('SIGINT', () => process.exit(130));
    process.stderr.write('\nnslab: interrupted: undoing what this command did (Ctrl-C again to quit at once; then nslab clean)\n');
    interrupt();
  });
}

/**
 * Throws `INTERRUPTED` when the process was interrupted: called by the real runner before a command
 * that changes something (a checked run, a batch without -force), never before an undo.
 */
export function checkInterrupted(what: string): void {
  if (interrupted) throw new NslabError('INTERRUPTED', `interrupted before ${what}`);
}
