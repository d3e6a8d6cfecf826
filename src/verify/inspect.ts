// inspect: everything nslab owns on this machine now, found by its marks in the kernel (no state file).
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';
import { readIptables } from '../kernel/iptables.js';
import { readLinks, type LinkInfo } from '../kernel/link.js';
import { NETNS_DIR } from '../exec/runner.js';
import { listNetns } from '../kernel/netns.js';
import { readOvsPorts } from '../kernel/ovs.js';
import { parseMark } from '../model/marks.js';
import { readJournals } from '../model/journal.js';
import { isContainerId, readDockerRecords } from '../model/docker.js';
import { stillRunning } from '../kernel/proc.js';


/** One interface as inspect lists it. */
export interface OwnedLink {
  ifname: string;
  /** `info_kind` (veth, bridge, …) or `device`. */
  kind: string;
  /** The bridge it is a port of. */
  master: string | null;
  up: boolean;
}

/** A process nslab started or that runs in a netns nslab owns. */
export interface OwnedProcess {
  pid: number;
  /** Its command line, words joined by blanks. */
  command: string;
}

/**
 * What one owner holds: a topology (by its name), `network NAME`, `node NAME`, `attach GUEST` (or
 * `attach` for bridges and host access that attaches made): its netns (with the interfaces and
 * processes inside), its marked links in the current netns, OVS ports, iptables rules and processes
 * (DHCP clients) elsewhere.
 */
export interface OwnedTopology {
  name: string;
  netns: Array<{ name: string; links: OwnedLink[]; processes: OwnedProcess[] }>;
  links: OwnedLink[];
  /** `PORT on BRIDGE [tag N]`, from the ports' external-ids. */
  ovsPorts: string[];
  /** `-t TABLE -A CHAIN ...`, rules whose comment is the owner's. */
  iptables: string[];
  /** Processes outside its netns (a DHCP client in a guest). */
  processes: OwnedProcess[];
  /**
   * A Docker guest (owner `attach FULL_ID`): its name and state now. `gone` (Docker no longer knows
   * it) makes what is left stale, which `nslab clean` removes; `stopped` ones lost their interfaces
   * with their netns (OVS ports stay, stale) and get persisted attaches back when they start.
   */
  container?: { id: string; name: string; state: 'running' | 'stopped' | 'gone'; persisted: string[] };
}

/** The owner a mark names (see model/marks.ts): a topology's name, or `KIND NAME` for the others. */
export function ownerOfMark(alias: string | undefined): string | null {
  const m = parseMark(alias);
  if (!m) return null;
  switch (m.kind) {
    case 'attach':
      return m.fields.guest ? `attach ${m.fields.guest}` : 'attach';
    case 'bridge':
    case 'host-access':
    case 'vlan':
      return 'attach';
    case 'net':
      return `network ${m.fields.name ?? '?'}`;
    case 'node':
      return `node ${m.fields.name ?? '?'}`;
    default:
      return m.kind; // `nslab:TOPOLOGY`
  }
}

/** The owner an iptables comment names (engine/netplan.ts): `nslab:net=X` -> `network X`, `nslab:node=X` -> `node X`. */
function ownerOfComment(c: string | null): string | null {
  if (!c?.startsWith('nslab:')) return null;
  // A CNI attachment's masquerade rules (engine/cni/cni.ts): `nslab:cni=NETWORK/CONTAINERID/IFNAME`.
  const cni = /^nslab:cni=[^/]+\/([^/]+)\/[^/]+$/.exec(c);
  if (cni) return `attach cni:${cni[1]}`;
  const m = /^nslab:(net|node)=(\S+)$/.exec(c);
  return m ? `${m[1] === 'net' ? 'network' : 'node'} ${m[2]}` : c.slice('nslab:'.length);
}

/** A command that died part-way (its journal is left, its writer gone): what it made is incomplete. */
export interface Incomplete {
  owner: string;
  /** `nslab up x.yaml`. */
  command: string;
  pid: number;
  /** Steps whose phase had started: some of them may have run. */
  stepsStarted: number;
  at: string;
}

