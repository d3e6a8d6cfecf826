// Network modes for real, through the CLI as a user runs it: the notes' scenario address for address,
import { spawn } from 'node:child_process';
// static addresses, the four modes, NAT and the daemon's options, every -p form fetched from busybox
// httpd, concurrent runs, rollback, and teardown back to the sandbox's exact baseline.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetwork, removeNetwork } from '../../src/engine/netmodes/network.js';
import { nodeLog, readNetState } from '../../src/engine/netmodes/netstate.js';
import { removeNodes, runNode } from '../../src/engine/netmodes/node.js';
import type { BatchJob, BatchResult, BatchTool, Command, Result } from '../../src/exec/command.js';
import { commandError, type BatchOptions, type RunOptions, type Runner } from '../../src/exec/runner.js';
import { NslabError } from '../../src/errors.js';
import { assertSandbox, iptablesSave, netSnapshot, ping, runner } from '../helpers/kernel.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
const nslab = (...args: string[]) => execa('node', [CLI, ...args], { reject: false });
/** Runs nslab and expects success; returns stdout. */
const ok = async (...args: string[]): Promise<string> => {
  const res = await nslab(...args);
  if (res.exitCode !== 0) throw new Error(`nslab ${args.join(' ')} exited ${res.exitCode}: ${res.stderr}`);
  return res.stdout;
};
const sh = (...argv: string[]) => runner.run({ argv });
const inNs = (netns: string | null, ...argv: string[]) => runner.run({ argv, netns }, { check: false });

type NetInspect = { IPAM: { Config: Array<{ Subnet: string; Gateway: string }> }; Options: Record<string, string>; Containers: Record<string, { IPv4Address: string; Interface: string; MacAddress: string }> };
const inspectNet = async (name: string): Promise<NetInspect> => (JSON.parse(await ok('network', 'inspect', name)) as NetInspect[])[0]!;
type NodeInspect = { State: { Running: boolean; Pid: number }; NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }>>; Networks: Record<string, { IPAddress: string }> } };
const inspectNode = async (name: string): Promise<NodeInspect> => (JSON.parse(await ok('node', 'inspect', name)) as NodeInspect[])[0]!;

/** A ping by name: through `ip netns exec`, which puts /etc/netns/NS/hosts over /etc/hosts (nsenter does not). */
async function pingName(netns: string, name: string): Promise<boolean> {
  return (await runner.run({ argv: ['ip', 'netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', name] }, { check: false })).exitCode === 0;
}

