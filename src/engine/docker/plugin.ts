// `nslab docker plugin`: Docker's remote network driver and IPAM protocol (JSON over HTTP on a unix
// socket), so `docker network create -d nslab` wires containers with nslab's kernel modules.
// Protocol: moby/libnetwork docs/remote.md and docs/ipam.md (Plugin.Activate, NetworkDriver.*,
// IpamDriver.*); errors are `{"Err": "..."}`.
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIP } from '../../model/ip-family.js';
import netmask from 'netmask';
import type { Runner } from '../../exec/runner.js';
import { stateDir } from '../../paths.js';
import { NslabError, invalid } from '../../errors.js';
import { readLinks } from '../../kernel/link.js';
import { addOvsBridge, addOvsPort, ovsBridgeExists, ovsKernelDatapath, vsctl } from '../../kernel/ovs.js';
import { cmdOp, ipOp, type Op, type Step } from '../../kernel/step.js';
import { addVeth } from '../../kernel/veth.js';
import { addMacvlan } from '../../kernel/macvlan.js';
import { allocate, dockerMac, pickSubnet } from '../../model/ipam.js';
import { mark, parseMark } from '../../model/marks.js';
import { ifnameProblem, shortHash } from '../../model/names.js';
import { applySteps, runUndo } from '../apply.js';
import { removeBridgeIfUnused } from '../attach/attach.js';

const { Netmask } = netmask;

/** One network Docker made with `-d nslab`: where its endpoints go. */
interface PluginNetwork {
  kind: 'bridge' | 'ovs' | 'macvlan';
  /** The Linux or OVS bridge, or the macvlan parent. */
  host: string;
  vlan?: number;
  /** `ADDR/LEN` put on a bridge nslab made (Docker's bridge driver does the same with its gateway). */
  gateway?: string;
  mtu?: number;
}

/** One endpoint: its host end (veth) or nothing (macvlan), and the name Docker moves into the container. */
interface PluginEndpoint {
  network: string;
  host: string | null;
  peer: string;
}

/** An IPAM pool: its subnet, gateway, and the addresses handed out. */
interface PluginPool {
  subnet: string;
  gateway: string | null;
  used: string[];
}

interface PluginState {
  networks: Record<string, PluginNetwork>;
  endpoints: Record<string, PluginEndpoint>;
  pools: Record<string, PluginPool>;
}

/** Options a network takes (`docker network create -d nslab --opt KEY=VALUE`). */
export const PLUGIN_OPTIONS = {
  'nslab.bridge': 'a Linux bridge (made when missing), or an Open vSwitch bridge (a name starting with ovs, or nslab.ovs=true)',
  'nslab.vlan': 'VLAN tag 1-4094 of the OVS access ports',
  'nslab.parent': 'a host interface: endpoints are macvlan children of it (instead of nslab.bridge)',
  'nslab.ovs': 'true: nslab.bridge is an Open vSwitch bridge whatever its name',
  'nslab.mtu': 'MTU of the endpoints in bytes',
} as const;

/**
 * Parses a network's options into where its endpoints go (pure).
 * @param opts the `com.docker.network.generic` options of CreateNetwork
 * @param gateway the IPv4 gateway Docker's IPAM gave (`ADDR/LEN`), if any
 * @throws NslabError INVALID_INPUT naming the option and what was expected
 */
