// apply: the only place steps reach the kernel. Batches per netns, runs independent netns at once,
// and on the first failure undoes everything already applied, in reverse order.
import type { BatchResult, SysctlWrite } from '../exec/command.js';
import type { Runner } from '../exec/runner.js';
import { NslabError } from '../errors.js';
import { sysctlWriteOf } from '../kernel/sysctl.js';
import { ipOp, opArgv, type Op, type Step } from '../kernel/step.js';
import { RecordingRunner } from '../exec/recorder.js';
import { checkNetnsVisible } from '../kernel/netns.js';
import { statSync } from 'node:fs';
import v8 from 'node:v8';
import { NETNS_DIR } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';

export { mapLimit };
import { activeJournal, type Journal, type JournalStep } from './clean/journal.js';
import { existingObjects } from './clean/existing.js';
import { progress } from '../exec/progress.js';

/** Options of {@link applySteps}. */
export interface ApplyOptions {
  /**
   * Fault injection: step number `faultAt` (0-based, plan order) is replaced by a command the kernel
   * refuses (`ip link set dev nlfaultK up` on a missing link), to prove rollback at every step.
   */
  faultAt?: number;
  /** How many netns batches run at once within a phase (default 4). */
  concurrency?: number;
  /**
   * The write-ahead journal (clean/journal.ts): default this process's, when the CLI opened one and
   * the runner is a real one; null: none.
   */
  journal?: Journal | null;
  /** The names of the current netns's links, read just before by the caller: the journal does not read them again. */
  hostLinks?: string[];
  /** The iptables tables as clean/recover.ts tablesNow gives them, read just before by the caller. */
  tables?: string[];
}

/** Messages of an undo whose object is already gone: not an error (as CNI's DEL). */
export const GONE_RE =
  /Cannot find device|does not exist|No such process|No such file or directory|Cannot assign requested address|No such device|not found|Cannot open network namespace|Cannot remove namespace file|Cannot delete qdisc with handle of zero|does a matching rule exist|pidfile not valid/i;

interface Failure {
  index: number;
  step: Step;
  message: string;
  argv: string[];
}

/** A step's identity within one apply: its plan index. */
type Indexed = { i: number; step: Step };

/**
 * Applies steps in order (see {@link Step}); on failure rolls back and throws.
 * @param r the runner (real, or recording for `--dry-run`)
 * @param steps planned steps, phases non-decreasing
 * @returns the undo ops of the applied steps, in the order to run them, and what captures read
 * @throws NslabError `APPLY_FAILED`, naming the failed step, its command and the kernel's message;
 *   `details.rollbackErrors` lists any undo that failed for another reason than "already gone".
 */
