// What pingall expects, from the model alone: a route walk over nodes, segments, routes and ip_forward.
import { describeRoute, type RouteSpec } from '../kernel/route.js';
import type { Model, SnatRule } from '../model/types.js';
import { routeFamily } from './expect.js';
import { addressOf, canonicalIp, inNet, parseCidr, parseIp, type IpNet, type IpValue } from './ip.js';

/** A layer-3 interface: one with addresses, in a node's netns (bridges count as the host's). */
interface L3If {
  node: string;
  ifname: string;
  addrs: IpNet[];
  /** Layer-2 segment: interfaces joined by a veth or a bridge share one. */
  segment: string;
  /** Its own key (`if:NODE:IFNAME`, `bridge:NAME`, `ovs:NAME:TAG`). */
  key: string;
  /** For a macvlan: its parent's key and its mode (the parent and a child never exchange frames). */
  macvlan?: { parent: string; mode: string };
  /** Its veth is cut (an end taken down on purpose, `nslab link down`): why, in a few words. */
  cut?: string;
}

/** A node as the route walk sees it. */
interface L3Node {
  name: string;
  netns: string | null;
  ifs: L3If[];
  routes: RouteSpec[];
  forward: { 4: boolean; 6: boolean };
  snat: SnatRule[];
}

/** The model reduced to what reachability depends on. Build it once with {@link buildNet}. */
export interface L3Net {
  nodes: Map<string, L3Node>;
  /** Interfaces by segment and address held (`SEGMENT FAMILY VALUE`): who answers for a next hop. */
  holders: Map<string, L3If[]>;
}

const holderKey = (segment: string, ip: IpValue) => `${segment} ${ip.family} ${ip.value}`;

/** The key of an interface in {@link buildNet}'s `down` set: `NETNS:IFNAME` (`-` for the current netns). */
export function endKey(netns: string | null, ifname: string): string {
  return `${netns ?? '-'}:${ifname}`;
}

/** A node pingall probes from: each node, and the host when it has interfaces of its own. */
export interface PingSource {
  name: string;
  netns: string | null;
}

/** An address pingall probes: every address of a node, host or bridge interface. */
export interface PingTarget {
  address: string;
  /** The node holding it (`host` for a bridge's address or a host interface). */
  node: string;
  /** Who the address belongs to in the file: the node, or the bridge. */
  owner: string;
  ifname: string;
}

/** What the model says about one probe. `reachable` null: the model cannot tell (a link-local gateway). */
export interface Reach {
  reachable: boolean | null;
  /** Why, in a few words: "same segment", "via r", "r does not forward (net.ipv4.ip_forward=0)". */
  reason: string;
}

const FORWARD: Record<4 | 6, string[]> = { 4: ['net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding'], 6: ['net.ipv6.conf.all.forwarding'] };

/**
 * Reduces a model to nodes, layer-3 interfaces, segments (union of veth ends and bridge ports) and
 * forwarding flags (`net.ipv4.ip_forward`/`conf.all.forwarding`, `net.ipv6.conf.all.forwarding`;
 * not declared = 0, the default of a new netns).
 */
