// Topology up / down / plan: the library API under `nslab up|down|plan`.
import { basename, extname } from 'node:path';
import type { Runner } from '../exec/runner.js';
import { RecordingRunner } from '../exec/recorder.js';
import { shQuote, toShellScript } from '../exec/shell.js';
import { invalid, NslabError } from '../errors.js';
import type { LinkInfo } from '../kernel/link.js';
import { deleteNetnsSwept, listNetnsIds, netnsIdentity } from '../kernel/netns.js';
import { cmdOp, linkKey, netnsKey, opArgv, type Op, type Step } from '../kernel/step.js';
import { loadYaml, specErrorToInvalid } from '../model/load.js';
import { hostPart, isMultiHost, mergedRaw } from '../model/hosts.js';
import { resolveTopology } from '../model/resolve.js';
import { TopologyRaw } from '../model/schema.js';
import type { Model } from '../model/types.js';
import { applySteps, mapLimit, runUndo, type ApplyOptions } from './apply.js';
import { createdKeys, planUp } from './plan.js';
import { readState, removeState, writeState } from './state.js';
import { activeJournal } from './clean/journal.js';
import { recoverJournals } from './clean/clean.js';
import { requireNetemFor } from './live/impair.js';

/** What a topology file must be, for the one line an empty or wrong file gets. */
const TOPOLOGY_EXPECTED = 'a topology with nodes:, bridges: and links: (README "Topology files")';

/**
 * Reads, validates and resolves a topology file.
 * @param file path of a YAML topology (format: README "Topology files")
 * @throws NslabError `INVALID_INPUT` with one line `FILE:LINE: PATH: problem, got VALUE`
 */
export async function loadTopology(file: string): Promise<Model> {
  const { value, where } = await loadYaml(file, TopologyRaw, TOPOLOGY_EXPECTED);
  try {
    return resolveTopology(value, basename(file, extname(file)).replace(/[^A-Za-z0-9_.-]/g, '-'));
  } catch (err) {
    throw specErrorToInvalid(err, where);
  }
}

/** A topology file read for one host (see {@link loadTopologyFor}). */
export interface HostTopology {
  /** This host's part (the whole topology when the file declares no hosts). */
  model: Model;
  /** The host's name, or null for a single-host file. */
  host: string | null;
  /** Multi-host: every host's nodes as one topology (a bridge on several hosts is one segment). */
  merged: Model | null;
  /** Multi-host: node name -> host name. */
  nodeHosts: Map<string, string>;
}

/**
 * Reads a topology file for the host nslab runs on. A multi-host file (`hosts:`) gives this host's
 * part (model/hosts.ts): its nodes and bridges, VXLAN joins for bridges on several hosts, named
 * `NAME.HOST`. The host is `host`, else the one whose `address` this machine has.
 * @param r the runner (to read this machine's addresses when no host is named)
 * @param file path of a YAML topology
 * @param host the host's name (`--host`), or null
 * @throws NslabError INVALID_INPUT: the file's problems (FILE:LINE), `--host` for a single-host file or
 *   an unknown host, no host given and none of the hosts' addresses here
 */
export async function loadTopologyFor(r: Runner, file: string, host: string | null): Promise<HostTopology> {
  const { value, where } = await loadYaml(file, TopologyRaw, TOPOLOGY_EXPECTED);
  const name = value.name ?? basename(file, extname(file)).replace(/[^A-Za-z0-9_.-]/g, '-');
  try {
    if (!isMultiHost(value)) {
      if (host !== null) throw invalid(`--host ${host}: ${file} declares no hosts: expected a topology with hosts:, or no --host`);
      return { model: resolveTopology(value, name), host: null, merged: null, nodeHosts: new Map() };
    }
    const hosts = value.hosts!;
    let h = host;
    if (h === null) {
      const mine = new Set((JSON.parse((await r.run({ argv: ['ip', '-j', 'addr', 'show'] })).stdout || '[]') as Array<{ addr_info: Array<{ local: string }> }>).flatMap((l) => l.addr_info.map((a) => a.local)));
      const found = Object.entries(hosts).filter(([, x]) => mine.has(x.address));
      if (found.length !== 1) throw invalid(`${file} spans hosts ${Object.keys(hosts).join(', ')} and ${found.length ? 'more than one' : 'none'} of their addresses is on this machine: expected --host NAME`);
      h = found[0]![0];
    } else if (!(h in hosts)) throw invalid(`--host ${h}: no such host in ${file}: expected one of ${Object.keys(hosts).join(', ')}`);
    const part = hostPart(value, h, name);
    const model: Model = { ...resolveTopology(part.raw, name), vxlans: part.joins, notes: part.notes };
    const merged = resolveTopology(mergedRaw(value, name), name);
    return { model, host: h, merged, nodeHosts: new Map(Object.entries(value.nodes).map(([n, x]) => [n, x.host!])) };
  } catch (err) {
    if (err instanceof NslabError) throw err;
    throw specErrorToInvalid(err, where);
  }
}

