// What a topology promises the kernel holds: the model turned into a flat list of checkable expectations.
// New kinds of topology (OVS ports with VLAN tags, NAT rules, guests, labs) add kinds here, a reading
// in read.ts and a check in diff.ts; nothing else changes.
import type { RouteSpec } from '../kernel/route.js';
import type { EndModel, Model } from '../model/types.js';
import { VXLAN_PORT } from '../kernel/vxlan.js';
import { needsNetem, parseRate } from '../kernel/tc.js';
import { familyOf, inNet, parseCidr, parseIp } from './ip.js';

/** The kernel's MTU for a new veth or bridge when none is given (bytes). */
export const DEFAULT_MTU = 1500;

/** One interface the kernel must have. A null field is not checked. */
export interface LinkExpectation {
  kind: 'link';
  /** Node name, `host`, or for a bridge and its ports the bridge's name. */
  owner: string;
  /** Named netns, or null for the namespace nslab runs in. */
  netns: string | null;
  ifname: string;
  /** `info_kind` of `ip -d link` the interface must have. */
  linkKind: 'veth' | 'bridge' | 'vxlan' | null;
  /** For a VXLAN port of a bridge that spans hosts: its VNI, local address and UDP port. */
  vxlan?: { vni: number; local: string; port: number };
  /** MTU in bytes. */
  mtu: number | null;
  mac: string | null;
  /** The bridge it must be a port of; null: it must be no port (when `checkMaster`). */
  master: string | null;
  checkMaster: boolean;
  /** Addresses as `ADDRESS/PREFIX`; no other global address may be there. */
  addresses: string[] | null;
  /** For a bridge: spanning tree on. */
  stp: boolean | null;
  /** For a veth: where its other end must be. */
  peer: { netns: string | null; ifname: string } | null;
  /** Check the peer on this end (once per pair). */
  checkPeer: boolean;
}

/** Everything verify checks, one object per fact. */
export type Expectation =
  | { kind: 'netns'; owner: string; netns: string }
  | LinkExpectation
  /** No interface in a node's netns but these (and lo). */
  | { kind: 'only-links'; owner: string; netns: string; ifnames: string[] }
  /** No port on a bridge but these. */
  | { kind: 'only-ports'; owner: string; bridge: string; ports: string[] }
  /**
   * A declared route. For causes: `dev` is the interface it leaves by (declared, or the one whose
   * subnet holds the gateway) and `gatewayAddress` the model's address whose subnet holds the gateway.
   */
  | { kind: 'route'; owner: string; netns: string | null; route: RouteSpec; dev: string | null; gatewayAddress: string | null }
  | { kind: 'sysctl'; owner: string; netns: string | null; key: string; value: string }
  /** A link's `impair:` on one end: a root tbf at `rate` bits/s (null: no rate), netem under it or at the root. */
  | { kind: 'qdisc'; owner: string; netns: string | null; ifname: string; rate: number | null; netem: boolean };

/** A kernel reading a check needs in one netns. */
export type Reading = 'links' | 'addrs' | 'routes4' | 'routes6' | `sysctl:${string}` | `qdisc:${string}`;

/** The address family of a route: from its destination, else from its gateway (`default via fe80::1`). */
export function routeFamily(r: RouteSpec): 4 | 6 {
  if (r.to !== 'default') return familyOf(r.to);
  return r.via ? familyOf(r.via) : 4;
}

/**
 * Turns a model into the expectations verify checks, in the order mismatches are reported:
 * bridges (with their ports), the host's interfaces, routes and sysctls, then each node.
 * @param m the resolved model
 */
