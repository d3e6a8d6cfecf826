// The write-ahead ownership journal: what a running nslab command is about to change, written before
// it changes it, so that a process killed at any instant (SIGKILL, OOM, Ctrl-C twice) leaves only
// objects that `nslab clean` can find and prove are its own.
//
// One file per command under STATE/journal/, JSON lines, appended synchronously (the page cache keeps
// them when the process dies; /run is tmpfs, gone at reboot with the objects themselves). A command
// that ends by itself (success, or a failure it rolled back) removes its file; a file whose writer no
// longer runs (PID and start time) is a crash to clean up.
import { appendFileSync, mkdirSync, readlinkSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTimeSync, stillRunning } from '../../kernel/proc.js';
import { journalDir, type JournalEntry, type JournalFile, type JournalStep } from '../../model/journal.js';

export { journalDir, readJournals, type JournalEntry, type JournalFile, type JournalStep } from '../../model/journal.js';

/** A command's journal, written as it goes. */
export class Journal {
  private plans = 0;
  private failed = false;
  private closed = false;

  private constructor(readonly path: string) {}

  /**
   * Starts this process's journal (nothing is written until the first entry).
   * @param owner what the command works for: `topology NAME`, `network NAME`, `node NAME`, `lab ID`, `attach`
   * @param argv the command line, for people reading `nslab clean --dry-run`
   */
  static open(owner: string, argv: string[]): Journal {
    const j = new Journal(join(journalDir(), `${Date.now()}-${process.pid}.jsonl`));
    j.begin = { t: 'begin', owner, pid: process.pid, start: startTimeSync(process.pid), argv, at: new Date().toISOString(), ...netnsIno() };
    return j;
  }

  private begin: JournalEntry | null = null;

  /**
   * Names the owner more exactly once the command knows it (a topology's `name:`, a lab's id), while
   * nothing is written yet; later, or once named, the owner stays.
   */
  setOwner(owner: string): void {
    // The first to name it wins: a lab's topology action must not rename the lab's journal.
    if (this.ownerSet) return;
    this.ownerSet = true;
    if (this.begin?.t === 'begin') this.begin = { ...this.begin, owner };
  }

  private ownerSet = false;

  /** Appends one entry (synchronously: it must be on disk before the change it announces). */
  write(e: JournalEntry): void {
    if (this.closed) return;
    if (this.begin) {
      this.append(`${JSON.stringify(this.begin)}\n`);
      this.begin = null;
    }
    this.append(`${JSON.stringify(e)}\n`);
  }

  /** Appends, making the folder first: another nslab ending may remove it when it holds no journal. */
  private append(line: string): void {
    for (let tries = 0; ; tries++) {
      try {
        appendFileSync(this.path, line);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || tries >= 5) throw err;
        mkdirSync(journalDir(), { recursive: true });
      }
    }
  }

  /** Records a plan about to be applied; returns its number for later entries. */
  plan(steps: JournalStep[], existing: string[]): number {
    const plan = this.plans++;
    this.write({ t: 'plan', plan, steps, existing });
    return plan;
  }

  /** Records how a plan ended. An end with undo problems keeps the journal for `nslab clean`. */
  end(plan: number, rolledBack: boolean, errors: number): void {
    if (errors > 0) this.failed = true;
    this.write({ t: 'end', plan, rolledBack, errors });
  }

  /** Keeps the journal at exit (what the command made could not all be undone). */
  keep(): void {
    this.failed = true;
  }

  /**
   * The command ended by itself: its journal goes, unless a rollback left something behind.
   * Called at process exit.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failed) return;
    rmSync(this.path, { force: true });
    // The folder goes with the last journal: a finished command leaves STATE as it found it.
    try {
      rmdirSync(journalDir());
    } catch {
      /* other journals (or none made) */
    }
  }
}

/** This process's netns inode (`/proc/self/ns/net` reads `net:[INODE]`), for the begin entry. */
function netnsIno(): { netns?: number } {
  try {
    const m = /net:\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'));
    return m ? { netns: Number(m[1]) } : {};
  } catch {
    return {};
  }
}

let current: Journal | null = null;

/**
 * This process's journal: opened by the CLI for a command that changes things ({@link openJournal}),
 * else null (library use, `plan`, tests with a recording runner: nothing is journaled).
 */
export function activeJournal(): Journal | null {
  return current;
}

/**
 * Opens this process's journal and removes it when the process exits by itself.
 * @param owner see {@link Journal.open}
 * @param argv the command line
 */
export function openJournal(owner: string, argv: string[]): Journal {
  if (current) return current;
  current = Journal.open(owner, argv);
  process.once('exit', () => current?.close());
  return current;
}

/** True while the command that writes this journal still runs (its PID with the same start time). */
export async function journalLive(j: JournalFile): Promise<boolean> {
  return j.pid !== process.pid && (await stillRunning(j.pid, j.start));
}
