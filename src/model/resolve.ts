// resolve: a validated topology file -> the model (defaults filled, names derived, references checked).
import { BlockList } from 'node:net';
import { isIP } from './ip-family.js';
import type { RouteSpec, RouteType } from '../kernel/route.js';
import { SpecError } from './load.js';
import { bridgeNameProblem, bridgePortName, ifnameProblem, ownerMark } from './names.js';
import type { NodeRaw, TopologyRaw } from './schema.js';
import type { BridgeModel, EndModel, Model, NodeModel, VethModel } from './types.js';

/** The reserved node name of the namespace nslab runs in. */
export const HOST = 'host';

type Ep = { kind: 'node'; node: string; ifname: string } | { kind: 'bridge'; bridge: string; port: string | null };

/**
 * Resolves a validated topology into a {@link Model}.
 * @param raw the file's content after zod validation
 * @param fallbackName topology name when the file has none (the file's base name)
 * @throws SpecError naming the path of the first problem (unknown node, interface used twice, name
 *   clash, nothing to build, an address twice in one L2 segment, a gateway on no connected subnet)
 */
export function resolveTopology(raw: TopologyRaw, fallbackName: string): Model {
  const name = raw.name ?? fallbackName;
  // `name: x` alone would plan 0 steps and exit 0, as an empty file did: say so instead.
  if (!raw.host && !Object.keys(raw.nodes).length && !Object.keys(raw.bridges).length && !raw.links.length) {
    throw new SpecError([], `topology ${JSON.stringify(name)} has no nodes, bridges, links or host: expected at least one node or bridge to build`);
  }
  if (HOST in raw.nodes) throw new SpecError(['nodes', HOST], `"${HOST}" is reserved for the namespace nslab runs in: use the top-level "host:" key`);
  const nodeRaw = (n: string): NodeRaw | undefined => (n === HOST ? (raw.host ?? { interfaces: {}, routes: [], sysctls: {} }) : raw.nodes[n]);

  // Names in use, per netns ('' = the current one), to refuse clashes and derive free port names.
  const taken = new Map<string, Map<string, string>>();
  const claim = (netns: string | null, ifname: string, what: string, path: Array<string | number>) => {
    const ns = taken.get(netns ?? '') ?? new Map<string, string>();
    taken.set(netns ?? '', ns);
    const prev = ns.get(ifname);
    if (prev) throw new SpecError(path, `interface ${JSON.stringify(ifname)}${netns ? ` in ${netns}` : ''} is already ${prev}`);
    ns.set(ifname, what);
  };

  const bridges: BridgeModel[] = Object.entries(raw.bridges).map(([bname, b]) => {
    const p = bridgeNameProblem(bname);
    if (p) throw new SpecError(['bridges', bname], `bridge name ${JSON.stringify(bname)} ${p}`);
    claim(null, bname, `bridge ${bname}`, ['bridges', bname]);
    return { name: bname, driver: b.driver, mtu: b.mtu ?? null, stp: b.stp, addresses: b.addresses };
  });

  const bridgeByName = new Map(bridges.map((b) => [b.name, b]));

  const parseEp = (s: string, path: Array<string | number>): Ep => {
    const [head, tail] = s.split(':') as [string, string | undefined];
    if (head in raw.bridges) return { kind: 'bridge', bridge: head, port: tail ?? null };
    if (head === HOST || head in raw.nodes) {
      if (!tail) throw new SpecError(path, `endpoint ${JSON.stringify(s)} names node ${head} but no interface: expected ${head}:IFNAME`);
      const p = ifnameProblem(tail);
      if (p) throw new SpecError(path, `interface name ${JSON.stringify(tail)} ${p}`);
      return { kind: 'node', node: head, ifname: tail };
    }
    throw new SpecError(path, `endpoint ${JSON.stringify(s)}: no node or bridge named ${JSON.stringify(head)} (nodes: ${Object.keys(raw.nodes).join(', ') || 'none'}; bridges: ${Object.keys(raw.bridges).join(', ') || 'none'})`);
  };

  const used = new Set<string>(); // "node:ifname" of linked node interfaces
  const links = raw.links.map((l) => (Array.isArray(l) ? { endpoints: l, mtu: undefined, impair: undefined } : l));

  // First pass: node ends and explicit port names claim their names, so derived names avoid them.
  const eps = links.map((l, i) => l.endpoints.map((s, j) => parseEp(s, ['links', i, j])) as [Ep, Ep]);
  eps.forEach((pair, i) => {
    if (pair[0].kind === 'bridge' && pair[1].kind === 'bridge' && pair[0].bridge === pair[1].bridge) {
      throw new SpecError(['links', i], `both ends are on bridge ${pair[0].bridge}: a veth loop on one bridge`);
    }
    pair.forEach((ep, j) => {
      if (ep.kind === 'node') {
        const key = `${ep.node}:${ep.ifname}`;
        if (used.has(key)) throw new SpecError(['links', i, j], `interface ${key} is an end of two links`);
        used.add(key);
        claim(ep.node === HOST ? null : ep.node, ep.ifname, `an end of link ${i}`, ['links', i, j]);
      } else if (ep.port) {
        claim(null, ep.port, `an end of link ${i}`, ['links', i, j]);
      }
    });
  });

  const endOf = (ep: Ep, other: Ep, linkMtu: number | undefined): EndModel => {
    if (ep.kind === 'bridge') {
      const b = bridgeByName.get(ep.bridge)!;
      // The names taken in the current namespace, as they are now (a view, not a copy per port).
      const rootNames = taken.get('') ?? new Map<string, string>();
      const port =
        ep.port ??
        (other.kind === 'node' ? bridgePortName(name, other.node, other.ifname, rootNames) : bridgePortName(name, `${other.bridge}`, ep.bridge, rootNames));
      if (!ep.port) claim(null, port, `a bridge port`, ['links']);
      const otherMtu = other.kind === 'node' ? nodeRaw(other.node)?.interfaces[other.ifname]?.mtu : undefined;
      return { owner: ep.bridge, netns: null, name: port, mtu: linkMtu ?? otherMtu ?? b.mtu, mac: null, addresses: [], bridge: ep.bridge, vlan: null };
    }
    const cfg = nodeRaw(ep.node)?.interfaces[ep.ifname];
    const otherBridgeMtu = other.kind === 'bridge' ? bridgeByName.get(other.bridge)!.mtu : null;
    const otherMtu = other.kind === 'node' ? nodeRaw(other.node)?.interfaces[other.ifname]?.mtu : undefined;
    return {
      owner: ep.node,
      netns: ep.node === HOST ? null : ep.node,
      name: ep.ifname,
      mtu: linkMtu ?? cfg?.mtu ?? otherMtu ?? otherBridgeMtu,
      mac: cfg?.mac ?? null,
      addresses: cfg?.addresses ?? [],
      bridge: null,
      vlan: null,
    };
  };

  const veths: VethModel[] = eps.map((pair, i) => {
    const impair = links[i]!.impair;
    return { a: endOf(pair[0], pair[1], links[i]!.mtu), b: endOf(pair[1], pair[0], links[i]!.mtu), ...(impair && Object.keys(impair).length ? { impair } : {}) };
  });

  // Every declared interface must be an end of some link.
  for (const n of [HOST, ...Object.keys(raw.nodes)]) {
    for (const ifname of Object.keys(nodeRaw(n)?.interfaces ?? {})) {
      const path = n === HOST ? [HOST, 'interfaces', ifname] : ['nodes', n, 'interfaces', ifname];
      const p = ifnameProblem(ifname);
      if (p) throw new SpecError(path, `interface name ${JSON.stringify(ifname)} ${p}`);
      if (!used.has(`${n}:${ifname}`)) throw new SpecError(path, `interface ${n}:${ifname} is not an end of any link: add [${n}:${ifname}, OTHER] under links`);
    }
  }

  checkSegments(bridges, veths);
  // Each owner's ends, in link order: checkGateways looks at one owner's, not every link per node.
  const endsOf = new Map<string, EndModel[]>();
  for (const v of veths) {
    for (const e of [v.a, v.b]) {
      const list = endsOf.get(e.owner);
      if (list) list.push(e);
      else endsOf.set(e.owner, [e]);
    }
  }
  for (const n of [HOST, ...Object.keys(raw.nodes)]) checkGateways(n, nodeRaw(n)!, bridges, endsOf.get(n) ?? []);
  const linkLocalDev = (n: string, x: NodeRaw['routes'][number], i: number): string | undefined => linkLocalGatewayDev(n, x, i, endsOf.get(n) ?? []);

  const nodeModel = (n: string, r: NodeRaw): NodeModel => ({
    name: n,
    netns: n === HOST ? null : n,
    routes: r.routes.map((x, i): RouteSpec => ({
      to: x.to,
      type: (x.type === 'reject' ? 'unreachable' : x.type) as RouteType,
      ...(x.via !== undefined ? { via: x.via } : {}),
      ...(x.dev !== undefined ? { dev: x.dev } : linkLocalDev(n, x, i) !== undefined ? { dev: linkLocalDev(n, x, i)! } : {}),
      ...(x.metric !== undefined ? { metric: x.metric } : {}),
      ...(x.onlink ? { onlink: true } : {}),
    })),
    sysctls: Object.entries(r.sysctls).map(([k, v]) => [k, String(v)]),
    snat: [],
  });

  return {
    name,
    mark: ownerMark(name),
    host: nodeModel(HOST, nodeRaw(HOST)!),
    nodes: Object.entries(raw.nodes).map(([n, r]) => nodeModel(n, r)),
    bridges,
    veths,
    ovsBridges: [],
    macvlans: [],
  };
}

