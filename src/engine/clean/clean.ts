// `nslab clean`: the one answer to "something is left over". Everything nslab owns here, found by
// its journal (commands that died part-way) and its marks (what finished), is removed; nothing of
// anyone else's is touched (mininet/clean.py's idea, without its "kill every ovs-* and delete every
// link named like ours").
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../../exec/runner.js';
import { NETNS_DIR } from '../../exec/runner.js';
import { NslabError } from '../../errors.js';
import { deleteOwned, readIptables } from '../../kernel/iptables.js';
import { readLinks } from '../../kernel/link.js';
import { deleteNetns, netnsPids } from '../../kernel/netns.js';
import { killQuiet } from '../../kernel/proc.js';
import { vsctl } from '../../kernel/ovs.js';
import { cmdOp, ipOp, type Op } from '../../kernel/step.js';
import { inspect, type OwnedTopology } from '../../verify/inspect.js';
import { runUndo } from '../apply.js';
import { stateDir } from '../state.js';
import { journalDir, journalLive, readJournals, type JournalFile } from './journal.js';
import { applyRecovery, describeRecovery, planRecovery, presentOnly, provenOurs, rebase } from './recover.js';
import { readlink, rmdir, stat } from 'node:fs/promises';

/** Options of {@link clean}. */
export interface CleanOptions {
  /** Only say what would be removed. */
  dryRun?: boolean;
  /**
   * Limit to these owners: a topology's name (or its file), a network's name, a node's name, a lab's
   * id. Empty: everything nslab owns here.
   */
  targets?: string[];
}

/** One thing clean removed (or would remove). */
export interface CleanItem {
  /** Whose it is: `topology NAME`, `network NAME`, `node NAME`, `lab ID`, `attach GUEST`. */
  owner: string;
  /** What: `netns n1`, `link br0`, `iptables -t nat -A ...`, `journal of a killed nslab up x.yaml`. */
  what: string;
  /** Left by a command that did not finish (from its journal). */
  incomplete: boolean;
}

/** What {@link clean} did. */
export interface CleanReport {
  dryRun: boolean;
  removed: CleanItem[];
  /** Journals of commands still running: left alone. */
  running: string[];
  /** Objects a journal named that were there before its command: left alone. */
  leftAlone: string[];
  errors: string[];
}

/** True when owner `o` (inspect's naming) is one of the targets (`NAME`, `KIND NAME`). */
function wanted(o: string, targets: string[]): boolean {
  if (targets.length === 0) return true;
  const name = o.includes(' ') ? o.slice(o.indexOf(' ') + 1) : o;
  return targets.some((t) => t === o || t === name || `lab ${t.replace(/^(\d)$/, '0$1')}` === o);
}

