// Multi-host topologies: a file whose `hosts:` places nodes and bridges on several machines (VMs).
// Each host builds its part; a bridge on several hosts is one L2 segment, joined by VXLAN.
import { createHash } from 'node:crypto';
import { SpecError } from './load.js';
import { ifnameProblem } from './names.js';
import type { TopologyRaw } from './schema.js';

/** A VXLAN interface joining this host's part of a bridge to the same bridge on the other hosts. */
export interface VxlanJoin {
  name: string;
  bridge: string;
  /** VXLAN Network Identifier: the bridge's `vni:`, else derived from the topology and bridge names. */
  vni: number;
  /** This host's underlay address. */
  local: string;
  dev: string | null;
  /** MTU of the tunnel and of the bridge's ports: the smallest underlay MTU of its hosts minus 50. */
  mtu: number;
  /** The other hosts' underlay addresses. */
  peers: string[];
}

/** One host's part of a multi-host topology: a single-host topology plus its VXLAN joins. */
export interface HostPart {
  host: string;
  raw: TopologyRaw;
  joins: VxlanJoin[];
  /** What nslab decided for the user to know (MTUs lowered for VXLAN). */
  notes: string[];
}

/** VXLAN's overhead over IPv4 (outer IP, UDP, VXLAN and inner Ethernet headers: RFC 7348). */
const OVERHEAD = 50;
const DEFAULT_UNDERLAY_MTU = 1500;

/** True when the file declares `hosts:`. */
export function isMultiHost(raw: TopologyRaw): boolean {
  return raw.hosts !== undefined && Object.keys(raw.hosts).length > 0;
}

/** The endpoint's node or bridge name (`a:eth0` -> `a`, `br0` -> `br0`). */
const head = (ep: string) => ep.split(':')[0]!;

/**
 * Checks a multi-host file and works out where each bridge exists: where its `host:` says, else on
 * the hosts of the nodes linked to it.
 * @returns bridge name -> host names, sorted
 * @throws SpecError naming the path: a node without a known host, a veth between two hosts (only a
 *   bridge spans hosts), a node on a bridge that is not on its host, a `host:IFNAME` endpoint or a
 *   top-level `host:` (a host's own interfaces go under hosts.NAME), two hosts with one address
 */
export function bridgeHosts(raw: TopologyRaw): Map<string, string[]> {
  const hosts = raw.hosts ?? {};
  const names = Object.keys(hosts);
  if (raw.host) throw new SpecError(['host'], `a multi-host topology has no single "host:": put that host's interfaces, routes and sysctls under hosts.NAME (hosts: ${names.join(', ')})`);
  const seen = new Map<string, string>();
  for (const [h, x] of Object.entries(hosts)) {
    if (seen.has(x.address)) throw new SpecError(['hosts', h, 'address'], `address ${x.address} is host ${seen.get(x.address)}'s already: expected one underlay address per host`);
    seen.set(x.address, h);
  }
  for (const [n, x] of Object.entries(raw.nodes)) {
    if (!x.host) throw new SpecError(['nodes', n], `node ${n} has no "host:": expected one of ${names.join(', ')} (a multi-host topology places every node)`);
    if (!(x.host in hosts)) throw new SpecError(['nodes', n, 'host'], `host ${JSON.stringify(x.host)} is not declared: expected one of ${names.join(', ')}`);
  }
  const out = new Map<string, Set<string>>();
  for (const [b, x] of Object.entries(raw.bridges)) {
    const given = x.host === undefined ? [] : Array.isArray(x.host) ? x.host : [x.host];
    for (const h of given) if (!(h in hosts)) throw new SpecError(['bridges', b, 'host'], `host ${JSON.stringify(h)} is not declared: expected one of ${names.join(', ')}`);
    out.set(b, new Set(given));
  }
  const links = raw.links.map((l) => (Array.isArray(l) ? l : l.endpoints));
  links.forEach((pair, i) => {
    pair.forEach((ep, j) => {
      if (head(ep) === 'host') throw new SpecError(['links', i, j], `endpoint ${JSON.stringify(ep)}: a multi-host topology has no single host: link a node, or a bridge (hosts' own interfaces are not linked yet)`);
    });
    const [a, b] = pair.map(head) as [string, string];
    const na = raw.nodes[a];
    const nb = raw.nodes[b];
    if (na && nb && na.host !== nb.host) throw new SpecError(['links', i], `${pair[0]} is on ${na.host} and ${pair[1]} on ${nb.host}: a veth cannot span hosts; link both to a bridge, which is joined across hosts by VXLAN`);
    for (const [node, br] of [[na, b], [nb, a]] as const) {
      if (!node || !out.has(br)) continue;
      const given = raw.bridges[br]!.host;
      if (given !== undefined && !out.get(br)!.has(node.host!)) throw new SpecError(['links', i], `bridge ${br} is not on ${node.host} (its host: ${[...out.get(br)!].join(', ')}), where ${na === node ? a : b} is`);
      out.get(br)!.add(node.host!);
    }
  });
  for (const [b, hs] of out) if (hs.size === 0) throw new SpecError(['bridges', b], `bridge ${b} has no node linked to it and no "host:": expected host: NAME (one of ${names.join(', ')})`);
  return new Map([...out].map(([b, hs]) => [b, [...hs].sort()]));
}