/** The file path of a node's (or the host's) key: `['nodes', n, ...rest]` or `['host', ...rest]`. */
function nodePath(n: string, ...rest: Array<string | number>): Array<string | number> {
  return n === HOST ? [HOST, ...rest] : ['nodes', n, ...rest];
}

/** An address without its length, in one spelling per address (`fd00:0::1` and `fd00::1` are one). */
function hostPart(cidr: string): string {
  const ip = cidr.split('/')[0]!;
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname.slice(1, -1) : ip;
}

/**
 * Refuses an address that two interfaces of one L2 segment carry (or one carries twice). A segment is
 * a bridge with every veth that has an end on it (two bridges joined by a veth are one segment), or a
 * veth between two nodes. The kernel takes such a pair without a word (IPv4 has no duplicate address
 * detection; ip-address(8)), and then ARP answers from both: replies go to whichever answered last.
 * @throws SpecError at the second address, naming the first holder and the segment
 */
function checkSegments(bridges: BridgeModel[], veths: VethModel[]): void {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    const p = parent.get(k) ?? k;
    if (p === k) return k;
    const root = find(p);
    parent.set(k, root);
    return root;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  veths.forEach((v, i) => [v.a, v.b].forEach((e) => e.bridge !== null && union(`v:${i}`, `br:${e.bridge}`)));
  const describe = (seg: string): string => {
    const br = bridges.map((b) => b.name).filter((b) => find(`br:${b}`) === seg);
    if (br.length) return `bridge ${br.join(', ')}`;
    const v = veths[Number(seg.slice(2))]!;
    return `the veth ${v.a.owner}:${v.a.name} - ${v.b.owner}:${v.b.name}`;
  };
  const seen = new Map<string, string>(); // "segment ip" -> who holds it
  const claim = (seg: string, cidr: string, who: string, path: Array<string | number>) => {
    const key = `${find(seg)} ${hostPart(cidr)}`;
    const prev = seen.get(key);
    if (prev) throw new SpecError(path, `address ${cidr} is already on ${prev}, in the same L2 segment (${describe(find(seg))}): expected each address once per segment`);
    seen.set(key, who);
  };
  for (const b of bridges) b.addresses.forEach((c, k) => claim(`br:${b.name}`, c, `bridge ${b.name}`, ['bridges', b.name, 'addresses', k]));
  veths.forEach((v, i) =>
    [v.a, v.b].forEach((e) => {
      if (e.bridge !== null) return;
      e.addresses.forEach((c, k) => claim(`v:${i}`, c, `${e.owner}:${e.name}`, nodePath(e.owner, 'interfaces', e.name, 'addresses', k)));
    }),
  );
}