export function networkFromOptions(opts: Record<string, unknown>, gateway: string | undefined): PluginNetwork {
  for (const k of Object.keys(opts)) if (k.startsWith('nslab.') && !(k in PLUGIN_OPTIONS)) throw invalid(`option ${k}: unknown; expected one of ${Object.keys(PLUGIN_OPTIONS).join(', ')}`);
  const str = (k: string) => (opts[k] === undefined ? undefined : String(opts[k]));
  const bridge = str('nslab.bridge');
  const parent = str('nslab.parent');
  if (!bridge === !parent) throw invalid('docker network create -d nslab needs exactly one of --opt nslab.bridge=NAME or --opt nslab.parent=IFNAME');
  const name = (bridge ?? parent)!;
  const bad = ifnameProblem(name);
  if (bad) throw invalid(`option ${bridge ? 'nslab.bridge' : 'nslab.parent'}=${JSON.stringify(name)}: ${bad}`);
  let vlan: number | undefined;
  if (str('nslab.vlan') !== undefined) {
    vlan = Number(str('nslab.vlan'));
    if (!Number.isInteger(vlan) || vlan < 1 || vlan > 4094) throw invalid(`option nslab.vlan=${JSON.stringify(str('nslab.vlan'))}: expected a VLAN tag from 1 to 4094`);
  }
  let mtu: number | undefined;
  if (str('nslab.mtu') !== undefined) {
    mtu = Number(str('nslab.mtu'));
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(`option nslab.mtu=${JSON.stringify(str('nslab.mtu'))}: expected an MTU from 68 to 65535 bytes`);
  }
  const ovs = bridge !== undefined && (name.startsWith('ovs') || str('nslab.ovs') === 'true');
  if (vlan !== undefined && !ovs) throw invalid(`option nslab.vlan=${vlan}: VLAN tags need an Open vSwitch bridge (nslab.bridge=ovs..., or nslab.ovs=true)`);
  const kind = parent ? 'macvlan' : ovs ? 'ovs' : 'bridge';
  return { kind, host: name, ...(vlan !== undefined ? { vlan } : {}), ...(mtu !== undefined ? { mtu } : {}), ...(gateway && kind === 'bridge' ? { gateway } : {}) };
}

/** The Docker network plugin: the driver's and the IPAM's answers, over nslab's kernel modules. */
export class DockerPlugin {
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * @param r the runner every kernel change goes through
   * @param file where the plugin keeps its networks, endpoints and pools (JSON)
   */
  constructor(private readonly r: Runner, private readonly file = join(stateDir(), 'docker-plugin', 'state.json')) {}

