// pingall: probe every address of a topology from every node, and compare with what the model expects.
import type { Runner } from '../exec/runner.js';
import { commandError } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';
import { progress } from '../exec/progress.js';
import { queryJson } from '../exec/batch.js';
import { invalid, NslabError } from '../errors.js';
import { listNetns } from '../kernel/netns.js';
import type { Model } from '../model/types.js';
import { readIntents, netnsInode } from '../model/link-intent.js';
import { readLinks } from '../kernel/link.js';
import { inNet, parseCidr, parseIp } from './ip.js';
import { buildNet, endKey, expectReach, interfacesOf, pingSources, pingTargets, type PingSource, type PingTarget } from './reach.js';

/** Whether source `from` probes `t` (all pairs, or a sample: {@link samplePairs}). */
export type Wanted = (from: string, t: PingTarget) => boolean;

/**
 * The pairs of a sample (see {@link PingallOptions.sample}): `targets` addresses spread evenly over
 * `all` (indexes floor(k·len/targets)), probed by everyone, and all pairs among the first `pairs` nodes.
 * @param all every probed address, in file order
 * @param nodes node names in file order
 * @returns the predicate, and the fixed addresses
 */
export function samplePairs(all: PingTarget[], nodes: string[], sample: { targets: number; pairs: number }): { wanted: Wanted; fixed: PingTarget[] } {
  const k = Math.min(sample.targets, all.length);
  const fixed = Array.from({ length: k }, (_, i) => all[Math.floor((i * all.length) / k)]!);
  const fixedSet = new Set(fixed.map((t) => t.address));
  const block = new Set(nodes.slice(0, sample.pairs));
  return { wanted: (from, t) => fixedSet.has(t.address) || (block.has(from) && block.has(t.node)), fixed };
}

/** Probe programs: fping sends to all of a job's addresses from one process; ping is one process per probe. */
export const PROBE_TOOLS = ['fping', 'ping'] as const;
export type ProbeTool = (typeof PROBE_TOOLS)[number];

/** Options of {@link pingall}. */
export interface PingallOptions {
  /** How many probe processes run at once (default 16: each mostly waits for replies). */
  concurrency?: number;
  /** Probe program; default fping when installed, else ping. */
  tool?: ProbeTool;
  /** Nodes per block (see {@link planRounds}); default from the kernel's neighbour table size. */
  blockSize?: number;
  /**
   * How neighbours (ARP/ND) are found: `auto` (default) lets the kernel resolve them when every probe
   * fits its neighbour table in one round, else seeds them (see {@link planSeeds}); `resolve` always lets
   * the kernel resolve them, in rounds (slower at scale, but ARP itself is tested); `seed` always seeds.
   */
  neighbours?: NeighbourMode;
  /**
   * Multi-host: probe only from these nodes (the ones on this host), to every address of the model
   * (all hosts'). The others' netns are not here: one round, neighbours resolved by the kernel.
   */
  from?: string[];
  /**
   * Veth ends taken down on purpose (`NETNS:IFNAME`, see {@link endKey}): their links carry nothing,
   * so the probes across them are expected lost. Default: what `nslab link down` recorded and the
   * kernel confirms (see {@link downOnPurpose}).
   */
  down?: string[];
  /**
   * Probe a sample instead of every pair (for topologies of thousands of nodes, where all pairs are
   * millions of probes): every source probes `targets` fixed addresses (spread evenly over the list of
   * addresses, the same for all), and the first `pairs` nodes (file order) also probe all of each
   * other's addresses (a whole leaf of a tree, say).
   */
  sample?: { targets: number; pairs: number };
}

/** See {@link PingallOptions.neighbours}. */
export const NEIGHBOUR_MODES = ['auto', 'resolve', 'seed'] as const;
export type NeighbourMode = (typeof NEIGHBOUR_MODES)[number];

