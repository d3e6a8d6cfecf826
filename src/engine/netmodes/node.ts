// Nodes: Docker's four network modes on plain network namespaces, with published ports, links,
// names, and an optional long-running process whose PID is kept and stopped on rm.
import { startTime, startTimeSync } from '../../kernel/proc.js';
import { activeJournal, readJournals } from '../clean/journal.js';
import { recoverJournals } from '../clean/clean.js';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { recordCall } from '../../exec/runner.js';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import type { Runner } from '../../exec/runner.js';
import { NETNS_DIR } from '../../exec/runner.js';
import { invalid, NslabError } from '../../errors.js';
import { deleteOwned, readIptables } from '../../kernel/iptables.js';
import { deleteNetns, netnsPids, namedNetnsInode, pidNetnsInode } from '../../kernel/netns.js';
import { listeningPorts, pickHostPort, portsCollide, type HostPortUse } from '../../model/ipam.js';
import { formatNetMode, linkEnv, type Exposed, type LinkSpec, type NetMode, type PortSpec } from '../../model/netmodes.js';
import { applySteps, runUndo } from '../apply.js';
import { ETC_NETNS, removeEtc, shareEtc, sharedIp, syncHosts } from '../hosts/hosts.js';
import { connectEndpoint, networkFor, precheckNetwork, transaction, type Undo } from './network.js';
import { ownerNode, planLinkOpenings, planNodeNetns, planPorts, planSharedNetns } from './netplan.js';
import { nodeLog, readNetState, withState, type NetState, type NodeRecord, type PortBinding } from './netstate.js';

/** What `nslab node run` asks for. */
export interface NodeRunRequest {
  name: string;
  mode: NetMode;
  /** A static address on the node's network (`--ip`). */
  ip: string | null;
  hostname: string | null;
  publish: PortSpec[];
  /** `-P`: publish every exposed port on a host port from 49000-49900. */
  publishAll: boolean;
  expose: Exposed[];
  links: LinkSpec[];
  /** The node's long-running process, or null for none. */
  cmd: string[] | null;
}

/**
 * Checks what can be checked without the state: flags that make no sense in a mode (Docker's
 * "conflicting options"). Published ports need a network; `--hostname` is the host's in host mode
 * and the other node's in container mode.
 * @throws NslabError INVALID_INPUT naming the flag
 */
export function checkRunRequest(req: NodeRunRequest): void {
  const m = req.mode;
  const where = `--net ${formatNetMode(m)}`;
  if (m.kind !== 'network') {
    if (req.ip !== null) throw invalid(`--ip ${req.ip} with ${where}: a static address needs a network (bridge or user-defined)`);
    if (req.publish.length || req.publishAll) throw invalid(`-p/-P with ${where}: ports are published on a network's bridge only${m.kind === 'host' ? ' (in host mode the node uses the host\'s ports directly)' : ''}`);
    if (req.links.length) throw invalid(`--link with ${where}: links need a network the two nodes share`);
  }
  if (req.hostname !== null && (m.kind === 'host' || m.kind === 'container')) throw invalid(`--hostname with ${where}: conflicting options, the node takes ${m.kind === 'host' ? "the host's" : `${m.other}'s`} hostname (as in Docker)`);
  if (req.hostname !== null && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(req.hostname)) throw invalid(`--hostname ${JSON.stringify(req.hostname)}: expected a host name (letters, digits, . and -, at most 63)`);
  if (req.mode.kind === 'container' && req.mode.other === req.name) throw invalid(`--net container:${req.name}: a node cannot share its own netns`);
}

/** Host ports in use: every published port, and the host's listening sockets (IPv4, and IPv6 on `::`). */
async function hostPortsInUse(st: NetState): Promise<{ published: Array<HostPortUse & { node?: string }>; listening: HostPortUse[] }> {
  const published = Object.values(st.nodes).flatMap((n) => n.ports.map((p) => ({ ...p, node: n.name })));
  const listening: HostPortUse[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    for (const file of [proto, `${proto}6`]) listening.push(...listeningPorts(await readFile(`/proc/net/${file}`, 'utf8').catch(() => ''), proto));
  }
  return { published, listening };
}

/**
 * The node's port bindings: `-p` as given (a host port already published on the same address, or on
 * 0.0.0.0, is refused as Docker's "port is already allocated"; one a host socket listens on, as its
 * "address already in use"), then `-P` for every exposed port not
 * published yet; missing host ports are picked from 49000-49900.
 */
function bindPorts(req: NodeRunRequest, use: { published: Array<HostPortUse & { node?: string }>; listening: HostPortUse[] }, network: string, ip: string): PortBinding[] {
  const out: PortBinding[] = [];
  const taken = (): Array<HostPortUse & { node?: string }> => [...use.published, ...out.map((p) => ({ ...p, node: req.name }))];
  const specs = [...req.publish];
  if (req.publishAll) for (const e of req.expose) if (!specs.some((s) => s.containerPort === e.port && s.proto === e.proto)) specs.push({ hostIp: '0.0.0.0', hostPort: null, containerPort: e.port, proto: e.proto });
  const own = hostAddresses();
  for (const s of specs) {
    // The host must have the address (Docker binds it: "cannot assign requested address").
    if (s.hostIp !== '0.0.0.0' && !own.has(s.hostIp)) throw invalid(`-p ${s.hostIp}:${s.hostPort ?? ''}:${s.containerPort}/${s.proto}: ${s.hostIp} is not an address of the host (Docker: cannot assign requested address)`);
    let hostPort = s.hostPort;
    if (hostPort === null) hostPort = pickHostPort(s.proto, s.hostIp, [...taken(), ...use.listening]);
    else {
      const clash = taken().find((u) => portsCollide(u, { proto: s.proto, hostIp: s.hostIp, hostPort: hostPort! }));
      if (clash) throw invalid(`-p ${s.hostIp}:${hostPort}:${s.containerPort}/${s.proto}: host port ${hostPort}/${s.proto} on ${clash.hostIp} is already published by node ${clash.node} (Docker: port is already allocated)`);
      // A service of the host's own listens there: DNAT would take its traffic (Docker: address already in use).
      const busy = use.listening.find((u) => portsCollide(u, { proto: s.proto, hostIp: s.hostIp, hostPort: hostPort! }));
      if (busy) throw invalid(`-p ${s.hostIp}:${hostPort}:${s.containerPort}/${s.proto}: host port ${hostPort}/${s.proto} is in use by a socket of the host listening on ${busy.hostIp} (Docker: address already in use)`);
    }
    out.push({ proto: s.proto, hostIp: s.hostIp, hostPort, containerPort: s.containerPort, network, ip });
  }
  return out;
}

/** The IPv4 addresses of this netns's interfaces (node's os.networkInterfaces: no process). */
function hostAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address)));
}

