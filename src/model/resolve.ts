// resolve: a validated topology file -> the model (defaults filled, names derived, references checked).
import type { RouteSpec, RouteType } from '../kernel/route.js';
import { SpecError } from './load.js';
import { bridgePortName, ifnameProblem, ownerMark } from './names.js';
import type { NodeRaw, TopologyRaw } from './schema.js';
import type { BridgeModel, EndModel, Model, NodeModel, VethModel } from './types.js';

/** The reserved node name of the namespace nslab runs in. */
export const HOST = 'host';

type Ep = { kind: 'node'; node: string; ifname: string } | { kind: 'bridge'; bridge: string; port: string | null };

/**
 * Resolves a validated topology into a {@link Model}.
 * @param raw the file's content after zod validation
 * @param fallbackName topology name when the file has none (the file's base name)
 * @throws SpecError naming the path of the first problem (unknown node, interface used twice, name clash)
 */
export function resolveTopology(raw: TopologyRaw, fallbackName: string): Model {
  const name = raw.name ?? fallbackName;
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
    const p = ifnameProblem(bname);
    if (p) throw new SpecError(['bridges', bname], `bridge name ${JSON.stringify(bname)} ${p}`);
    claim(null, bname, `bridge ${bname}`, ['bridges', bname]);
    return { name: bname, driver: b.driver, mtu: b.mtu ?? null, stp: b.stp, addresses: b.addresses };
  });

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
  const links = raw.links.map((l) => (Array.isArray(l) ? { endpoints: l, mtu: undefined } : l));

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
      const b = bridges.find((x) => x.name === ep.bridge)!;
      const rootNames = new Set(taken.get('')?.keys() ?? []);
      const port =
        ep.port ??
        (other.kind === 'node' ? bridgePortName(name, other.node, other.ifname, rootNames) : bridgePortName(name, `${other.bridge}`, ep.bridge, rootNames));
      if (!ep.port) claim(null, port, `a bridge port`, ['links']);
      const otherMtu = other.kind === 'node' ? nodeRaw(other.node)?.interfaces[other.ifname]?.mtu : undefined;
      return { owner: ep.bridge, netns: null, name: port, mtu: linkMtu ?? otherMtu ?? b.mtu, mac: null, addresses: [], bridge: ep.bridge, vlan: null };
    }
    const cfg = nodeRaw(ep.node)?.interfaces[ep.ifname];
    const otherBridgeMtu = other.kind === 'bridge' ? bridges.find((x) => x.name === other.bridge)!.mtu : null;
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

  const veths: VethModel[] = eps.map((pair, i) => ({ a: endOf(pair[0], pair[1], links[i]!.mtu), b: endOf(pair[1], pair[0], links[i]!.mtu) }));

  // Every declared interface must be an end of some link.
  for (const n of [HOST, ...Object.keys(raw.nodes)]) {
    for (const ifname of Object.keys(nodeRaw(n)?.interfaces ?? {})) {
      const path = n === HOST ? [HOST, 'interfaces', ifname] : ['nodes', n, 'interfaces', ifname];
      const p = ifnameProblem(ifname);
      if (p) throw new SpecError(path, `interface name ${JSON.stringify(ifname)} ${p}`);
      if (!used.has(`${n}:${ifname}`)) throw new SpecError(path, `interface ${n}:${ifname} is not an end of any link: add [${n}:${ifname}, OTHER] under links`);
    }
  }

  const nodeModel = (n: string, r: NodeRaw): NodeModel => ({
    name: n,
    netns: n === HOST ? null : n,
    routes: r.routes.map((x): RouteSpec => ({
      to: x.to,
      type: (x.type === 'reject' ? 'unreachable' : x.type) as RouteType,
      ...(x.via !== undefined ? { via: x.via } : {}),
      ...(x.dev !== undefined ? { dev: x.dev } : {}),
      ...(x.metric !== undefined ? { metric: x.metric } : {}),
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
