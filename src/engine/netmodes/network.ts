// Networks with Docker's semantics and no daemon: the default bridge (dockerd's options), user-defined
// bridge networks, connect/disconnect through the attach engine, and the host setup they share.
import { randomBytes } from 'node:crypto';
import type { Runner } from '../../exec/runner.js';
import { invalid, NslabError } from '../../errors.js';
import { readAddrs } from '../../kernel/addr.js';
import { BUILTIN, deleteChains, deleteOwned, dropTableOp, pristine, readIptables, type Saved, type Table } from '../../kernel/iptables.js';
import { readLinks } from '../../kernel/link.js';
import { readRoutes } from '../../kernel/route.js';
import { cmdOp, ipOp } from '../../kernel/step.js';
import { readSysctl } from '../../kernel/sysctl.js';
import { parseMark } from '../../model/marks.js';
import { allocate, dockerMac, overlaps, parseCidr4, pickSubnet, portsCollide } from '../../model/ipam.js';
import { DEFAULT_DAEMON, DEFAULT_NETWORK, type DaemonOptions, type NetworkCreateRequest } from '../../model/netmodes.js';
import { applySteps, runUndo } from '../apply.js';
import { journalLive, readJournals } from '../clean/journal.js';
import { recoverJournals } from '../clean/clean.js';
import { attach, detach } from '../attach/attach.js';
import { syncHosts } from '../hosts/hosts.js';
import { BASE_CHAINS, isOurs, ownerNet, ownerNode, planHostSetup, planNetwork, planPorts, type HostBefore } from './netplan.js';
import { readNetState, withState, type Endpoint, type NetState, type NetworkRecord, type NodeRecord } from './netstate.js';

/** The default network's bridge (Docker's docker0). */
export const DEFAULT_BRIDGE = 'nslab0';

/** The default network's subnet when 172.17.0.0/16 is free (docker0's). */
export const DEFAULT_SUBNET = '172.17.0.0/16';

function subnetOfBip(bip: string): string {
  const c = parseCidr4('--bip', bip);
  return `${c.net.base}/${c.net.bitmask}`;
}

/**
 * Undo actions of one change in progress, run in reverse when a later part fails, so a failed
 * command leaves the kernel and the state as they were.
 */