/** True while the node's process runs (same PID and start time). */
export async function isRunning(n: NodeRecord): Promise<boolean> {
  return n.pid !== null && (await startTime(n.pid)) === n.pidStart;
}

/** The environment of a node's process and of `node exec`: PATH, HOSTNAME, HOME, and the link variables. */
function nodeEnv(n: NodeRecord): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: n.hostname, HOME: '/root', ...n.env };
}

/**
 * The argv that runs `cmd` in a node: `ip netns exec NETNS` (which also puts /etc/netns/NETNS/hosts
 * and hostname over /etc), then a new UTS namespace with the node's hostname (Docker's `-h`), as a
 * fixed script with the command as "$@". Host mode: the command as it is.
 */
export function nodeArgv(n: NodeRecord, cmd: string[]): string[] {
  if (n.netns === null) return cmd;
  return ['ip', 'netns', 'exec', n.netns, 'unshare', '--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', n.hostname, ...cmd];
}

/**
 * Starts the node's process, detached, output to its log, and waits until it is inside the node's
 * netns (a process started through `ip netns exec` is in the parent's for a moment) and still alive
 * a moment later, so a command that fails at once is reported, not recorded as running.
 */
async function startProcess(n: NodeRecord, cmd: string[]): Promise<{ pid: number; start: string }> {
  const log = nodeLog(n.name);
  mkdirSync(dirname(log), { recursive: true }); // the state folders go when empty (netstate.ts)
  const fd = openSync(log, 'a');
  const argv = nodeArgv(n, cmd);
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: nodeEnv(n) });
  closeSync(fd);
  recordCall({ type: 'run', cmd: { argv, background: true } });
  const exited = new Promise<number>((res) => child.once('exit', (code) => res(code ?? 1)));
  await new Promise<void>((res, rej) => {
    child.once('spawn', () => res());
    child.once('error', (e) => rej(new NslabError('MISSING_TOOL', `node ${n.name}: cannot start ${argv[0]}: ${e.message}`)));
  });
  const pid = child.pid!;
  child.unref();
  activeJournal()?.write({ t: 'process', pid, start: startTimeSync(pid), argv });
  const want = n.netns ? await namedNetnsInode(n.netns) : await pidNetnsInode('self');
  const deadline = Date.now() + 2000;
  let dead: number | null = null;
  void exited.then((c) => (dead = c));
  while (Date.now() < deadline && dead === null && (await pidNetnsInode(pid).catch(() => -1)) !== want) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 150));
  const start = await startTime(pid);
  if (dead !== null || start === null) {
    const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-2).join(' ');
    throw new NslabError('COMMAND_FAILED', `node ${n.name}: ${cmd.join(' ')} exited at once${dead !== null ? ` (exit code ${dead})` : ''}${tail ? `: ${tail}` : ''}`);
  }
  return { pid, start };
}