  private load(): PluginState {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as PluginState;
    } catch {
      return { networks: {}, endpoints: {}, pools: {} };
    }
  }

  private save(st: PluginState): void {
    if (!Object.keys(st.networks).length && !Object.keys(st.endpoints).length && !Object.keys(st.pools).length) {
      rmSync(this.file, { force: true });
      return;
    }
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify(st, null, 1));
    renameSync(`${this.file}.tmp`, this.file);
  }

  /**
   * Answers one call (`/NetworkDriver.CreateEndpoint` and so on), one at a time: Docker may call
   * concurrently, the state file and the kernel see them in order.
   * @returns the JSON answer
   * @throws Error whose message becomes the `Err` of the answer
   */
  handle(path: string, body: Record<string, any>): Promise<unknown> {
    const next = this.queue.then(() => this.dispatch(path, body));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async dispatch(path: string, b: Record<string, any>): Promise<unknown> {
    switch (path) {
      case '/Plugin.Activate':
        return { Implements: ['NetworkDriver', 'IpamDriver'] };
      case '/NetworkDriver.GetCapabilities':
        return { Scope: 'local', ConnectivityScope: 'local' };
      case '/NetworkDriver.CreateNetwork':
        return this.createNetwork(String(b.NetworkID), (b.Options?.['com.docker.network.generic'] ?? {}) as Record<string, unknown>, (b.IPv4Data ?? [])[0]?.Gateway as string | undefined);
      case '/NetworkDriver.DeleteNetwork':
        return this.deleteNetwork(String(b.NetworkID));
      case '/NetworkDriver.CreateEndpoint':
        return this.createEndpoint(String(b.NetworkID), String(b.EndpointID), (b.Interface ?? {}) as { Address?: string; MacAddress?: string });
      case '/NetworkDriver.DeleteEndpoint':
        return this.deleteEndpoint(String(b.EndpointID));
      case '/NetworkDriver.EndpointOperInfo':
        return { Value: {} };
      case '/NetworkDriver.Join':
        return this.join(String(b.NetworkID), String(b.EndpointID));
      case '/NetworkDriver.Leave':
      case '/NetworkDriver.DiscoverNew':
      case '/NetworkDriver.DiscoverDelete':
      case '/NetworkDriver.ProgramExternalConnectivity':
      case '/NetworkDriver.RevokeExternalConnectivity':
      case '/NetworkDriver.AllocateNetwork':
      case '/NetworkDriver.FreeNetwork':
        return {};
      case '/IpamDriver.GetCapabilities':
        return { RequiresMACAddress: false, RequiresRequestReplay: false };
      case '/IpamDriver.GetDefaultAddressSpaces':
        return { LocalDefaultAddressSpace: 'nslab-local', GlobalDefaultAddressSpace: 'nslab-global' };
      case '/IpamDriver.RequestPool':
        return this.requestPool(String(b.Pool ?? ''), Boolean(b.V6));
      case '/IpamDriver.ReleasePool':
        return this.releasePool(String(b.PoolID));
      case '/IpamDriver.RequestAddress':
        return this.requestAddress(String(b.PoolID), String(b.Address ?? ''), (b.Options ?? {}) as Record<string, string>);
      case '/IpamDriver.ReleaseAddress':
        return this.releaseAddress(String(b.PoolID), String(b.Address ?? ''));
      default:
        throw new NslabError('INVALID_INPUT', `unknown plugin call ${path}`);
    }
  }

  private async createNetwork(id: string, opts: Record<string, unknown>, gateway: string | undefined): Promise<unknown> {
    const net = networkFromOptions(opts, gateway);
    const links = await readLinks(this.r, null);
    const steps: Step[] = [];
    if (net.kind === 'macvlan') {
      if (!links.some((l) => l.ifname === net.host)) throw invalid(`option nslab.parent=${net.host}: no such interface here`);
    } else if (net.kind === 'ovs') {
      if (!(await ovsBridgeExists(this.r, net.host))) steps.push(addOvsBridge(net.host, !ovsKernelDatapath().available));
    } else {
      const have = links.find((l) => l.ifname === net.host);
      if (have && have.linkinfo?.info_kind !== 'bridge') throw invalid(`option nslab.bridge=${net.host}: ${net.host} exists and is not a bridge (${have.linkinfo?.info_kind ?? 'device'})`);
      if (!have) {
        steps.push({ describe: `add bridge ${net.host}`, do: ipOp(null, ['link', 'add', 'name', net.host, 'type', 'bridge']), undo: [ipOp(null, ['link', 'del', 'dev', net.host])] });
        steps.push({ describe: `mark ${net.host}`, do: ipOp(null, ['link', 'set', 'dev', net.host, 'alias', mark('bridge', { dnet: id.slice(0, 12) })]), undo: [] });
        steps.push({ describe: `set ${net.host} up`, do: ipOp(null, ['link', 'set', 'dev', net.host, 'up']), undo: [] });
      }
      // The gateway on the bridge, as Docker's bridge driver has it: containers reach the host.
      if (net.gateway) steps.push({ describe: `gateway ${net.gateway} on ${net.host}`, do: ipOp(null, ['addr', 'replace', net.gateway, 'dev', net.host]), undo: [ipOp(null, ['addr', 'del', net.gateway, 'dev', net.host])] });
    }
    await applySteps(this.r, steps);
    const st = this.load();
    st.networks[id] = net;
    this.save(st);
    return {};
  }

  private async deleteNetwork(id: string): Promise<unknown> {
    const st = this.load();
    const net = st.networks[id];
    if (!net) return {};
    if (net.gateway) await runUndo(this.r, [ipOp(null, ['addr', 'del', net.gateway, 'dev', net.host])]);
    delete st.networks[id];
    this.save(st);
    // A bridge nslab made goes once nothing uses it (no port, no address, no bound socket).
    if (net.kind !== 'macvlan') await removeBridgeIfUnused(this.r, net.host).catch(() => false);
    return {};
  }

  private async createEndpoint(netId: string, epId: string, iface: { Address?: string; MacAddress?: string }): Promise<unknown> {
    const st = this.load();
    const net = st.networks[netId];
    if (!net) throw new NslabError('NOT_FOUND', `network ${netId.slice(0, 12)} is not one of nslab's (was the plugin's state lost?)`);
    const h = shortHash([epId], 10);
    const peer = `nsc${h}`;
    const ip = iface.Address ? iface.Address.split('/')[0]! : '';
    const mac = iface.MacAddress || (isIP(ip) === 4 ? dockerMac(ip) : undefined);
    const owner = { guest: `docker-ep:${epId.slice(0, 12)}`, if: peer, dnet: netId.slice(0, 12) };
    const steps: Step[] = [];
    let host: string | null = null;
    if (net.kind === 'macvlan') {
      steps.push(addMacvlan(net.host, peer, null, { ...(net.mtu ? { mtu: net.mtu } : {}), ...(mac ? { mac } : {}) }));
    } else {
      host = `nsh${h}`;
      steps.push(addVeth({ name: host, netns: null, ...(net.mtu ? { mtu: net.mtu } : {}) }, { name: peer, netns: null, ...(net.mtu ? { mtu: net.mtu } : {}), ...(mac ? { mac } : {}) }));
      steps.push({ describe: `mark ${host}`, do: ipOp(null, ['link', 'set', 'dev', host, 'alias', mark('attach', owner)]), undo: [] });
      if (net.kind === 'bridge') steps.push({ describe: `${host} into bridge ${net.host}`, do: ipOp(null, ['link', 'set', 'dev', host, 'master', net.host]), undo: [] });
      else {
        steps.push(addOvsPort(net.host, host, net.vlan, { 'nslab-guest': owner.guest, 'nslab-ifname': peer }));
        // The userspace datapath drops TCP/UDP with offloaded checksums from veths: computed in
        // software on the end that goes into the container (the setting moves with it).
        if (!ovsKernelDatapath().available) steps.push({ describe: `software checksums on ${peer}`, do: cmdOp(['ethtool', '-K', peer, 'tx', 'off']), undo: [] });
      }
      steps.push({ describe: `set ${host} up`, do: ipOp(null, ['link', 'set', 'dev', host, 'up']), undo: [] });
    }
    await applySteps(this.r, steps);
    st.endpoints[epId] = { network: netId, host, peer };
    this.save(st);
    // A MAC Docker did not give is the driver's to return (remote.md); one it gave must not come back.
    return iface.MacAddress || !mac ? {} : { Interface: { MacAddress: mac } };
  }

  private async deleteEndpoint(epId: string): Promise<unknown> {
    const st = this.load();
    const ep = st.endpoints[epId];
    if (!ep) return {};
    const net = st.networks[ep.network];
    const ops: Op[] = [];
    if (net?.kind === 'ovs' && ep.host) ops.push(cmdOp(vsctl('--if-exists', 'del-port', net.host, ep.host)));
    // Docker gives the container end back to this netns when the container leaves (or it went with it).
    const here = new Set((await readLinks(this.r, null)).map((l) => l.ifname));
    for (const n of [ep.host, ep.peer]) if (n && here.has(n)) ops.push(ipOp(null, ['link', 'del', 'dev', n]));
    const errors = await runUndo(this.r, ops);
    if (errors.length) throw new NslabError('COMMAND_FAILED', `delete endpoint ${epId.slice(0, 12)}: ${errors[0]}`);
    delete st.endpoints[epId];
    this.save(st);
    return {};
  }

  private join(netId: string, epId: string): unknown {
    const st = this.load();
    const ep = st.endpoints[epId];
    if (!ep) throw new NslabError('NOT_FOUND', `endpoint ${epId.slice(0, 12)} was not created by nslab`);
    const net = st.networks[netId];
    return { InterfaceName: { SrcName: ep.peer, DstPrefix: 'eth' }, ...(net?.gateway ? { Gateway: net.gateway.split('/')[0] } : {}) };
  }

  private async requestPool(pool: string, v6: boolean): Promise<unknown> {
    const st = this.load();
    if (v6 && !pool) throw invalid('IPv6 on an nslab network needs its subnet: docker network create --ipv6 --subnet FD00::/64 ...');
    let subnet = pool;
    if (!subnet) {
      // nslab's IPAM: the first of Docker's default pools that overlaps no pool of ours nor a route here.
      const routes = (JSON.parse((await this.r.run({ argv: ['ip', '-j', '-4', 'route', 'show'] })).stdout || '[]') as Array<{ dst: string }>).map((x) => (x.dst === 'default' ? '' : x.dst.includes('/') ? x.dst : `${x.dst}/32`)).filter(Boolean);
      const picked = pickSubnet([...Object.values(st.pools).map((p) => p.subnet).filter((s) => isIP(s.split('/')[0]!) === 4), ...routes]);
      if (!picked) throw invalid('every default address pool is in use: give the network its subnet (--subnet)');
      subnet = picked;
    } else if (isIP(subnet.split('/')[0]!) === 4) {
      subnet = `${new Netmask(subnet).base}/${new Netmask(subnet).bitmask}`;
      for (const p of Object.values(st.pools)) if (isIP(p.subnet.split('/')[0]!) === 4 && new Netmask(p.subnet).contains(new Netmask(subnet).base)) throw invalid(`subnet ${subnet} overlaps ${p.subnet}, which another nslab network uses`);
    }
    const id = `nslab-${subnet}`;
    st.pools[id] = { subnet, gateway: null, used: [] };
    this.save(st);
    return { PoolID: id, Pool: subnet, Data: {} };
  }

  private releasePool(id: string): unknown {
    const st = this.load();
    delete st.pools[id];
    this.save(st);
    return {};
  }

  private requestAddress(id: string, want: string, opts: Record<string, string>): unknown {
    const st = this.load();
    const p = st.pools[id];
    if (!p) throw new NslabError('NOT_FOUND', `address pool ${id} is not one of nslab's`);
    const len = p.subnet.split('/')[1]!;
    if (isIP(p.subnet.split('/')[0]!) !== 4) {
      if (!want) throw invalid(`IPv6 pool ${p.subnet}: nslab hands out only the addresses asked for (--ip6)`);
      p.used.push(want);
      this.save(st);
      return { Address: `${want}/${len}`, Data: {} };
    }
    let ip: string;
    if (opts.RequestAddressType === 'com.docker.network.gateway') {
      const net = new Netmask(p.subnet);
      ip = want || net.first;
      if (!net.contains(ip)) throw invalid(`gateway ${ip} is outside ${p.subnet}`);
      p.gateway = ip;
    } else {
      ip = allocate({ subnet: p.subnet, range: p.subnet, gateway: p.gateway ?? '' }, new Set(p.used), want || null);
    }
    p.used.push(ip);
    this.save(st);
    return { Address: `${ip}/${len}`, Data: {} };
  }

  private releaseAddress(id: string, addr: string): unknown {
    const st = this.load();
    const p = st.pools[id];
    if (p) {
      p.used = p.used.filter((x) => x !== addr.split('/')[0]);
      if (p.gateway === addr.split('/')[0]) p.gateway = null;
      this.save(st);
    }
    return {};
  }
}