export async function applySteps(r: Runner, steps: Step[], opts: ApplyOptions = {}): Promise<Applied> {
  const work = withPhases(steps).map((s, i) => (i === opts.faultAt ? { ...s, do: faultOp(s, i) } : s));
  const captured = new Map<Step, Op[]>();
  // Write-ahead: every step and its undo are on disk before the first one runs, each phase is marked
  // before it starts, each captured undo before its change (clean/journal.ts).
  if (!(r instanceof RecordingRunner) && work.some((s) => s.creates?.startsWith('netns:'))) checkNetnsVisible();
  const j = opts.journal !== undefined ? opts.journal : r instanceof RecordingRunner ? null : activeJournal();
  const plan = j ? j.plan(work.map(journalStep), await existingObjects(r, work, { ...(opts.hostLinks ? { hostLinks: opts.hostLinks } : {}), ...(opts.tables ? { tables: opts.tables } : {}) })) : -1;
  const onCapture = j ? (i: number, undo: Op[]) => j.write({ t: 'capture', plan, step: i, undo }) : undefined;
  const done: Step[] = [];
  let start = 0;
  while (start < work.length) {
    const phase = work[start]!.phase ?? 0;
    let end = start;
    while (end < work.length && (work[end]!.phase ?? 0) === phase) end++;
    j?.write({ t: 'phase', plan, phase });
    if (!(r instanceof RecordingRunner)) progress(start, work.length, work[start]!.describe);
    const cut = killCut(end - start);
    if (cut !== null) end = start + cut;
    if (cut === 0) selfKill();
    const lanes = new Map<string, Indexed[]>();
    for (let i = start; i < end; i++) {
      const key = laneOf(work[i]!);
      const lane = lanes.get(key);
      // Appended in place: a copy per step made the current namespace's lane (4 steps a node) quadratic.
      if (lane) lane.push({ i, step: work[i]! });
      else lanes.set(key, [{ i, step: work[i]! }]);
    }
    // Lanes that are one ip batch in a netns (sysctls first at most) run in one process, one after
    // another (Runner.batchEach): a process per netns cost more here than the kernel's own work. The
    // others run as before, a few at once.
    const all = [...lanes.values()];
    const single = all.map((lane) => singleBatch(lane));
    const each = all.flatMap((lane, k) => (single[k] ? [{ lane, g: single[k]! }] : []));
    const results: LaneResult[] = [];
    if (each.length >= 2) {
      const outs = await r.batchEach(each.map(({ g }) => ({ netns: g.netns!, lines: g.lines, sysctls: g.sysctls })));
      each.forEach(({ g }, k) => results.push(batchApplied(g, outs[k]!)));
    }
    const rest = each.length >= 2 ? all.filter((_, k) => !single[k]) : all;
    results.push(...(await mapLimit(rest, opts.concurrency ?? 4, (lane) => runLane(r, lane, captured, onCapture))));
    const failures = results.flatMap((x) => (x.failure ? [x.failure] : []));
    // Applied steps of this phase, in plan order, so that the reverse is a valid undo order.
    const applied = results.flatMap((x) => x.applied).sort((x, y) => x.i - y.i);
    done.push(...applied.map((x) => x.step));
    if (failures.length > 0) {
      const f = failures.sort((x, y) => x.index - y.index)[0]!;
      const rollbackErrors = await runUndo(r, undoOps(done, captured));
      j?.end(plan, true, rollbackErrors.length);
      throw new NslabError('APPLY_FAILED', `step ${f.index + 1}/${steps.length} "${steps[f.index]!.describe}" failed: ${f.argv.join(' ')}: ${f.message}`, {
        hint: rollbackErrors.length ? `rollback left ${rollbackErrors.length} problem(s): ${rollbackErrors.join('; ')}` : `every step that had been applied (${done.length}) was undone`,
        // 1-based, as the message counts ("step 8/12"): --json and the one line agree (issue 20).
        details: { failedStep: f.index + 1, steps: steps.length, rollbackErrors },
      });
    }
    if (j) journalNetns(j, plan, phase, applied.map((x) => x.step));
    if (cut !== null) selfKill();
    start = end;
  }
  j?.end(plan, false, 0);
  if (!(r instanceof RecordingRunner)) progress(work.length, work.length, 'done');
  return { undo: undoOps(done, captured), captured };
}

/** What {@link applySteps} returns. */
export interface Applied {
  /** Undo ops of everything applied, in the order to run them. */
  undo: Op[];
  /** Undo ops built from state read just before a step (e.g. a sysctl's previous value). */
  captured: Map<Step, Op[]>;
}

/**
 * Steps without a phase keep their order: each run of steps in one netns becomes its own phase, so
 * nothing runs at once unless a planner said it may (by giving phases).
 */
function withPhases(steps: Step[]): Step[] {
  if (steps.every((s) => s.phase !== undefined)) return steps;
  let phase = 0;
  return steps.map((s, i) => {
    if (i > 0 && laneOf(s) !== laneOf(steps[i - 1]!)) phase++;
    return { ...s, phase };
  });
}

/** The undo ops of applied steps, last step first. */
export function undoOps(done: Step[], captured: Map<Step, Op[]> = new Map()): Op[] {
  return [...done].reverse().flatMap((s) => captured.get(s) ?? s.undo);
}

