// The pure comparison behind `nslab verify`: expectations from the model + what the kernel reports → mismatches.
import type { AddrInfo } from '../kernel/addr.js';
import type { LinkInfo } from '../kernel/link.js';
import { describeRoute, type RouteInfo, type RouteSpec } from '../kernel/route.js';
import type { Model } from '../model/types.js';
import { tbfRate, type QdiscInfo } from '../kernel/tc.js';
import { expectations, routeFamily, type Expectation, type LinkExpectation } from './expect.js';
import { canonicalCidr, canonicalIp, familyOf, parseCidr } from './ip.js';

/** What was read in one netns (only what the checks asked for; the rest stays empty). */
export interface NetnsReading {
  links: LinkInfo[];
  addrs: AddrInfo[];
  routes4: RouteInfo[];
  routes6: RouteInfo[];
  /** sysctl values by key; null when the key could not be read. */
  sysctls: Record<string, string | null>;
  /** qdiscs by interface (`tc -j qdisc show dev IF`), for links with an impairment; null: unreadable. */
  qdiscs?: Record<string, QdiscInfo[] | null>;
}

/** The kernel as read by verify. */
export interface KernelView {
  /** Named netns that exist, with the nsid the current netns gives each (undefined until one is assigned). */
  netns: Map<string, number | undefined>;
  /** Readings per netns (`''` = the namespace nslab runs in); absent for a netns that does not exist. */
  readings: Map<string, NetnsReading>;
  /**
   * Interfaces `nslab link down` took down and the kernel still reports down, as `NETNS:IFNAME`
   * (`-` for the current namespace): intended, so not a mismatch (see {@link intendedDown}).
   */
  downOnPurpose?: Set<string>;
}

/** Kinds of mismatch, one per kind of fact verify checks. */
export type MismatchKind =
  | 'netns-missing'
  | 'link-missing'
  | 'link-extra'
  | 'port-extra'
  | 'link-kind'
  | 'link-down'
  | 'mtu'
  | 'mac'
  | 'master'
  | 'stp'
  | 'vxlan'
  | 'peer'
  | 'address-missing'
  | 'address-extra'
  | 'address-wrong'
  | 'route-missing'
  | 'route-wrong'
  | 'sysctl'
  | 'qdisc';

/** One difference between the model and the kernel. */
export interface Mismatch {
  kind: MismatchKind;
  /** Node name, `host`, or a bridge's name. */
  owner: string;
  /** The interface concerned, or null (a netns, a route, a sysctl, the bridge itself). */
  ifname: string | null;
  /** What the model says, as text ("1500", "10.0.0.1/24", "br0"); null when the model says "nothing". */
  expected: string | null;
  /** What the kernel has; null when it has nothing. */
  actual: string | null;
  /** Another mismatch this one follows from ("eth0 is down"), when there is one. */
  because?: string;
  /** The one line printed: `h1: eth0: address 10.0.0.1/24 missing`. */
  message: string;
}

const nsKey = (netns: string | null) => netns ?? '';
const where = (netns: string | null, ifname: string) => (netns ? `${netns}:${ifname}` : ifname);

function mismatch(kind: MismatchKind, owner: string, ifname: string | null, text: string, expected: string | null, actual: string | null, because?: string): Mismatch {
  const message = `${owner}: ${ifname ? `${ifname}: ` : ''}${text}${because ? ` (${because})` : ''}`;
  return { kind, owner, ifname, expected, actual, ...(because ? { because } : {}), message };
}

/** Links known to be missing or down, per `netns:ifname`, so that their consequences name their cause. */
interface Causes {
  missingNetns: Set<string>;
  missing: Set<string>;
  down: Set<string>;
  /** `netns:ifname ADDRESS/PREFIX` of model addresses the kernel lacks. */
  missingAddrs: Set<string>;
  /** Of `down`, those taken down on purpose (KernelView.downOnPurpose): what follows from them is intended too. */
  intended: Set<string>;
}

/**
 * Compares a model with kernel readings. Pure: no kernel access, so it is unit-tested with hand-made JSON.
 * @param m the resolved model
 * @param view what {@link readKernel} read
 * @returns one mismatch per difference, in the model's order (empty: the kernel matches)
 */
export function diffTopology(m: Model, view: KernelView): Mismatch[] {
  return diffExpectations(expectations(m), view);
}

