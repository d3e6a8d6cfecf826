// plan: model in, steps out. Pure: no kernel, no root, so it is unit-tested as argv lists.
import { addAddr } from '../kernel/addr.js';
import { addBridge, addPort, bridgeSettings } from '../kernel/bridge.js';
import { setAlias, setUp } from '../kernel/link.js';
import { addNetns, markNetns } from '../kernel/netns.js';
import { addRoute } from '../kernel/route.js';
import { netnsKey, type Step } from '../kernel/step.js';
import { setSysctl } from '../kernel/sysctl.js';
import { addImpair } from '../kernel/tc.js';
import { addVeth } from '../kernel/veth.js';
import { addFloodPeer, addVxlan } from '../kernel/vxlan.js';
import type { EndModel, Model } from '../model/types.js';

/**
 * Phases of an up. Within a phase, steps in different netns do not depend on each other, so the
 * engine may batch them per netns and run the batches at once.
 *  0. netns (alone in their batch: `netns add` moves an `ip -batch` process into the new netns)
 *  1. the current namespace: bridges, veths (each end created straight in its netns), ports, host addresses
 *  2. inside each node: ownership mark, lo up, interfaces up, addresses, sysctls, routes
 *  3. the current namespace's routes and sysctls (their gateways are reachable only now)
 */
export const PHASES = { netns: 0, root: 1, nodes: 2, hostRoutes: 3 } as const;

/** Appends `steps` to `out` tagged with `phase` (a loop: spreading 30 000 arguments nears V8's limit). */
function at(out: Step[], phase: number, steps: Step[]): void {
  for (const s of steps) out.push({ ...s, phase });
}

/**
 * Plans the steps that bring a topology up, in order. The inverse (teardown) is derived from the same
 * steps, so `up` and `down` can never disagree about what a topology is.
 * @param m the resolved model
 * @returns steps with their undo, each tagged with its phase
 */
export function planUp(m: Model): Step[] {
  const steps: Step[] = [];
  const inNode = (s: Step, netns: string | null): Step => (netns && !s.parent ? { ...s, parent: netnsKey(netns) } : s);

  at(steps, PHASES.netns, m.nodes.map((n) => addNetns(n.netns!)));

  const root: Step[] = [];
  for (const b of m.bridges) {
    root.push(addBridge(b.name, { driver: b.driver, mtu: b.mtu ?? undefined, stp: b.stp }));
    root.push(setAlias(null, b.name, m.mark));
    root.push(...bridgeSettings(b.name, { driver: b.driver, mtu: b.mtu ?? undefined, stp: b.stp }));
    for (const a of b.addresses) root.push(addAddr(null, b.name, a));
    root.push(setUp(null, b.name));
  }
  // Bridges that span hosts: a VXLAN port each, flooding to every other host (head-end replication).
  for (const x of m.vxlans ?? []) {
    const b = m.bridges.find((y) => y.name === x.bridge)!;
    root.push(addVxlan({ name: x.name, vni: x.vni, local: x.local, dev: x.dev, mtu: x.mtu }), setAlias(null, x.name, m.mark), addPort(x.bridge, x.name, b.driver));
    for (const p of x.peers) root.push(addFloodPeer(x.name, p));
    root.push(setUp(null, x.name));
  }
  const driverOf = new Map(m.bridges.map((b) => [b.name, b.driver]));
  const hostEnds: EndModel[] = [];
  for (const v of m.veths) {
    // The end in the current namespace (if any) goes first, so undo deletes it there synchronously.
    const [a, b] = v.b.netns === null && v.a.netns !== null ? [v.b, v.a] : [v.a, v.b];
    const add = addVeth(toEnd(a), toEnd(b));
    root.push(a.netns ? { ...add, parent: netnsKey(a.netns) } : add);
    for (const e of [a, b]) {
      if (e.netns !== null) continue;
      root.push(setAlias(null, e.name, m.mark));
      if (e.bridge) root.push(addPort(e.bridge, e.name, driverOf.get(e.bridge)!));
      hostEnds.push(e);
    }
  }
  for (const e of hostEnds) {
    for (const a of e.addresses) root.push(addAddr(null, e.name, a));
    root.push(setUp(null, e.name));
  }
  at(steps, PHASES.root, root);

  // Each node's veth ends, in link order: one pass over the links, not one per node.
  const endsIn = new Map<string, EndModel[]>();
  for (const v of m.veths) {
    for (const e of [v.a, v.b]) {
      if (e.netns === null) continue;
      const list = endsIn.get(e.netns);
      if (list) list.push(e);
      else endsIn.set(e.netns, [e]);
    }
  }
  for (const n of m.nodes) {
    const ns = n.netns!;
    const s: Step[] = [markNetns(ns, m.mark), inNode(setUp(ns, 'lo'), ns)];
    for (const e of endsIn.get(ns) ?? []) {
      for (const a of e.addresses) s.push(inNode(addAddr(ns, e.name, a), ns));
      s.push(inNode(setUp(ns, e.name), ns));
    }
    for (const [k, val] of n.sysctls) s.push(setSysctl(ns, k, val));
    for (const r of n.routes) s.push(inNode(addRoute(ns, r), ns));
    at(steps, PHASES.nodes, s);
  }

  const host: Step[] = [...m.host.sysctls.map(([k, val]) => setSysctl(null, k, val)), ...m.host.routes.map((r) => addRoute(null, r))];
  // A link's impairment (`impair:`) on both ends, once both exist: tc shapes what leaves each end.
  for (const v of m.veths) if (v.impair) for (const e of [v.a, v.b]) host.push(...addImpair(e.netns, e.name, v.impair));
  at(steps, PHASES.hostRoutes, host);
  return steps;
}

function toEnd(e: EndModel) {
  return { name: e.name, netns: e.netns, ...(e.mtu ? { mtu: e.mtu } : {}), ...(e.mac ? { mac: e.mac } : {}) };
}

/** Keys of every object the steps create (`netns:NAME`, `link:NETNS:NAME`). */
export function createdKeys(steps: Step[]): Set<string> {
  return new Set(steps.flatMap((s) => (s.creates ? [s.creates] : [])));
}