/**
 * Runs undo ops in order, batching neighbours, going on after errors (`-force`). Errors that say
 * the object is already gone are ignored; the others are returned, one line each.
 */
export async function runUndo(r: Runner, ops: Op[]): Promise<string[]> {
  const errors: string[] = [];
  const groups = groupOps(ops);
  let ran = 0;
  for (const group of groups) {
    if (!(r instanceof RecordingRunner)) progress(ran, ops.length, `undo: ${group.kind === 'batch' ? `ip -batch (${group.lines.length} commands)` : opArgv(group.op).join(' ')}`);
    ran += group.kind === 'batch' ? group.lines.length : 1;
    if (group.kind === 'batch') {
      const res = await r.batch('ip', group.netns, group.lines, { force: true }).catch((e: Error) => ({ failed: [{ index: 0, message: e.message }] }));
      for (const f of res.failed) if (!GONE_RE.test(f.message)) errors.push(`${['ip', ...(group.netns ? ['-n', group.netns] : []), ...(group.lines[f.index] ?? [])].join(' ')}: ${f.message}`);
    } else {
      const res = await r.run(group.op.cmd, { check: false }).catch((e: Error) => ({ exitCode: 1, stderr: e.message }));
      // pkill's exit 1 with nothing said: no process matched (pkill(1)), the process is gone already.
      const noMatch = group.op.cmd.argv[0] === 'pkill' && res.exitCode === 1 && !res.stderr.trim();
      if (res.exitCode !== 0 && !noMatch && !GONE_RE.test(res.stderr)) errors.push(`${opArgv(group.op).join(' ')}: ${res.stderr.trim()}`);
    }
  }
  if (!(r instanceof RecordingRunner) && ops.length) progress(ops.length, ops.length, 'done');
  return errors;
}

type BatchGroup = {
  kind: 'batch';
  netns: string | null;
  batchKey: string | undefined;
  lines: string[][];
  steps: Indexed[];
  /** Sysctl steps just before the lines, in the same netns: written by the batch's own process. */
  sysctls: SysctlWrite[];
  pre: Indexed[];
};
type Group = BatchGroup | { kind: 'cmd'; op: Extract<Op, { tool: 'cmd' }>; steps: Indexed[] };
type LaneResult = { applied: Indexed[]; failure?: Failure };

/** The lane as one ip batch in a netns (its sysctls folded in), when it is exactly that; else null. */
function singleBatch(lane: Indexed[]): BatchGroup | null {
  if (lane.some((x) => x.step.capture)) return null;
  const groups = foldSysctls(groupOps(lane.map((x) => x.step.do), lane));
  const g = groups[0];
  return groups.length === 1 && g?.kind === 'batch' && g.netns !== null ? g : null;
}

/** Merges sysctl writes (kernel/sysctl.ts writeSysctlOp) into the ip batch that follows them in their netns. */
function foldSysctls(groups: Group[]): Group[] {
  const out: Group[] = [];
  let held: Array<{ w: SysctlWrite; x: Indexed; netns: string | null }> = [];
  const release = () => {
    for (const h of held) out.push({ kind: 'cmd', op: h.x.step.do as Extract<Op, { tool: 'cmd' }>, steps: [h.x] });
    held = [];
  };
  for (const g of groups) {
    const w = g.kind === 'cmd' && g.steps.length === 1 ? sysctlWriteOf(g.op) : null;
    if (w && g.kind === 'cmd') {
      const netns = g.op.cmd.netns ?? null;
      if (held.length && held[0]!.netns !== netns) release();
      held.push({ w, x: g.steps[0]!, netns });
      continue;
    }
    if (g.kind === 'batch' && held.length && held[0]!.netns === g.netns) {
      out.push({ ...g, sysctls: held.map((h) => h.w), pre: held.map((h) => h.x) });
      held = [];
      continue;
    }
    release();
    out.push(g);
  }
  release();
  return out;
}