/**
 * Stops the node's process: SIGTERM to its process group, SIGKILL after 3 s; never a process whose
 * start time differs from the recorded one (a reused PID). With its own netns, any process left in
 * it (from `node exec`) is stopped too, as Docker stops all of a container's processes: a netns with
 * a process inside outlives its name, and with it its veths.
 */
async function stopProcesses(r: Runner, n: NodeRecord): Promise<void> {
  const pids: number[] = [];
  if (await isRunning(n)) pids.push(-n.pid!);
  if (n.netns && n.mode.kind !== 'container' && existsSync(`${NETNS_DIR}/${n.netns}`)) pids.push(...(await netnsPids(r, n.netns).catch(() => [])));
  for (const p of pids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const alive = async () => (await Promise.all(pids.map(async (p) => (p < 0 ? (await startTime(-p)) === n.pidStart : (await startTime(p)) !== null)))).some(Boolean);
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && (await alive())) await new Promise((res) => setTimeout(res, 20));
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** What `node run`, `ls` and `inspect` report of a node. */
export interface NodeInfo extends NodeRecord {
  running: boolean;
}

/**
 * `nslab node run NAME …`: makes a node in the asked mode (see {@link NetMode}), connects it to its
 * network through the attach engine, publishes its ports, writes its names and starts its process.
 * Everything happens under nslab's lock, so runs at once never share an address or a host port;
 * a failure at any point undoes what was done.
 * @throws NslabError INVALID_INPUT (name taken, unknown network or node, a refused address or port: nothing changed), APPLY_FAILED / COMMAND_FAILED (rolled back)
 */
export async function runNode(r: Runner, req: NodeRunRequest): Promise<NodeInfo> {
  checkRunRequest(req);
  return withState((st) =>
    transaction(async (undo) => {
      // runs last on failure: the other nodes' hosts files as the restored state says
      undo.push(() => syncHosts(st));
      if (st.nodes[req.name]) throw invalid(`node ${req.name} exists already: nslab node rm ${req.name} first, or pick another name`);
      const m = req.mode;
      if (m.kind !== 'host' && existsSync(`${NETNS_DIR}/${req.name}`)) throw invalid(`node ${req.name}: a netns of that name exists already (ip netns list), not made by nslab node run`);
      let other: NodeRecord | null = null;
      if (m.kind === 'container') {
        other = st.nodes[m.other] ?? null;
        if (!other) throw invalid(`--net container:${m.other}: no node of that name (nslab node ls)`);
        if (other.netns === null) throw invalid(`--net container:${m.other}: ${m.other} runs in host mode; use --net host`);
      }
      for (const l of req.links) if (!st.nodes[l.target]) throw invalid(`--link ${l.target}: no node of that name (nslab node ls)`);
      // Bad input is refused before the node's netns is made, not found after it and rolled back.
      if (m.kind === 'network') precheckNetwork(st, m.network, req.ip);
      const node: NodeRecord = {
        name: req.name,
        mode: m,
        netns: m.kind === 'host' ? null : req.name,
        hostname: other ? other.hostname : m.kind === 'host' ? (await readFile('/proc/sys/kernel/hostname', 'utf8')).trim() : (req.hostname ?? req.name),
        endpoints: [],
        ports: [],
        exposed: req.expose,
        links: req.links,
        env: {},
        cmd: req.cmd,
        pid: null,
        pidStart: null,
        created: new Date().toISOString(),
      };
      // Write-ahead (engine/clean): the files this run writes, for `nslab clean` after a kill.
      const j = activeJournal();
      if (j && !existsSync(join(ETC_NETNS, req.name))) j.write({ t: 'file', path: join(ETC_NETNS, req.name) });
      if (j && req.cmd) j.write({ t: 'file', path: nodeLog(req.name) });
      const steps = m.kind === 'none' || m.kind === 'network' ? planNodeNetns(req.name) : m.kind === 'container' ? planSharedNetns(req.name, other!.netns!) : [];
      if (steps.length) {
        const applied = await applySteps(r, steps);
        if (m.kind === 'container') undo.push(() => runUndo(r, applied.undo));
        else undo.push(() => deleteNetns(r, [req.name]));
      }
      st.nodes[req.name] = node;
      undo.push(async () => {
        delete st.nodes[req.name];
      });
      if (m.kind === 'network') {
        const net = await networkFor(r, st, m.network, undo);
        // Without rules nothing would carry a published port (dockerd has its proxy for that; nslab has none).
        if ((req.publish.length || req.publishAll) && !net.iptables) throw invalid(`-p/-P on network ${net.name}: it was made with --iptables=false, and published ports are iptables rules`);
        const ep = await connectEndpoint(r, st, node, net, req.ip, undo);
        for (const l of req.links) {
          const ip = sharedIp(st, node, l.target);
          if (!ip) throw invalid(`--link ${l.target}: ${l.target} shares no network with ${req.name} (it is not on ${net.name})`);
          const target = st.nodes[l.target]!;
          const ports = [...target.exposed, ...target.ports.map((p) => ({ port: p.containerPort, proto: p.proto }))].filter((p, i, a) => a.findIndex((q) => q.port === p.port && q.proto === p.proto) === i);
          Object.assign(node.env, linkEnv(req.name, l, ip, ports));
          if (!net.icc && net.iptables && ports.length) {
            const applied = await applySteps(r, planLinkOpenings(req.name, net.bridge, ep.ip, ip, ports));
            undo.push(() => runUndo(r, applied.undo));
          }
        }
        node.ports = bindPorts(req, await hostPortsInUse(st), net.name, ep.ip);
        if (node.ports.length && net.iptables) await addPortRules(r, node, net.bridge, undo);
      }
      if (m.kind === 'container') {
        await shareEtc(req.name, m.other);
        undo.push(() => removeEtc(req.name));
      } else {
        undo.push(() => removeEtc(req.name));
      }
      await syncHosts(st);
      if (req.cmd) {
        // Its log goes too when the run is undone (a command that fails at once has been read by then).
        undo.push(() => rm(nodeLog(req.name), { force: true }));
        const p = await startProcess(node, req.cmd);
        node.pid = p.pid;
        node.pidStart = p.start;
        undo.push(() => stopProcesses(r, node));
      }
      return { ...node, running: node.pid !== null };
    }),
  );
}

async function addPortRules(r: Runner, node: NodeRecord, bridge: string, undo: Undo): Promise<void> {
  const steps = planPorts(node.name, () => bridge, node.ports);
  const applied = await applySteps(r, steps);
  undo.push(() => runUndo(r, applied.undo));
}

/**
 * `nslab node rm NAME…`: stops the nodes' processes, deletes their published ports' rules (found by
 * their comment), deletes their netns all at once and waits until the kernel has removed their veths
 * (one sweep for all, as `nslab down`: the veth pairs go with the netns, host ends included), releases
 * their addresses and removes their /etc/netns entries. A container-mode node only loses its name for
 * the shared netns. Refused, with nothing changed, for an unknown name or a node whose netns another
 * node shares (unless that one goes too).
 * @throws NslabError INVALID_INPUT (nothing changed), COMMAND_FAILED (a veth outlived its netns)
 */
export async function removeNodes(r: Runner, names: string[]): Promise<{ removed: string[] }> {
  // A node whose `node run` was killed has no state, only a journal: finished from it (engine/clean).
  const halfMade = new Set(readJournals().flatMap((j) => (j.owner.startsWith('node ') && names.includes(j.owner.slice(5)) ? [j.owner.slice(5)] : [])));
  const known = (await readNetState()).nodes;
  for (const name of names) if (!known[name] && !halfMade.has(name)) throw invalid(`node ${JSON.stringify(name)} not found: nslab node ls lists them`);
  if (halfMade.size) {
    const rep = await recoverJournals(r, (o) => o.startsWith('node ') && halfMade.has(o.slice(5)));
    if (rep.errors.length) throw new NslabError('COMMAND_FAILED', `node rm: finishing a killed node run: ${rep.errors[0]}`, { details: { errors: rep.errors } });
  }
  const rest = names.filter((n) => known[n]);
  if (rest.length === 0) return { removed: names };
  return { removed: [...names.filter((n) => !known[n]), ...(await removeRecorded(r, rest)).removed] };
}

async function removeRecorded(r: Runner, names: string[]): Promise<{ removed: string[] }> {
  return withState(async (st) => {
    const gone = new Set(names);
    for (const name of names) {
      if (!st.nodes[name]) throw invalid(`node ${JSON.stringify(name)} not found: nslab node ls lists them`);
      const sharers = Object.values(st.nodes).filter((x) => x.mode.kind === 'container' && x.mode.other === name && !gone.has(x.name));
      if (sharers.length) throw invalid(`node ${name} shares its netns with ${sharers.map((x) => x.name).join(', ')} (--net container:${name}): remove those first`);
    }
    // sharers first: their names for a netns go before the netns itself
    const nodes = names.map((n) => st.nodes[n]!).sort((a, b) => Number(b.mode.kind === 'container') - Number(a.mode.kind === 'container'));
    for (const n of nodes) await stopProcesses(r, n);
    const owners = new Set(nodes.map((n) => ownerNode(n.name)));
    // Its published ports' rules, and a link's openings under --icc=false: found by their comment.
    if (nodes.some((n) => n.ports.length || n.links.length)) await deleteOwned(r, await readIptables(r), (c) => owners.has(c));
    const shared = nodes.filter((n) => n.mode.kind === 'container').map((n) => ['netns', 'del', n.name]);
    if (shared.length) await r.batch('ip', null, shared, { force: true });
    const own = nodes.filter((n) => n.netns !== null && n.mode.kind !== 'container').map((n) => n.netns!);
    const left = await deleteNetns(r, own);
    for (const n of nodes) {
      await removeEtc(n.name);
      await rm(nodeLog(n.name), { force: true });
      delete st.nodes[n.name];
    }
    await syncHosts(st);
    if (left.length) throw new NslabError('COMMAND_FAILED', `node rm: ${left.join(', ')} still present after the netns was deleted`);
    return { removed: nodes.map((n) => n.name) };
  });
}

/** The nodes, in creation order, with whether their process runs. */
export async function listNodes(): Promise<NodeInfo[]> {
  const st = await readNetState();
  const nodes = Object.values(st.nodes).sort((a, b) => a.created.localeCompare(b.created));
  return Promise.all(nodes.map(async (n) => ({ ...n, running: await isRunning(n) })));
}

/**
 * `nslab node inspect NAME…` in `docker inspect`'s shape: State (Running, Pid), Config (Hostname,
 * Env, Cmd, ExposedPorts), HostConfig (NetworkMode, PortBindings, Links), NetworkSettings (SandboxKey,
 * Ports, Networks with IPAddress, Gateway, MacAddress, and nslab's Interface).
 * @throws NslabError INVALID_INPUT for an unknown name
 */
export async function inspectNodes(names: string[]): Promise<unknown[]> {
  const st = await readNetState();
  return Promise.all(
    names.map(async (name) => {
      const n = st.nodes[name];
      if (!n) throw invalid(`node ${JSON.stringify(name)} not found: nslab node ls lists them`);
      const ports: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
      for (const p of n.ports) (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
      const networks: Record<string, unknown> = {};
      for (const e of n.endpoints) networks[e.network] = { NetworkID: st.networks[e.network]?.id ?? '', Interface: e.ifname, IPAddress: e.ip, IPPrefixLen: e.prefix, Gateway: e.gateway ?? '', MacAddress: e.mac };
      const running = await isRunning(n);
      return {
        Name: `/${n.name}`,
        Created: n.created,
        State: { Running: running, Pid: running ? n.pid : 0 },
        Config: { Hostname: n.hostname, Env: Object.entries(n.env).map(([k, v]) => `${k}=${v}`), Cmd: n.cmd, ExposedPorts: Object.fromEntries(n.exposed.map((e) => [`${e.port}/${e.proto}`, {}])) },
        HostConfig: { NetworkMode: formatNetMode(n.mode), PortBindings: ports, Links: n.links.map((l) => `/${l.target}:/${n.name}/${l.alias}`) },
        NetworkSettings: { SandboxKey: n.netns ? `${NETNS_DIR}/${n.netns}` : '', Ports: ports, Networks: networks },
      };
    }),
  );
}

/**
 * `nslab node exec NAME -- CMD…`: runs CMD in the node (its netns, /etc/netns files, hostname and
 * environment), with this terminal, and returns its exit code.
 * @throws NslabError INVALID_INPUT for an unknown node
 */
export async function execNode(name: string, cmd: string[]): Promise<number> {
  const st = await readNetState();
  const n = st.nodes[name];
  if (!n) throw invalid(`node ${JSON.stringify(name)} not found: nslab node ls lists them`);
  const argv = nodeArgv(n, cmd);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...nodeEnv(n), ...(process.env.TERM ? { TERM: process.env.TERM } : {}) } });
  return new Promise<number>((res, rej) => {
    child.once('error', (e) => rej(new NslabError('MISSING_TOOL', `cannot run ${argv[0]}: ${e.message}`)));
    child.once('exit', (code, sig) => res(code ?? (sig ? 128 + 15 : 1)));
  });
}