/** One probe: from a node to an address, what the model expects and what happened. */
export interface ProbeResult {
  from: string;
  to: string;
  /** Who holds the address in the file (a node or a bridge) and on which interface. */
  owner: string;
  ifname: string;
  /** Null: the model cannot tell (such a probe never counts as a difference). */
  expected: boolean | null;
  reached: boolean;
  reason: string;
}

/** What {@link pingall} found. */
export interface PingallReport {
  topology: string;
  /** True when every probe went as the model expects. */
  ok: boolean;
  tool: ProbeTool;
  sources: string[];
  targets: PingTarget[];
  results: ProbeResult[];
  differences: ProbeResult[];
  /** How many rounds the probes were split into (1 unless the topology outgrows the neighbour table). */
  rounds: number;
  /** How neighbours were found: resolved by the kernel (ARP/ND), or seeded from the MACs read. */
  neighbours: 'resolved' | 'seeded';
  /** Neighbour entries pingall added for the probes and removed after (0 when resolved). */
  seeded: number;
  /** Wall time in milliseconds. */
  ms: number;
}

/** A member of a round: a node that sends or holds probed addresses, with the interfaces whose caches it may flush. */
export interface Member {
  name: string;
  netns: string | null;
  devices: string[];
}

/** One probe process's worth: a source and the addresses it probes. */
export interface ProbeJob {
  source: PingSource;
  addresses: string[];
}

/** Probes run together, then the members whose neighbour caches are flushed before the next round. */
export interface Round {
  jobs: ProbeJob[];
  flush: Member[];
}

/**
 * Splits the probes into rounds so that the neighbour (ARP/ND) entries they make stay under the
 * kernel's limit. That table is one for the whole machine (gc_thresh3, 1024 here, shared by every
 * netns), and an all-pairs ping on one segment needs an entry per ordered pair: 100 nodes need about
 * 10,000, and past the limit the kernel drops packets ("neighbor table overflow"). Members are cut
 * into blocks of `blockSize`; each round probes between two blocks (both ways, so every entry serves
 * a request and its reply: about 2·blockSize² entries), and afterwards the members flush their
 * dynamic entries. With one block there is one round and nothing is flushed.
 * @param members nodes that send or hold probed addresses, in file order
 * @param sources the nodes probing
 * @param targets the addresses probed (a node never probes its own)
 * @param blockSize members per block (at least 1)
 * @param wanted which (source, target) pairs to probe (default all; see {@link samplePairs})
 */
export function planRounds(members: Member[], sources: PingSource[], targets: PingTarget[], blockSize: number, wanted: Wanted = () => true): Round[] {
  const size = Math.max(1, Math.floor(blockSize));
  const blocks: Member[][] = [];
  for (let i = 0; i < members.length; i += size) blocks.push(members.slice(i, i + size));
  const isSource = new Map(sources.map((s) => [s.name, s]));
  const jobsFor = (from: Member[], to: Member[]): ProbeJob[] => {
    const held = new Set(to.map((x) => x.name));
    return from.flatMap((x) => {
      const source = isSource.get(x.name);
      const addresses = targets.filter((t) => held.has(t.node) && t.node !== x.name && wanted(x.name, t)).map((t) => t.address);
      return source && addresses.length ? [{ source, addresses }] : [];
    });
  };
  const rounds: Round[] = [];
  for (let i = 0; i < blocks.length; i++) {
    for (let j = i; j < blocks.length; j++) {
      const jobs = i === j ? jobsFor(blocks[i]!, blocks[i]!) : [...jobsFor(blocks[i]!, blocks[j]!), ...jobsFor(blocks[j]!, blocks[i]!)];
      const flush = blocks.length > 1 ? (i === j ? blocks[i]! : [...blocks[i]!, ...blocks[j]!]) : [];
      if (jobs.length) rounds.push({ jobs, flush });
    }
  }
  return rounds;
}

/**
 * The block size that keeps a round's neighbour entries (about 2·size²) under the kernel's limit,
 * read from `net.ipv4.neigh.default.gc_thresh3` (1024 when unreadable), leaving room for the entries
 * that members outside the round keep and for the machine's own.
 */