export class Undo {
  private fns: Array<() => Promise<unknown>> = [];
  push(fn: () => Promise<unknown>): void {
    this.fns.push(fn);
  }
  /** Runs the actions, last first; returns the errors (one line each) of those that failed. */
  async run(): Promise<string[]> {
    const errors: string[] = [];
    for (const fn of this.fns.reverse()) {
      try {
        const res = await fn();
        if (Array.isArray(res)) errors.push(...(res as string[]));
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    this.fns = [];
    return errors;
  }
}

/** Runs `fn` with an {@link Undo}; on failure, undoes and rethrows (naming rollback problems in the hint). */
export async function transaction<T>(fn: (undo: Undo) => Promise<T>): Promise<T> {
  const undo = new Undo();
  try {
    return await fn(undo);
  } catch (err) {
    const problems = await undo.run();
    if (problems.length && err instanceof NslabError) {
      throw new NslabError(err.code, err.message, { cause: err.cause, details: { ...err.details, rollbackErrors: problems }, hint: `rollback left ${problems.length} problem(s): ${problems.join('; ')}` });
    }
    throw err;
  }
}

async function hostBefore(r: Runner, saved: Saved): Promise<HostBefore> {
  const chains = new Set<string>();
  for (const c of BASE_CHAINS) if (saved.get(c.table)?.chains.has(c.name)) chains.add(`${c.table}:${c.name}`);
  return {
    ipForward: await readSysctl(r, null, 'net.ipv4.ip_forward'),
    forwardPolicy: saved.get('filter')?.chains.get('FORWARD') ?? 'ACCEPT',
    tables: new Set(saved.keys()),
    chains,
  };
}

/**
 * Prepares the host when the first network comes (see {@link planHostSetup}); a no-op while any
 * network exists. Rules of nslab found while no network is known are leftovers of a crash: removed first.
 */
async function ensureHost(r: Runner, st: NetState, undo: Undo): Promise<void> {
  if (st.host) return;
  let saved = await readIptables(r);
  if ((await deleteOwned(r, saved, isOurs)) > 0) saved = await readIptables(r);
  await deleteChains(r, saved, BASE_CHAINS);
  saved = await readIptables(r);
  const plan = planHostSetup(st.daemon, await hostBefore(r, saved));
  // A failure here or later takes the tables back too: `iptables -P` and the first rule create them.
  undo.push(() => dropCreatedTables(r, plan.tablesCreated));
  const applied = await applySteps(r, plan.steps).catch(async (err: unknown) => {
    await dropCreatedTables(r, plan.tablesCreated);
    throw err;
  });
  undo.push(() => runUndo(r, applied.undo));
  st.host = { ipForwardPrev: plan.ipForwardPrev, policyPrev: plan.policyPrev, tablesCreated: plan.tablesCreated, base: st.daemon.iptables };
  undo.push(async () => {
    st.host = null;
  });
}

/**
 * Undoes the host setup once no network is left: nslab's remaining rules and chains, FORWARD's
 * policy, `ip_forward`, and the tables its rules created when they are empty again, so that
 * `iptables-save` and the sysctls read as before the first network. The daemon's options reset.
 */
async function teardownHostIfIdle(r: Runner, st: NetState): Promise<void> {
  if (Object.keys(st.networks).length > 0 || !st.host) return;
  const h = st.host;
  let saved = await readIptables(r);
  if ((await deleteOwned(r, saved, isOurs)) > 0) saved = await readIptables(r);
  await deleteChains(r, saved, BASE_CHAINS);
  const ops = [];
  if (h.policyPrev) ops.push(cmdOp(['iptables', '-w', '-P', 'FORWARD', h.policyPrev]));
  if (h.ipForwardPrev !== null) ops.push(cmdOp(['sysctl', '-q', '-w', `net.ipv4.ip_forward=${h.ipForwardPrev}`]));
  const errors = await runUndo(r, ops);
  errors.push(...(await dropCreatedTables(r, h.tablesCreated)));
  st.host = null;
  st.daemon = { ...DEFAULT_DAEMON };
  if (errors.length) throw new NslabError('COMMAND_FAILED', `restoring the host after the last network: ${errors[0]}`, { details: { errors } });
}

/** Deletes the tables nslab's rules created, those that are pristine again; returns undo errors. */
async function dropCreatedTables(r: Runner, tables: Table[]): Promise<string[]> {
  if (tables.length === 0) return [];
  const saved = await readIptables(r);
  const drop = tables.filter((t) => saved.has(t) && pristine(saved.get(t), BUILTIN[t]));
  return runUndo(r, drop.map(dropTableOp));
}

/** Subnets already taken: other networks', and the destinations of the host's routes. */
async function takenSubnets(r: Runner, st: NetState): Promise<string[]> {
  const routes = (await readRoutes(r, null)).map((x) => x.dst).filter((d) => d !== 'default' && !d.includes(':'));
  return [...Object.values(st.networks).map((n) => n.subnet), ...routes.map((d) => (d.includes('/') ? d : `${d}/32`))];
}

function newId(): string {
  return randomBytes(32).toString('hex');
}

/** Creates a network's kernel objects and rules, and records it. */
async function materialize(r: Runner, st: NetState, n: NetworkRecord, undo: Undo): Promise<void> {
  await ensureHost(r, st, undo);
  const applied = await applySteps(r, planNetwork(n));
  undo.push(() => runUndo(r, applied.undo));
  st.networks[n.name] = n;
  undo.push(async () => {
    delete st.networks[n.name];
  });
}

/**
 * The default network from the daemon's options: bridge `nslab0` (or the existing `--bridge`, whose
 * first IPv4 address gives gateway and subnet), address `--bip` or the first free pool (172.17.0.1/16),
 * node addresses from `--fixed-cidr`, `--mtu`, `--icc`.
 */
async function defaultRecord(r: Runner, st: NetState): Promise<NetworkRecord> {
  const d = st.daemon;
  const links = await readLinks(r, null);
  let bridge = DEFAULT_BRIDGE;
  let subnet: string;
  let gateway: string;
  let routeLocalnetPrev: string | null = null;
  if (d.bridge) {
    const l = links.find((x) => x.ifname === d.bridge);
    if (!l || l.linkinfo?.info_kind !== 'bridge') throw invalid(`--bridge ${d.bridge}: no bridge of that name here (ip -d link show ${d.bridge}); create it first, as in the notes: ip link add ${d.bridge} type bridge`);
    const a = (await readAddrs(r, null)).find((x) => x.ifname === d.bridge)?.addr_info.find((x) => x.family === 'inet');
    if (!a) throw invalid(`--bridge ${d.bridge} has no IPv4 address: give it one first (ip addr add 192.168.5.1/24 dev ${d.bridge})`);
    const c = parseCidr4('--bridge address', `${a.local}/${a.prefixlen}`);
    bridge = d.bridge;
    subnet = `${c.net.base}/${c.net.bitmask}`;
    gateway = a.local;
    routeLocalnetPrev = await readSysctl(r, null, `net/ipv4/conf/${bridge}/route_localnet`);
  } else {
    if (links.some((x) => x.ifname === DEFAULT_BRIDGE)) {
      throw invalid(`the default network's bridge ${DEFAULT_BRIDGE} exists already, but nslab's state knows no default network`, `remove it (ip link del ${DEFAULT_BRIDGE}) or pass --bridge ${DEFAULT_BRIDGE} to use it as it is`);
    }
    if (d.bip) {
      const c = parseCidr4('--bip', d.bip);
      subnet = `${c.net.base}/${c.net.bitmask}`;
      gateway = c.ip;
    } else {
      const s = pickSubnet(await takenSubnets(r, st));
      if (!s) throw invalid('no free subnet left in the default pools for the default network: pass --bip');
      subnet = s;
      gateway = parseCidr4('subnet', s).net.first;
    }
  }
  if (d.fixedCidr && !parseCidr4('subnet', subnet).net.contains(d.fixedCidr.split('/')[0]!)) throw invalid(`--fixed-cidr ${d.fixedCidr} is not within the default network's subnet ${subnet}`);
  for (const o of Object.values(st.networks)) if (overlaps(o.subnet, subnet)) throw invalid(`the default network's subnet ${subnet} overlaps network ${o.name} (${o.subnet})`);
  return {
    name: DEFAULT_NETWORK,
    id: newId(),
    driver: 'bridge',
    bridge,
    external: d.bridge !== null,
    subnet,
    gateway,
    ipRange: d.fixedCidr,
    mtu: d.mtu,
    icc: d.icc,
    userSubnet: false,
    iptables: d.iptables,
    isDefault: true,
    created: new Date().toISOString(),
    routeLocalnetPrev,
  };
}

/** True for Docker's predefined `host` and `none`: modes a node starts in, not networks nslab makes. */
function isModeNetwork(name: string): boolean {
  return name === 'host' || name === 'none';
}

/** Refuses to connect or disconnect `host`/`none`, as Docker does. */
function refuseModeNetwork(name: string): void {
  if (isModeNetwork(name)) throw invalid(`network ${name} is a mode a node gets when it starts (node run --net ${name}); a node cannot be connected to it or disconnected from it (as in Docker)`);
}

/** The network named `name` for a node to join; the default one is made on first use, as dockerd has it from its start. */
export async function networkFor(r: Runner, st: NetState, name: string, undo: Undo): Promise<NetworkRecord> {
  const n = st.networks[name];
  if (n) return n;
  refuseModeNetwork(name);
  if (name !== DEFAULT_NETWORK) throw invalid(`network ${JSON.stringify(name)} not found: nslab network ls lists them, nslab network create ${name} makes it`);
  const rec = await defaultRecord(r, st);
  await materialize(r, st, rec, undo);
  return rec;
}

/**
 * The address a node gets on `net`: `requestedIp` (`--ip`) if it is allowed, else the lowest free one.
 * Docker's rules: a static address only on a user network made with `--subnet`, in that subnet, not
 * its gateway and not held by another node (docker run --ip; moby#19086). Pure: reads the state only.
 * @throws NslabError INVALID_INPUT naming the address and what was expected
 */
export function pickAddress(st: NetState, net: NetworkRecord, requestedIp: string | null): string {
  if (requestedIp !== null && !net.userSubnet) {
    throw invalid(
      net.isDefault
        ? `--ip ${requestedIp}: a static address is supported on user-defined networks only, not on the default bridge (as in Docker)`
        : `--ip ${requestedIp}: a static address needs a network created with --subnet; ${net.name} picked its subnet itself (as in Docker)`,
    );
  }
  const used = new Set<string>([net.gateway]);
  for (const x of Object.values(st.nodes)) for (const e of x.endpoints) if (e.network === net.name) used.add(e.ip);
  return allocate({ subnet: net.subnet, range: net.ipRange ?? net.subnet, gateway: net.gateway }, used, requestedIp);
}

/**
 * Checks, before `node run --net NETWORK [--ip IP]` makes the node's netns, what {@link networkFor}
 * and {@link pickAddress} would refuse later: an unknown network, `--ip` on the default network, an
 * address outside the subnet or already held. Pure: reads the state only.
 * @throws NslabError INVALID_INPUT, as those two would
 */
export function precheckNetwork(st: NetState, name: string, requestedIp: string | null): void {
  const n = st.networks[name];
  if (n) {
    pickAddress(st, n, requestedIp);
    return;
  }
  refuseModeNetwork(name);
  if (name !== DEFAULT_NETWORK) throw invalid(`network ${JSON.stringify(name)} not found: nslab network ls lists them, nslab network create ${name} makes it`);
  if (requestedIp !== null) throw invalid(`--ip ${requestedIp}: a static address is supported on user-defined networks only, not on the default bridge (as in Docker)`);
}

/** What the network commands return: the record and its connected nodes. */
export interface NetworkInfo extends NetworkRecord {
  nodes: Array<{ node: string; ifname: string; ip: string; mac: string }>;
}

function info(st: NetState, n: NetworkRecord): NetworkInfo {
  const nodes = Object.values(st.nodes).flatMap((x) => x.endpoints.filter((e) => e.network === n.name).map((e) => ({ node: x.name, ifname: e.ifname, ip: e.ip, mac: e.mac })));
  return { ...n, nodes };
}

/**
 * `nslab network default`: sets the daemon's options and makes the default network with them, as
 * dockerd does at start (`--bip`, `--fixed-cidr`, `--mtu`, `--bridge`, `--icc`, `--ip-forward`,
 * `--iptables`). Options apply while any network exists; the same options again are a no-op.
 * @throws NslabError INVALID_INPUT when networks exist with other options (nothing changed)
 */
export async function networkDefault(r: Runner, opts: DaemonOptions): Promise<NetworkInfo> {
  return withState((st) =>
    transaction(async (undo) => {
      const names = Object.keys(st.networks);
      if (names.length > 0) {
        const same = JSON.stringify(st.daemon) === JSON.stringify(opts);
        if (same && st.networks[DEFAULT_NETWORK]) return info(st, st.networks[DEFAULT_NETWORK]);
        if (!same) throw invalid(`the daemon's options are set when the first network is made, and networks exist (${names.join(', ')})`, 'remove them first (nslab network rm NAME), then run nslab network default with the new options');
      }
      st.daemon = opts;
      undo.push(async () => {
        st.daemon = { ...DEFAULT_DAEMON };
      });
      return info(st, await networkFor(r, st, DEFAULT_NETWORK, undo));
    }),
  );
}

/**
 * `nslab network create [--subnet CIDR] [--gateway IP] NAME`: a bridge `br-` + 12 hex of a random ID
 * (as Docker names them), the gateway's address on it, and the network's rules. Without `--subnet`
 * the first free pool after the ones in use (172.18.0.0/16, 172.19.0.0/16, …); subnets never overlap.
 * @throws NslabError INVALID_INPUT (name taken, subnet overlapping), APPLY_FAILED (rolled back)
 */
export async function createNetwork(r: Runner, req: NetworkCreateRequest): Promise<NetworkInfo> {
  return withState((st) =>
    transaction(async (undo) => {
      if (st.networks[req.name]) throw invalid(`network ${req.name} exists already (subnet ${st.networks[req.name]!.subnet})`);
      let subnet = req.subnet;
      if (subnet) {
        for (const o of Object.values(st.networks)) if (overlaps(o.subnet, subnet)) throw invalid(`--subnet ${subnet} overlaps network ${o.name}'s subnet ${o.subnet}`);
      } else {
        // The default network keeps its subnet even before its first node: dockerd holds 172.17.0.0/16 from its start.
        const reserved = st.networks[DEFAULT_NETWORK] || st.daemon.bridge ? [] : [st.daemon.bip ? subnetOfBip(st.daemon.bip) : DEFAULT_SUBNET];
        subnet = pickSubnet([...(await takenSubnets(r, st)), ...reserved]);
        if (!subnet) throw invalid('no free subnet left in the default pools: pass --subnet');
      }
      const links = new Set((await readLinks(r, null)).map((l) => l.ifname));
      let id = newId();
      while (links.has(`br-${id.slice(0, 12)}`)) id = newId();
      const rec: NetworkRecord = {
        name: req.name,
        id,
        driver: 'bridge',
        bridge: `br-${id.slice(0, 12)}`,
        external: false,
        subnet,
        gateway: req.gateway ?? parseCidr4('subnet', subnet).net.first,
        ipRange: null,
        mtu: 1500,
        icc: true,
        userSubnet: req.subnet !== null,
        iptables: st.daemon.iptables,
        isDefault: false,
        created: new Date().toISOString(),
        routeLocalnetPrev: null,
      };
      await materialize(r, st, rec, undo);
      return info(st, rec);
    }),
  );
}

/** Nodes connected to a network. */
function connectedTo(st: NetState, network: string): NodeRecord[] {
  return Object.values(st.nodes).filter((n) => n.endpoints.some((e) => e.network === network));
}

/**
 * Checks that every network of `names` can be removed (it exists; no node is connected, unless
 * `force`), so that `network rm A B` with a bad B changes nothing (Docker removes A and reports B).
 * @throws NslabError INVALID_INPUT naming the first network that cannot be removed
 */
export function checkRemovable(st: NetState, names: string[], force: boolean): void {
  for (const name of names) {
    if (isModeNetwork(name)) throw invalid(`network ${name} is predefined: it cannot be removed (as in Docker)`);
    if (!st.networks[name]) throw invalid(`network ${JSON.stringify(name)} not found: nslab network ls lists them`);
    const nodes = connectedTo(st, name);
    if (nodes.length && !force) throw invalid(`network ${name} has ${nodes.length} connected node(s) (${nodes.map((x) => x.name).join(', ')}): disconnect or remove them, or use --force`);
  }
}

/**
 * `nslab network rm NAME… [--force]`: every name checked first (nothing changes when one is bad);
 * nodes wired to a network by a `node run` that was killed (no state, only its journal: its veth on
 * the bridge) count as connected: refused, as Docker refuses while endpoints remain, unless `--force`,
 * which finishes them first (engine/clean). A network whose `network create` was killed is finished
 * from its journal. Then {@link removeNetwork} for each.
 * @throws NslabError INVALID_INPUT (nothing changed)
 */
export async function removeNetworks(r: Runner, names: string[], force: boolean): Promise<Array<{ network: string; disconnected: string[] }>> {
  const st = await readNetState();
  const journals = readJournals();
  const dead = async (j: (typeof journals)[number]) => !(await journalLive(j));
  // A network whose `network create` was killed has no state, only its journal: finished from it.
  const killed: string[] = [];
  for (const j of journals) if (j.owner.startsWith('network ') && names.includes(j.owner.slice(8)) && !st.networks[j.owner.slice(8)] && (await dead(j))) killed.push(j.owner.slice(8));
  const rest = names.filter((n) => !killed.includes(n));
  checkRemovable(st, rest, force);
  const wired: string[] = [];
  for (const j of journals) {
    if (!j.owner.startsWith('node ') || !(await dead(j))) continue;
    const text = JSON.stringify(j.entries);
    const on = rest.filter((n) => text.includes(`"${st.networks[n]!.bridge}"`));
    if (on.length === 0) continue;
    if (!force) throw invalid(`network ${on[0]} has a half-made ${j.owner} wired to it (from a killed \`nslab ${j.argv.join(' ')}\`): nslab node rm ${j.owner.slice(5)} finishes it, or use --force`);
    wired.push(j.owner);
  }
  // Checked all: now change things.
  const finish = [...killed.map((n) => `network ${n}`), ...wired];
  if (finish.length) {
    const rep = await recoverJournals(r, (o) => finish.includes(o));
    if (rep.errors.length) throw new NslabError('COMMAND_FAILED', `network rm: finishing a killed command: ${rep.errors[0]}`, { details: { errors: rep.errors } });
  }
  const out = killed.map((network) => ({ network, disconnected: [] as string[] }));
  for (const name of rest) out.push(await removeNetwork(r, name, { force }));
  return out;
}

/**
 * `nslab network rm NAME [--force]`: refused while nodes are connected, unless `--force`, which
 * disconnects them first. Deletes the network's rules (found by their comment), its bridge (unless
 * external) and, with the last network, the host setup.
 * @throws NslabError INVALID_INPUT (unknown network, nodes connected: nothing changed)
 */
export async function removeNetwork(r: Runner, name: string, opts: { force?: boolean } = {}): Promise<{ network: string; disconnected: string[] }> {
  return withState(async (st) => {
    checkRemovable(st, [name], opts.force === true);
    const n = st.networks[name]!;
    const nodes = connectedTo(st, name);
    for (const node of nodes) await disconnectEndpoint(r, st, node, name);
    const saved = await readIptables(r);
    await deleteOwned(r, saved, (c) => c === ownerNet(name));
    const ops = [];
    if (n.external) {
      if (n.iptables) ops.push(cmdOp(['sysctl', '-q', '-w', `net/ipv4/conf/${n.bridge}/route_localnet=${n.routeLocalnetPrev ?? '0'}`]));
    } else {
      const l = (await readLinks(r, null)).find((x) => x.ifname === n.bridge);
      const m = parseMark(l?.ifalias);
      if (l && m?.kind === 'net' && m.fields.name === name) ops.push(ipOp(null, ['link', 'del', 'dev', n.bridge]));
    }
    const errors = await runUndo(r, ops);
    delete st.networks[name];
    await syncHosts(st);
    await teardownHostIfIdle(r, st);
    if (errors.length) throw new NslabError('COMMAND_FAILED', `network rm ${name}: ${errors[0]}`, { details: { errors } });
    return { network: name, disconnected: nodes.map((x) => x.name) };
  });
}

/** The next free `ethN` of a node. */
function nextIfname(node: NodeRecord): string {
  const used = new Set(node.endpoints.map((e) => e.ifname));
  let i = 0;
  while (used.has(`eth${i}`)) i++;
  return `eth${i}`;
}

/**
 * Connects a node to a network through the attach engine: an address from the network's IPAM (or the
 * static one asked for), Docker's MAC for it, the network's MTU, hairpin mode on the bridge port, and
 * the default route via the gateway on the node's first network only.
 * @throws NslabError INVALID_INPUT for a refused address (outside the subnet, the gateway, in use,
 *   or static on a network made without --subnet)
 */
export async function connectEndpoint(r: Runner, st: NetState, node: NodeRecord, net: NetworkRecord, requestedIp: string | null, undo: Undo): Promise<Endpoint> {
  if (node.endpoints.some((e) => e.network === net.name)) throw invalid(`node ${node.name} is connected to network ${net.name} already`);
  const ip = pickAddress(st, net, requestedIp);
  const ifname = nextIfname(node);
  // The default route goes with the first network, or with this one when the node has none left
  // (its gateway network was disconnected: Docker moves the gateway to a network still connected).
  const primary = !node.endpoints.some((e) => e.gateway);
  const ep: Endpoint = { network: net.name, ifname, ip, prefix: Number(net.subnet.split('/')[1]), mac: dockerMac(ip), gateway: primary ? net.gateway : null };
  await attach(
    r,
    {
      guest: node.netns!,
      hostIf: net.bridge,
      ifname,
      addresses: [{ kind: 'static', cidr: `${ip}/${ep.prefix}`, ...(primary ? { gateway: net.gateway } : {}) }],
      mac: ep.mac,
      mtu: net.mtu,
      routes: [],
      hostAccess: false,
      direct: false,
      hairpin: true,
    },
    // Addresses come from this network's state, under its lock: no guest read is needed to keep them unique.
    { announce: false, checkAddresses: false },
  );
  undo.push(() => detach(r, node.netns!, ifname));
  node.endpoints.push(ep);
  undo.push(async () => {
    node.endpoints = node.endpoints.filter((e) => e !== ep);
  });
  return ep;
}

/** Disconnects a node from a network: its published ports there, its interface (attach's detach), its address. */
export async function disconnectEndpoint(r: Runner, st: NetState, node: NodeRecord, network: string): Promise<void> {
  const ep = node.endpoints.find((e) => e.network === network);
  if (!ep) return;
  if (node.ports.some((p) => p.network === network)) {
    await deleteOwned(r, await readIptables(r), (c) => c === ownerNode(node.name));
    node.unpublished = [...(node.unpublished ?? []), ...node.ports.filter((p) => p.network === network)];
    node.ports = node.ports.filter((p) => p.network !== network);
  }
  await detach(r, node.netns!, ep.ifname).catch((err: unknown) => {
    if (!(err instanceof NslabError && err.code === 'NOT_FOUND')) throw err;
  });
  node.endpoints = node.endpoints.filter((e) => e !== ep);
  // It carried the default route: the next network still connected takes it over, as in Docker.
  const next = ep.gateway ? node.endpoints[0] : undefined;
  const gw = next ? st.networks[next.network]?.gateway : undefined;
  if (next && gw) {
    const res = await r.batch('ip', node.netns!, [['route', 'replace', 'default', 'via', gw, 'dev', next.ifname]]);
    if (res.failed.length) throw new NslabError('COMMAND_FAILED', `node ${node.name}: default route via ${gw} dev ${next.ifname}: ${res.failed[0]!.message}`);
    next.gateway = gw;
  }
}

function connectable(node: NodeRecord | undefined, name: string): NodeRecord {
  if (!node) throw invalid(`node ${JSON.stringify(name)} not found: nslab node ls lists them`);
  if (node.mode.kind !== 'network') throw invalid(`node ${name} runs with --net ${node.mode.kind === 'container' ? `container:${node.mode.other}` : node.mode.kind}: it cannot be connected to or disconnected from networks (as in Docker)`);
  return node;
}

/**
 * `nslab network connect [--ip IP] NETWORK NODE`: the node gets the next `ethN` on the network.
 * @throws NslabError INVALID_INPUT (unknown network or node, a node in none/host/container mode, a refused address)
 */
export async function connectNetwork(r: Runner, network: string, nodeName: string, ip: string | null): Promise<Endpoint> {
  return withState((st) =>
    transaction(async (undo) => {
      undo.push(() => syncHosts(st));
      const node = connectable(st.nodes[nodeName], nodeName);
      // Before networkFor, which makes the default network on first use (and in connectEndpoint's order).
      if (node.endpoints.some((e) => e.network === network)) throw invalid(`node ${node.name} is connected to network ${network} already`);
      precheckNetwork(st, network, ip);
      const net = await networkFor(r, st, network, undo);
      const ep = await connectEndpoint(r, st, node, net, ip, undo);
      await republish(r, st, node, net, ep, undo);
      await syncHosts(st);
      return ep;
    }),
  );
}

/** Publishes again, at the node's new address, the ports it had on `net` before a disconnect. */
async function republish(r: Runner, st: NetState, node: NodeRecord, net: NetworkRecord, ep: Endpoint, undo: Undo): Promise<void> {
  const again = (node.unpublished ?? []).filter((p) => p.network === net.name).map((p) => ({ ...p, ip: ep.ip }));
  if (!again.length || !net.iptables) return;
  for (const b of again) {
    const clash = Object.values(st.nodes).filter((n) => n !== node).flatMap((n) => n.ports.map((p) => ({ ...p, node: n.name }))).find((u) => portsCollide(u, b));
    if (clash) throw invalid(`node ${node.name} published ${b.hostIp}:${b.hostPort}/${b.proto} on ${net.name} before; node ${clash.node} has that host port now (Docker: port is already allocated)`);
  }
  const [ports, unpublished] = [node.ports, node.unpublished];
  undo.push(async () => {
    node.ports = ports;
    node.unpublished = unpublished;
  });
  const applied = await applySteps(r, planPorts(node.name, () => net.bridge, again));
  undo.push(() => runUndo(r, applied.undo));
  node.ports = [...node.ports, ...again];
  node.unpublished = (node.unpublished ?? []).filter((p) => p.network !== net.name);
  if (!node.unpublished.length) delete node.unpublished;
}

/**
 * `nslab network disconnect NETWORK NODE`: removes the node's interface on that network and releases its address.
 * @throws NslabError INVALID_INPUT (unknown network or node, not connected)
 */
export async function disconnectNetwork(r: Runner, network: string, nodeName: string): Promise<Endpoint> {
  return withState(async (st) => {
    const node = connectable(st.nodes[nodeName], nodeName);
    refuseModeNetwork(network);
    if (!st.networks[network]) throw invalid(`network ${JSON.stringify(network)} not found: nslab network ls lists them`);
    const ep = node.endpoints.find((e) => e.network === network);
    if (!ep) throw invalid(`node ${nodeName} is not connected to network ${network}`);
    await disconnectEndpoint(r, st, node, network);
    await syncHosts(st);
    return ep;
  });
}

/** The networks, in creation order, with their nodes. */
export async function listNetworks(): Promise<NetworkInfo[]> {
  const { readNetState } = await import('./netstate.js');
  const st = await readNetState();
  return Object.values(st.networks)
    .sort((a, b) => a.created.localeCompare(b.created))
    .map((n) => info(st, n));
}

/**
 * `nslab network inspect NAME…` as `docker network inspect` prints it (Name, Id, Driver, IPAM.Config,
 * Containers, Options), with nslab's bridge name in Options as Docker's `com.docker.network.bridge.name`.
 * @throws NslabError INVALID_INPUT for an unknown name
 */
export async function inspectNetworks(names: string[]): Promise<unknown[]> {
  const { readNetState } = await import('./netstate.js');
  const st = await readNetState();
  return names.map((name) => {
    const n = st.networks[name];
    if (!n) throw invalid(`network ${JSON.stringify(name)} not found: nslab network ls lists them`);
    const containers: Record<string, unknown> = {};
    for (const x of info(st, n).nodes) containers[x.node] = { Name: x.node, Interface: x.ifname, MacAddress: x.mac, IPv4Address: `${x.ip}/${n.subnet.split('/')[1]}`, IPv6Address: '' };
    return {
      Name: n.name,
      Id: n.id,
      Created: n.created,
      Scope: 'local',
      Driver: n.driver,
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway, ...(n.ipRange ? { IPRange: n.ipRange } : {}) }] },
      Internal: false,
      Containers: containers,
      Options: {
        'com.docker.network.bridge.name': n.bridge,
        'com.docker.network.bridge.enable_icc': String(n.icc),
        'com.docker.network.bridge.enable_ip_masquerade': String(n.iptables),
        'com.docker.network.driver.mtu': String(n.mtu),
        ...(n.isDefault ? { 'com.docker.network.bridge.default_bridge': 'true' } : {}),
      },
      Labels: {},
    };
  });
}
