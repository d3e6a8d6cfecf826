// Recovery from a journal whose command died: what it may have made, proven its own, undone.
import { existsSync, rmSync, statSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_DIR } from '../../exec/runner.js';
import { deleteNetns, netnsPids } from '../../kernel/netns.js';
import { killQuiet, stillRunning } from '../../kernel/proc.js';
import { opArgv, type Op } from '../../kernel/step.js';
import { BUILTIN, dropTableOp, pristine, readIptables, type Table } from '../../kernel/iptables.js';
import { runUndo } from '../apply.js';
import { stopOvs } from '../services.js';
import type { JournalEntry, JournalFile } from './journal.js';

/** What recovering one journal does (or, planned, would do). */
export interface Recovery {
  /** netns to delete (their processes are stopped first). */
  netns: string[];
  /**
   * Proof per netns: the inode it had when its phase ended (delete only that one), or null when the
   * command died while creating it (delete only while it is still pristine: nothing but a bare lo).
   */
  netnsProof: Record<string, number | null>;
  /** Undo ops, in the order to run them. */
  ops: Op[];
  /** Processes to stop: PID and start time. */
  processes: Array<{ pid: number; start: string | null; argv: string[] }>;
  files: string[];
  ovs: string[];
  /** iptables tables that existed before (keys `iptables:TABLE`): the others are dropped once pristine. */
  tablesBefore: Set<string> | null;
  /** Objects of the plan left alone, and why (they were there before the command ran). */
  leftAlone: string[];
}

/**
 * Works out what a dead command's journal leaves to undo (pure: no kernel access).
 * The proof of ownership: a plan's step may have run only if its phase was marked as started; an
 * object it creates that already existed when the plan was written (`existing`) is someone else's,
 * whatever its name, and is never touched; a step whose parent (its netns or link) goes needs no undo.
 * A plan that was rolled back without problems is done with. Captured undos (a sysctl's old value)
 * exist only for steps whose read was journaled, that is, whose write may have happened.
 * @param j the journal read back (journal.ts readJournals)
 * @returns what to undo, last change first
 */
export function planRecovery(j: JournalFile): Recovery {
  const out: Recovery = { netns: [], netnsProof: {}, ops: [], processes: [], files: [], ovs: [], tablesBefore: null, leftAlone: [] };
  const plans = j.entries.filter((e): e is Extract<JournalEntry, { t: 'plan' }> => e.t === 'plan');
  const gone = new Set<string>();
  for (const p of plans) {
    const started = new Set(j.entries.filter((e) => e.t === 'phase' && e.plan === p.plan).map((e) => (e as { phase: number }).phase));
    for (const s of p.steps) if (s.creates && started.has(s.phase) && !p.existing.includes(s.creates)) gone.add(s.creates);
  }
  for (const p of [...plans].reverse()) {
    const end = j.entries.find((e) => e.t === 'end' && e.plan === p.plan) as Extract<JournalEntry, { t: 'end' }> | undefined;
    const existing = new Set(p.existing);
    const tables = p.existing.filter((k) => k.startsWith('iptables:'));
    // Plans go last first: the earliest read is what the command found (later plans see its tables).
    if (p.existing.includes('iptables:*')) out.tablesBefore = new Set(tables);
    if (end?.rolledBack && end.errors === 0) continue;
    const started = new Set(j.entries.filter((e) => e.t === 'phase' && e.plan === p.plan).map((e) => (e as { phase: number }).phase));
    const captured = new Map<number, Op[]>();
    for (const e of j.entries) if (e.t === 'capture' && e.plan === p.plan) captured.set(e.step, e.undo);
    for (let i = p.steps.length - 1; i >= 0; i--) {
      const s = p.steps[i]!;
      if (!started.has(s.phase)) continue;
      if (s.creates && existing.has(s.creates)) {
        out.leftAlone.push(`${s.creates} (it was there before ${j.argv.join(' ')})`);
        continue;
      }
      if (s.parent && (gone.has(s.parent) || inGoneNetns(s.parent, gone))) {
        // What lives in the parent goes with it; files it left outside (a DHCP client's pid file) do not.
        out.ops.push(...s.undo.filter((o) => o.tool === 'cmd' && !o.cmd.netns && o.cmd.argv[0] === 'rm'));
        continue;
      }
      if (s.creates?.startsWith('netns:')) {
        const name = s.creates.slice('netns:'.length);
        const made = j.entries.find((e): e is Extract<JournalEntry, { t: 'netns' }> => e.t === 'netns' && e.plan === p.plan && e.phase === s.phase);
        // The phase ended without it: never made (a netns of that name now is someone else's).
        if (made && made.inodes[name] === undefined) continue;
        out.netns.push(name);
        out.netnsProof[name] = made ? made.inodes[name]! : null;
        continue;
      }
      out.ops.push(...(s.captures ? (captured.get(i) ?? []) : s.undo));
    }
  }
  for (const e of j.entries) {
    if (e.t === 'process') out.processes.push({ pid: e.pid, start: e.start, argv: e.argv });
    if (e.t === 'file') out.files.push(e.path);
    if (e.t === 'ovs') out.ovs.push(e.dir);
  }
  out.netns = [...new Set(out.netns)];
  return out;
}

/** True for `link:NS:NAME` when netns NS goes: the link goes with it. */
function inGoneNetns(key: string, gone: Set<string>): boolean {
  const m = /^link:([^:]+):/.exec(key);
  return m !== null && m[1] !== '-' && gone.has(`netns:${m[1]}`);
}