/** The IPv4 addresses of an interface in a netns, from the kernel. */
async function addrsOf(netns: string, dev: string): Promise<string[]> {
  const res = await inNs(netns, 'ip', '-j', '-4', 'addr', 'show', 'dev', dev);
  if (res.exitCode !== 0) return [];
  return (JSON.parse(res.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

/** An HTTP GET from a netns (null: the sandbox itself) with node's http client (busybox wget segfaults here). */
async function fetchFrom(netns: string | null, url: string): Promise<string | null> {
  const js = `require('http').get(process.argv[1], { timeout: 1500 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => { process.stdout.write(b); process.exit(0); }); }).on('error', () => process.exit(1)).on('timeout', () => process.exit(2));`;
  const res = await inNs(netns, process.execPath, '-e', js, url);
  return res.exitCode === 0 ? res.stdout : null;
}

/** One UDP datagram from a netns, and the answer (or null). */
async function udpFrom(netns: string, host: string, port: number, msg: string): Promise<string | null> {
  const js = `const s = require('dgram').createSocket('udp4'); s.on('message', (m) => { process.stdout.write(String(m)); process.exit(0); }); s.send(process.argv[3], Number(process.argv[2]), process.argv[1]); setTimeout(() => process.exit(1), 1500);`;
  const res = await inNs(netns, process.execPath, '-e', js, host, String(port), msg);
  return res.exitCode === 0 ? res.stdout : null;
}

/** A netns "NAME" joined to the sandbox by a veth: HOSTEND HOSTIP/24 here, eth0 PEERIP/24 there, no route back beyond. */
async function outsideNs(name: string, hostEnd: string, hostIp: string, peerIp: string): Promise<void> {
  await sh('ip', 'netns', 'add', name);
  await sh('ip', 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
  await sh('ip', 'addr', 'add', `${hostIp}/24`, 'dev', hostEnd);
  await sh('ip', 'link', 'set', hostEnd, 'up');
  for (const argv of [['ip', 'addr', 'add', `${peerIp}/24`, 'dev', 'eth0'], ['ip', 'link', 'set', 'eth0', 'up'], ['ip', 'link', 'set', 'lo', 'up']]) await runner.run({ argv, netns: name });
}

async function removeNs(...names: string[]): Promise<void> {
  for (const n of names) await runner.run({ argv: ['ip', 'netns', 'del', n] }, { check: false });
  // their veth ends here go with them, a moment later
  for (let i = 0; i < 100; i++) {
    const links = JSON.parse((await sh('ip', '-j', 'link', 'show')).stdout) as Array<{ link_netnsid?: number; ifname: string }>;
    if (!links.some((l) => ['out0', 'cl0', 'cl1'].includes(l.ifname))) break;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Removes whatever a failed test left: nodes first (container-mode ones before the others), then networks. */
async function cleanup(): Promise<void> {
  const nodes = JSON.parse((await nslab('node', 'ls', '--json')).stdout || '[]') as Array<{ name: string; mode: { kind: string } }>;
  const order = [...nodes.filter((n) => n.mode.kind === 'container'), ...nodes.filter((n) => n.mode.kind !== 'container')];
  if (order.length) await nslab('node', 'rm', ...order.map((n) => n.name));
  const nets = JSON.parse((await nslab('network', 'ls', '--json')).stdout || '[]') as Array<{ name: string }>;
  if (nets.length) await nslab('network', 'rm', '--force', ...nets.map((n) => n.name));
}

let baseline: Awaited<ReturnType<typeof netSnapshot>>;

beforeAll(async () => {
  await assertSandbox();
  baseline = await netSnapshot();
});
afterEach(cleanup);

test("the notes' scenario, address for address: nw-01/nw-02, isolation, network connect, names on user networks only", async () => {
  expect(await ok('network', 'create', '--driver', 'bridge', 'my-net2')).toMatch(/^[0-9a-f]{64}$/);
  await ok('network', 'create', 'nw-01');
  await ok('network', 'create', 'nw-02');
  // 172.17.0.0/16 stays the default network's (as docker0's), so the notes' subnets follow
  expect((await inspectNet('my-net2')).IPAM.Config).toEqual([{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }]);
  const nw01 = await inspectNet('nw-01');
  expect(nw01.IPAM.Config).toEqual([{ Subnet: '172.19.0.0/16', Gateway: '172.19.0.1' }]);
  expect((await inspectNet('nw-02')).IPAM.Config).toEqual([{ Subnet: '172.20.0.0/16', Gateway: '172.20.0.1' }]);
  const br01 = nw01.Options['com.docker.network.bridge.name']!;
  expect(br01).toMatch(/^br-[0-9a-f]{12}$/);
  // the notes' route -n: 172.19.0.0/16 on the network's bridge
  const routes = JSON.parse((await sh('ip', '-j', 'route', 'show')).stdout) as Array<{ dst: string; dev: string }>;
  expect(routes).toEqual(expect.arrayContaining([expect.objectContaining({ dst: '172.19.0.0/16', dev: br01 })]));

  expect(await ok('node', 'run', 'test00', '--net', 'nw-01')).toBe('test00: eth0 172.19.0.2/16 on nw-01');
  expect(await ok('node', 'run', 'test01', '--network', 'nw-01')).toBe('test01: eth0 172.19.0.3/16 on nw-01');
  expect(await ok('node', 'run', 'test02', '--net', 'nw-02')).toBe('test02: eth0 172.20.0.2/16 on nw-02');
  expect(await addrsOf('test00', 'eth0')).toEqual(['172.19.0.2/16']);
  expect(await addrsOf('test01', 'eth0')).toEqual(['172.19.0.3/16']);
  expect(await addrsOf('test02', 'eth0')).toEqual(['172.20.0.2/16']);
  const l0 = (JSON.parse((await inNs('test00', 'ip', '-j', 'link', 'show', 'eth0')).stdout) as Array<{ address: string; mtu: number }>)[0]!;
  expect(l0).toMatchObject({ address: '02:42:ac:13:00:02', mtu: 1500 });

  expect(await ping('test00', '172.19.0.3')).toBe(true);
  expect(await ping('test01', '172.19.0.1')).toBe(true);
  expect(await pingName('test00', 'test01')).toBe(true); // by name, through /etc/netns/test00/hosts
  expect(await ping('test02', '172.19.0.2')).toBe(false); // isolation between networks
  expect(await ping('test02', '172.19.0.3')).toBe(false);

  expect(await ok('network', 'connect', 'nw-01', 'test02')).toBe('test02: eth1 172.19.0.4/16 on nw-01');
  expect(await addrsOf('test02', 'eth1')).toEqual(['172.19.0.4/16']);
  expect(await addrsOf('test02', 'eth0')).toEqual(['172.20.0.2/16']);
  expect(await ping('test02', '172.19.0.2')).toBe(true);
  expect(await pingName('test02', 'test01')).toBe(true);
  expect(await pingName('test00', 'test02')).toBe(true); // test00's hosts file learned test02
  const defaults = JSON.parse((await inNs('test02', 'ip', '-j', 'route', 'show', 'default')).stdout) as Array<{ gateway: string; dev: string }>;
  expect(defaults).toEqual([expect.objectContaining({ gateway: '172.20.0.1', dev: 'eth0' })]); // the first network keeps the default route

  // removing another network (made first, its rules first in every chain) breaks none of these (netavark#491)
  await ok('network', 'rm', 'my-net2');
  expect(await ping('test00', '172.19.0.3')).toBe(true);
  expect(await ping('test02', '172.19.0.2')).toBe(true);

  // the default bridge: no name resolution between nodes (as Docker), isolated from nw-01
  expect(await ok('node', 'run', 'b1')).toBe('b1: eth0 172.17.0.2/16 on bridge');
  await ok('node', 'run', 'b2');
  expect(await ping('b1', '172.17.0.3')).toBe(true);
  expect(await pingName('b1', 'b2')).toBe(false);
  expect(await ping('b1', '172.19.0.2')).toBe(false);

  // refused while nodes are connected; nothing changes
  const before = await netSnapshot();
  const refused = await nslab('network', 'rm', 'nw-01');
  expect(refused.exitCode).toBe(2);
  expect(refused.stderr.trim()).toBe('nslab: network nw-01 has 3 connected node(s) (test00, test01, test02): disconnect or remove them, or use --force');
  expect(await netSnapshot()).toEqual(before);

  // disconnecting the network that carries the default route: the default moves to one still
  // connected (Docker), and a network connected later does not take it over
  expect(await ok('network', 'disconnect', 'nw-02', 'test02')).toBe('test02: eth0 172.20.0.2 removed from nw-02');
  const defaultsOf02 = async () => (JSON.parse((await runner.run({ argv: ['ip', '-j', 'route', 'show', 'default'], netns: 'test02' })).stdout) as Array<{ gateway: string; dev: string }>).map((x) => `${x.gateway} ${x.dev}`);
  expect(await defaultsOf02()).toEqual(['172.19.0.1 eth1']);
  await ok('network', 'connect', 'nw-02', 'test02');
  expect(await defaultsOf02()).toEqual(['172.19.0.1 eth1']);
  await ok('network', 'disconnect', 'nw-02', 'test02');

  // disconnect releases the address: the next node gets it
  expect(await ok('network', 'disconnect', 'nw-01', 'test02')).toBe('test02: eth1 172.19.0.4 removed from nw-01');
  expect(await addrsOf('test02', 'eth1')).toEqual([]);
  expect(await ok('node', 'run', 'test03', '--net', 'nw-01')).toBe('test03: eth0 172.19.0.4/16 on nw-01');

  await ok('node', 'rm', 'test00', 'test01', 'test02', 'test03', 'b1', 'b2');
  await ok('network', 'rm', 'nw-01', 'nw-02', 'bridge');
  expect(await netSnapshot()).toEqual(baseline);
});

test('--subnet 172.33.1.0/24 --gateway 172.33.1.1 my-net3: a node at static 172.33.1.100; refused addresses change nothing', async () => {
  await ok('network', 'create', '--driver', 'bridge', '--subnet', '172.33.1.0/24', '--gateway', '172.33.1.1', 'my-net3');
  await ok('network', 'create', 'auto-net');
  expect(await ok('node', 'run', 's1', '--net', 'my-net3', '--ip', '172.33.1.100')).toBe('s1: eth0 172.33.1.100/24 on my-net3');
  expect(await addrsOf('s1', 'eth0')).toEqual(['172.33.1.100/24']);
  expect(await ping('s1', '172.33.1.1')).toBe(true);
  expect(await ok('node', 'run', 's2', '--net', 'my-net3')).toBe('s2: eth0 172.33.1.2/24 on my-net3');
  expect(await pingName('s2', 's1')).toBe(true);
  const before = await netSnapshot();
  for (const [args, msg] of [
    [['node', 'run', 'x', '--net', 'my-net3', '--ip', '172.33.1.100'], '--ip 172.33.1.100 is already in use on this network'],
    [['node', 'run', 'x', '--net', 'my-net3', '--ip', '172.33.2.100'], "--ip 172.33.2.100 is outside the network's subnet 172.33.1.0/24"],
    [['node', 'run', 'x', '--net', 'my-net3', '--ip', '172.33.1.1'], '--ip 172.33.1.1 is the gateway of 172.33.1.0/24'],
    [['node', 'run', 'x', '--net', 'my-net3', '--ip', '172.33.1.255'], '--ip 172.33.1.255 is the broadcast address of 172.33.1.0/24, not a host address'],
    [['node', 'run', 'x', '--net', 'auto-net', '--ip', '172.18.0.9'], '--ip 172.18.0.9: a static address needs a network created with --subnet; auto-net picked its subnet itself (as in Docker)'],
    [['node', 'run', 'x', '--ip', '172.17.0.9'], '--ip 172.17.0.9: a static address is supported on user-defined networks only, not on the default bridge (as in Docker)'],
    [['network', 'connect', '--ip', '172.33.1.100', 'my-net3', 's2'], 'node s2 is connected to network my-net3 already'],
    [['network', 'create', '--subnet', '172.33.0.0/16', 'over'], "--subnet 172.33.0.0/16 overlaps network my-net3's subnet 172.33.1.0/24"],
    [['node', 'run', 'x', '--net', 'nw-99'], 'network "nw-99" not found: nslab network ls lists them, nslab network create nw-99 makes it'],
    [['node', 'run', 's1', '--net', 'my-net3'], 'node s1 exists already: nslab node rm s1 first, or pick another name'],
    [['node', 'run', 'x', '-p', '8080:99999'], '-p "8080:99999": port "99999" is not a number from 1 to 65535; expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp], such as 8080:80, 127.0.0.1:8080:80, 127.0.0.1::80, 80 or 53:5353/udp'],
    [['node', 'run', 'x', '--net', 'host', '-p', '80'], "-p/-P with --net host: ports are published on a network's bridge only (in host mode the node uses the host's ports directly)"],
    [['node', 'run', 'x', '-p', '1.2.3.4:8084:80'], '-p 1.2.3.4:8084:80/tcp: 1.2.3.4 is not an address of the host (Docker: cannot assign requested address)'],
    [['network', 'rm', 'host'], 'network host is predefined: it cannot be removed (as in Docker)'],
    [['network', 'rm', 'auto-net', 'nosuch'], 'network "nosuch" not found: nslab network ls lists them'],
    [['network', 'create', '--subnet', '10.1.0.0/33', 'bad'], '--subnet "10.1.0.0/33": expected an IPv4 address with its prefix length, such as 172.17.0.1/16'],
  ] as Array<[string[], string]>) {
    const res = await nslab(...args);
    expect([res.exitCode, res.stderr.trim()]).toEqual([2, `nslab: ${msg}`]);
    expect(res.stdout).toBe('');
  }
  expect(await netSnapshot()).toEqual(before);
  // a static address on connect; --force disconnects, the node stays with lo only
  await ok('node', 'run', 's3', '--net', 'auto-net');
  expect(await ok('network', 'connect', '--ip', '172.33.1.101', 'my-net3', 's3')).toBe('s3: eth1 172.33.1.101/24 on my-net3');
  expect(await ok('network', 'rm', '--force', 'my-net3')).toBe('my-net3');
  expect(await addrsOf('s1', 'eth0')).toEqual([]);
  expect(await addrsOf('s3', 'eth0')).toEqual(['172.18.0.2/16']);
  await ok('node', 'rm', 's1', 's2', 's3');
  await ok('network', 'rm', 'auto-net');
  expect(await netSnapshot()).toEqual(baseline);
});

test('container mode shares one interface set; host mode sees the sandbox; none has only lo; processes stop on rm', async () => {
  await ok('node', 'run', 'web', '--hostname', 'www', '--', 'sleep', '600');
  expect(await ok('node', 'run', 'side', '--net', 'container:web', '--', 'sleep', '600')).toMatch(/^side: --net container:web; pid \d+$/);
  expect(statSync('/run/netns/side').ino).toBe(statSync('/run/netns/web').ino);
  const links = async (n: string) => (JSON.parse((await inNs(n, 'ip', '-j', 'addr', 'show')).stdout) as Array<{ ifname: string; address: string; addr_info: unknown[] }>).map((l) => [l.ifname, l.address, l.addr_info.length]);
  expect(await links('side')).toEqual(await links('web'));
  const viaExec = await execa('node', [CLI, 'node', 'exec', 'side', '--', 'sh', '-c', 'hostname; ip -4 -o addr show dev eth0'], { reject: false });
  expect(viaExec.stdout).toMatch(/^www\n\d+: eth0 +inet 172\.17\.0\.2\/16/);
  const refused = await nslab('node', 'rm', 'web');
  expect([refused.exitCode, refused.stderr.trim()]).toEqual([2, 'nslab: node web shares its netns with side (--net container:web): remove those first']);

  await ok('node', 'run', 'h', '--net', 'host', '--', 'sleep', '600');
  const hostLinks = (JSON.parse((await sh('ip', '-j', 'link', 'show')).stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
  const hv = await execa('node', [CLI, 'node', 'exec', 'h', '--', 'ip', '-j', 'link', 'show'], { reject: false });
  expect((JSON.parse(hv.stdout) as Array<{ ifname: string }>).map((l) => l.ifname)).toEqual(hostLinks);
  expect(hostLinks).toEqual(expect.arrayContaining(['nslab0', 'web-eth0']));

  await ok('node', 'run', 'nn', '--net', 'none');
  expect((JSON.parse((await inNs('nn', 'ip', '-j', 'link', 'show')).stdout) as Array<{ ifname: string }>).map((l) => l.ifname)).toEqual(['lo']);
  const conflict = await nslab('node', 'run', 'x', '--net', 'container:web', '--hostname', 'h');
  expect([conflict.exitCode, conflict.stderr.trim()]).toEqual([2, "nslab: --hostname with --net container:web: conflicting options, the node takes web's hostname (as in Docker)"]);

  const pids = await Promise.all(['web', 'side', 'h'].map(async (n) => (await inspectNode(n)).State.Pid));
  expect(pids.every((p) => p > 0)).toBe(true);
  expect(await ok('node', 'rm', 'side', 'web', 'h', 'nn')).toBe('side\nweb\nh\nnn');
  for (const p of pids) expect(existsSync(`/proc/${p}`) ? (await sh('cat', `/proc/${p}/stat`)).stdout.split(') ')[1]![0] : 'gone').toMatch(/gone|Z/);
  await ok('network', 'rm', 'bridge');
  expect(await netSnapshot()).toEqual(baseline);
});

test("--link db:webdb: the alias in the node's hosts file and the notes' variables in its process and node exec", async () => {
  await ok('node', 'run', 'db', '--expose', '5432', '--', 'sleep', '600');
  await ok('node', 'run', 'web', '--link', 'db:webdb', '--', 'sh', '-c', 'env; exec sleep 600');
  const { readFile } = await import('node:fs/promises');
  const log = await readFile(join(process.env.NSLAB_STATE_DIR || '/run/nslab', 'net', 'nodes', 'web.log'), 'utf8');
  const want = ['WEBDB_NAME=/web/webdb', 'WEBDB_PORT=tcp://172.17.0.2:5432', 'WEBDB_PORT_5432_TCP=tcp://172.17.0.2:5432', 'WEBDB_PORT_5432_TCP_PROTO=tcp', 'WEBDB_PORT_5432_TCP_PORT=5432', 'WEBDB_PORT_5432_TCP_ADDR=172.17.0.2'];
  for (const v of want) expect(log.split('\n')).toContain(v);
  const env = (await execa('node', [CLI, 'node', 'exec', 'web', '--', 'env'], { reject: false })).stdout.split('\n');
  for (const v of want) expect(env).toContain(v);
  expect(await pingName('web', 'webdb')).toBe(true);
  expect(await pingName('web', 'db')).toBe(true);
  expect(await pingName('db', 'web')).toBe(false); // one way, as in the notes
  const bad = await nslab('node', 'run', 'x', '--link', 'nosuch');
  expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, 'nslab: --link nosuch: no node of that name (nslab node ls)']);
  await ok('node', 'rm', 'web', 'db');
  await ok('network', 'rm', 'bridge');
  expect(await netSnapshot()).toEqual(baseline);
});

test('doctor checks the netfilter features network modes use', async () => {
  const checks = JSON.parse(await ok('doctor', '--json')) as Array<{ name: string; ok: boolean; detail: string }>;
  expect(checks.find((c) => c.name === 'kernel: netfilter for network modes')).toMatchObject({ ok: true, detail: 'nat, MASQUERADE, DNAT, conntrack, addrtype, comment work' });
  expect(checks.find((c) => c.name === 'kernel: br_netfilter')?.ok).toBe(true);
  expect(await netSnapshot()).toEqual(baseline);
});

describe('NAT and the daemon options', () => {
  beforeEach(() => outsideNs('outside', 'out0', '10.200.0.1', '10.200.0.2'));
  afterEach(() => removeNs('outside'));

  test('a node reaches an outside netns with no route back through MASQUERADE; with --iptables=false it does not', async () => {
    const base = await netSnapshot();
    await ok('node', 'run', 'n1');
    expect(await ping('n1', '10.200.0.2')).toBe(true);
    const save = await iptablesSave();
    expect(save).toContain('-A POSTROUTING -s 172.17.0.0/16 ! -o nslab0 -m comment --comment "nslab:net=bridge" -j MASQUERADE');
    expect(save).toContain('-A NSLAB-FORWARD -i nslab0 -o nslab0 -m comment --comment "nslab:net=bridge" -j ACCEPT');
    expect(save).toContain(':FORWARD DROP'); // as dockerd when it turns forwarding on
    for (const line of save.split('\n').filter((l) => l.startsWith('-A '))) expect(line).toMatch(/--comment "?nslab/);
    expect((await sh('sysctl', '-n', 'net.ipv4.ip_forward')).stdout.trim()).toBe('1');
    await ok('node', 'rm', 'n1');
    await ok('network', 'rm', 'bridge');
    expect(await netSnapshot()).toEqual(base);

    expect(await ok('network', 'default', '--iptables=false')).toBe('default network: nslab0 172.17.0.1/16, mtu 1500, icc true, iptables false');
    await ok('node', 'run', 'n1');
    expect(await iptablesSave()).toBe(base.iptables);
    expect(await ping('n1', '172.17.0.1')).toBe(true);
    expect(await ping('n1', '10.200.0.2')).toBe(false);
    const ports = await nslab('node', 'run', 'n2', '-p', '8080:80');
    expect([ports.exitCode, ports.stderr.trim()]).toEqual([2, 'nslab: -p/-P on network bridge: it was made with --iptables=false, and published ports are iptables rules']);
    await ok('node', 'rm', 'n1');
    await ok('network', 'rm', 'bridge');
    expect(await netSnapshot()).toEqual(base);
  });

  test("the notes' DOCKER_OPTS: --bip 172.17.0.1/24 --fixed-cidr 172.17.0.1/25 --mtu 1450 --icc=false; --bridge bridge0", async () => {
    const base = await netSnapshot();
    await ok('network', 'default', '--bip', '172.17.0.1/24', '--fixed-cidr', '172.17.0.1/25', '--mtu', '1450', '--icc=false');
    expect(await ok('node', 'run', 'n1')).toBe('n1: eth0 172.17.0.2/24 on bridge');
    await ok('node', 'run', 'n2');
    expect(await addrsOf('n2', 'eth0')).toEqual(['172.17.0.3/24']);
    expect((JSON.parse((await inNs('n1', 'ip', '-j', 'link', 'show', 'eth0')).stdout) as Array<{ mtu: number }>)[0]!.mtu).toBe(1450);
    expect((JSON.parse((await sh('ip', '-j', 'link', 'show', 'nslab0')).stdout) as Array<{ mtu: number }>)[0]!.mtu).toBe(1450);
    expect(await ping('n1', '172.17.0.3')).toBe(false); // --icc=false
    expect(await ping('n1', '172.17.0.1')).toBe(true);
    expect(await ping('n1', '10.200.0.2')).toBe(true);
    // a legacy link opens the linked node's exposed ports to the linking one, and only those (dockerd's
    // DOCKER-chain ACCEPTs under --icc=false)
    await ok('node', 'run', 'db', '--expose', '80', '--', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/usr/share/doc/busybox-static');
    await ok('node', 'run', 'lk', '--link', 'db', '--', 'sleep', '600');
    const get = async (from: string) => (await runner.run({ argv: ['busybox', 'nc', '-w', '2', '172.17.0.4', '80'], netns: from, input: 'GET /copyright HTTP/1.0\r\n\r\n' }, { check: false })).stdout;
    await new Promise((r) => setTimeout(r, 200)); // httpd binding
    expect(await get('lk')).toMatch(/^HTTP\/1\.[01] 200/);
    expect(await get('n1')).toBe('');
    await ok('node', 'rm', 'lk', 'db');
    expect(await iptablesSave()).not.toMatch(/nslab:node=(lk|db)/);
    const again = await nslab('network', 'default', '--bip', '10.0.0.1/24');
    expect([again.exitCode, again.stderr.trim()]).toEqual([2, "nslab: the daemon's options are set when the first network is made, and networks exist (bridge)"]);
    await ok('node', 'rm', 'n1', 'n2');
    await ok('network', 'rm', 'bridge');
    expect(await netSnapshot()).toEqual(base);

    // -b bridge0, made by hand as in notes 004
    await sh('ip', 'link', 'add', 'bridge0', 'type', 'bridge');
    await sh('ip', 'addr', 'add', '192.168.5.1/24', 'dev', 'bridge0');
    await sh('ip', 'link', 'set', 'bridge0', 'up');
    try {
      const withBridge = await netSnapshot();
      await ok('network', 'default', '--bridge', 'bridge0');
      expect(await ok('node', 'run', 'n1')).toBe('n1: eth0 192.168.5.2/24 on bridge');
      expect(await ping('n1', '192.168.5.1')).toBe(true);
      expect(await ping('n1', '10.200.0.2')).toBe(true);
      expect(await iptablesSave()).toContain('-A POSTROUTING -s 192.168.5.0/24 ! -o bridge0 -m comment --comment "nslab:net=bridge" -j MASQUERADE');
      await ok('node', 'rm', 'n1');
      await ok('network', 'rm', 'bridge');
      expect(await netSnapshot()).toEqual(withBridge); // bridge0 stays as it was, route_localnet included
    } finally {
      await sh('ip', 'link', 'del', 'bridge0');
    }
    expect(await netSnapshot()).toEqual(base);
  });

  test("a host firewall's own rules, tables and FORWARD policy stay as they were", async () => {
    await sh('iptables', '-A', 'INPUT', '-s', '10.9.9.9/32', '-j', 'DROP');
    await sh('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'out0', '-s', '10.8.0.0/16', '-j', 'ACCEPT');
    try {
      const base = await netSnapshot();
      await ok('node', 'run', 'n1');
      expect(await ping('n1', '10.200.0.2')).toBe(true);
      const save = await iptablesSave();
      expect(save).toContain('-A INPUT -s 10.9.9.9/32 -j DROP');
      // nslab's rules come first in the built-in chains, as dockerd inserts them
      const post = save.split('\n').filter((l) => l.startsWith('-A POSTROUTING'));
      expect(post[post.length - 1]).toBe('-A POSTROUTING -s 10.8.0.0/16 -o out0 -j ACCEPT');
      await ok('node', 'rm', 'n1');
      await ok('network', 'rm', 'bridge');
      expect(await netSnapshot()).toEqual(base);
    } finally {
      await sh('iptables', '-D', 'INPUT', '-s', '10.9.9.9/32', '-j', 'DROP');
      await sh('iptables', '-t', 'nat', '-D', 'POSTROUTING', '-o', 'out0', '-s', '10.8.0.0/16', '-j', 'ACCEPT');
      // leave the sandbox as the other tests found it (no tables at all, when it had none)
      if (baseline.iptables.trim() === '') for (const t of ['filter', 'nat']) await runner.run({ argv: ['iptables-restore', '-w'], input: `*${t}\nCOMMIT\n` });
    }
  });
});

describe('published ports', () => {
  let www: string;
  beforeAll(() => {
    www = mkdtempSync(join(tmpdir(), 'nslab-www-'));
    writeFileSync(join(www, 'index.html'), 'hello from web\n');
  });
  afterAll(() => rmSync(www, { recursive: true, force: true }));
  beforeEach(async () => {
    await outsideNs('client', 'cl0', '10.99.0.1', '10.99.0.2');
    // a second host address on another link, to tell 0.0.0.0 from 10.99.0.1 bindings
    await sh('ip', 'link', 'add', 'cl1', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', 'client');
    await sh('ip', 'addr', 'add', '10.98.0.1/24', 'dev', 'cl1');
    await sh('ip', 'link', 'set', 'cl1', 'up');
    await runner.run({ argv: ['ip', 'addr', 'add', '10.98.0.2/24', 'dev', 'eth1'], netns: 'client' });
    await runner.run({ argv: ['ip', 'link', 'set', 'eth1', 'up'], netns: 'client' });
  });
  afterEach(() => removeNs('client'));

  test('every -p form, -P, UDP, hairpin from the node and its neighbour, the host itself; rm removes exactly its rules', async () => {
    const base = await netSnapshot();
    const httpd = ['--', 'busybox', 'httpd', '-f', '-p', '80', '-h', www];
    expect(await ok('node', 'run', 'web', '-p', '8080:80', '-p', '10.99.0.1:8081:80', '-p', '10.99.0.1::80', '-p', '80', '-p', '127.0.0.1:8082:80', ...httpd)).toMatch(
      /^web: eth0 172\.17\.0\.2\/16 on bridge; 0\.0\.0\.0:8080->80\/tcp, 10\.99\.0\.1:8081->80\/tcp, 10\.99\.0\.1:49000->80\/tcp, 0\.0\.0\.0:49001->80\/tcp, 127\.0\.0\.1:8082->80\/tcp; pid \d+$/,
    );
    expect((await inspectNode('web')).NetworkSettings.Ports['80/tcp']).toEqual([
      { HostIp: '0.0.0.0', HostPort: '8080' },
      { HostIp: '10.99.0.1', HostPort: '8081' },
      { HostIp: '10.99.0.1', HostPort: '49000' },
      { HostIp: '0.0.0.0', HostPort: '49001' },
      { HostIp: '127.0.0.1', HostPort: '8082' },
    ]);
    // nslab inspect finds the node by discovery: its netns (lo's mark) with httpd inside, its iptables
    // rules by their comment; the default network by its bridge's mark and its own rules.
    const owned = JSON.parse(await ok('inspect', '--json')) as { topologies: Array<{ name: string; netns: Array<{ name: string; processes: Array<{ command: string }> }>; links: Array<{ ifname: string }>; iptables: string[] }> };
    const web = owned.topologies.find((t) => t.name === 'node web')!;
    expect(web.netns.map((n) => n.name)).toEqual(['web']);
    expect(web.links.map((l) => l.ifname)).toEqual(['web-eth0']); // its veth's host end (an attach mark)
    expect(owned.topologies.some((t) => t.name === 'attach web')).toBe(false);
    expect(web.netns[0]!.processes.map((p) => p.command)).toContainEqual(expect.stringMatching(/busybox httpd -f -p 80 /));
    expect(web.iptables.some((l) => /--dport 8080 .*-j DNAT --to-destination 172\.17\.0\.2:80/.test(l))).toBe(true);
    const net = owned.topologies.find((t) => t.name === 'network bridge')!;
    expect(net.links.map((l) => l.ifname)).toEqual(['nslab0']);
    expect(net.iptables.some((l) => /-t nat -A POSTROUTING -s 172\.17\.0\.0\/16 ! -o nslab0 .*-j MASQUERADE/.test(l))).toBe(true);
    const hello = 'hello from web\n';
    expect(await fetchFrom('client', 'http://10.99.0.1:8080/')).toBe(hello); // hostPort:containerPort
    expect(await fetchFrom('client', 'http://10.98.0.1:8080/')).toBe(hello); // ... on every host address
    expect(await fetchFrom('client', 'http://10.99.0.1:8081/')).toBe(hello); // ip:hostPort:containerPort
    expect(await fetchFrom('client', 'http://10.98.0.1:8081/')).toBeNull(); // ... on that address only
    expect(await fetchFrom('client', 'http://10.99.0.1:49000/')).toBe(hello); // ip::containerPort
    expect(await fetchFrom('client', 'http://10.99.0.1:49001/')).toBe(hello); // containerPort
    expect(await fetchFrom(null, 'http://10.99.0.1:8080/')).toBe(hello); // the host itself (DNAT in OUTPUT)
    expect(await fetchFrom(null, 'http://127.0.0.1:8082/')).toBe(hello); // 127.0.0.1 (route_localnet)
    expect(await fetchFrom('web', 'http://10.99.0.1:8080/')).toBe(hello); // hairpin: the node through its own published port
    await ok('node', 'run', 'n2');
    expect(await fetchFrom('n2', 'http://10.99.0.1:8080/')).toBe(hello); // a neighbour through the host's address
    expect(await fetchFrom('n2', 'http://172.17.0.2/')).toBe(hello);
    expect(await fetchFrom('client', 'http://172.17.0.2/')).toBeNull(); // not published: no route, FORWARD DROP

    // -P publishes the exposed ports from 49000-49900; UDP
    const echo = `require('dgram').createSocket('udp4').on('message', function (m, r) { this.send('pong:' + m, r.port, r.address); }).bind(53);`;
    expect(await ok('node', 'run', 'dns', '-p', '5353:53/udp', '--expose', '80', '-P', '--', process.execPath, '-e', echo)).toMatch(/^dns: eth0 172\.17\.0\.4\/16 on bridge; 0\.0\.0\.0:5353->53\/udp, 0\.0\.0\.0:49002->80\/tcp; pid \d+$/);
    await new Promise((r) => setTimeout(r, 300)); // node's start-up before it binds
    expect(await udpFrom('client', '10.99.0.1', 5353, 'ping')).toBe('pong:ping');

    // a host port published twice is refused, nothing changes
    const before = await netSnapshot();
    const twice = await nslab('node', 'run', 'web2', '-p', '10.99.0.1:8080:80');
    expect([twice.exitCode, twice.stderr.trim()]).toEqual([2, 'nslab: -p 10.99.0.1:8080:80/tcp: host port 8080/tcp on 0.0.0.0 is already published by node web (Docker: port is already allocated)']);
    expect(await netSnapshot()).toEqual(before);
    // a port a service of the host listens on (here on :: , which takes IPv4 too) is refused as well
    const hostService = spawn(process.execPath, ['-e', "require('net').createServer().listen(8090, '::')"], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const busy = await nslab('node', 'run', 'web3', '-p', '8090:80');
      expect([busy.exitCode, busy.stderr.trim()]).toEqual([2, 'nslab: -p 0.0.0.0:8090:80/tcp: host port 8090/tcp is in use by a socket of the host listening on 0.0.0.0 (Docker: address already in use)']);
      expect(await netSnapshot()).toEqual(before);
    } finally {
      hostService.kill();
    }

    // disconnected from its network, web's ports go; connected back, they are published again (Docker
    // keeps a container's port bindings), at its new address
    await ok('network', 'disconnect', 'bridge', 'web');
    expect(await iptablesSave()).not.toContain('nslab:node=web');
    expect(await fetchFrom('client', 'http://10.99.0.1:8080/')).toBeNull();
    await ok('network', 'connect', 'bridge', 'web');
    expect(await fetchFrom('client', 'http://10.99.0.1:8080/')).toBe(hello);
    expect((await readNetState()).nodes.web!.ports.map((p) => `${p.hostIp}:${p.hostPort}`)).toEqual(['0.0.0.0:8080', '10.99.0.1:8081', '10.99.0.1:49000', '0.0.0.0:49001', '127.0.0.1:8082']);

    // rm web: its rules go, the others' stay and work
    await ok('node', 'rm', 'web');
    expect(await fetchFrom('client', 'http://10.99.0.1:8080/')).toBeNull();
    const save = await iptablesSave();
    expect(save).not.toContain('nslab:node=web');
    expect(save).toContain('nslab:node=dns');
    expect(await udpFrom('client', '10.99.0.1', 5353, 'again')).toBe('pong:again');
    await ok('node', 'rm', 'n2', 'dns');
    await ok('network', 'rm', 'bridge');
    expect(await netSnapshot()).toEqual(base);
  });
});

test('a node whose process fails at once is rolled back whole: netns, veth, address, rules, names', async () => {
  await ok('network', 'create', 'nw-rb');
  const before = await netSnapshot();
  const res = await nslab('node', 'run', 'bad', '--net', 'nw-rb', '-p', '8090:80', '--', 'sh', '-c', 'echo cannot start >&2; exit 3');
  expect(res.exitCode).toBe(1);
  expect(res.stderr.trim()).toBe('nslab: node bad: sh -c echo cannot start >&2; exit 3 exited at once (exit code 3): cannot start');
  expect(await netSnapshot()).toEqual(before);
  expect(existsSync(nodeLog('bad'))).toBe(false); // its log, read for the message, went with it
  expect(await ok('node', 'run', 'good', '--net', 'nw-rb')).toBe('good: eth0 172.18.0.2/16 on nw-rb'); // the address was released
  await ok('node', 'rm', 'good');
  await ok('network', 'rm', 'nw-rb');
  expect(await netSnapshot()).toEqual(baseline);
});

/** A runner whose K-th changing command fails (reads pass: ip -j, iptables-save, sysctl -n, ip netns pids). */
class FaultRunner implements Runner {
  count = 0;
  constructor(private readonly at: number) {}
  private read(argv: string[]): boolean {
    return argv.includes('-j') || argv[0] === 'iptables-save' || (argv[0] === 'sysctl' && argv[1] === '-n') || (argv[1] === 'netns' && argv[2] === 'pids');
  }
  async run(cmd: Command, opts: RunOptions = {}): Promise<Result> {
    if (!this.read(cmd.argv) && this.count++ === this.at) {
      if (opts.check === false) return { stdout: '', stderr: 'injected fault', exitCode: 1 };
      throw commandError(cmd, 1, 'injected fault');
    }
    return runner.run(cmd, opts);
  }
  async batch(tool: BatchTool, netns: string | null, lines: string[][], opts: BatchOptions = {}): Promise<BatchResult> {
    if (this.count++ === this.at) return { failed: [{ index: 0, message: 'injected fault' }], stderr: 'injected fault\nCommand failed -:1' };
    return runner.batch(tool, netns, lines, opts);
  }
  async batchEach(jobs: BatchJob[]): Promise<BatchResult[]> {
    const out: BatchResult[] = [];
    for (const j of jobs) out.push(await this.batch('ip', j.netns, j.lines, { sysctls: j.sysctls ?? [] }));
    return out;
  }
}

test('a fault at every changing command of network create (with the host setup) and node run is rolled back', async () => {
  const state = async () => ({ kernel: await netSnapshot(), state: await readNetState() });
  const before = await state();
  let k = 0;
  for (; ; k++) {
    const f = new FaultRunner(k);
    const err = await createNetwork(f, { name: 'nw-f', driver: 'bridge', subnet: null, gateway: null }).then(() => null, (e: unknown) => e);
    if (!err) break;
    expect(err).toBeInstanceOf(NslabError);
    expect((err as NslabError).hint ?? '').not.toMatch(/rollback left/);
    expect(await state()).toEqual(before);
  }
  expect(k).toBeGreaterThanOrEqual(6);
  const withNet = await state();
  const req = { name: 'nf', mode: { kind: 'network' as const, network: 'nw-f' }, ip: null, hostname: null, publish: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' as const }], publishAll: false, expose: [], links: [], cmd: ['sleep', '600'] };
  let j = 0;
  for (; ; j++) {
    const err = await runNode(new FaultRunner(j), req).then(() => null, (e: unknown) => e);
    if (!err) break;
    expect(err).toBeInstanceOf(NslabError);
    expect(await state()).toEqual(withNet);
  }
  expect(j).toBeGreaterThanOrEqual(5);
  process.stdout.write(`rollback: a fault at each of the ${k} changing commands of network create, and of the ${j} of node run\n`);
  expect(await ping('nf', '172.18.0.1')).toBe(true);
  await removeNodes(runner, ['nf']);
  await removeNetwork(runner, 'nw-f');
  expect(await netSnapshot()).toEqual(baseline);
});

test('4 processes x 20 node run on one network at once: 80 distinct addresses, in state and kernel', async () => {
  await ok('network', 'create', 'conc');
  const t0 = Date.now();
  const script = 'for i in $(seq 1 20); do node "$0" node run "c$1-$i" --net conc >/dev/null || echo "failed c$1-$i"; done';
  const res = await Promise.all([1, 2, 3, 4].map((p) => execa('sh', ['-c', script, CLI, String(p)], { reject: false })));
  const runMs = Date.now() - t0;
  expect(res.map((r) => r.stdout + r.stderr).join('')).toBe('');
  const c = (await inspectNet('conc')).Containers;
  const ips = Object.values(c).map((x) => x.IPv4Address);
  expect(ips).toHaveLength(80);
  expect(new Set(ips).size).toBe(80);
  expect(ips).not.toContain('172.18.0.1/16');
  const kernel = await Promise.all(Object.keys(c).map((n) => addrsOf(n, 'eth0')));
  expect(new Set(kernel.flat()).size).toBe(80);
  expect(kernel.flat().sort()).toEqual([...ips].sort());
  expect(await ping('c1-1', Object.values(c).find((x) => x.IPv4Address !== c['c1-1']!.IPv4Address)!.IPv4Address.split('/')[0]!)).toBe(true);
  const t1 = Date.now();
  await ok('node', 'rm', ...Object.keys(c));
  const rmMs = Date.now() - t1;
  await ok('network', 'rm', 'conc');
  expect(await netSnapshot()).toEqual(baseline);
  process.stdout.write(`concurrency: 80 node run in ${(runMs / 1000).toFixed(1)} s (4 processes), 80 node rm in ${(rmMs / 1000).toFixed(1)} s (one process)\n`);
}, 900_000); // 80 CLI starts of about 0.8 s of CPU each: minutes on a busy 2-core machine