/** What {@link inspect} found. */
export interface InspectReport {
  topologies: OwnedTopology[];
  /** Commands killed part-way whose half-made objects `nslab clean` finishes. */
  incomplete: Incomplete[];
}

/** The journals of commands that no longer run (model/journal.ts), as {@link Incomplete} entries. */
async function incompleteCommands(): Promise<Incomplete[]> {
  const out: Incomplete[] = [];
  for (const j of readJournals()) {
    if (await stillRunning(j.pid, j.start)) continue;
    let started = 0;
    for (const e of j.entries) {
      if (e.t !== 'plan') continue;
      const phases = new Set(j.entries.flatMap((x) => (x.t === 'phase' && x.plan === e.plan ? [x.phase] : [])));
      started += e.steps.filter((s) => phases.has(s.phase)).length;
    }
    out.push({ owner: j.owner, command: `nslab ${j.argv.join(' ')}`, pid: j.pid, stepsStarted: started, at: j.at });
  }
  return out;
}

function owned(l: LinkInfo): OwnedLink {
  return { ifname: l.ifname, kind: l.linkinfo?.info_kind ?? 'device', master: l.master ?? null, up: l.flags.includes('UP') };
}

/**
 * Finds what nslab owns by discovery, never by a state file: links whose alias starts with `nslab:`
 * in the current netns; named netns whose `lo` alias does (with every interface and process inside);
 * OVS ports with `nslab-guest` external-ids (when an ovsdb is reachable); iptables rules with an
 * `nslab:` comment; DHCP clients running nslab's udhcpc script. Grouped by owner (see
 * {@link OwnedTopology}). Reads only: `ip -j -d link`, `ovs-vsctl`, `iptables-save`, /proc.
 * @param r the runner
 * @param concurrency how many netns are read at once
 * @returns topologies sorted by name, their netns and links in kernel order
 */