/** A target as given: a topology file becomes its name (as `up` names it). */
function normalizeTarget(t: string): string {
  const base = t.replace(/^.*\//, '');
  return /\.ya?ml$/.test(base) ? base.replace(/\.ya?ml$/, '').replace(/[^A-Za-z0-9_.-]/g, '-') : t;
}

/**
 * Removes what nslab owns here, or with `targets` what those owners own:
 *  1. journals of commands that died (killed, OOM, reboot of a VM mid-lab): each change they may
 *     have made and can prove was theirs is undone (clean/recover.ts);
 *  2. labs left up (`lab up`), nodes and networks (state under STATE/net), topologies' host sysctls;
 *  3. whatever still carries an nslab mark: netns (processes inside stopped first), links, OVS
 *     ports, iptables rules (comment), DHCP clients;
 *  4. batch files and empty state folders.
 * Journals of commands still running are left alone (and named). Idempotent: a second run finds nothing.
 * @param r the runner
 * @param o dry run, targets
 * @returns what was (or would be) removed
 * @throws NslabError INVALID_INPUT for a target that owns nothing here
 */
export async function clean(r: Runner, o: CleanOptions = {}): Promise<CleanReport> {
  const targets = (o.targets ?? []).map(normalizeTarget);
  const rep: CleanReport = { dryRun: o.dryRun === true, removed: [], running: [], leftAlone: [], errors: [] };
  const add = (owner: string, what: string, incomplete = false) => rep.removed.push({ owner, what, incomplete });
  // An Open vSwitch that a lab started answers under nslab's state folder: its ports are read there.
  (await import('../labs/lab.js')).useLabOvs();

  // 1. Journals of dead commands.
  await recoverJournals(r, (owner) => wanted(owner, targets), o.dryRun === true, rep);

  // 2. What finished and has state: labs left up, nodes, networks, topologies' host sysctls.
  await cleanLabs(r, targets, o.dryRun === true, add, rep.errors);
  await cleanNetModes(r, targets, o.dryRun === true, add, rep.errors);
  await cleanTopologyState(r, targets, o.dryRun === true, add, rep.errors);

  // 3. Whatever still carries a mark.
  for (const t of (await inspect(r)).topologies) {
    if (!wanted(t.name, targets)) continue;
    if (t.name.startsWith('attach')) await cleanAttach(r, t, o.dryRun === true, add, rep.errors);
    else await cleanMarked(r, t, o.dryRun === true, add, rep.errors);
  }

  // 4. Batch files of killed runs, and state folders left empty.
  if (targets.length === 0) {
    const dir = stateDir();
    for (const f of safeReaddir(dir)) {
      if (!/^(batch-|lab-record-)/.test(f)) continue;
      add('nslab', `remove ${join(dir, f)}`);
      if (!o.dryRun) rmSync(join(dir, f), { recursive: true, force: true });
    }
    if (!o.dryRun) removeEmptyDirs(dir);
  }
  if (targets.length && rep.removed.length === 0 && rep.running.length === 0) {
    throw new NslabError('INVALID_INPUT', `nothing here is owned by ${targets.join(', ')}: expected a topology, network, node or lab that nslab made (nslab inspect lists them)`);
  }
  return rep;
}

/**
 * Finishes what killed commands left half-made (step 1 of {@link clean}): for each journal whose
 * owner `which` accepts and whose command no longer runs, undoes what it can prove it made.
 * `down`, `node rm`, `network rm` and `lab down` call it for their owner first, so that they finish
 * a half-made object instead of saying "not found".
 * @param r the runner
 * @param which picks journals by owner (`topology NAME`, `network NAME`, `node NAME`, `lab ID`)
 * @param dryRun only report
 * @param rep the report to add to (a fresh one when omitted)
 * @returns the report
 */
export async function recoverJournals(r: Runner, which: (owner: string) => boolean, dryRun = false, rep: CleanReport = { dryRun, removed: [], running: [], leftAlone: [], errors: [] }): Promise<CleanReport> {
  const journals: JournalFile[] = [];
  for (const j of readJournals()) {
    if (!which(j.owner)) continue;
    if (await journalLive(j)) rep.running.push(`${j.argv.join(' ')} (pid ${j.pid})`);
    else journals.push(j);
  }
  for (const j of journals.reverse()) {
    const netnsNow = new Set(safeReaddir(NETNS_DIR));
    const where = await journalNetns(j);
    const hostLinks = new Set((await readLinks(r, null)).map((l) => l.ifname));
    const rec = where === null ? presentOnly(planRecovery(j), netnsNow, hostLinks) : rebase(planRecovery(j), where);
    // A netns is deleted only while it is provably the one the command made (journal/recover.ts).
    const proven: string[] = [];
    for (const n of rec.netns) {
      if (await provenOurs(r, n, rec.netnsProof[n] ?? null)) proven.push(n);
      else rep.leftAlone.push(`netns ${n} (not the one \`nslab ${j.argv.join(' ')}\` made)`);
    }
    rec.netns = proven;
    const what = `nslab ${j.argv.join(' ')}`;
    for (const line of describeRecovery(rec)) rep.removed.push({ owner: j.owner, what: `${line}  (incomplete: from a killed \`${what}\`)`, incomplete: true });
    rep.leftAlone.push(...rec.leftAlone);
    if (!dryRun) {
      rep.errors.push(...(await applyRecovery(r, rec)));
      rmSync(j.path, { force: true });
    }
  }
  if (!dryRun && journals.length) await rmdir(journalDir()).catch(() => undefined); // the last one: its folder too
  return rep;
}

/**
 * Where a journal's command ran: null for this process's netns (or not recorded), the name under
 * /run/netns of the netns with its inode, or 'gone'.
 */
async function journalNetns(j: JournalFile): Promise<string | null | 'gone'> {
  if (j.netns === null) return null;
  const self = /net:\[(\d+)\]/.exec(await readlink('/proc/self/ns/net'))?.[1];
  if (Number(self) === j.netns) return null;
  for (const n of safeReaddir(NETNS_DIR)) {
    const st = await stat(join(NETNS_DIR, n)).catch(() => null);
    if (st?.ino === j.netns) return n;
  }
  return 'gone';
}

type Add = (owner: string, what: string, incomplete?: boolean) => void;

async function cleanLabs(r: Runner, targets: string[], dryRun: boolean, add: Add, errors: string[]): Promise<void> {
  const dir = join(stateDir(), 'labs');
  for (const id of safeReaddir(dir)) {
    if (!wanted(`lab ${id}`, targets)) continue;
    add(`lab ${id}`, `take lab ${id} down (left up by nslab lab up)`);
    if (dryRun) continue;
    const [{ loadLab }, { labDown }] = await Promise.all([import('../../model/lab.js'), import('../labs/lab.js')]);
    try {
      errors.push(...(await labDown(r, await loadLab(id))).filter((e) => !/still exists|still exist/.test(e)));
    } catch (err) {
      errors.push(`lab ${id}: ${(err as Error).message}`);
      rmSync(join(dir, id), { recursive: true, force: true });
    }
  }
}

async function cleanNetModes(r: Runner, targets: string[], dryRun: boolean, add: Add, errors: string[]): Promise<void> {
  const { readNetState } = await import('../netmodes/netstate.js');
  const st = await readNetState();
  const nodes = Object.keys(st.nodes).filter((n) => wanted(`node ${n}`, targets));
  const networks = Object.keys(st.networks).filter((n) => wanted(`network ${n}`, targets) && !st.networks[n]!.isDefault);
  // A network's nodes go with it (network rm --force disconnects them; clean removes them).
  const doomed = new Set(nodes);
  for (const net of networks) for (const n of Object.values(st.nodes)) if (n.endpoints.some((e) => e.network === net)) doomed.add(n.name);
  for (const n of doomed) add(`node ${n}`, `remove node ${n}`);
  for (const n of networks) add(`network ${n}`, `remove network ${n}`);
  const defaults = targets.length === 0 ? Object.keys(st.networks).filter((n) => st.networks[n]!.isDefault) : [];
  for (const n of defaults) add(`network ${n}`, `remove network ${n}`);
  if (dryRun) return;
  const { removeNodes } = await import('../netmodes/node.js');
  const { removeNetwork } = await import('../netmodes/network.js');
  if (doomed.size) await removeNodes(r, [...doomed]).catch((e: Error) => errors.push(e.message));
  for (const n of [...networks, ...defaults]) await removeNetwork(r, n, { force: true }).catch((e: Error) => errors.push(e.message));
}

async function cleanTopologyState(r: Runner, targets: string[], dryRun: boolean, add: Add, errors: string[]): Promise<void> {
  const { readState, removeState } = await import('../state.js');
  for (const f of safeReaddir(join(stateDir(), 'topologies'))) {
    const name = f.replace(/\.json$/, '');
    if (!f.endsWith('.json') || !wanted(name, targets)) continue;
    const st = await readState(name);
    const ops: Op[] = Object.entries(st?.hostSysctls ?? {}).map(([k, v]) => cmdOp(['sysctl', '-q', '-w', `${k}=${v}`]));
    for (const [k, v] of Object.entries(st?.hostSysctls ?? {})) add(name, `sysctl ${k}=${v} (its value before nslab up)`);
    if (dryRun) continue;
    errors.push(...(await runUndo(r, ops)));
    await removeState(name);
  }
}

async function cleanMarked(r: Runner, t: OwnedTopology, dryRun: boolean, add: Add, errors: string[]): Promise<void> {
  const netns = t.netns.map((n) => n.name);
  for (const n of t.netns) add(t.name, `netns ${n.name}${n.processes.length ? ` (stopping ${n.processes.map((p) => p.pid).join(', ')})` : ''}`);
  for (const l of t.links) add(t.name, `link ${l.ifname}`);
  for (const p of t.ovsPorts) add(t.name, `ovs port ${p}`);
  for (const rule of t.iptables) add(t.name, `iptables ${rule}`);
  for (const p of t.processes) add(t.name, `process ${p.pid} (${p.command})`);
  if (dryRun) return;
  for (const p of [...t.processes, ...t.netns.flatMap((n) => n.processes)]) killQuiet(p.pid);
  for (const n of netns) for (const pid of await netnsPids(r, n).catch(() => [])) killQuiet(pid);
  const left = await deleteNetns(r, netns.filter((n) => existsSync(join(NETNS_DIR, n))));
  errors.push(...left.map((l) => `${l}: still present after its netns was deleted`));
  const ops: Op[] = [...t.links.map((l) => ipOp(null, ['link', 'del', 'dev', l.ifname])), ...t.ovsPorts.map((p) => cmdOp(vsctl('--if-exists', 'del-port', p.split(' ')[0]!)))];
  errors.push(...(await runUndo(r, ops)));
  if (t.iptables.length) {
    const owner = t.name.startsWith('network ') ? `nslab:net=${t.name.slice(8)}` : t.name.startsWith('node ') ? `nslab:node=${t.name.slice(5)}` : `nslab:${t.name}`;
    await deleteOwned(r, await readIptables(r), (c) => c === owner).catch((e: Error) => errors.push(e.message));
  }
}

/** An attach's leftovers: detach undoes each exactly (default route back, DHCP client, empty bridge). */
async function cleanAttach(r: Runner, t: OwnedTopology, dryRun: boolean, add: Add, errors: string[]): Promise<void> {
  const guest = t.name.slice('attach '.length);
  const ifnames = new Set(t.netns.flatMap((n) => n.links.map((l) => l.ifname)));
  if (!guest) {
    // Bridges and host access that attaches made, now without an attached guest.
    for (const l of t.links) add(t.name, `link ${l.ifname}`);
    if (!dryRun) errors.push(...(await runUndo(r, t.links.map((l) => ipOp(null, ['link', 'del', 'dev', l.ifname])))));
    return;
  }
  // Guest gone: host ends carry `if=` in their mark.
  for (const l of await readLinks(r, null).catch(() => [])) {
    const m = /^nslab:attach .*\bguest=(\S+).*\bif=(\S+)/.exec(l.ifalias ?? '');
    if (m && m[1] === guest) ifnames.add(m[2]!);
  }
  const { detach } = await import('../attach/attach.js');
  for (const i of ifnames) {
    add(t.name, `detach ${guest} ${i}`);
    if (dryRun) continue;
    await detach(r, guest, i).catch((e: Error) => {
      if (!(e instanceof NslabError && e.code === 'NOT_FOUND')) errors.push(e.message);
    });
  }
  for (const p of t.processes) {
    add(t.name, `process ${p.pid} (${p.command})`);
    if (!dryRun) killQuiet(p.pid);
  }
  // A container's OVS ports and records outlive its netns: removed by its records; a removed
  // container's persisted attaches are forgotten (a stopped one keeps them for its next start).
  if (t.container) {
    const c = t.container;
    if (dryRun) {
      for (const p of t.ovsPorts) add(t.name, `ovs port ${p}`);
      if (c.state === 'gone' && c.persisted.length) add(t.name, `forget ${c.persisted.length} persisted attach(es) of removed container ${c.name}`);
      return;
    }
    const { cleanupContainer } = await import('../docker/lifecycle.js');
    const res = await cleanupContainer(r, c.id, { forget: c.state === 'gone' });
    for (const x of res.done) add(t.name, x);
    errors.push(...res.errors);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Removes folders under `dir` (not `dir` itself) that are empty, deepest first. */
function removeEmptyDirs(dir: string): void {
  for (const e of safeReaddir(dir)) {
    const p = join(dir, e);
    try {
      if (!readdirSync(p)) continue;
    } catch {
      continue; // a file
    }
    removeEmptyDirs(p);
    if (safeReaddir(p).length === 0) rmSync(p, { recursive: true, force: true });
  }
}