export function expectations(m: Model): Expectation[] {
  const out: Expectation[] = [];
  const ends: Array<[EndModel, EndModel, boolean]> = m.veths.flatMap((v): Array<[EndModel, EndModel, boolean]> => [
    [v.a, v.b, true],
    [v.b, v.a, false],
  ]);
  const endExp = ([e, other, first]: [EndModel, EndModel, boolean]): LinkExpectation => ({
    kind: 'link',
    owner: e.owner,
    netns: e.netns,
    ifname: e.name,
    linkKind: 'veth',
    mtu: e.mtu ?? DEFAULT_MTU,
    mac: e.mac,
    master: e.bridge,
    checkMaster: true,
    addresses: e.addresses,
    stp: null,
    peer: { netns: other.netns, ifname: other.name },
    checkPeer: first,
  });

  for (const b of m.bridges) {
    const ports = ends.filter(([e]) => e.bridge === b.name);
    // A bridge without an MTU of its own follows its smallest port (the kernel's br_mtu_auto_adjust).
    const mtu = b.mtu ?? (ports.length ? Math.min(...ports.map(([e]) => e.mtu ?? DEFAULT_MTU)) : DEFAULT_MTU);
    out.push({ kind: 'link', owner: b.name, netns: null, ifname: b.name, linkKind: 'bridge', mtu, mac: null, master: null, checkMaster: true, addresses: b.addresses, stp: b.stp, peer: null, checkPeer: false });
    out.push(...ports.map(endExp));
    // Multi-host: its VXLAN port (model/hosts.ts), with the tunnel's identity.
    const vx = (m.vxlans ?? []).filter((x) => x.bridge === b.name);
    for (const x of vx) out.push({ kind: 'link', owner: b.name, netns: null, ifname: x.name, linkKind: 'vxlan', vxlan: { vni: x.vni, local: x.local, port: VXLAN_PORT }, mtu: x.mtu, mac: null, master: b.name, checkMaster: true, addresses: [], stp: null, peer: null, checkPeer: false });
    out.push({ kind: 'only-ports', owner: b.name, bridge: b.name, ports: [...ports.map(([e]) => e.name), ...vx.map((x) => x.name)] });
  }

  // Each owner's own ends (not bridge ports), gathered in one pass: a filter per node was quadratic.
  const byOwner = new Map<string, typeof ends>();
  for (const x of ends) {
    if (x[0].bridge !== null) continue;
    const list = byOwner.get(x[0].owner);
    if (list) list.push(x);
    else byOwner.set(x[0].owner, [x]);
  }
  for (const n of [m.host, ...m.nodes]) {
    const mine = byOwner.get(n.name) ?? [];
    if (n.netns !== null) {
      out.push({ kind: 'netns', owner: n.name, netns: n.netns });
      // up brings lo up in every node (a node cannot reach its own addresses without it).
      out.push({ kind: 'link', owner: n.name, netns: n.netns, ifname: 'lo', linkKind: null, mtu: null, mac: null, master: null, checkMaster: false, addresses: null, stp: null, peer: null, checkPeer: false });
    }
    out.push(...mine.map(endExp));
    if (n.netns !== null) out.push({ kind: 'only-links', owner: n.name, netns: n.netns, ifnames: ['lo', ...mine.map(([e]) => e.name)] });
    for (const r of n.routes) {
      const gw = gatewayEnd(mine.map(([e]) => e), r.via);
      out.push({ kind: 'route', owner: n.name, netns: n.netns, route: r, dev: r.dev ?? gw?.end.name ?? null, gatewayAddress: gw?.address ?? null });
    }
    for (const [key, value] of n.sysctls) out.push({ kind: 'sysctl', owner: n.name, netns: n.netns, key, value });
  }
  // Impairments last: a missing or down link is reported once, by its own check.
  for (const v of m.veths) {
    if (!v.impair) continue;
    const rate = v.impair.rate !== undefined ? parseRate(v.impair.rate) : null;
    for (const e of [v.a, v.b]) out.push({ kind: 'qdisc', owner: e.owner, netns: e.netns, ifname: e.name, rate, netem: needsNetem(v.impair) });
  }
  return out;
}

/** The interface and address whose subnet holds the gateway (null when none does, or no gateway). */
function gatewayEnd(ends: EndModel[], via: string | undefined): { end: EndModel; address: string } | null {
  const gw = via ? parseIp(via) : null;
  if (!gw) return null;
  for (const end of ends) {
    const address = end.addresses.find((a) => inNet(parseCidr(a), gw));
    if (address) return { end, address };
  }
  return null;
}

/** What each expectation needs read, per netns (`''` = the namespace nslab runs in). */
export function readingsFor(exps: Expectation[]): Map<string, Set<Reading>> {
  const needs = new Map<string, Set<Reading>>();
  const need = (netns: string | null, ...what: Reading[]) => {
    const k = netns ?? '';
    const s = needs.get(k) ?? new Set<Reading>();
    for (const w of what) s.add(w);
    needs.set(k, s);
  };
  for (const e of exps) {
    switch (e.kind) {
      case 'netns':
        need(e.netns, 'links');
        break;
      case 'link':
        need(e.netns, 'links', ...(e.addresses ? (['addrs'] as const) : []));
        if (e.peer) need(e.peer.netns, 'links');
        break;
      case 'only-links':
        need(e.netns, 'links');
        break;
      case 'only-ports':
        need(null, 'links');
        break;
      case 'route':
        need(e.netns, routeFamily(e.route) === 6 ? 'routes6' : 'routes4', 'links');
        break;
      case 'sysctl':
        need(e.netns, `sysctl:${e.key}`);
        break;
      case 'qdisc':
        need(e.netns, `qdisc:${e.ifname}`, 'links');
        break;
      default: {
        const never: never = e;
        throw new Error(`unknown expectation ${JSON.stringify(never)}`);
      }
    }
  }
  return needs;
}