export async function inspect(r: Runner, concurrency = 8): Promise<InspectReport> {
  const byName = new Map<string, OwnedTopology>();
  const topo = (name: string) => {
    const t = byName.get(name) ?? { name, netns: [], links: [], ovsPorts: [], iptables: [], processes: [] };
    byName.set(name, t);
    return t;
  };
  for (const l of await readLinks(r, null)) {
    const o = ownerOfMark(l.ifalias);
    if (o) topo(o).links.push(owned(l));
  }
  const names = await listNetns(r);
  // A netns can vanish between the listing and the reading: it then owns nothing any more.
  const inside = await mapLimit(names, concurrency, (ns) => readLinks(r, ns).catch(() => [] as LinkInfo[]));
  const procs = await processes();
  const ino = new Map<number, string>();
  for (const ns of names) {
    const st = await stat(join(NETNS_DIR, ns)).catch(() => null);
    if (st) ino.set(st.ino, ns);
  }
  names.forEach((ns, i) => {
    const links = inside[i]!;
    const o = ownerOfMark(links.find((l) => l.ifname === 'lo')?.ifalias);
    if (!o) {
      // A guest nslab attached (not its netns): the guest ends carry the attach mark.
      // An end whose mark names its guest (a CNI container's, `guest=cni:ID`) belongs to that guest.
      const byOwner = new Map<string, LinkInfo[]>();
      for (const l of links) {
        const owner = ownerOfMark(l.ifalias);
        if (!owner?.startsWith('attach')) continue;
        const k = owner === 'attach' ? `attach ${ns}` : owner;
        byOwner.set(k, [...(byOwner.get(k) ?? []), l]);
      }
      for (const [k, marked] of byOwner) topo(k).netns.push({ name: ns, links: marked.map(owned), processes: [] });
      return;
    }
    const here = procs.filter((p) => ino.get(p.netnsIno) === ns).map(({ pid, command }) => ({ pid, command }));
    topo(o).netns.push({ name: ns, links: links.filter((l) => l.ifname !== 'lo').map(owned), processes: here });
  });
  // DHCP clients run nslab's udhcpc script; their guest is in `-x hostname:GUEST`. /proc shows every
  // process of the machine: only those in this mount namespace are this nslab's (nsenter --net keeps
  // it; another sandbox has its own).
  const myMnt = await readlink('/proc/self/ns/mnt').catch(() => '');
  for (const p of procs) {
    if (!/\budhcpc\b/.test(p.command) || !p.command.includes('/share/udhcpc.sh') || p.mnt !== myMnt) continue;
    // Its owner is in its pid file's name (GUEST-IFNAME.pid): a container's full ID, a netns name.
    const ifn = /-i (\S+)/.exec(p.command)?.[1];
    const pf = /-p \S*\/dhcp\/(\S+)\.pid\b/.exec(p.command)?.[1];
    const guest = pf && ifn && pf.endsWith(`-${ifn}`) ? pf.slice(0, -ifn.length - 1) : /-x hostname:(\S+)/.exec(p.command)?.[1];
    topo(guest ? `attach ${guest}` : 'attach').processes.push({ pid: p.pid, command: p.command });
  }
  const ovsRun = process.env.OVS_RUNDIR || '/var/run/openvswitch';
  if (existsSync(join(ovsRun, 'db.sock'))) {
    for (const p of await readOvsPorts(r).catch(() => [])) {
      const guest = p.externalIds['nslab-guest'];
      if (guest) topo(`attach ${guest}`).ovsPorts.push(`${p.name} on ${p.bridge}${p.tag !== null ? ` tag ${p.tag}` : ''}`);
    }
  }
  const saved = await readIptables(r).catch(() => new Map() as Awaited<ReturnType<typeof readIptables>>);
  for (const [table, t] of saved) {
    for (const rule of t.rules) {
      const o = ownerOfComment(rule.comment);
      if (o) topo(o).iptables.push(`-t ${table} -A ${rule.chain} ${rule.text}`);
    }
  }
  await addContainers(r, byName, topo);
  // A node's veth is made by the attach engine (mark `attach guest=NODE`): it belongs to the node.
  for (const [name, t] of byName) {
    const node = byName.get(`node ${name.slice('attach '.length)}`);
    if (!name.startsWith('attach ') || !node) continue;
    node.links.push(...t.links);
    node.ovsPorts.push(...t.ovsPorts);
    node.processes.push(...t.processes);
    byName.delete(name);
  }
  return { topologies: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)), incomplete: await incompleteCommands() };
}

/**
 * Docker guests: owners named by a full container ID, and containers nslab has records of (an
 * attach of this boot, or persisted) even when nothing of them is in the kernel now; each with its
 * name and state from one `docker inspect` (no call when there is none).
 */