/**
 * Serves the plugin on a unix socket (`/run/docker/plugins/nslab.sock` by default, where dockerd
 * finds `-d nslab` by its name). A socket left by a plugin that died is replaced.
 * @param r the runner
 * @param socket the socket's path
 * @returns the listening server; close() stops it and removes the socket
 */
export async function servePlugin(r: Runner, socket: string, log: (line: string) => void = () => {}): Promise<Server> {
  const plugin = new DockerPlugin(r);
  mkdirSync(dirname(socket), { recursive: true });
  if (existsSync(socket)) rmSync(socket, { force: true });
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      let body: Record<string, any> = {};
      try {
        body = data ? (JSON.parse(data) as Record<string, any>) : {};
      } catch {
        /* an empty or bad body: the call answers for itself */
      }
      plugin
        .handle(path, body)
        .then((out) => {
          log(`${path} ok`);
          res.writeHead(200, { 'Content-Type': 'application/vnd.docker.plugins.v1+json' }).end(JSON.stringify(out));
        })
        .catch((err: Error) => {
          log(`${path} failed: ${err.message}`);
          res.writeHead(500, { 'Content-Type': 'application/vnd.docker.plugins.v1+json' }).end(JSON.stringify({ Err: err.message }));
        });
    });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(socket, () => res());
  });
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    rmSync(socket, { force: true });
    return close(cb);
  }) as typeof server.close;
  return server;
}

/** True when an alias is a Docker-plugin endpoint's host end (`nslab:attach guest=docker-ep:...`). */
export function isPluginEndpoint(alias: string | undefined): boolean {
  return parseMark(alias)?.fields.guest?.startsWith('docker-ep:') === true;
}