/** Which steps of a batch group were applied, and the failure if one was not. */
function batchApplied(g: BatchGroup, res: BatchResult): LaneResult {
  if (res.sysctlFailed) {
    const k = Math.max(0, g.pre.findIndex((x) => sysctlWriteOf(x.step.do)?.key === res.sysctlFailed!.key));
    const s = g.pre[k]!;
    return { applied: g.pre.slice(0, k), failure: { index: s.i, step: s.step, message: res.sysctlFailed.message, argv: opArgv(s.step.do) } };
  }
  const bad = res.failed[0];
  // index -1: the batch did not start, so not even its sysctls were written.
  if (bad?.index === -1) {
    const s = g.pre[0] ?? g.steps[0]!;
    return { applied: [], failure: { index: s.i, step: s.step, message: bad.message, argv: opArgv(s.step.do) } };
  }
  const applied = [...g.pre, ...(bad ? g.steps.slice(0, bad.index) : g.steps)];
  if (!bad) return { applied };
  const s = g.steps[bad.index]!;
  return { applied, failure: { index: s.i, step: s.step, message: bad.message, argv: opArgv(s.step.do) } };
}

/** Groups consecutive `ip` ops with the same netns and batch key into one batch. */
function groupOps(ops: Op[], owners: Indexed[] = []): Group[] {
  const out: Group[] = [];
  ops.forEach((op, k) => {
    const owner = owners[k] ? [owners[k]!] : [];
    if (op.tool === 'cmd') {
      out.push({ kind: 'cmd', op, steps: owner });
      return;
    }
    const last = out[out.length - 1];
    if (last?.kind === 'batch' && last.netns === op.netns && last.batchKey === op.batchKey) {
      last.lines.push(op.args);
      last.steps.push(...owner);
    } else {
      out.push({ kind: 'batch', netns: op.netns, batchKey: op.batchKey, lines: [op.args], steps: owner, sysctls: [], pre: [] });
    }
  });
  return out;
}

/** Runs one lane (the steps of one netns in one phase) in order; stops at the first failure. */
async function runLane(r: Runner, lane: Indexed[], captured: Map<Step, Op[]>, onCapture?: (i: number, undo: Op[]) => void): Promise<LaneResult> {
  const applied: Indexed[] = [];
  // Split the lane where a step needs a capture first, so the read happens right before its change.
  let pending: Indexed[] = [];
  const flush = async (): Promise<Failure | undefined> => {
    for (const g of foldSysctls(groupOps(pending.map((x) => x.step.do), pending))) {
      if (g.kind === 'batch') {
        // A batch that could not start (its netns gone, ip missing) applied nothing: a failure of its
        // first step, so that what earlier steps did is undone like any other failure.
        const res = await r.batch('ip', g.netns, g.lines, g.sysctls.length ? { sysctls: g.sysctls } : {}).catch((e: Error): BatchResult => ({ failed: [{ index: -1, message: e.message }], stderr: e.message }));
        const out = batchApplied(g, res);
        applied.push(...out.applied);
        if (out.failure) return out.failure;
      } else {
        const s = g.steps[0]!;
        const res = await r.run(g.op.cmd, { check: false }).catch((e: Error) => ({ exitCode: 1, stdout: '', stderr: e.message }));
        if (res.exitCode !== 0) return { index: s.i, step: s.step, message: res.stderr.trim() || `exit code ${res.exitCode}`, argv: opArgv(s.step.do) };
        applied.push(s);
      }
    }
    pending = [];
    return undefined;
  };
  for (const x of lane) {
    if (x.step.capture) {
      const f = await flush();
      if (f) return { applied, failure: f };
      const res = await r.run(x.step.capture.read, { check: false });
      if (res.exitCode !== 0) return { applied, failure: { index: x.i, step: x.step, message: res.stderr.trim(), argv: x.step.capture.read.argv } };
      captured.set(x.step, x.step.capture.undo(res.stdout));
      onCapture?.(x.i, captured.get(x.step)!);
    }
    pending.push(x);
  }
  const f = await flush();
  return f ? { applied, failure: f } : { applied };
}