export function buildNet(m: Model, down: ReadonlySet<string> = new Set()): L3Net {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let x = k;
    while (parent.has(x) && parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  const ovs = new Set(m.ovsBridges.map((b) => b.name));
  // An OVS port's segment is its bridge and VLAN tag (ports with other tags do not share frames).
  const keyOf = (e: { bridge: string | null; owner: string; name: string; vlan: number | null }) =>
    e.bridge ? (ovs.has(e.bridge) ? `ovs:${e.bridge}:${e.vlan ?? 'untagged'}` : `bridge:${e.bridge}`) : `if:${e.owner}:${e.name}`;
  // A veth with an end down carries no frames: its ends stay apart (each alone in its segment).
  const cutBy = (v: { a: { netns: string | null; name: string }; b: { netns: string | null; name: string } }) =>
    [v.a, v.b].find((e) => down.has(endKey(e.netns, e.name)));
  for (const v of m.veths) if (!cutBy(v)) union(keyOf(v.a), keyOf(v.b));
  // A macvlan is on its parent's segment (frames to the outside leave by the parent).
  for (const x of m.macvlans) union(`if:${x.owner}:${x.name}`, `if:${m.host.name}:${x.parent}`);

  const nodes = new Map<string, L3Node>();
  for (const n of [m.host, ...m.nodes]) {
    const fwd = (f: 4 | 6) => n.sysctls.some(([k, v]) => FORWARD[f].includes(k) && v.trim() === '1');
    nodes.set(n.name, { name: n.name, netns: n.netns, ifs: [], routes: n.routes, forward: { 4: fwd(4), 6: fwd(6) }, snat: n.snat });
  }
  for (const v of m.veths) {
    const cut = cutBy(v);
    for (const e of [v.a, v.b]) {
      if (e.bridge) continue;
      nodes.get(e.owner)!.ifs.push({ node: e.owner, ifname: e.name, addrs: e.addresses.map(parseCidr), segment: find(keyOf(e)), key: keyOf(e), ...(cut ? { cut: `link ${cut.netns ?? m.host.name}:${cut.name} is down (nslab link down)` } : {}) });
    }
  }
  for (const b of m.bridges) nodes.get(m.host.name)!.ifs.push({ node: m.host.name, ifname: b.name, addrs: b.addresses.map(parseCidr), segment: find(`bridge:${b.name}`), key: `bridge:${b.name}` });
  for (const b of m.ovsBridges) {
    const k = `ovs:${b.name}:untagged`; // the internal port
    nodes.get(m.host.name)!.ifs.push({ node: m.host.name, ifname: b.name, addrs: b.addresses.map(parseCidr), segment: find(k), key: k });
    for (const p of b.internal) {
      const pk = `ovs:${b.name}:${p.vlan ?? 'untagged'}`;
      nodes.get(m.host.name)!.ifs.push({ node: m.host.name, ifname: p.name, addrs: p.addresses.map(parseCidr), segment: find(pk), key: `${pk}:${p.name}` });
    }
  }
  for (const x of m.macvlans) {
    const k = `if:${x.owner}:${x.name}`;
    nodes.get(x.owner)?.ifs.push({ node: x.owner, ifname: x.name, addrs: x.addresses.map(parseCidr), segment: find(k), key: k, macvlan: { parent: `if:${m.host.name}:${x.parent}`, mode: x.mode } });
  }
  const holders = new Map<string, L3If[]>();
  for (const n of nodes.values()) {
    for (const i of n.ifs) {
      for (const a of i.addrs) {
        const k = holderKey(i.segment, a.address);
        holders.set(k, [...(holders.get(k) ?? []), i]);
      }
    }
  }
  return { nodes, holders };
}

/** The names of a node's interfaces in the model (for the host: its own and the bridges). */
export function interfacesOf(net: L3Net, node: string): string[] {
  return net.nodes.get(node)?.ifs.map((i) => i.ifname) ?? [];
}

/** The nodes pingall probes from, in file order: the host first when it has interfaces, then every node. */
export function pingSources(m: Model): PingSource[] {
  const hostIfs = m.veths.some((v) => [v.a, v.b].some((e) => e.netns === null && e.bridge === null));
  return [...(hostIfs ? [{ name: m.host.name, netns: null }] : []), ...m.nodes.map((n) => ({ name: n.name, netns: n.netns }))];
}

/**
 * Every address pingall probes, in file order: the interfaces of the host, of each node, then the
 * bridges'. IPv6 link-local addresses are left out (they need an interface to be pinged).
 */
export function pingTargets(m: Model): PingTarget[] {
  const out: PingTarget[] = [];
  // Each owner's ends in link order, gathered in one pass (a pass per node was quadratic at 4000 nodes).
  const endsOf = new Map<string, Array<Model['veths'][number]['a']>>();
  for (const v of m.veths) {
    for (const e of [v.a, v.b]) {
      if (e.bridge) continue;
      const list = endsOf.get(e.owner);
      if (list) list.push(e);
      else endsOf.set(e.owner, [e]);
    }
  }
  for (const n of [m.host, ...m.nodes]) {
    for (const e of endsOf.get(n.name) ?? []) {
      for (const a of e.addresses) out.push({ address: canonicalIp(addressOf(a)), node: n.name, owner: n.name, ifname: e.name });
    }
  }
  for (const x of m.macvlans) for (const a of x.addresses) out.push({ address: canonicalIp(addressOf(a)), node: x.owner, owner: x.owner, ifname: x.name });
  for (const b of [...m.bridges, ...m.ovsBridges]) for (const a of b.addresses) out.push({ address: canonicalIp(addressOf(a)), node: m.host.name, owner: b.name, ifname: b.name });
  for (const b of m.ovsBridges) for (const p of b.internal) for (const a of p.addresses) out.push({ address: canonicalIp(addressOf(a)), node: m.host.name, owner: b.name, ifname: p.name });
  return out.filter((t) => !/^fe[89ab][0-9a-f]:/i.test(t.address));
}

type Hop = { kind: 'local' } | { kind: 'out'; via: L3If; nextHop: IpValue; nextHopText: string } | { kind: 'fail'; reason: string; unknown?: boolean };

/** The kernel's choice in one node: local delivery, or out of an interface to a next hop (longest prefix first). */
function lookup(node: L3Node, dst: IpValue, dstText: string): Hop {
  if (node.ifs.some((i) => i.addrs.some((a) => a.family === dst.family && a.address.value === dst.value))) return { kind: 'local' };
  type Cand = { prefix: number; order: number; hop: () => Hop };
  const cands: Cand[] = [];
  node.ifs.forEach((i) => {
    for (const a of i.addrs) if (inNet(a, dst)) cands.push({ prefix: a.prefix, order: 0, hop: () => ({ kind: 'out', via: i, nextHop: dst, nextHopText: dstText }) });
  });
  node.routes.forEach((r, k) => {
    if (routeFamily(r) !== dst.family) return;
    const net = parseCidr(r.to === 'default' ? (dst.family === 4 ? '0.0.0.0/0' : '::/0') : r.to);
    if (!inNet(net, dst)) return;
    cands.push({ prefix: net.prefix, order: 1 + k, hop: () => routeHop(node, r, dst, dstText) });
  });
  if (cands.length === 0) return { kind: 'fail', reason: `no route to ${dstText} in ${node.name}` };
  cands.sort((x, y) => y.prefix - x.prefix || x.order - y.order);
  return cands[0]!.hop();
}

function routeHop(node: L3Node, r: RouteSpec, dst: IpValue, dstText: string): Hop {
  if (r.type !== 'unicast') return { kind: 'fail', reason: `${describeRoute(r)} in ${node.name}` };
  const gw = r.via ? parseIp(r.via) : null;
  const byDev = r.dev ? node.ifs.find((i) => i.ifname === r.dev) : undefined;
  if (r.dev && !byDev) return { kind: 'fail', reason: `route ${describeRoute(r)} in ${node.name} names no interface of it` };
  if (!gw) return { kind: 'out', via: byDev!, nextHop: dst, nextHopText: dstText };
  if (/^fe[89ab][0-9a-f]:/i.test(r.via!)) return { kind: 'fail', reason: `gateway ${r.via} is link-local: the model cannot follow it`, unknown: true };
  const via = byDev ?? node.ifs.find((i) => i.addrs.some((a) => inNet(a, gw)));
  if (!via) return { kind: 'fail', reason: `gateway ${r.via} of ${node.name} is on none of its subnets` };
  return { kind: 'out', via, nextHop: gw, nextHopText: r.via! };
}

/**
 * macvlan's rule (macvlan(4), `ip-link(8)` modes): a parent and its children never exchange frames;
 * children of one parent do only in bridge mode (vepa needs a hairpinning switch outside).
 */
function macvlanApart(a: L3If, b: L3If): boolean {
  if (a.macvlan?.parent === b.key || b.macvlan?.parent === a.key) return true;
  return !!a.macvlan && !!b.macvlan && a.macvlan.parent === b.macvlan.parent && (a.macvlan.mode !== 'bridge' || b.macvlan.mode !== 'bridge');
}

/** Walks from `from` to `dst`: the nodes passed, or why it stops. */
function walk(net: L3Net, from: string, dst: IpValue, dstText: string): { ok: true; path: string[]; first: L3If | null; outs: L3If[] } | { ok: false; reason: string; unknown?: boolean } {
  let cur = net.nodes.get(from)!;
  const path = [from];
  const outs: L3If[] = [];
  let first: L3If | null = null;
  for (let hops = 0; hops < 64; hops++) {
    const hop = lookup(cur, dst, dstText);
    if (hop.kind === 'local') return { ok: true, path, first, outs };
    if (cur.name !== from && !cur.forward[dst.family]) return { ok: false, reason: `${cur.name} does not forward (${FORWARD[dst.family][0]}=0)` };
    if (hop.kind === 'fail') return { ok: false, reason: hop.reason, ...(hop.unknown ? { unknown: true } : {}) };
    if (hop.via.cut) return { ok: false, reason: hop.via.cut };
    first ??= hop.via;
    outs.push(hop.via);
    const there = (net.holders.get(holderKey(hop.via.segment, hop.nextHop)) ?? []).filter((i) => i !== hop.via);
    const next = there.find((i) => !macvlanApart(hop.via, i));
    if (!next && there[0]) return { ok: false, reason: `${cur.name}:${hop.via.ifname} and ${there[0].node}:${there[0].ifname} are a macvlan parent and child, or macvlans not in bridge mode: they exchange no frames` };
    if (!next) {
      // The next hop is there, but behind a veth taken down: say so rather than "nobody has it".
      const behind = [...net.nodes.values()].flatMap((n) => n.ifs).find((i) => i.cut && i.addrs.some((a) => a.address.family === hop.nextHop.family && a.address.value === hop.nextHop.value));
      if (behind) return { ok: false, reason: behind.cut! };
      return { ok: false, reason: `nobody on the segment of ${cur.name}:${hop.via.ifname} has ${hop.nextHopText}` };
    }
    cur = net.nodes.get(next.node)!;
    path.push(cur.name);
  }
  return { ok: false, reason: `routing loop towards ${dstText}` };
}

/**
 * Whether a ping from node `from` to `address` should get its reply, by the model: the request must
 * reach the node holding the address (routes and connected subnets; a node other than the sender
 * forwards only with ip_forward=1; unreachable/prohibit/blackhole routes stop it), and the reply must
 * come back to the sender's source address (the first address of that family on the interface it
 * leaves by, else on any of its interfaces).
 * @param net from {@link buildNet}
 * @param from the sending node's name
 * @param address a bare IPv4 or IPv6 address
 */
export function expectReach(net: L3Net, from: string, address: string): Reach {
  const dst = parseIp(address);
  if (!dst) throw new Error(`not an IP address: ${address}`);
  const there = walk(net, from, dst, address);
  if (!there.ok) return { reachable: there.unknown ? null : false, reason: there.reason };
  const src = net.nodes.get(from)!;
  const pick = (i: L3If | null) => i?.addrs.find((a) => a.family === dst.family);
  const srcAddr = pick(there.first) ?? src.ifs.map(pick).find((a) => a !== undefined);
  if (!srcAddr && there.path.length > 1) return { reachable: false, reason: `${from} has no IPv${dst.family} address to send from` };
  const holder = there.path[there.path.length - 1]!;
  const natAt: string[] = [];
  if (srcAddr && holder !== from) {
    // Source NAT on the way (MASQUERADE, SNAT): the reply goes to the translated address, and the
    // node that translated it sends it on to the address before (conntrack undoes the translation).
    let cur: IpValue = srcAddr.address;
    const legs: Array<{ from: string; to: IpValue }> = [];
    there.path.slice(0, -1).forEach((node, i) => {
      const to = snatTo(net.nodes.get(node)!, cur, dst, there.outs[i]!);
      if (!to) return;
      legs.unshift({ from: node, to: cur });
      natAt.push(node);
      cur = to;
    });
    legs.unshift({ from: holder, to: cur });
    for (const leg of legs) {
      const text = leg.to.text;
      const back = walk(net, leg.from, leg.to, text);
      if (!back.ok) return { reachable: back.unknown ? null : false, reason: `the reply to ${text} is lost: ${back.reason}` };
    }
  }
  const via = there.path.slice(1, -1);
  const nat = natAt.length ? `, source NAT by ${natAt.join(', ')}` : '';
  return { reachable: true, reason: (via.length ? `via ${via.join(', ')}` : holder === from ? 'its own address' : 'same segment') + nat };
}

/**
 * The address a packet from `src` to `dst` leaving `node` by `out` is translated to by the node's
 * first matching source NAT rule (iptables-extensions(8): MASQUERADE takes the outgoing interface's
 * first address of the family, SNAT its --to-source); null when none matches. IPv4 only (iptables).
 */
function snatTo(node: L3Node, src: IpValue, dst: IpValue, out: L3If): IpValue | null {
  if (src.family !== 4) return null;
  const ifMatch = (pat: string) => (pat.endsWith('+') ? out.ifname.startsWith(pat.slice(0, -1)) : out.ifname === pat);
  for (const r of node.snat) {
    if (r.source && inNet(parseCidr(r.source.cidr), src) === r.source.not) continue;
    if (r.dest && inNet(parseCidr(r.dest.cidr), dst) === r.dest.not) continue;
    if (r.out && ifMatch(r.out.name) === r.out.not) continue;
    if (r.toSource) return parseIp(r.toSource);
    const a = out.addrs.find((x) => x.family === 4);
    return a ? a.address : null;
  }
  return null;
}