export async function blockSizeFor(r: Runner, members: number): Promise<number> {
  const res = await r.run({ argv: ['sysctl', '-n', 'net.ipv4.neigh.default.gc_thresh3'] }, { check: false });
  const limit = Number(res.stdout.trim()) || 1024;
  return Math.max(2, Math.floor(Math.sqrt(Math.max(8, limit - members - 128) / 2)));
}

/** fping when it runs here, else ping. */
async function detectTool(r: Runner): Promise<ProbeTool> {
  const res = await r.run({ argv: ['fping', '-v'] }, { check: false }).catch(() => null);
  return res?.exitCode === 0 ? 'fping' : 'ping';
}

/**
 * One fping process for a job: every address at 1 ms intervals, a 1 s timeout and one retry
 * (`ping -c1 -W1` and a retry, for many addresses at once). The first probe to an address also
 * resolves its neighbour entry (the kernel queues it meanwhile); a lost one is sent again.
 */
async function fpingJob(r: Runner, job: ProbeJob): Promise<Map<string, boolean>> {
  const cmd = { argv: ['fping', '-t', '1000', '-r', '1', '-B', '1', '-i', '1', ...job.addresses], netns: job.source.netns };
  const res = await r.run(cmd, { check: false });
  // fping exits 1 when some address is unreachable; anything else is a failure of fping itself.
  if (res.exitCode !== 0 && res.exitCode !== 1) throw commandError(cmd, res.exitCode, res.stderr);
  const alive = new Set(res.stdout.split('\n').flatMap((l) => /^(\S+) is alive/.exec(l)?.[1] ?? []));
  return new Map(job.addresses.map((a) => [a, alive.has(a)]));
}

async function ping1(r: Runner, source: PingSource, address: string): Promise<boolean> {
  const res = await r.run({ argv: ['ping', '-c1', '-W1', '-q', address], netns: source.netns }, { check: false });
  return res.exitCode === 0;
}

const key = (from: string, to: string) => `${from}\u0000${to}`;

/** Runs a round's jobs, at most `concurrency` processes at once; returns reached per (source, address). */
async function runRound(r: Runner, tool: ProbeTool, round: Round, concurrency: number): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  if (tool === 'fping') {
    let done = 0;
    const res = await mapLimit(round.jobs, concurrency, async (j) => {
      const got = await fpingJob(r, j);
      progress(++done, round.jobs.length + 1, `probed from ${j.source.name}`);
      return got;
    });
    round.jobs.forEach((j, k) => res[k]!.forEach((ok, a) => out.set(key(j.source.name, a), ok)));
    return out;
  }
  // ping: the first pass also resolves neighbours; what it lost is probed once more.
  const units = round.jobs.flatMap((j) => j.addresses.map((a) => ({ source: j.source, address: a })));
  const first = await mapLimit(units, concurrency, (u) => ping1(r, u.source, u.address));
  const lost = units.filter((_, k) => !first[k]);
  const second = await mapLimit(lost, concurrency, (u) => ping1(r, u.source, u.address));
  units.forEach((u, k) => out.set(key(u.source.name, u.address), first[k]!));
  lost.forEach((u, k) => out.set(key(u.source.name, u.address), second[k]!));
  return out;
}

/**
 * Flushes a member's dynamic neighbour entries on the topology's interfaces only (permanent and
 * noarp entries stay), in one `ip -batch`. A missing interface or netns is not an error here.
 */
async function flushNeighbours(r: Runner, m: Member): Promise<void> {
  const states = ['reachable', 'stale', 'delay', 'probe', 'failed', 'incomplete'].flatMap((s) => ['nud', s]);
  await r.batch('ip', m.netns, m.devices.map((d) => ['neigh', 'flush', 'dev', d, ...states]), { force: true }).catch(() => undefined);
}