/**
 * Runs `fn`, a change that no plan of steps describes (a lab's own command, a daemon's start), as one
 * journaled step: its undo is on disk before it runs and the fault suite's kill point counts it.
 * @param r the runner (nothing is journaled for a recording one)
 * @param step what it does (`do` for people and the iptables check, `undo` for `nslab clean`)
 * @param fn the change itself
 * @returns what `fn` returns
 */
export async function journaled<T>(r: Runner, step: Pick<Step, 'describe' | 'do' | 'undo'>, fn: () => Promise<T>): Promise<T> {
  const j = r instanceof RecordingRunner ? null : activeJournal();
  const full: Step = { ...step, phase: 0 };
  const plan = j ? j.plan([journalStep(full)], await existingObjects(r, [full])) : -1;
  j?.write({ t: 'phase', plan, phase: 0 });
  if (killCut(1) === 0) selfKill();
  try {
    const out = await fn();
    j?.end(plan, false, 0);
    return out;
  } catch (err) {
    j?.end(plan, true, 0);
    throw err;
  }
}

/** Journals the inodes of the netns that `applied` created (clean/recover.ts proves ownership by them). */
function journalNetns(j: Journal, plan: number, phase: number, applied: Step[]): void {
  const inodes: Record<string, number> = {};
  for (const s of applied) {
    if (!s.creates?.startsWith('netns:')) continue;
    const name = s.creates.slice('netns:'.length);
    try {
      inodes[name] = statSync(`${NETNS_DIR}/${name}`).ino;
    } catch {
      /* gone meanwhile */
    }
  }
  if (Object.keys(inodes).length) j.write({ t: 'netns', plan, phase, inodes });
}

let killAt: number | null | undefined;
let stepsSeen = 0;

/**
 * Forgets the kill point read and the steps counted, so that the next apply reads NSLAB_KILL_AT again:
 * for a startup snapshot whose build applied steps (cli/topology-main.ts), since the process started
 * from it has an environment of its own.
 */
export function resetKillPoint(): void {
  killAt = undefined;
  stepsSeen = 0;
}

// A snapshot's warm-up may apply steps (a plan's dry run) after its last synchronous line, so a reset
// there came too early: killAt was read (absent: null) and kept, and `NSLAB_KILL_AT` did nothing in
// every command started from the topology snapshot. Reset when V8 serializes, once the warm-up is done.
if (v8.startupSnapshot?.isBuildingSnapshot()) v8.startupSnapshot.addSerializeCallback(resetKillPoint);

/**
 * The fault suite's kill point: with `NSLAB_KILL_AT=K` this process is killed (SIGKILL, no handler
 * runs) once K steps have been applied, counted over every apply of the command. Read at the first
 * apply and taken out of the environment, so that child processes do not inherit it.
 * @param n the steps of the phase about to run
 * @returns how many of them to run before the kill, or null to run them all
 */
function killCut(n: number): number | null {
  if (killAt === undefined) {
    const v = process.env.NSLAB_KILL_AT;
    delete process.env.NSLAB_KILL_AT;
    killAt = v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
  }
  const seen = stepsSeen;
  stepsSeen += n;
  return killAt !== null && seen + n > killAt && seen <= killAt ? killAt - seen : null;
}

function selfKill(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** A step as the journal keeps it. */
function journalStep(s: Step): JournalStep {
  return { describe: s.describe, do: s.do, undo: s.undo, phase: s.phase ?? 0, ...(s.creates ? { creates: s.creates } : {}), ...(s.parent ? { parent: s.parent } : {}), ...(s.capture ? { captures: true } : {}) };
}

/** The netns a step acts in ('' for the current one): steps of different lanes are independent within a phase. */
function laneOf(s: Step): string {
  return (s.do.tool === 'ip' ? s.do.netns : s.do.cmd.netns) ?? '';
}

function faultOp(s: Step, i: number): Op {
  const netns = s.do.tool === 'ip' ? s.do.netns : (s.do.cmd.netns ?? null);
  return ipOp(netns, ['link', 'set', 'dev', `nlfault${i}`, 'up'], s.do.tool === 'ip' ? s.do.batchKey : undefined);
}

