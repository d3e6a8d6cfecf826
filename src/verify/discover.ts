// Discovery: the live network read back from the kernel as a model, for what has no topology file
// (a lab built by its commands, a VM wired by hand): graph and pingall then work on what is there.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../exec/runner.js';
import { queryJson } from '../exec/batch.js';
import { mapLimit } from '../exec/limit.js';
import type { LinkInfo } from '../kernel/link.js';
import { listNetns, namedNetnsInode } from '../kernel/netns.js';
import { readOvsPorts, vsctl } from '../kernel/ovs.js';
import { readRoutes, type RouteInfo, type RouteSpec, type RouteType } from '../kernel/route.js';
import { ownerMark } from '../model/names.js';
import type { BridgeModel, EndModel, MacvlanModel, Model, NodeModel, OvsBridgeModel, SnatRule, VethModel } from '../model/types.js';
import { natSummary, parseSave, snatRules } from '../kernel/iptables.js';

const HOST = 'host';

/** What one netns holds, as read: links, their addresses, routes, forwarding, and nsid → netns name. */
export interface SpaceReading {
  /** The netns name; null for the namespace nslab runs in (the host). */
  netns: string | null;
  links: LinkInfo[];
  addrs: Array<{ ifname: string; addr_info?: Array<{ family: string; local: string; prefixlen: number; scope?: string }> }>;
  routes: RouteInfo[];
  /** `net.ipv4.ip_forward` and `net.ipv6.conf.all.forwarding`, as read. */
  forwarding: [string, string];
  /** nsids this netns has for others: nsid → name (no name: the host, or an unnamed netns). */
  nsids: Map<number, string | null>;
  /** Its source NAT rules (`iptables-save -t nat`), empty when it has no nat table. */
  snat: SnatRule[];
  /** Its nat table's rewriting rules in short (graph). */
  nat?: string[];
}

/** The OVS side, as read: bridges and their ports with tags. */
export interface OvsReading {
  bridges: string[];
  ports: Array<{ name: string; bridge: string; tag: number | null }>;
}

/** Options of {@link discover}. */
export interface DiscoverOptions {
  /** The model's name (shown by graph and pingall). */
  name: string;
  /** Only these named netns (and what connects them), in this order; default every named netns. */
  netns?: string[];
}

/**
 * Reads the live network back as a model: every named netns (or those asked for) and the host, their
 * veth pairs (peers matched by nsid and ifindex), Linux bridges, Open vSwitch bridges with port tags
 * (when ovsdb runs), macvlans with their parent, addresses, routes (not the kernel's connected ones)
 * forwarding and source NAT rules. Reads only: `ip -j -d -batch` (link, addr, netns list-id),
 * `ip -j [-6] route`, `sysctl -n`, `iptables-save -t nat`, `ovs-vsctl`.
 * @param r the runner
 * @param opts the model's name and the netns to read
 * @returns a model as `resolve` makes from a file, plus `ovsBridges` and `macvlans`
 */
export async function discover(r: Runner, opts: DiscoverOptions): Promise<Model> {
  const all = await listNetns(r);
  const wanted = opts.netns ? opts.netns.filter((n) => all.includes(n)) : all;
  // Two names for one netns (a node in another's netns, as docker's container: mode): read it once,
  // under the first name.
  const seenIno = new Set<number>();
  const names: string[] = [];
  for (const n of wanted) {
    const ino = await namedNetnsInode(n);
    if (ino !== null && seenIno.has(ino)) continue;
    if (ino !== null) seenIno.add(ino);
    names.push(n);
  }
  const spaces = await mapLimit([null, ...names], 8, (ns) => readSpace(r, ns));
  const ovsUp = existsSync(join(process.env.OVS_RUNDIR || '/var/run/openvswitch', 'db.sock'));
  const ovs: OvsReading = ovsUp ? await readOvs(r) : { bridges: [], ports: [] };
  // Asked for no netns at all (a lab on the host's own network): everything of the host is shown.
  return modelFromReadings(opts.name, spaces, ovs, opts.netns !== undefined && opts.netns.length > 0);
}