/**
 * The protocol number on the neighbour entries pingall seeds (`ip neigh ... protocol 78`, "N"): how it
 * removes exactly its own (`ip neigh flush protocol 78 nud permanent`), and how a later clean finds
 * them if pingall was killed in between.
 */
export const SEED_PROTOCOL = '78';

/** An interface as read from the kernel: name, MAC and addresses with prefix length. */
export interface KernelIf {
  ifname: string;
  mac: string;
  addrs: string[];
}

/** A neighbour entry to seed: inside `netns`, `address` is at `mac` on `dev`. */
export interface Seed {
  netns: string | null;
  dev: string;
  address: string;
  mac: string;
}

/**
 * Plans the neighbour entries that let every probe go out without the kernel resolving neighbours:
 * for each member and each of its topology interfaces, every probed address of another member that is
 * on-link there (inside one of the interface's prefixes) gets a permanent entry with the MAC that its
 * owner's interface has in the kernel. Permanent entries do not count against the machine-wide
 * neighbour table limit (gc_thresh3; exempt from garbage collection since Linux 4.19), so 100 nodes on
 * one segment (9,900 entries) probe in one round instead of 20+. Addresses behind a router need only
 * the router's entry, which is on-link. Pure.
 * @param members the nodes that send or hold probed addresses (their `devices`: topology interfaces)
 * @param kernel per member name, its interfaces as read from the kernel
 * @param targets the probed addresses
 * @param kept per member name, `DEV ADDRESS` of the entries already there that pingall must keep as they
 *   are (permanent or noarp: set by someone on purpose); they get no seed. Dynamic entries are replaced.
 * @param needs per member name, the only addresses it needs entries for (a sample: those it probes and
 *   those of who probes it, for the replies); default every probed address
 */
export function planSeeds(
  members: Member[],
  kernel: Map<string, KernelIf[]>,
  targets: PingTarget[],
  kept: Map<string, Set<string>> = new Map(),
  needs?: Map<string, PingTarget[]>,
): Map<string, Seed[]> {
  const macs = new Map<string, string>();
  for (const [node, ifs] of kernel) for (const i of ifs) macs.set(`${node} ${i.ifname}`, i.mac);
  const parse = (list: PingTarget[]) =>
    list.flatMap((t) => {
      const ip = parseIp(t.address);
      const mac = macs.get(`${t.node} ${t.ifname}`);
      return ip && mac ? [{ t, ip, mac }] : [];
    });
  const all = needs ? [] : parse(targets);
  const out = new Map<string, Seed[]>();
  for (const m of members) {
    const seeds: Seed[] = [];
    const seen = new Set<string>(kept.get(m.name) ?? []);
    const parsed = needs ? parse(needs.get(m.name) ?? []) : all;
    for (const i of kernel.get(m.name) ?? []) {
      if (!m.devices.includes(i.ifname)) continue;
      for (const a of i.addrs) {
        const net = parseCidr(a);
        for (const { t, ip, mac } of parsed) {
          if (t.node === m.name || !inNet(net, ip) || seen.has(`${i.ifname} ${t.address}`)) continue;
          seen.add(`${i.ifname} ${t.address}`);
          seeds.push({ netns: m.netns, dev: i.ifname, address: t.address, mac });
        }
      }
    }
    if (seeds.length) out.set(m.name, seeds);
  }
  return out;
}

/** A member's interfaces, and the neighbour entries it holds that pingall keeps (see {@link planSeeds}). */
interface MemberView {
  ifs: KernelIf[];
  kept: Set<string>;
}

/** Neighbour states that someone set on purpose: pingall neither replaces nor removes them. */
const KEPT_STATES = new Set(['PERMANENT', 'NOARP']);

