// The write-ahead ownership journal's format (written by engine/clean/journal.ts, read by clean and
// inspect): one file per command under STATE/journal/, one JSON entry per line.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Op } from '../kernel/step.js';
import { stateDir } from '../paths.js';

/** A planned step as the journal keeps it (kernel/step.ts Step, without its functions). */
export interface JournalStep {
  describe: string;
  do: Op;
  undo: Op[];
  creates?: string;
  parent?: string;
  /** Its undo comes from a read made just before it (a `capture` entry), not from `undo`. */
  captures?: boolean;
  phase: number;
}

/** One line of a journal. `plan` numbers are per journal, in the order the command applied them. */
export type JournalEntry =
  /** `netns`: the inode of the netns the command ran in (its "current namespace": a VM's in a lab). */
  | { t: 'begin'; owner: string; pid: number; start: string | null; argv: string[]; at: string; netns?: number }
  /** Steps about to be applied; `existing`: the objects among their `creates` that were there before. */
  | { t: 'plan'; plan: number; steps: JournalStep[]; existing: string[] }
  /** A phase of a plan is starting: any step of it may have run. */
  | { t: 'phase'; plan: number; phase: number }
  /** The undo of step `step` of a plan, read before it ran (a sysctl's previous value). */
  | { t: 'capture'; plan: number; step: number; undo: Op[] }
  /** A plan ended: applied whole, or rolled back (`errors`: undo problems left). */
  | { t: 'end'; plan: number; rolledBack: boolean; errors: number }
  /**
   * The netns a phase created, with their inodes, written once the phase's batch has ended: proof
   * that a netns of that name is still the one nslab made (a name freed and taken again is not).
   */
  | { t: 'netns'; plan: number; phase: number; inodes: Record<string, number> }
  /** A process nslab started (its PID and start time), to stop on clean. */
  | { t: 'process'; pid: number; start: string | null; argv: string[] }
  /** A file or folder nslab is about to write, to remove on clean. */
  | { t: 'file'; path: string }
  /** An Open vSwitch nslab started with its state in `dir`, to stop on clean. */
  | { t: 'ovs'; dir: string };

/** The folder of journals. */
export function journalDir(): string {
  return join(stateDir(), 'journal');
}

/** A journal read back. */
export interface JournalFile {
  path: string;
  owner: string;
  pid: number;
  start: string | null;
  argv: string[];
  at: string;
  /** The inode of the netns the command ran in (null: not recorded). */
  netns: number | null;
  entries: JournalEntry[];
}

/**
 * Reads every journal under {@link journalDir}. A torn last line (the process died mid-write) is
 * dropped: an entry is written before its change, so a torn entry's change never began.
 */
export function readJournals(): JournalFile[] {
  let names: string[];
  try {
    names = readdirSync(journalDir()).filter((n) => n.endsWith('.jsonl')).sort();
  } catch {
    return [];
  }
  const out: JournalFile[] = [];
  for (const n of names) {
    const path = join(journalDir(), n);
    const entries: JournalEntry[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        entries.push(JSON.parse(line) as JournalEntry);
      } catch {
        break;
      }
    }
    const b = entries.find((e) => e.t === 'begin');
    if (!b || b.t !== 'begin') {
      out.push({ path, owner: '?', pid: 0, start: null, argv: [], at: '', netns: null, entries });
      continue;
    }
    out.push({ path, owner: b.owner, pid: b.pid, start: b.start, argv: b.argv, at: b.at, netns: b.netns ?? null, entries });
  }
  return out;
}