/** Checks a list of expectations against kernel readings; see {@link diffTopology}. */
export function diffExpectations(exps: Expectation[], view: KernelView): Mismatch[] {
  const causes: Causes = { missingNetns: new Set(), missing: new Set(), down: new Set(), missingAddrs: new Set(), intended: new Set() };
  for (const e of exps) {
    if (e.kind === 'netns' && !view.netns.has(e.netns)) causes.missingNetns.add(e.netns);
    if (e.kind !== 'link') continue;
    const link = linkIn(reading(view, e.netns), e.ifname);
    if (!link) causes.missing.add(where(e.netns, e.ifname));
    else if (!link.flags.includes('UP')) {
      causes.down.add(where(e.netns, e.ifname));
      if (view.downOnPurpose?.has(`${e.netns ?? '-'}:${e.ifname}`)) causes.intended.add(where(e.netns, e.ifname));
    }
  }
  return exps.flatMap((e) => {
    if (e.kind !== 'netns' && 'netns' in e && e.netns !== null && causes.missingNetns.has(e.netns)) return [];
    return check(e, view, causes);
  });
}

function reading(view: KernelView, netns: string | null): NetnsReading | undefined {
  return view.readings.get(nsKey(netns));
}

/** A reading's links and addresses by name, made once per reading (a find per expectation was 4000 x 4000 at scale). */
const indexes = new WeakMap<NetnsReading, { links: Map<string, LinkInfo>; addrs: Map<string, AddrInfo> }>();
function indexOf(rd: NetnsReading): { links: Map<string, LinkInfo>; addrs: Map<string, AddrInfo> } {
  let ix = indexes.get(rd);
  if (!ix) {
    ix = { links: new Map(rd.links.map((l) => [l.ifname, l])), addrs: new Map(rd.addrs.map((a) => [a.ifname, a])) };
    indexes.set(rd, ix);
  }
  return ix;
}

/** The link named `ifname` in a reading, if any. */
function linkIn(rd: NetnsReading | undefined, ifname: string): LinkInfo | undefined {
  return rd ? indexOf(rd).links.get(ifname) : undefined;
}

function check(e: Expectation, view: KernelView, causes: Causes): Mismatch[] {
  switch (e.kind) {
    case 'netns':
      return causes.missingNetns.has(e.netns) ? [mismatch('netns-missing', e.owner, null, 'netns missing', e.netns, null)] : [];
    case 'link':
      return checkLink(e, view, causes);
    case 'only-links': {
      const links = reading(view, e.netns)?.links ?? [];
      return links.filter((l) => !e.ifnames.includes(l.ifname)).map((l) => mismatch('link-extra', e.owner, l.ifname, `extra interface (${kindOf(l)})`, null, kindOf(l)));
    }
    case 'only-ports': {
      if (causes.missing.has(e.bridge)) return [];
      const links = reading(view, null)?.links ?? [];
      return links
        .filter((l) => l.master === e.bridge && !e.ports.includes(l.ifname))
        .map((l) => mismatch('port-extra', e.owner, l.ifname, `extra port of ${e.bridge} (${kindOf(l)})`, null, e.bridge));
    }
    case 'route':
      return checkRoute(e, view, causes);
    case 'sysctl': {
      const got = reading(view, e.netns)?.sysctls[e.key];
      if (got === undefined || got === e.value.trim()) return [];
      return [mismatch('sysctl', e.owner, null, `sysctl ${e.key} ${got === null ? 'unreadable' : got}, expected ${e.value}`, e.value, got)];
    }
    case 'qdisc':
      return checkQdisc(e, view, causes);
    default: {
      const never: never = e;
      throw new Error(`unknown expectation ${JSON.stringify(never)}`);
    }
  }
}

function kindOf(l: LinkInfo): string {
  return l.linkinfo?.info_kind ?? (l.flags.includes('LOOPBACK') ? 'loopback' : 'device');
}