/**
 * Narrows a recovery to what exists now (netns under /run/netns, links of the current netns), so
 * that a dry run names only what it would really remove.
 * @param hostLinks names of the links in the current netns
 */
/**
 * Moves a recovery's ops of "the current namespace" to the netns its command ran in, when that is
 * not this process's: `where` names it under /run/netns, or is 'gone' (null: the same netns).
 */
export function rebase(rec: Recovery, where: string | null | 'gone'): Recovery {
  if (where === null) return rec;
  // The command ran in another netns (a lab's "VM"): its "current namespace" ops go there, or, that
  // netns gone, nowhere (what they made went with it).
  const moved = rec.ops.flatMap((o): Op[] => {
    const ns = o.tool === 'ip' ? o.netns : o.cmd.netns;
    if (ns) return [o];
    if (where === 'gone') return [];
    return [o.tool === 'ip' ? { ...o, netns: where } : { ...o, cmd: { ...o.cmd, netns: where } }];
  });
  return { ...rec, ops: moved, tablesBefore: null };
}

export function presentOnly(rec: Recovery, netnsNow: Set<string>, hostLinks: Set<string>): Recovery {
  const linkDel = (o: Op) => (o.tool === 'ip' && o.netns === null && o.args[0] === 'link' && o.args[1] === 'del' ? o.args[o.args.length - 1]! : null);
  return { ...rec, netns: rec.netns.filter((n) => netnsNow.has(n)), ops: rec.ops.filter((o) => linkDel(o) === null || hostLinks.has(linkDel(o)!)) };
}

/** One line a person reads for each change a recovery makes. */
export function describeRecovery(rec: Recovery): string[] {
  return [
    ...rec.processes.map((p) => `stop process ${p.pid} (${p.argv.join(' ')})`),
    ...rec.netns.map((n) => `delete netns ${n}`),
    ...rec.ops.map((o) => opArgv(o).join(' ')),
    ...rec.ovs.map((d) => `stop Open vSwitch (${d})`),
    ...rec.files.map((f) => `remove ${f}`),
  ];
}

/**
 * Carries a recovery out: stops the processes (only those still running with the recorded start
 * time), deletes the netns (after stopping what runs inside: nslab made the netns, so it started
 * them), runs the undo ops ("already gone" is not an error), stops OVS, drops iptables tables the
 * command created once they are pristine again, and removes its files.
 * @returns problems, one line each
 */
export async function applyRecovery(r: Runner, rec: Recovery): Promise<string[]> {
  const errors: string[] = [];
  for (const p of rec.processes) if (await stillRunning(p.pid, p.start)) killQuiet(p.pid);
  const present = rec.netns.filter((n) => existsSync(`${NETNS_DIR}/${n}`));
  for (const n of present) for (const pid of await netnsPids(r, n).catch(() => [])) killQuiet(pid);
  const lingering = await deleteNetns(r, present);
  errors.push(...lingering.map((l) => `${l}: still present after its netns was deleted`));
  for (const n of present) rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
  errors.push(...(await runUndo(r, rec.ops.filter((o) => !(o.tool === 'ip' && o.batchKey === 'netns-del')))));
  for (const d of rec.ovs) await stopOvs(r, d).catch((e: Error) => errors.push(`stopping Open vSwitch in ${d}: ${e.message}`));
  if (rec.tablesBefore) errors.push(...(await dropPristineTables(r, rec.tablesBefore)));
  for (const f of rec.files) rmSync(f, { recursive: true, force: true });
  return errors;
}

/**
 * The iptables tables of the current netns now, as journal keys (`iptables:nat`), with `iptables:*`
 * (the read was made). One `iptables-save`.
 */
export async function tablesNow(r: Runner): Promise<string[]> {
  const res = await r.run({ argv: ['iptables-save'] }, { check: false });
  return ['iptables:*', ...[...res.stdout.matchAll(/^\*(\w+)$/gm)].map((m) => `iptables:${m[1]}`)];
}

/**
 * True when netns `name` is still the one the journal proves nslab made: the same inode, or, made by a
 * command that died while creating it (no inode journaled), still bare (only `lo`, down, no alias).
 */
export async function provenOurs(r: Runner, name: string, ino: number | null): Promise<boolean> {
  if (!existsSync(`${NETNS_DIR}/${name}`)) return false;
  if (ino !== null) return statSync(`${NETNS_DIR}/${name}`).ino === ino;
  const links = JSON.parse((await r.run({ argv: ['ip', '-j', 'link', 'show'], netns: name }, { check: false })).stdout || '[]') as Array<{ ifname: string; ifalias?: string; flags?: string[] }>;
  return links.length === 1 && links[0]!.ifname === 'lo' && !links[0]!.ifalias && !links[0]!.flags?.includes('UP');
}

/**
 * Drops the iptables tables that were absent before (keys `iptables:TABLE` in `before`) and hold
 * nothing now (built-in chains, policy ACCEPT, no rule): `iptables-save` then reads as before.
 * @returns problems, one line each
 */
export async function dropPristineTables(r: Runner, before: Set<string>): Promise<string[]> {
  const saved = await readIptables(r).catch(() => null);
  if (!saved) return [];
  const drop = (Object.keys(BUILTIN) as Table[]).filter((t) => saved.has(t) && !before.has(`iptables:${t}`) && pristine(saved.get(t), BUILTIN[t]));
  return runUndo(r, drop.map(dropTableOp));
}