/**
 * The interface of a route whose gateway is IPv6 link-local (fe80::/10) and which names no `dev`: such
 * a gateway is on every link, so the kernel needs the link ("Egress device not specified",
 * ip-route(8)). A node with one interface has one answer: that interface.
 * @returns the interface to add, or undefined when the route needs none
 * @throws SpecError at the route's `via` when the node has several interfaces (or none) to choose from
 */
function linkLocalGatewayDev(n: string, x: NodeRaw['routes'][number], i: number, ends: EndModel[]): string | undefined {
  if (x.via === undefined || x.dev !== undefined || isIP(x.via) !== 6 || !/^fe[89ab]/i.test(x.via)) return undefined;
  const mine = ends.filter((e) => e.owner === n && e.bridge === null).map((e) => e.name);
  if (mine.length === 1) return mine[0];
  throw new SpecError(nodePath(n, 'routes', i, 'via'), `link-local gateway ${x.via} of the route to ${x.to} is on every link of ${n} (${[...mine].sort().join(', ') || 'none'}): expected dev: naming the interface it is reached by`);
}

/**
 * Refuses a route whose gateway lies on no subnet the node is connected to (its interfaces' addresses,
 * the host's bridges, and its routes with `dev` and no gateway), unless the route says `onlink`: the
 * kernel refuses it otherwise ("Nexthop has invalid gateway", ip-route(8)), but only when that step
 * runs, after the ones before it. With `dev`, only that interface's subnets count. Not checked: an
 * IPv6 link-local gateway (fe80::/10, on every link), and a host route whose interface the topology
 * does not declare (the machine's own eth0 and its LAN are not in the file).
 * @throws SpecError at the route's `via`, naming the gateway and the subnets there are
 */