function checkLink(e: LinkExpectation, view: KernelView, causes: Causes): Mismatch[] {
  const out: Mismatch[] = [];
  const own = reading(view, e.netns);
  const link = linkIn(own, e.ifname);
  const subject = e.linkKind === 'bridge' && e.ifname === e.owner ? null : e.ifname; // a bridge is its own owner: "br0: mtu ..."
  if (!link) {
    const peerNs = e.peer?.netns ?? null;
    const because = peerNs !== null && causes.missingNetns.has(peerNs) ? `netns ${peerNs} is missing` : undefined;
    return [mismatch('link-missing', e.owner, subject, 'missing', e.ifname, null, because)];
  }
  const kind = kindOf(link);
  if (e.linkKind && kind !== e.linkKind) out.push(mismatch('link-kind', e.owner, subject, `kind ${kind}, expected ${e.linkKind}`, e.linkKind, kind));
  if (!link.flags.includes('UP') && !view.downOnPurpose?.has(`${e.netns ?? '-'}:${e.ifname}`)) out.push(mismatch('link-down', e.owner, subject, 'link down', 'up', 'down'));
  if (e.mtu !== null && link.mtu !== e.mtu) out.push(mismatch('mtu', e.owner, subject, `mtu ${link.mtu}, expected ${e.mtu}`, String(e.mtu), String(link.mtu)));
  if (e.mac !== null && (link.address ?? '').toLowerCase() !== e.mac.toLowerCase()) {
    out.push(mismatch('mac', e.owner, subject, `mac ${link.address ?? 'none'}, expected ${e.mac.toLowerCase()}`, e.mac.toLowerCase(), link.address ?? null));
  }
  const master = link.master ?? null;
  if (e.checkMaster && master !== e.master) {
    const because = e.master !== null && causes.missing.has(e.master) ? `${e.master} is missing` : undefined;
    out.push(mismatch('master', e.owner, subject, `master ${master ?? 'none'}, expected ${e.master ?? 'none'}`, e.master, master, because));
  }
  if (e.stp !== null && kind === 'bridge') {
    const on = Number(link.linkinfo?.info_data?.stp_state ?? 0) > 0;
    if (on !== e.stp) out.push(mismatch('stp', e.owner, subject, `stp ${on ? 'on' : 'off'}, expected ${e.stp ? 'on' : 'off'}`, e.stp ? 'on' : 'off', on ? 'on' : 'off'));
  }
  if (e.vxlan && kind === 'vxlan') {
    const d = link.linkinfo?.info_data ?? {};
    const got = `id ${String(d.id)} local ${String(d.local)} dstport ${String(d.port)}`;
    const want = `id ${e.vxlan.vni} local ${e.vxlan.local} dstport ${e.vxlan.port}`;
    if (got !== want) out.push(mismatch('vxlan', e.owner, subject, `vxlan ${got}, expected ${want}`, want, got));
  }
  if (e.addresses) {
    const addrs = checkAddresses(e, subject, own ? indexOf(own).addrs.get(e.ifname) : undefined, causes);
    for (const x of addrs) if (x.expected && x.kind !== 'address-extra') causes.missingAddrs.add(`${where(e.netns, e.ifname)} ${x.expected}`);
    out.push(...addrs);
  }
  if (e.peer && e.checkPeer && kind === 'veth') {
    const p = checkPeer(e, link, view);
    if (p) out.push(mismatch('peer', e.owner, subject, `veth peer is ${p}, expected ${where(e.peer.netns, e.peer.ifname)}`, where(e.peer.netns, e.peer.ifname), p));
  }
  return out;
}