/** Reads a member's interfaces (name, MAC, addresses) and neighbour entries in one `ip -j -batch` (addr show, neigh show). */
async function readMember(r: Runner, m: Member): Promise<MemberView> {
  const [addrs, neigh] = await queryJson(r, m.netns, [['addr', 'show'], ['neigh', 'show']]);
  const links = addrs as Array<{ ifname: string; address?: string; addr_info?: Array<{ local: string; prefixlen: number; scope?: string }> }>;
  const ifs = links.map((l) => ({ ifname: l.ifname, mac: l.address ?? '', addrs: (l.addr_info ?? []).filter((x) => x.scope !== 'host').map((x) => `${x.local}/${x.prefixlen}`) }));
  const kept = new Set((neigh as Array<{ dst: string; dev: string; state?: string[] }>).filter((e) => e.state?.some((x) => KEPT_STATES.has(x))).map((e) => `${e.dev} ${e.dst}`));
  return { ifs, kept };
}

/**
 * Adds a member's seeds in one `ip -force -batch`. `neigh replace`, not `add`: an entry the kernel
 * resolved meanwhile (a ping before pingall) would make `add` fail with "File exists", and iproute2
 * 6.1 ends the whole batch there even with -force. Entries set on purpose never get here (planSeeds).
 * @throws NslabError `COMMAND_FAILED` when a seed cannot be written
 */
async function addSeeds(r: Runner, netns: string | null, seeds: Seed[]): Promise<void> {
  const lines = seeds.map((x) => ['neigh', 'replace', x.address, 'lladdr', x.mac, 'dev', x.dev, 'nud', 'permanent', 'protocol', SEED_PROTOCOL]);
  const bad = (await r.batch('ip', netns, lines, { force: true })).failed[0];
  if (bad) throw commandError({ argv: ['ip', ...(lines[bad.index] ?? [])], netns }, 1, bad.message);
}

/** Removes every neighbour entry pingall seeded in a netns, and only those. */
async function removeSeeds(r: Runner, netns: string | null): Promise<void> {
  await r.batch('ip', netns, [['neigh', 'flush', 'protocol', SEED_PROTOCOL, 'nud', 'permanent']], { force: true }).catch(() => undefined);
}

/**
 * Probes every address of a topology (node, host and bridge interfaces) from every node and compares
 * each result with {@link expectReach}. Probes run in parallel (at most `concurrency` processes), in
 * rounds that keep the kernel's neighbour table from overflowing (see {@link planRounds}), or, when
 * that would take more than one round, in one round with seeded neighbour entries ({@link planSeeds}),
 * removed afterwards (also when probing fails).
 * @param r the runner
 * @param m the resolved model
 * @param opts concurrency, probe tool, block size
 * @throws NslabError `INVALID_INPUT` for a bad option; `MISSING_TOOL` when fping is asked for and absent
 */