async function readSpace(r: Runner, netns: string | null): Promise<SpaceReading> {
  // One process for links, addresses, IPv4 routes and nsids; IPv6 routes need -6, refused in a batch.
  const [links, addrs, ids, routes4] = await queryJson(r, netns, [['link', 'show'], ['addr', 'show'], ['netns', 'list-id'], ['route', 'show']], ['-d']);
  const routes = [...(routes4 as RouteInfo[]), ...(await readRoutes(r, netns, 6))];
  const fw = await r.run({ argv: ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'], netns }, { check: false });
  const [f4 = '0', f6 = '0'] = fw.stdout.trim().split('\n');
  const nsids = new Map(((ids ?? []) as Array<{ nsid: number; name?: string }>).map((x) => [x.nsid, x.name ?? null]));
  const nat = await r.run({ argv: ['iptables-save', '-t', 'nat'], netns }, { check: false });
  const saved = nat.exitCode === 0 ? parseSave(nat.stdout) : new Map();
  return { netns, links: links as LinkInfo[], addrs: addrs as SpaceReading['addrs'], routes, forwarding: [f4.trim(), f6.trim()], nsids, snat: snatRules(saved), nat: natSummary(saved) };
}

async function readOvs(r: Runner): Promise<OvsReading> {
  const bridges = (await r.run({ argv: vsctl('list-br') }, { check: false })).stdout.split('\n').filter(Boolean);
  const ports = (await readOvsPorts(r)).map((p) => ({ name: p.name, bridge: p.bridge, tag: p.tag }));
  return { bridges, ports };
}

/** Routes worth drawing and walking: not the kernel's connected ones, not IPv6 link-local or multicast. */
function keptRoute(x: RouteInfo): RouteSpec | null {
  if (x.protocol === 'kernel' || x.protocol === 'ra' || /^(fe80|ff00)::/.test(x.dst) || x.type === 'multicast') return null;
  const type: RouteType = x.type === 'unreachable' || x.type === 'prohibit' || x.type === 'blackhole' ? x.type : 'unicast';
  return { to: x.dst, type, ...(x.gateway ? { via: x.gateway } : {}), ...(x.dev && type === 'unicast' ? { dev: x.dev } : {}), ...(x.metric ? { metric: x.metric } : {}) };
}

/**
 * Builds the model from readings (pure; see {@link discover}). With `filtered`, host-side objects
 * are kept only when they connect a read netns: veths with an end in one, the bridges their ends are
 * ports of, veths between the host and such a bridge, macvlan parents and the veths they are ends of.
 */
export function modelFromReadings(name: string, spaces: SpaceReading[], ovs: OvsReading, filtered: boolean): Model {
  const host = spaces.find((s) => s.netns === null)!;
  const ownerOf = (s: SpaceReading) => s.netns ?? HOST;
  const addrsOf = (s: SpaceReading, ifname: string) =>
    (s.addrs.find((a) => a.ifname === ifname)?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
  const byName = new Map(spaces.filter((s) => s.netns).map((s) => [s.netns!, s]));
  const ovsPort = new Map(ovs.ports.map((p) => [p.name, p]));
  const linuxBridges = new Set(host.links.filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => l.ifname));

  // The netns a link's peer or parent lives in: its nsid as this netns names it; no name = the host.
  const peerSpace = (s: SpaceReading, l: LinkInfo): SpaceReading | undefined => {
    if (l.link_netnsid === undefined) return s;
    const n = s.nsids.get(l.link_netnsid);
    return n ? byName.get(n) : host;
  };
  const endOf = (s: SpaceReading, l: LinkInfo): EndModel => {
    const base = { netns: s.netns, name: l.ifname, mtu: l.mtu, mac: l.address ?? null };
    if (s.netns === null && l.master && linuxBridges.has(l.master)) return { ...base, owner: l.master, addresses: [], bridge: l.master, vlan: null };
    const port = s.netns === null ? ovsPort.get(l.ifname) : undefined;
    if (port) return { ...base, owner: port.bridge, addresses: [], bridge: port.bridge, vlan: port.tag };
    return { ...base, owner: ownerOf(s), addresses: addrsOf(s, l.ifname), bridge: null, vlan: null };
  };

  const veths: VethModel[] = [];
  const seen = new Set<string>();
  const key = (s: SpaceReading, l: LinkInfo) => `${s.netns ?? ''}/${l.ifindex}`;
  for (const s of spaces) {
    for (const l of s.links) {
      if (l.linkinfo?.info_kind !== 'veth' || seen.has(key(s, l))) continue;
      const ps = peerSpace(s, l);
      // A peer in another netns is named by ifindex, one in the same netns by name.
      const peer = ps?.links.find((p) => (l.link_index !== undefined ? p.ifindex === l.link_index : p.ifname === l.link) && p.linkinfo?.info_kind === 'veth');
      if (!ps || !peer) continue; // its peer is in a netns not read
      seen.add(key(s, l));
      seen.add(key(ps, peer));
      veths.push({ a: endOf(s, l), b: endOf(ps, peer) });
    }
  }
  const macvlans: MacvlanModel[] = [];
  for (const s of spaces) {
    for (const l of s.links) {
      if (l.linkinfo?.info_kind !== 'macvlan') continue;
      const ps = peerSpace(s, l);
      const parent = ps?.links.find((p) => (l.link_index !== undefined ? p.ifindex === l.link_index : p.ifname === l.link));
      if (!parent) continue;
      const mode = String((l.linkinfo.info_data as { mode?: string } | undefined)?.mode ?? 'vepa');
      macvlans.push({ owner: ownerOf(s), netns: s.netns, name: l.ifname, mac: l.address ?? null, addresses: addrsOf(s, l.ifname), parent: parent.ifname, mode });
    }
  }

  // What to keep, when only some netns were read: what connects them.
  const hostEnd = (e: EndModel) => e.netns === null;
  let kept = veths.filter((v) => !filtered || !hostEnd(v.a) || !hostEnd(v.b));
  if (filtered) {
    const usedBridges = new Set(kept.flatMap((v) => [v.a.bridge, v.b.bridge].filter((b): b is string => b !== null)));
    const parents = new Set(macvlans.map((m) => m.parent));
    kept = veths.filter(
      (v) => kept.includes(v) || [v.a, v.b].some((e) => (e.bridge !== null && usedBridges.has(e.bridge)) || (e.netns === null && e.bridge === null && parents.has(e.name))),
    );
  }
  const usedBridges = new Set(kept.flatMap((v) => [v.a.bridge, v.b.bridge].filter((b): b is string => b !== null)));
  const bridges: BridgeModel[] = host.links
    .filter((l) => linuxBridges.has(l.ifname) && (!filtered || usedBridges.has(l.ifname)))
    .map((l) => ({ name: l.ifname, driver: 'iproute2', mtu: l.mtu, stp: false, addresses: addrsOf(host, l.ifname) }));
  // An OVS port that is a host interface but no veth end: an internal port (type=internal).
  const veth = new Set(host.links.filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname));
  const internal = (b: string) =>
    ovs.ports.filter((p) => p.bridge === b && p.name !== b && !veth.has(p.name) && host.links.some((l) => l.ifname === p.name)).map((p) => ({ name: p.name, vlan: p.tag, addresses: addrsOf(host, p.name) }));
  const ovsBridges: OvsBridgeModel[] = ovs.bridges.filter((b) => !filtered || usedBridges.has(b)).map((b) => ({ name: b, addresses: addrsOf(host, b), internal: internal(b) }));
  const nodeOf = (s: SpaceReading): NodeModel => ({
    name: ownerOf(s),
    netns: s.netns,
    routes: s.routes.map(keptRoute).filter((x): x is RouteSpec => x !== null),
    sysctls: [
      ['net.ipv4.ip_forward', s.forwarding[0]],
      ['net.ipv6.conf.all.forwarding', s.forwarding[1]],
    ],
    snat: s.snat,
    ...(s.nat?.length ? { nat: s.nat } : {}),
  });
  return {
    name,
    mark: ownerMark(name),
    host: nodeOf(host),
    nodes: spaces.filter((s) => s.netns !== null).map(nodeOf),
    bridges,
    veths: kept,
    ovsBridges,
    macvlans,
  };
}