function checkAddresses(e: LinkExpectation, subject: string | null, mine: AddrInfo | undefined, causes: Causes): Mismatch[] {
  const out: Mismatch[] = [];
  const want = (e.addresses ?? []).map(canonicalCidr);
  // IPv6 link-local addresses come from the kernel, not from the topology.
  const have = (mine?.addr_info ?? [])
    .filter((a) => !(a.family === 'inet6' && a.scope === 'link'))
    .map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`));
  const missing = want.filter((a) => !have.includes(a));
  const extra = have.filter((a) => !want.includes(a));
  // Without keep_addr_on_down, the kernel drops IPv6 addresses of a link that goes down.
  const down = causes.down.has(where(e.netns, e.ifname)) ? `${e.ifname} is down` : undefined;
  for (const w of missing) {
    const k = extra.findIndex((x) => familyOf(x) === familyOf(w));
    if (k >= 0) {
      const [got] = extra.splice(k, 1);
      out.push(mismatch('address-wrong', e.owner, subject, `address ${got}, expected ${w}`, w, got!));
    } else {
      // An IPv6 address the kernel dropped with a link taken down on purpose: intended as well.
      if (familyOf(w) === 6 && causes.intended.has(where(e.netns, e.ifname))) continue;
      out.push(mismatch('address-missing', e.owner, subject, `address ${w} missing`, w, null, familyOf(w) === 6 ? down : undefined));
    }
  }
  for (const x of extra) out.push(mismatch('address-extra', e.owner, subject, `extra address ${x}`, null, x));
  return out;
}

/** Null when the veth's peer is the expected end; else what its peer is ("elsewhere" when it cannot be named). */
function checkPeer(e: LinkExpectation, link: LinkInfo, view: KernelView): string | null {
  const peer = e.peer!;
  const other = linkIn(reading(view, peer.netns), peer.ifname);
  if (!other) return null; // reported as missing on its own line
  // ifindexes are per netns: the pair must point at each other, and, seen from the current
  // namespace, at the right netns (link_netnsid is the nsid this netns gives the peer's).
  // Both ends in one netns (a veth between two bridges, as `nslab gen tree` joins its leaves): ip
  // names the peer (`link`) instead of giving its ifindex.
  let ok = e.netns === peer.netns && link.link_index === undefined ? link.link === other.ifname && other.link === link.ifname : link.link_index === other.ifindex && other.link_index === link.ifindex;
  if (ok && e.netns === null && peer.netns !== null && view.netns.get(peer.netns) !== undefined) ok = link.link_netnsid === view.netns.get(peer.netns);
  if (ok && peer.netns === null && e.netns !== null && view.netns.get(e.netns) !== undefined) ok = other.link_netnsid === view.netns.get(e.netns);
  if (ok) return null;
  const names: string[] = [];
  for (const [ns, r] of view.readings) {
    for (const l of r.links) if (l.ifindex === link.link_index && l.link_index === link.ifindex && !(ns === nsKey(e.netns) && l.ifname === e.ifname)) names.push(where(ns || null, l.ifname));
  }
  return names.length === 1 ? names[0]! : 'elsewhere';
}

/** A route's destination in one form for both sides: `default`, or canonical `ADDRESS/PREFIX`. */
function normDst(dst: string): string {
  if (dst === 'default') return 'default';
  const n = parseCidr(dst);
  if (n.prefix === 0) return 'default';
  return `${canonicalIp(dst.split('/')[0]!)}/${n.prefix}`;
}

function kernelRouteSpec(k: RouteInfo, withMetric: boolean): RouteSpec {
  return {
    to: k.dst,
    type: (k.type ?? 'unicast') as RouteSpec['type'],
    ...(k.gateway ? { via: k.gateway } : {}),
    ...(k.dev ? { dev: k.dev } : {}),
    ...(withMetric && k.metric !== undefined ? { metric: k.metric } : {}),
  };
}

function checkRoute(e: Extract<Expectation, { kind: 'route' }>, view: KernelView, causes: Causes): Mismatch[] {
  const r = e.route;
  const rd = reading(view, e.netns);
  const routes = (routeFamily(r) === 6 ? rd?.routes6 : rd?.routes4) ?? [];
  const dst = normDst(r.to);
  const same = routes.filter((k) => normDst(k.dst) === dst && (r.metric === undefined || (k.metric ?? 0) === r.metric));
  const matches = (k: RouteInfo) =>
    (k.type ?? 'unicast') === r.type && (!r.via || canonicalIp(k.gateway ?? '') === canonicalIp(r.via)) && (!r.dev || k.dev === r.dev);
  if (same.some(matches)) return [];
  const want = describeRoute(r);
  if (same.length > 0) {
    const got = describeRoute(kernelRouteSpec(same[0]!, r.metric !== undefined));
    return [mismatch('route-wrong', e.owner, null, `route ${got}, expected ${want}`, want, got)];
  }
  // The kernel removes the routes through a link that goes down: through one taken down on purpose, intended.
  if (e.dev && causes.intended.has(where(e.netns, e.dev))) return [];
  let because: string | undefined;
  if (e.dev && causes.missing.has(where(e.netns, e.dev))) because = `${e.dev} is missing`;
  else if (e.dev && causes.down.has(where(e.netns, e.dev))) because = `${e.dev} is down`;
  else if (e.dev && e.gatewayAddress && causes.missingAddrs.has(`${where(e.netns, e.dev)} ${canonicalCidr(e.gatewayAddress)}`)) because = `address ${e.gatewayAddress} is missing`;
  return [mismatch('route-missing', e.owner, null, `route ${want} missing`, want, null, because)];
}

/**
 * A link's impairment on one end: the root tbf's rate within 1 % of the file's (tc stores it in bytes
 * per second, rounded), and a netem qdisc when delay/jitter/loss were asked for. A missing or down
 * interface is reported by its link check, not again here.
 */
function checkQdisc(e: Extract<Expectation, { kind: 'qdisc' }>, view: KernelView, causes: Causes): Mismatch[] {
  if (causes.missing.has(where(e.netns, e.ifname))) return [];
  const q = reading(view, e.netns)?.qdiscs?.[e.ifname];
  if (q === undefined) return [];
  if (q === null) return [mismatch('qdisc', e.owner, e.ifname, 'qdiscs unreadable (tc -j qdisc show)', null, null)];
  const out: Mismatch[] = [];
  const got = tbfRate(q);
  const text = (b: number | null) => (b === null ? 'none' : `${+(b / 1e6).toFixed(3)}mbit`);
  if (e.rate !== null && (got === null || Math.abs(got - e.rate) > e.rate * 0.01)) out.push(mismatch('qdisc', e.owner, e.ifname, `rate ${text(got)}, expected ${text(e.rate)} (tc tbf)`, text(e.rate), text(got)));
  if (e.netem && !q.some((x) => x.kind === 'netem')) out.push(mismatch('qdisc', e.owner, e.ifname, 'no netem qdisc, expected one (delay, jitter or loss)', 'netem', q.map((x) => x.kind).join(',') || null));
  return out;
}