export async function pingall(r: Runner, m: Model, opts: PingallOptions = {}): Promise<PingallReport> {
  const t0 = performance.now();
  const concurrency = opts.concurrency ?? 16;
  checkPingallOptions(opts);
  const tool = opts.tool ?? (await detectTool(r));
  if (opts.tool === 'fping' && (await detectTool(r)) !== 'fping') throw new NslabError('MISSING_TOOL', 'pingall --tool fping needs fping, which is not installed: apt-get install fping (or use --tool ping)');

  const net = buildNet(m, new Set(opts.down ?? (await downOnPurpose(r, m))));
  const sources = pingSources(m).filter((x) => !opts.from || opts.from.includes(x.name));
  const targets = pingTargets(m);
  const names = [m.host.name, ...m.nodes.map((n) => n.name)];
  const used = new Set([...sources.map((s) => s.name), ...targets.map((t) => t.node)]);
  const members = names.filter((n) => used.has(n)).map((n) => ({ name: n, netns: n === m.host.name ? null : n, devices: interfacesOf(net, n) }));
  const mode = opts.from ? 'resolve' : (opts.neighbours ?? 'auto');
  const sampled = opts.sample ? samplePairs(targets, m.nodes.map((n) => n.name), opts.sample) : null;
  const wanted: Wanted = sampled?.wanted ?? (() => true);
  const blockSize = opts.from ? members.length : (opts.blockSize ?? (await blockSizeFor(r, members.length)));
  // Seeding is decided before any rounds are planned: planning the rounds of N members in blocks of B
  // only to count them cost N·(N/B)·N target checks (hours at 4000 nodes). More than one block means
  // more than one round whenever blocks probe each other, which a topology worth pinging does.
  const seed = mode === 'seed' || (mode === 'auto' && members.length > Math.max(1, Math.floor(blockSize)));
  let rounds = seed ? [] : planRounds(members, sources, targets, blockSize, wanted);
  const reached = new Map<string, boolean>();
  let seeded = 0;
  if (seed) {
    rounds = planRounds(members, sources, targets, members.length, wanted);
    const views = await mapLimit(members, concurrency, (x) => readMember(r, x));
    // A sample seeds what its probes need: at the source, the address probed; at its holder, the
    // source's addresses (for the reply).
    let needs: Map<string, PingTarget[]> | undefined;
    if (sampled) {
      needs = new Map();
      const add = (node: string, t: PingTarget) => {
        const list = needs!.get(node);
        if (list) list.push(t);
        else needs!.set(node, [t]);
      };
      const byNode = new Map<string, PingTarget[]>();
      const byAddr = new Map<string, PingTarget[]>();
      for (const t of targets) {
        byNode.set(t.node, [...(byNode.get(t.node) ?? []), t]);
        byAddr.set(t.address, [...(byAddr.get(t.address) ?? []), t]);
      }
      for (const round of rounds) {
        for (const j of round.jobs) {
          for (const a of j.addresses) {
            for (const t of byAddr.get(a) ?? []) {
              add(j.source.name, t);
              for (const back of byNode.get(j.source.name) ?? []) add(t.node, back);
            }
          }
        }
      }
    }
    const seeds = planSeeds(members, new Map(members.map((x, k) => [x.name, views[k]!.ifs])), targets, new Map(members.map((x, k) => [x.name, views[k]!.kept])), needs);
    const withSeeds = members.filter((x) => seeds.has(x.name));
    try {
      await mapLimit(withSeeds, concurrency, (x) => addSeeds(r, x.netns, seeds.get(x.name)!));
      seeded = [...seeds.values()].reduce((n, x) => n + x.length, 0);
      for (const round of rounds) (await runRound(r, tool, round, concurrency)).forEach((v, k) => reached.set(k, v));
    } finally {
      await mapLimit(withSeeds, concurrency, (x) => removeSeeds(r, x.netns));
    }
  } else {
    for (const round of rounds) {
      (await runRound(r, tool, round, concurrency)).forEach((v, k) => reached.set(k, v));
      await mapLimit(round.flush, concurrency, (x) => flushNeighbours(r, x));
    }
  }

  const results: ProbeResult[] = sources.flatMap((s) =>
    targets
      .filter((t) => t.node !== s.name && wanted(s.name, t))
      .map((t) => {
        const exp = expectReach(net, s.name, t.address);
        return { from: s.name, to: t.address, owner: t.owner, ifname: t.ifname, expected: exp.reachable, reached: reached.get(key(s.name, t.address)) ?? false, reason: exp.reason };
      }),
  );
  const differences = results.filter((x) => x.expected !== null && x.expected !== x.reached);
  return { topology: m.name, ok: differences.length === 0, tool, sources: sources.map((s) => s.name), targets, results, differences, rounds: rounds.length, neighbours: seed ? 'seeded' : 'resolved', seeded, ms: performance.now() - t0 };
}

/**
 * Refuses bad options in one line each (the CLI's flag names): concurrency 1..256, a known tool and
 * neighbour mode.
 * @throws NslabError `INVALID_INPUT`
 */