function checkGateways(n: string, r: NodeRaw, bridges: BridgeModel[], ends: EndModel[]): void {
  const byDev = new Map<string, string[]>([['lo', ['127.0.0.1/8', '::1/128']]]);
  for (const e of ends) if (e.owner === n && e.bridge === null) byDev.set(e.name, [...(byDev.get(e.name) ?? []), ...e.addresses]);
  if (n === HOST) for (const b of bridges) byDev.set(b.name, [...(byDev.get(b.name) ?? []), ...b.addresses]);
  // A route with `dev` and no gateway makes its destination on-link (scope link) on that interface.
  for (const x of r.routes) if (x.type === 'unicast' && x.dev !== undefined && x.via === undefined) byDev.set(x.dev, [...(byDev.get(x.dev) ?? []), x.to]);
  r.routes.forEach((x, i) => {
    if (x.via === undefined || x.onlink) return;
    const fam = isIP(x.via);
    if (fam === 6 && /^fe[89ab]/i.test(x.via)) return;
    if (x.dev !== undefined && !byDev.has(x.dev)) {
      if (n === HOST) return;
      throw new SpecError(nodePath(n, 'routes', i, 'dev'), `route to ${x.to}: ${n} has no interface ${JSON.stringify(x.dev)} (it has: ${[...byDev.keys()].join(', ') || 'none'})`);
    }
    if (x.dev === undefined && n === HOST) return;
    const nets = x.dev !== undefined ? byDev.get(x.dev)! : [...byDev.values()].flat();
    const list = new BlockList();
    const mine: string[] = [];
    for (const c of nets) {
      const [ip, len] = c === 'default' ? [fam === 4 ? '0.0.0.0' : '::', '0'] : (c.split('/') as [string, string]);
      if (isIP(ip) !== fam) continue;
      list.addSubnet(ip, Number(len), fam === 4 ? 'ipv4' : 'ipv6');
      mine.push(c);
    }
    if (list.check(x.via, fam === 4 ? 'ipv4' : 'ipv6')) return;
    const on = x.dev !== undefined ? `${n}:${x.dev}` : n;
    throw new SpecError(nodePath(n, 'routes', i, 'via'), `gateway ${x.via} of the route to ${x.to} is on no subnet connected to ${on} (${mine.join(', ') || `no IPv${fam} address`}): expected a gateway on one of them, or onlink: true with dev`);
  });
}