/** What {@link up} did. */
export interface UpReport {
  topology: string;
  steps: number;
  ms: number;
}

/**
 * Brings a topology up. On any failure, everything applied is undone and the error names the step.
 * @param r runner (real or recording)
 * @param m resolved model
 * @param opts fault injection and concurrency, see {@link ApplyOptions}
 * @throws NslabError `APPLY_FAILED`
 */
export async function up(r: Runner, m: Model, opts: ApplyOptions = {}): Promise<UpReport> {
  const t0 = performance.now();
  await requireNetemFor(r, m);
  const steps = planUp(m);
  activeJournal()?.setOwner(`topology ${m.name}`);
  const { captured } = await applySteps(r, steps, opts);
  const hostSysctls: Record<string, string> = {};
  for (const [s, ops] of captured) {
    const op = ops[0];
    if (s.do.tool === 'cmd' && !s.do.cmd.netns && op?.tool === 'cmd') {
      const [k, v] = op.cmd.argv[op.cmd.argv.length - 1]!.split('=') as [string, string];
      hostSysctls[k] = v;
    }
  }
  if (!(r instanceof RecordingRunner)) {
    // Who each netns made here is (name file identity): down proves them ours by it without entering
    // each one; the mark stays the proof for anything else (see down).
    const netns: Record<string, string> = {};
    for (const n of m.nodes) {
      const id = n.netns ? netnsIdentity(n.netns) : null;
      if (id) netns[n.netns!] = id;
    }
    if (Object.keys(hostSysctls).length > 0 || Object.keys(netns).length > 0) await writeState(m.name, { hostSysctls, netns });
  }
  return { topology: m.name, steps: steps.length, ms: performance.now() - t0 };
}

/** What {@link down} did. */
export interface DownReport {
  topology: string;
  /** Undo commands run. */
  commands: number;
  /** Objects left alone because they carry another owner's mark (or none). */
  skipped: string[];
  ms: number;
}

/**
 * Tears a topology down: the undo of its planned steps, limited to objects that carry this
 * topology's mark (a netns whose `lo` alias is the mark, a link whose alias is), so that it never
 * deletes what it did not make. Idempotent: safe twice, and after a partial or failed `up`.
 * What a killed `up` left unmarked is found by its journal (engine/clean/recover.ts), never by
 * "it holds only lo, so it is probably ours".
 * @throws NslabError `COMMAND_FAILED` when an undo fails for another reason than "already gone"
 */
export async function down(r: Runner, m: Model): Promise<DownReport> {
  const t0 = performance.now();
  // A killed `up` of this topology: finished first, from its journal (engine/clean), so that its
  // unmarked half-made objects go too and nothing of anyone else's does.
  const recovered = r instanceof RecordingRunner ? null : await recoverJournals(r, (o) => o === `topology ${m.name}`);
  const steps = planUp(m);
  const state = await readState(m.name);
  const ours = await ownedObjects(r, m, state?.netns ?? {});
  const skipped: string[] = [];
  const planned = createdKeys(steps);
  const keep = (s: Step): boolean => {
    if (s.parent && ours.has(s.parent)) return false; // goes with its parent
    if (s.parent && planned.has(s.parent)) return false; // its parent is not ours (someone else's, or gone)
    if (s.creates) {
      if (ours.has(s.creates)) return true;
      if (ours.foreign.has(s.creates)) skipped.push(`${s.creates.replace(/^link:-:/, 'link ')} (${ours.foreign.get(s.creates)})`);
      return false;
    }
    if (s.parent && (s.parent.startsWith('netns:') || s.parent.startsWith('link:')) && !ours.present.has(s.parent)) return false;
    return true;
  };
  const ops: Op[] = [];
  for (const s of [...steps].reverse()) {
    if (!keep(s)) continue;
    if (s.capture) {
      // Only sysctls of the current namespace need their old value back; a node's go with its netns.
      if (s.do.tool !== 'cmd' || s.do.cmd.netns) continue;
      const key = s.do.cmd.argv[s.do.cmd.argv.length - 1]!.split('=')[0]!;
      const prev = state?.hostSysctls[key];
      if (prev !== undefined) ops.push(cmdOp(['sysctl', '-q', '-w', `${key}=${prev}`]));
      continue;
    }
    ops.push(...s.undo);
  }
  // Our netns go first, in one batch, and the kernel removes their veths (both ends) in one sweep;
  // the `link del` of those ends that follow then find them gone, which is not an error.
  const netnsGone = steps.filter((s) => s.creates?.startsWith('netns:') && ours.has(s.creates)).map((s) => s.creates!.slice('netns:'.length));
  const { lingering, swept } = await deleteNetnsSwept(r, netnsGone, { listed: ours.listed, links: ours.rootLinks });
  // The current namespace's ends that went with their netns need no `link del` (at 1000 nodes, a
  // batch of 1000 lines that each fail with "Cannot find device").
  const gone = new Set(swept);
  const rest = ops.filter((o) => !(o.tool === 'ip' && o.batchKey === 'netns-del') && !(o.tool === 'ip' && o.netns === null && o.args[0] === 'link' && o.args[1] === 'del' && gone.has(o.args[o.args.length - 1]!)));
  const errors = [...lingering.map((l) => `${l}: still present after its netns was deleted`), ...(await runUndo(r, rest))];
  if (!(r instanceof RecordingRunner)) await removeState(m.name);
  errors.unshift(...(recovered?.errors ?? []));
  if (errors.length) throw new NslabError('COMMAND_FAILED', `down ${m.name}: ${errors[0]}`, { details: { errors } });
  return { topology: m.name, commands: rest.length + netnsGone.length, skipped, ms: performance.now() - t0 };
}