export function checkPingallOptions(opts: PingallOptions): void {
  const c = opts.concurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1 || c > 256)) throw invalid(`--concurrency ${JSON.stringify(c)}: expected a whole number from 1 to 256`);
  if (opts.tool !== undefined && !PROBE_TOOLS.includes(opts.tool)) throw invalid(`--tool ${JSON.stringify(opts.tool)}: expected one of ${PROBE_TOOLS.join(', ')}`);
  if (opts.neighbours !== undefined && !NEIGHBOUR_MODES.includes(opts.neighbours)) throw invalid(`--neighbours ${JSON.stringify(opts.neighbours)}: expected one of ${NEIGHBOUR_MODES.join(', ')}`);
}

/**
 * pingall's options from the CLI's text flags, checked (see {@link checkPingallOptions}).
 * @throws NslabError `INVALID_INPUT` naming the flag and the bad value
 */
export function parsePingallFlags(f: { concurrency?: string; tool?: string; neighbours?: string; sample?: string; 'sample-pairs'?: string }): PingallOptions {
  if (f['sample-pairs'] !== undefined && f.sample === undefined) throw invalid(`--sample-pairs ${f['sample-pairs']}: only with --sample K: expected --sample too`);
  const o: PingallOptions = {
    ...(f.sample !== undefined ? { sample: { targets: parseCount('--sample', f.sample, 1, 100_000), pairs: f['sample-pairs'] !== undefined ? parseCount('--sample-pairs', f['sample-pairs'], 0, 100_000) : 0 } } : {}),
    ...(f.concurrency !== undefined ? { concurrency: parseCount('--concurrency', f.concurrency, 1, 256) } : {}),
    ...(f.tool !== undefined ? { tool: f.tool as ProbeTool } : {}),
    ...(f.neighbours !== undefined ? { neighbours: f.neighbours as NeighbourMode } : {}),
  };
  checkPingallOptions(o);
  return o;
}

/**
 * Refuses to probe a topology whose netns are not there (a matrix of lost probes from netns that do
 * not exist says nothing): names the missing ones.
 * @param hint what to suggest (e.g. `nslab up FILE first`)
 * @throws NslabError `NOT_FOUND`
 */
export async function requireUp(r: Runner, m: Model, hint: string): Promise<void> {
  const here = new Set(await listNetns(r));
  const missing = m.nodes.filter((n) => n.netns !== null && !here.has(n.netns)).map((n) => n.name);
  if (!missing.length) return;
  const what = missing.length === m.nodes.length ? `topology ${m.name} is not up here: none of its netns (${missing.join(', ')}) exists` : `topology ${m.name}: netns ${missing.join(', ')} missing`;
  throw new NslabError('NOT_FOUND', what, { hint });
}

/**
 * Reads a whole-number flag given as text.
 * @throws NslabError `INVALID_INPUT` naming the flag, the value given and the range expected
 */
export function parseCount(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw invalid(`${flag} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`);
  return n;
}

/** One line for a probe that went against the model: `a -> 10.0.2.1 (b:eth0): lost, expected reachable (via r)`. */
export function describeProbe(x: ProbeResult): string {
  const at = x.owner === x.ifname ? x.owner : `${x.owner}:${x.ifname}`;
  const exp = x.expected === null ? 'unknown' : x.expected ? 'reachable' : 'unreachable';
  return `${x.from} -> ${x.to} (${at}): ${x.reached ? 'reached' : 'lost'}, expected ${exp} (${x.reason})`;
}

/** Above this many columns the matrix is summed up per source instead (a terminal is not 100 columns wide). */
const MATRIX_MAX_COLUMNS = 16;

/**
 * The report as text: a matrix (rows: sources; columns: nodes and bridges holding addresses; a cell
 * is reached/probed, `!` when a probe in it went against the model, `✓` when its unanswered probes
 * were all expected not to answer, `·` for the node itself), fitted to the terminal, or a
 * per-source table past 16 columns; a legend; then one line per difference and a summary line.
 * @param opts `live`: the model was read from the kernel (pingall lab), which the summary says
 */