/** The VNI of a bridge: a hash of the topology's and the bridge's names, 1..16777215, the same on every host. */
export function deriveVni(topology: string, bridge: string): number {
  return 1 + (createHash('sha256').update(`${topology}/${bridge}`).digest().readUInt32BE(0) % 16777214);
}

/** The VXLAN interface's name for a bridge: `vx-BRIDGE`, or `vx-HASH` when that is over 15 bytes. */
export function vxlanName(bridge: string): string {
  const n = `vx-${bridge}`;
  return ifnameProblem(n) ? `vx-${createHash('sha256').update(bridge).digest('hex').slice(0, 8)}` : n;
}

/** The MTU of a joined bridge's ports: the smallest underlay MTU of its hosts minus VXLAN's 50 bytes. */
function joinedMtu(raw: TopologyRaw, hs: string[]): number {
  return Math.min(...hs.map((h) => raw.hosts![h]!.mtu ?? DEFAULT_UNDERLAY_MTU)) - OVERHEAD;
}

/**
 * Lowers the MTU of a joined bridge and of the node interfaces linked to it to the tunnel's (unless
 * set lower), and refuses one set higher: a frame too big for the tunnel is dropped silently.
 */
function fitMtus(raw: TopologyRaw, out: TopologyRaw, bridge: string, mtu: number, notes: string[], what: string): void {
  const b = out.bridges[bridge]!;
  if (b.mtu !== undefined && b.mtu > mtu) throw new SpecError(['bridges', bridge, 'mtu'], `bridge ${bridge} spans hosts with MTU ${b.mtu}: expected at most ${mtu} (the underlay's ${mtu + OVERHEAD} minus ${OVERHEAD} bytes of VXLAN), or raise the hosts' mtu`);
  out.bridges[bridge] = { ...b, mtu: b.mtu ?? mtu };
  for (const l of out.links) {
    const pair = Array.isArray(l) ? l : l.endpoints;
    if (!pair.some((ep) => head(ep) === bridge)) continue;
    for (const ep of pair) {
      const [n, ifname] = ep.split(':') as [string, string | undefined];
      const node = out.nodes[n];
      if (!node || !ifname) continue;
      const cur = node.interfaces[ifname]?.mtu;
      if (cur !== undefined && cur > mtu) throw new SpecError(['nodes', n, 'interfaces', ifname, 'mtu'], `${n}:${ifname} is on bridge ${bridge}, which spans hosts, with MTU ${cur}: expected at most ${mtu} (${mtu + OVERHEAD} minus ${OVERHEAD} bytes of VXLAN)`);
      node.interfaces[ifname] = { addresses: [], ...node.interfaces[ifname], mtu: cur ?? mtu };
    }
  }
  notes.push(`bridge ${bridge} spans ${what}: joined by VXLAN; MTU ${mtu} on its ports (${mtu + OVERHEAD} of the underlay minus ${OVERHEAD} bytes of VXLAN)`);
  void raw;
}

