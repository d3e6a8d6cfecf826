// Network modes, planned (pure): the bridge of a network, the netns of a node, and the iptables rules
// Docker sets for each (dockerd 20.10 with --userland-proxy=false, since nslab runs no proxy), each
// rule carrying its owner's comment.
import { addAddr } from '../../kernel/addr.js';
import { addBridge } from '../../kernel/bridge.js';
import { addRules, ruleLine, setPolicy, type ChainRef, type Rule, type Table } from '../../kernel/iptables.js';
import { setAlias, setUp } from '../../kernel/link.js';
import { addNetns, markNetns } from '../../kernel/netns.js';
import { cmdOp, ipOp, linkKey, type Step } from '../../kernel/step.js';
import { mark } from '../../model/marks.js';
import type { NetworkRecord, PortBinding } from './netstate.js';

/**
 * nslab's chains, named as Docker's with NSLAB for DOCKER. NSLAB-FORWARD holds every network's
 * FORWARD rules behind one jump (as dockerd 28's DOCKER-FORWARD), so that the isolation jump at its
 * top always comes before them, whatever order networks are created in.
 */
export const CHAINS = {
  forward: 'NSLAB-FORWARD',
  nslab: 'NSLAB',
  iso1: 'NSLAB-ISOLATION-STAGE-1',
  iso2: 'NSLAB-ISOLATION-STAGE-2',
} as const;

/** The shared chains: created with the first network, deleted with the last. */
export const BASE_CHAINS: ChainRef[] = [
  { table: 'filter', name: CHAINS.forward },
  { table: 'filter', name: CHAINS.nslab },
  { table: 'filter', name: CHAINS.iso1 },
  { table: 'filter', name: CHAINS.iso2 },
  { table: 'nat', name: CHAINS.nslab },
];

/** The comment of the shared rules (jumps into nslab's chains). */
export const OWNER_BASE = 'nslab';
/** The comment of a network's rules. */
export const ownerNet = (name: string) => `nslab:net=${name}`;
/** The comment of a node's rules (its published ports). */
export const ownerNode = (name: string) => `nslab:node=${name}`;
/** True for any comment nslab writes. */
export const isOurs = (comment: string) => comment === OWNER_BASE || comment.startsWith('nslab:');

/**
 * The shared rules: FORWARD jumps to NSLAB-FORWARD, whose first rule is the isolation check;
 * PREROUTING and OUTPUT send traffic for the host's own addresses to nat NSLAB, where published
 * ports are DNATed. OUTPUT has no `! -d 127.0.0.0/8` (as dockerd without its userland proxy): ports
 * published on 127.0.0.1 work from the host itself.
 */