export async function formatPingall(rep: PingallReport, opts: { live?: boolean } = {}): Promise<string> {
  const { renderTable } = await import('../exec/terminal.js');
  const owners = [...new Set(rep.targets.map((t) => t.owner))];
  let table;
  if (owners.length <= MATRIX_MAX_COLUMNS) {
    const rows = rep.sources.map((s) => [
      s,
      ...owners.map((o) => {
        const cell = rep.results.filter((x) => x.from === s && x.owner === o);
        if (cell.length === 0) return '·';
        const bad = cell.some((x) => x.expected !== null && x.expected !== x.reached);
        // Unanswered probes the model says must not answer (an IPv6 address with no route back):
        // marked, so that "1/2" does not read as loss.
        const meant = !bad && cell.some((x) => !x.reached && x.expected === false);
        return `${cell.filter((x) => x.reached).length}/${cell.length}${bad ? ' !' : meant ? ' ✓' : ''}`;
      }),
    ]);
    table = await renderTable(['from \\ to', ...owners], rows, { borders: true });
  } else {
    // Grouped once: filtering every result per source was sources x results (4000 x 200 000).
    const bySource = new Map<string, ProbeResult[]>();
    for (const x of rep.results) {
      const list = bySource.get(x.from);
      if (list) list.push(x);
      else bySource.set(x.from, [x]);
    }
    const rows = rep.sources.map((s) => {
      const row = bySource.get(s) ?? [];
      return [s, row.length, row.filter((x) => x.reached).length, row.filter((x) => x.expected).length, row.filter((x) => x.expected !== null && x.expected !== x.reached).length].map(String);
    });
    table = await renderTable(['from', 'probes', 'reached', 'expected reachable', 'differences'], rows, { borders: true });
  }
  const how = rep.neighbours === 'seeded' ? `, ${rep.seeded} neighbour entries seeded` : rep.rounds > 1 ? `, ${rep.rounds} rounds` : '';
  // Read from the kernel (pingall lab), the expectation is what the network as built allows, not a file.
  const verdict = rep.differences.length
    ? `${rep.differences.length} differ from ${opts.live ? 'what its routes, bridges and forwarding (read from the kernel) allow' : 'the topology'}`
    : opts.live
      ? 'all as its routes, bridges and forwarding (read from the kernel) allow'
      : 'all as the topology expects';
  const summary = `pingall ${rep.topology}: ${rep.results.length} probes from ${rep.sources.length} nodes in ${(rep.ms / 1000).toFixed(2)} s (${rep.tool}${how}); ${verdict}`;
  const legend = owners.length <= MATRIX_MAX_COLUMNS ? ['cells: probes answered/probes sent from the row to the addresses of the column; ! = a probe went against the model; ✓ = the unanswered ones were expected not to answer'] : [];
  return [table.trimEnd(), ...legend, ...rep.differences.map(describeProbe), summary].join('\n') + '\n';
}

/**
 * The veth ends of a model that `nslab link down` took down and that the kernel still reports down
 * (no UP flag), as {@link endKey}s: a link that went down by itself is not among them, so pingall
 * still reports its lost probes as differences.
 * @returns keys such as `h2:eth0` or `-:c1-eth1`
 */
export async function downOnPurpose(r: Runner, m: Model): Promise<string[]> {
  const ends = new Set(m.veths.flatMap((v) => [v.a, v.b]).map((e) => endKey(e.netns, e.name)));
  const rec = readIntents().filter((x) => x.down && ends.has(endKey(x.netns, x.ifname)) && netnsInode(x.netns) === x.nsIno);
  const out: string[] = [];
  for (const ns of new Set(rec.map((x) => x.netns))) {
    const links = await readLinks(r, ns).catch(() => []);
    for (const x of rec.filter((y) => y.netns === ns)) {
      const l = links.find((y) => y.ifname === x.ifname && y.ifindex === x.ifindex);
      if (l && !l.flags.includes('UP')) out.push(endKey(x.netns, x.ifname));
    }
  }
  return out;
}