async function addContainers(r: Runner, byName: Map<string, OwnedTopology>, topo: (name: string) => OwnedTopology): Promise<void> {
  const names = new Map<string, string>();
  const persisted = new Map<string, string[]>();
  for (const p of [false, true]) {
    for (const rec of readDockerRecords(p)) {
      names.set(rec.id, rec.name);
      if (p) persisted.set(rec.id, rec.attaches.map((a) => `${a.ifname} to ${a.host}`));
    }
  }
  const ids = new Set([...byName.keys()].flatMap((n) => (n.startsWith('attach ') && isContainerId(n.slice(7)) ? [n.slice(7)] : [])));
  for (const id of names.keys()) ids.add(id);
  if (ids.size === 0) return;
  const res = await r.run({ argv: ['docker', 'inspect', '--type', 'container', '--format', '{{.Id}} {{.Name}} {{.State.Running}}', ...ids] }, { check: false }).catch(() => null);
  const seen = new Map<string, { name: string; running: boolean }>();
  for (const line of res?.stdout.split('\n') ?? []) {
    const [id, name, running] = line.trim().split(' ');
    if (id && name) seen.set(id, { name: name.replace(/^\//, ''), running: running === 'true' });
  }
  for (const id of ids) {
    const s = seen.get(id);
    // Without an answer from Docker (no daemon), a container is not called gone.
    if (!s && (!res || !new RegExp(`No such (container|object): ${id}`, 'i').test(res.stderr))) continue;
    topo(`attach ${id}`).container = { id, name: s?.name ?? names.get(id) ?? id.slice(0, 12), state: s ? (s.running ? 'running' : 'stopped') : 'gone', persisted: persisted.get(id) ?? [] };
  }
}

/** Every process with its command line, its netns inode and mount namespace (/proc; kernel threads left out). */
async function processes(): Promise<Array<OwnedProcess & { netnsIno: number; mnt: string }>> {
  const out: Array<OwnedProcess & { netnsIno: number; mnt: string }> = [];
  for (const d of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    const cmd = (await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
    if (!cmd) continue;
    const link = await readlink(`/proc/${d}/ns/net`).catch(() => '');
    const m = /net:\[(\d+)\]/.exec(link);
    if (m) out.push({ pid: Number(d), command: cmd, netnsIno: Number(m[1]), mnt: await readlink(`/proc/${d}/ns/mnt`).catch(() => '') });
  }
  return out;
}

/**
 * The report as a table (cli-table3): one row per netns and per marked link, grouped by topology.
 * @returns the text to print; a single line when nslab owns nothing here
 */
export async function formatInspect(rep: InspectReport): Promise<string> {
  const half = rep.incomplete.map((x) => `incomplete: from a killed \`${x.command}\` (pid ${x.pid}, ${x.at}): ${x.stepsStarted} step(s) may have run; nslab clean finishes it\n`).join('');
  if (rep.topologies.length === 0) return `${half}nslab owns nothing here (no link or netns carries an nslab: mark)\n`;
  const { renderTable } = await import('../exec/terminal.js');
  const t = { rows: [] as string[][], push(r: string[]) { this.rows.push(r); } };
  const desc = (l: OwnedLink) => `${l.ifname} (${[l.kind, ...(l.master ? [`port of ${l.master}`] : []), ...(l.up ? [] : ['down'])].join(', ')})`;
  const proc = (p: OwnedProcess) => `pid ${p.pid}: ${p.command.length > 60 ? `${p.command.slice(0, 57)}...` : p.command}`;
  // A container's owner reads as its name and short ID (the full ID stays in --json and in marks).
  const shown = (x: OwnedTopology) => (x.container ? `attach ${x.container.name} (${x.container.id.slice(0, 12)})` : x.name);
  for (const topo0 of rep.topologies) {
    const topo = { ...topo0, name: shown(topo0) };
    if (topo.container) {
      const c = topo.container;
      const what = c.state === 'gone' ? 'removed: what is left is stale (nslab clean removes it)' : c.state === 'stopped' ? `stopped${c.persisted.length ? ': persisted attaches come back when it starts (nslab docker watch)' : ''}` : 'running';
      t.push([topo.name, `container ${c.name} (${c.id.slice(0, 12)})`, [what, ...c.persisted.map((x) => `persisted: ${x}`)].join('\n')]);
    }
    for (const n of topo.netns) t.push([topo.name, `netns ${n.name}`, [...n.links.map(desc), ...n.processes.map(proc)].join('\n') || '(only lo)']);
    if (topo.links.length) t.push([topo.name, 'links in this netns', topo.links.map(desc).join('\n')]);
    if (topo.ovsPorts.length) t.push([topo.name, 'OVS ports', topo.ovsPorts.join('\n')]);
    if (topo.iptables.length) t.push([topo.name, 'iptables rules', topo.iptables.join('\n')]);
    if (topo.processes.length) t.push([topo.name, 'processes', topo.processes.map(proc).join('\n')]);
  }
  const extra = (x: OwnedTopology) =>
    [x.ovsPorts.length ? `, ${x.ovsPorts.length} OVS ports` : '', x.iptables.length ? `, ${x.iptables.length} iptables rules` : '', x.processes.length ? `, ${x.processes.length} processes` : ''].join('');
  const summary = rep.topologies.map((x) => `${shown(x)}: ${x.netns.length} netns, ${x.links.length} links${extra(x)}`).join('; ');
  return `${await renderTable(['OWNER', 'OBJECT', 'HOLDS'], t.rows)}${summary}\n${half}`;
}