/** A copy of the file's nodes, bridges and links, without the multi-host keys. */
function strip(raw: TopologyRaw, keepNode: (host: string) => boolean, keepBridge: (b: string) => boolean, name: string): TopologyRaw {
  const nodes = Object.fromEntries(
    Object.entries(raw.nodes)
      .filter(([, x]) => keepNode(x.host!))
      .map(([n, x]) => {
        const { host: _h, ...rest } = x;
        void _h;
        return [n, { ...rest, interfaces: { ...rest.interfaces } }];
      }),
  );
  const bridges = Object.fromEntries(
    Object.entries(raw.bridges)
      .filter(([b]) => keepBridge(b))
      .map(([b, x]) => {
        const { host: _h, vni: _v, ...rest } = x;
        void _h;
        void _v;
        return [b, rest];
      }),
  );
  const links = raw.links.filter((l) => (Array.isArray(l) ? l : l.endpoints).every((ep) => head(ep) in nodes || head(ep) in bridges));
  return { name, nodes, bridges, links };
}

/**
 * One host's part: its nodes, the bridges on it, the links among them, its own interfaces; each bridge
 * that also exists on other hosts gets a VXLAN join, and its ports the tunnel's MTU.
 * @param raw a validated multi-host file
 * @param host the host's name (a key of `hosts:`)
 * @param name the topology's name (the file's `name:` or base name); the part is named `NAME.HOST`
 * @throws SpecError see {@link bridgeHosts}; an unknown host; an MTU too big for the tunnel
 */
export function hostPart(raw: TopologyRaw, host: string, name: string): HostPart {
  const where = bridgeHosts(raw);
  const hosts = raw.hosts!;
  if (!(host in hosts)) throw new SpecError(['hosts'], `no host ${JSON.stringify(host)} in this topology: expected one of ${Object.keys(hosts).join(', ')}`);
  const out = strip(raw, (h) => h === host, (b) => where.get(b)!.includes(host), `${name}.${host}`);
  const { address: _a, dev, mtu: _m, ...own } = hosts[host]!;
  void _a;
  void _m;
  if (Object.keys(own.interfaces).length || own.routes.length || Object.keys(own.sysctls).length) out.host = own;
  const joins: VxlanJoin[] = [];
  const notes: string[] = [];
  for (const [b, hs] of where) {
    if (hs.length < 2 || !hs.includes(host)) continue;
    const mtu = joinedMtu(raw, hs);
    fitMtus(raw, out, b, mtu, notes, `hosts ${hs.join(', ')}`);
    joins.push({
      name: vxlanName(b),
      bridge: b,
      vni: raw.bridges[b]!.vni ?? deriveVni(name, b),
      local: hosts[host]!.address,
      dev: dev ?? null,
      mtu,
      peers: hs.filter((h) => h !== host).map((h) => hosts[h]!.address),
    });
  }
  return { host, raw: out, joins, notes };
}

/**
 * All hosts as one: every node, bridge and link, a bridge on several hosts as one bridge (a VXLAN join
 * is one L2 segment), with the tunnel's MTU. What reachability is expected from (pingall).
 * @param raw a validated multi-host file
 * @param name the topology's name
 */
export function mergedRaw(raw: TopologyRaw, name: string): TopologyRaw {
  const where = bridgeHosts(raw);
  const out = strip(raw, () => true, () => true, name);
  for (const [b, hs] of where) if (hs.length > 1) fitMtus(raw, out, b, joinedMtu(raw, hs), [], `hosts ${hs.join(', ')}`);
  return out;
}

/** The host of `node` in a multi-host file, or null. */
export function hostOf(raw: TopologyRaw, node: string): string | null {
  return raw.nodes[node]?.host ?? null;
}
