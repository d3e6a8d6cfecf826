// Processes: identity by PID *and* start time, so that a PID the kernel reused is never taken for ours.
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';

function parseStart(text: string | null): string | null {
  if (!text) return null;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (f[0] === 'Z') return null;
  return f[19] ?? null;
}

/**
 * A process's start time: field 22 of /proc/PID/stat (clock ticks since boot, proc(5)).
 * @param pid the process ID
 * @returns the start time as text, or null when no such process runs (or it is a zombie)
 */
export async function startTime(pid: number): Promise<string | null> {
  return parseStart(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null));
}

/** {@link startTime}, synchronously (for a write-ahead record made before anything else may happen). */
export function startTimeSync(pid: number): string | null {
  try {
    return parseStart(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * True while the process that had this PID and start time still runs.
 * @param pid the recorded PID
 * @param start the start time recorded with it ({@link startTime})
 */
export async function stillRunning(pid: number, start: string | null): Promise<boolean> {
  return start !== null && (await startTime(pid)) === start;
}

/**
 * Sends SIGKILL to a process; one already gone is not an error (`nslab clean` stops what a killed
 * command started: no handler of theirs is owed a chance, their netns is going).
 * @param pid the process ID (checked by the caller: {@link stillRunning}, or a netns nslab made)
 */
export function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
}