/** Objects of a topology that exist now, split into ours (marked) and foreign (present, not ours). */
interface Owned extends Set<string> {
  present: Set<string>;
  foreign: Map<string, string>;
  /** `ip -j netns list` and the current namespace's links, as read (deleteNetnsSwept needs them too). */
  listed: Map<string, number | undefined>;
  rootLinks: LinkInfo[];
}

/**
 * What of the topology is here and ours. A netns is ours when its `lo` carries the mark; that is read
 * only when nothing cheaper proves it: a marked veth end here whose peer is in it (up makes them
 * together), or the identity `up` recorded for it (kernel/netns.ts netnsIdentity, a stat of its name
 * file). A chain has no end here, and entering each netns was 3.6 ms of main-thread spawn apiece.
 * @param made name -> identity of the netns `up` made (its state file), empty when none was kept
 */
async function ownedObjects(r: Runner, m: Model, made: Record<string, string>): Promise<Owned> {
  const ours = new Set<string>() as Owned;
  ours.present = new Set();
  ours.foreign = new Map();
  const rootLinks = JSON.parse((await r.run({ argv: ['ip', '-j', 'link', 'show'] })).stdout || '[]') as LinkInfo[];
  ours.rootLinks = rootLinks;
  const markedPeerNsids = new Set<number>();
  for (const l of rootLinks) {
    const key = linkKey(null, l.ifname);
    ours.present.add(key);
    if (l.ifalias === m.mark) {
      ours.add(key);
      if (l.link_netnsid !== undefined) markedPeerNsids.add(l.link_netnsid);
    } else ours.foreign.set(key, l.ifalias ? `marked ${l.ifalias}` : 'not made by nslab');
  }
  const listed = await listNetnsIds(r);
  ours.listed = listed;
  await mapLimit(m.nodes, 8, async (n) => {
    const ns = n.netns!;
    if (!listed.has(ns)) return;
    const key = netnsKey(ns);
    ours.present.add(key);
    // A veth end here that carries our mark and whose peer is in the netns proves the netns ours
    // (up creates them together), which saves entering it: one process per netns adds up at scale.
    const id = listed.get(ns);
    if ((id !== undefined && markedPeerNsids.has(id)) || (made[ns] !== undefined && made[ns] === netnsIdentity(ns))) {
      ours.add(key);
      return;
    }
    const res = await r.run({ argv: ['ip', '-j', 'link', 'show'], netns: ns }, { check: false });
    const links = JSON.parse(res.stdout || '[]') as LinkInfo[];
    const lo = links.find((l) => l.ifname === 'lo');
    // Only the mark proves a netns ours: one that holds nothing but `lo` may be anyone's (a killed
    // `up`'s unmarked netns are known from its journal, see down()).
    if (lo?.ifalias === m.mark) ours.add(key);
    else ours.foreign.set(key, lo?.ifalias ? `marked ${lo.ifalias}` : 'not made by nslab');
  });
  return ours;
}

/** A plan: the steps, and the shell script that does the same as `up`. */
export interface PlanOutput {
  steps: Array<{ describe: string; phase: number; command: string[]; undo: string[][] }>;
  script: string;
}

/**
 * Plans a topology without touching the kernel: steps (for `--json`) and a copy-pasteable script.
 * @param file the topology file as the user named it, for the script's `undo: nslab down FILE` line
 *   (without it, the line names the topology)
 */
export async function plan(m: Model, file?: string): Promise<PlanOutput> {
  const steps = planUp(m);
  const rec = new RecordingRunner((argv) => (argv.includes('-n') || argv[0] === 'sysctl' ? { stdout: '0' } : undefined));
  await applySteps(rec, steps, { concurrency: 1 });
  const script = toShellScript(
    rec.calls.filter((c) => !(c.type === 'run' && c.cmd.argv[0] === 'sysctl' && c.cmd.argv[1] === '-n')),
    { header: [`nslab plan for topology ${m.name}: ${steps.length} steps`, `undo: nslab down ${file ? shQuote(file) : `FILE (the file of topology ${m.name})`}`] },
  );
  return {
    steps: steps.map((s) => ({ describe: s.describe, phase: s.phase ?? 0, command: opArgv(s.do), undo: s.undo.map(opArgv) })),
    script,
  };
}