export function baseRules(): Rule[] {
  const c = OWNER_BASE;
  return [
    { table: 'filter', chain: 'FORWARD', spec: ['-j', CHAINS.forward], comment: c, insert: true },
    { table: 'filter', chain: CHAINS.forward, spec: ['-j', CHAINS.iso1], comment: c },
    { table: 'nat', chain: 'PREROUTING', spec: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', CHAINS.nslab], comment: c, insert: true },
    { table: 'nat', chain: 'OUTPUT', spec: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', CHAINS.nslab], comment: c, insert: true },
  ];
}

/**
 * A network's rules, as dockerd writes them for a bridge (the notes' `-A POSTROUTING -s 172.17.0.0/16
 * ! -o docker0 -j MASQUERADE`, `-A FORWARD -i docker0 -o docker0 -j ACCEPT`):
 * - filter: replies in, published ports in (via NSLAB), anything out, and node to node (`--icc`:
 *   ACCEPT, else DROP); isolation: from this bridge to another nslab bridge → stage 2 → DROP.
 * - nat: MASQUERADE of the subnet leaving by another interface, and of the host's own addresses
 *   going into the bridge (127.0.0.1 → a node, with `route_localnet`).
 */
export function networkRules(n: NetworkRecord): Rule[] {
  const c = ownerNet(n.name);
  const br = n.bridge;
  return [
    { table: 'filter', chain: CHAINS.forward, spec: ['-o', br, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'], comment: c },
    { table: 'filter', chain: CHAINS.forward, spec: ['-o', br, '-j', CHAINS.nslab], comment: c },
    { table: 'filter', chain: CHAINS.forward, spec: ['-i', br, '!', '-o', br, '-j', 'ACCEPT'], comment: c },
    { table: 'filter', chain: CHAINS.forward, spec: ['-i', br, '-o', br, '-j', n.icc ? 'ACCEPT' : 'DROP'], comment: c },
    { table: 'filter', chain: CHAINS.iso1, spec: ['-i', br, '!', '-o', br, '-j', CHAINS.iso2], comment: c },
    { table: 'filter', chain: CHAINS.iso2, spec: ['-o', br, '-j', 'DROP'], comment: c },
    { table: 'nat', chain: 'POSTROUTING', spec: ['-s', n.subnet, '!', '-o', br, '-j', 'MASQUERADE'], comment: c, insert: true },
    { table: 'nat', chain: 'POSTROUTING', spec: ['-o', br, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', 'MASQUERADE'], comment: c, insert: true },
  ];
}

/**
 * A published port's rules (dockerd's, hairpin mode):
 * - nat NSLAB: DNAT of HOSTPORT (on HOSTIP, or any local address) to IP:CONTAINERPORT, with no
 *   `! -i BRIDGE`, so that nodes on the same bridge reach it through the host's address too;
 * - nat POSTROUTING: MASQUERADE of the node talking to itself through its published port (hairpin);
 * - filter NSLAB: ACCEPT of the forwarded connection into the bridge.
 */
export function portRules(node: string, bridge: string, b: PortBinding): Rule[] {
  const c = ownerNode(node);
  const proto = ['-p', b.proto, '-m', b.proto];
  return [
    { table: 'nat', chain: CHAINS.nslab, spec: [...(b.hostIp !== '0.0.0.0' ? ['-d', `${b.hostIp}/32`] : []), ...proto, '--dport', String(b.hostPort), '-j', 'DNAT', '--to-destination', `${b.ip}:${b.containerPort}`], comment: c },
    { table: 'nat', chain: 'POSTROUTING', spec: ['-s', `${b.ip}/32`, '-d', `${b.ip}/32`, ...proto, '--dport', String(b.containerPort), '-j', 'MASQUERADE'], comment: c, insert: true },
    { table: 'filter', chain: CHAINS.nslab, spec: ['-d', `${b.ip}/32`, '!', '-i', bridge, '-o', bridge, ...proto, '--dport', String(b.containerPort), '-j', 'ACCEPT'], comment: c },
  ];
}

/** What the host looked like before the first network (read by the engine, under the lock). */
export interface HostBefore {
  ipForward: string;
  /** FORWARD's policy (ACCEPT when the filter table does not exist yet). */
  forwardPolicy: string;
  tables: Set<string>;
  /** Which of the shared chains exist already (left by a crash: kept, not declared again). */
  chains: Set<string>;
}

/**
 * The steps that prepare the host when the first network comes, as dockerd does at start:
 * `net.ipv4.ip_forward=1` (`--ip-forward`; written when on already too, without undo); when nslab turned forwarding on and manages iptables,
 * FORWARD's policy DROP (so forwarding does not open the host's other interfaces); the shared chains
 * and jumps (`--iptables`). Each step's undo restores what `before` read.
 */
export function planHostSetup(opts: { ipForward: boolean; iptables: boolean }, before: HostBefore): { steps: Step[]; ipForwardPrev: string | null; policyPrev: string | null; tablesCreated: Table[] } {
  const steps: Step[] = [];
  let ipForwardPrev: string | null = null;
  let policyPrev: string | null = null;
  if (opts.ipForward && before.ipForward !== '1') {
    ipForwardPrev = before.ipForward;
    steps.push({
      describe: 'turn IP forwarding on (net.ipv4.ip_forward=1)',
      do: cmdOp(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']),
      undo: [cmdOp(['sysctl', '-q', '-w', `net.ipv4.ip_forward=${before.ipForward}`])],
    });
    if (opts.iptables && before.forwardPolicy !== 'DROP') {
      policyPrev = before.forwardPolicy;
      steps.push(setPolicy('FORWARD', 'DROP', before.forwardPolicy));
    }
  } else if (opts.ipForward) {
    // On already (another tool, a lab before): written again, not undone. A recorded lab script then
    // turns it on wherever it is replayed, not only where forwarding happened to be on already
    // (a fresh sandbox inherits the host's value, often 0).
    steps.push({ describe: 'keep IP forwarding on (net.ipv4.ip_forward=1, on already: not undone)', do: cmdOp(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']), undo: [] });
  }
  const tablesCreated: Table[] = [];
  if (opts.iptables) {
    for (const t of ['filter', 'nat'] as const) if (!before.tables.has(t)) tablesCreated.push(t);
    const fresh = BASE_CHAINS.filter((c) => !before.chains.has(`${c.table}:${c.name}`));
    steps.push(...addRules(baseRules(), fresh, 'nslab (shared chains)'));
  }
  return { steps, ipForwardPrev, policyPrev, tablesCreated };
}

/**
 * The steps of a network: its bridge (unless external: `ip link add name BR mtu M type bridge`,
 * marked `nslab:net name=NAME`, gateway address, up, `nf_call_iptables` on so that bridged traffic
 * meets the FORWARD rules whatever the host's br_netfilter sysctl says), `route_localnet` on the bridge
 * (127.0.0.1-published ports), then its rules.
 */
export function planNetwork(n: NetworkRecord): Step[] {
  const steps: Step[] = [];
  const prefix = n.subnet.split('/')[1]!;
  if (!n.external) {
    steps.push(addBridge(n.bridge, { driver: 'iproute2', mtu: n.mtu }));
    steps.push(setAlias(null, n.bridge, mark('net', { name: n.name })));
    steps.push({ describe: `let ${n.bridge}'s bridged traffic through iptables`, do: ipOp(null, ['link', 'set', 'dev', n.bridge, 'type', 'bridge', 'nf_call_iptables', '1']), undo: [], parent: linkKey(null, n.bridge) });
    steps.push(addAddr(null, n.bridge, `${n.gateway}/${prefix}`));
    steps.push(setUp(null, n.bridge));
  }
  if (n.iptables) {
    // sysctl's slash form: a bridge name may hold dots, which the dotted form reads as separators.
    const key = `net/ipv4/conf/${n.bridge}/route_localnet`;
    steps.push({
      describe: `let ${n.bridge} carry 127.0.0.1 traffic (route_localnet)`,
      do: cmdOp(['sysctl', '-q', '-w', `${key}=1`]),
      undo: n.external ? [cmdOp(['sysctl', '-q', '-w', `${key}=${n.routeLocalnetPrev ?? '0'}`])] : [],
      ...(n.external ? {} : { parent: linkKey(null, n.bridge) }),
    });
    steps.push(...addRules(networkRules(n), [], `network ${n.name}`));
  }
  return steps;
}

/** A node's own netns: `ip netns add NAME`, marked `nslab:node name=NAME` on its `lo`, `lo` up. */
export function planNodeNetns(name: string): Step[] {
  return [addNetns(name), markNetns(name, mark('node', { name })), setUp(name, 'lo')];
}

/**
 * Container mode: names OTHER's netns NAME too (a bind mount, what `ip netns attach` does for a PID),
 * so `ip netns exec NAME` enters the one interface set both share. Undo: unmount and remove the name
 * (the netns stays, held by OTHER's name).
 */
export function planSharedNetns(name: string, otherNetns: string): Step[] {
  const path = `/run/netns/${name}`;
  return [
    { describe: `create the mount point ${path}`, do: cmdOp(['touch', path]), undo: [cmdOp(['rm', '-f', path])] },
    { describe: `name netns ${otherNetns} also ${name}`, do: cmdOp(['mount', '--bind', `/run/netns/${otherNetns}`, path]), undo: [cmdOp(['umount', path])] },
  ];
}

/**
 * A legacy link's openings where the bridge drops node-to-node traffic (`--icc=false`), as dockerd
 * adds them to its DOCKER chain: the linking node may reach each port of the linked one, and the
 * replies come back (`--sport`). Owned by the linking node (removed with it).
 * @param ports the linked node's exposed and published container ports
 */
export function planLinkOpenings(node: string, bridge: string, from: string, to: string, ports: Array<{ port: number; proto: string }>): Step[] {
  const c = ownerNode(node);
  const rules: Rule[] = ports.flatMap(({ port, proto }) => [
    { table: 'filter' as const, chain: CHAINS.nslab, spec: ['-s', `${from}/32`, '-d', `${to}/32`, '-i', bridge, '-o', bridge, '-p', proto, '-m', proto, '--dport', String(port), '-j', 'ACCEPT'], comment: c },
    { table: 'filter' as const, chain: CHAINS.nslab, spec: ['-s', `${to}/32`, '-d', `${from}/32`, '-i', bridge, '-o', bridge, '-p', proto, '-m', proto, '--sport', String(port), '-j', 'ACCEPT'], comment: c },
  ]);
  return rules.length ? addRules(rules, [], `links of node ${node}`) : [];
}

/**
 * The published ports' rules of a node, once each: two host ports leading to one container port
 * share their hairpin MASQUERADE and their ACCEPT.
 */
export function planPorts(node: string, bridgeOf: (network: string) => string, ports: PortBinding[]): Step[] {
  const seen = new Set<string>();
  const rules = ports
    .flatMap((b) => portRules(node, bridgeOf(b.network), b))
    .filter((x) => {
      const k = `${x.table} ${ruleLine(x, 'add')}`;
      return !seen.has(k) && seen.add(k);
    });
  return rules.length ? addRules(rules, [], `node ${node}`) : [];
}
