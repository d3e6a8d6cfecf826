// Network modes without a kernel: flag parsing, IPAM, Docker's rules as iptables lines, hosts files.
import { checkRunRequest, type NodeRunRequest } from '../../src/engine/netmodes/node.js';
import { renderHosts } from '../../src/engine/hosts/hosts.js';
import { baseRules, networkRules, planHostSetup, planNetwork, planPorts, portRules } from '../../src/engine/netmodes/netplan.js';
import { emptyState, type NetState, type NetworkRecord, type NodeRecord } from '../../src/engine/netmodes/netstate.js';
import { NslabError } from '../../src/errors.js';
import { addRules, normalizeSave, parseSave, pristine, ruleLine, BUILTIN } from '../../src/kernel/iptables.js';
import { opArgv } from '../../src/kernel/step.js';
import { allocate, defaultPools, dockerMac, listeningPorts, pickHostPort, pickSubnet } from '../../src/model/ipam.js';
import { daemonOptions, linkEnv, networkCreateRequest, parseExpose, parseLink, parseNetMode, parsePortSpec } from '../../src/model/netmodes.js';

const bad = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NslabError);
    expect((err as NslabError).code).toBe('INVALID_INPUT');
    expect((err as NslabError).message.split('\n')).toHaveLength(1);
    return (err as NslabError).message;
  }
  throw new Error('expected an error');
};

const net = (over: Partial<NetworkRecord> = {}): NetworkRecord => ({
  name: 'bridge',
  id: 'a'.repeat(64),
  driver: 'bridge',
  bridge: 'nslab0',
  external: false,
  subnet: '172.17.0.0/16',
  gateway: '172.17.0.1',
  ipRange: null,
  mtu: 1500,
  icc: true,
  userSubnet: false,
  iptables: true,
  isDefault: true,
  created: '2026-01-01T00:00:00Z',
  routeLocalnetPrev: null,
  ...over,
});

describe('flags', () => {
  test('-p in every form of the notes', () => {
    expect(parsePortSpec('8080:80')).toEqual({ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' });
    expect(parsePortSpec('192.168.226.147:5100:5100')).toEqual({ hostIp: '192.168.226.147', hostPort: 5100, containerPort: 5100, proto: 'tcp' });
    expect(parsePortSpec('192.168.226.147::5500')).toEqual({ hostIp: '192.168.226.147', hostPort: null, containerPort: 5500, proto: 'tcp' });
    expect(parsePortSpec('8080')).toEqual({ hostIp: '0.0.0.0', hostPort: null, containerPort: 8080, proto: 'tcp' });
    expect(parsePortSpec('127.0.0.1:53:5353/udp')).toEqual({ hostIp: '127.0.0.1', hostPort: 53, containerPort: 5353, proto: 'udp' });
    expect(parsePortSpec('80/tcp').proto).toBe('tcp');
    expect(bad(() => parsePortSpec('70000'))).toMatch(/^-p "70000": port "70000" is not a number from 1 to 65535; expected \[IP:\]\[HOSTPORT:\]CONTAINERPORT/);
    expect(bad(() => parsePortSpec('80/sctp'))).toMatch(/protocol "sctp" is not tcp or udp/);
    expect(bad(() => parsePortSpec('1.2.3:80:80'))).toMatch(/host address "1\.2\.3" is not an IPv4 address/);
    expect(bad(() => parsePortSpec(':80'))).toMatch(/^-p ":80": expected/);
    expect(bad(() => parsePortSpec('a:b:c:d'))).toMatch(/^-p "a:b:c:d": expected/);
  });

  test('--net, --link, --expose', () => {
    expect(parseNetMode('none')).toEqual({ kind: 'none' });
    expect(parseNetMode('host')).toEqual({ kind: 'host' });
    expect(parseNetMode('bridge')).toEqual({ kind: 'network', network: 'bridge' });
    expect(parseNetMode('container:web')).toEqual({ kind: 'container', other: 'web' });
    expect(parseNetMode('nw-01')).toEqual({ kind: 'network', network: 'nw-01' });
    expect(bad(() => parseNetMode('container:'))).toBe('--net "container:": expected container:NODE with the name of a node');
    expect(bad(() => parseNetMode('a b'))).toMatch(/expected none, host, bridge, container:NODE or the name of a network/);
    expect(parseLink('db:dblink')).toEqual({ target: 'db', alias: 'dblink' });
    expect(parseLink('db')).toEqual({ target: 'db', alias: 'db' });
    expect(bad(() => parseLink('a:b:c'))).toMatch(/expected NODE or NODE:ALIAS/);
    expect(parseExpose('53/udp')).toEqual({ port: 53, proto: 'udp' });
    expect(bad(() => parseExpose('0'))).toMatch(/--expose "0"/);
  });

  test("--link's environment is the notes' (DB_NAME=/web2/db, DB_PORT=tcp://172.17.0.5:5432, …)", () => {
    expect(linkEnv('web2', { target: 'db', alias: 'db' }, '172.17.0.5', [{ port: 5432, proto: 'tcp' }])).toEqual({
      DB_NAME: '/web2/db',
      DB_PORT: 'tcp://172.17.0.5:5432',
      DB_PORT_5432_TCP: 'tcp://172.17.0.5:5432',
      DB_PORT_5432_TCP_PROTO: 'tcp',
      DB_PORT_5432_TCP_PORT: '5432',
      DB_PORT_5432_TCP_ADDR: '172.17.0.5',
    });
    expect(linkEnv('web', { target: 'db', alias: 'web-db' }, '10.0.0.2', [])).toEqual({ WEB_DB_NAME: '/web/web-db' });
  });

  test("the daemon's options: the notes' DOCKER_OPTS, and what dockerd refuses", () => {
    expect(daemonOptions({ bip: '172.17.0.1/24', 'fixed-cidr': '172.17.0.1/25' })).toMatchObject({ bip: '172.17.0.1/24', fixedCidr: '172.17.0.0/25', mtu: 1500, icc: true, iptables: true, ipForward: true });
    expect(daemonOptions({ bridge: 'bridge0', icc: false, iptables: false, 'ip-forward': false, mtu: 1450 })).toMatchObject({ bridge: 'bridge0', icc: false, iptables: false, ipForward: false, mtu: 1450 });
    expect(bad(() => daemonOptions({ bip: '172.17.0.1/24', bridge: 'bridge0' }))).toMatch(/exclude each other/);
    expect(bad(() => daemonOptions({ bip: '172.17.0.0/16' }))).toMatch(/expected the bridge's own address/);
    expect(bad(() => daemonOptions({ bip: '172.17.0.1/24', 'fixed-cidr': '10.0.0.0/25' }))).toBe('--fixed-cidr 10.0.0.0/25 is not within --bip 172.17.0.1/24');
    expect(bad(() => daemonOptions({ mtu: 20 }))).toMatch(/--mtu 20: expected a whole number of bytes from 68 to 65535/);
  });

  test('network create: the notes\' my-net3, and the refusals', () => {
    expect(networkCreateRequest({ name: 'my-net3', driver: 'bridge', subnet: '172.33.1.0/24', gateway: '172.33.1.1' })).toEqual({ name: 'my-net3', driver: 'bridge', subnet: '172.33.1.0/24', gateway: '172.33.1.1' });
    expect(networkCreateRequest({ name: 'nw-01' })).toEqual({ name: 'nw-01', driver: 'bridge', subnet: null, gateway: null });
    expect(bad(() => networkCreateRequest({ name: 'bridge' }))).toMatch(/reserved/);
    expect(bad(() => networkCreateRequest({ name: 'n', driver: 'overlay' }))).toMatch(/--driver "overlay": only bridge/);
    expect(bad(() => networkCreateRequest({ name: 'n', subnet: '172.33.1.1/24' }))).toBe('--subnet 172.33.1.1/24: expected a network address, such as 172.33.1.0/24');
    expect(bad(() => networkCreateRequest({ name: 'n', subnet: '172.33.1.0/33' }))).toMatch(/expected an IPv4 address with its prefix length/);
    expect(bad(() => networkCreateRequest({ name: 'n', subnet: '172.33.1.0/24', gateway: '172.33.2.1' }))).toBe('--gateway 172.33.2.1 is not a host address of --subnet 172.33.1.0/24');
    expect(bad(() => networkCreateRequest({ name: 'n', gateway: '172.33.2.1' }))).toMatch(/needs --subnet/);
    expect(bad(() => networkCreateRequest({ name: '-x' }))).toMatch(/^network name "-x": expected/);
  });

  test('options that conflict with a mode are refused, as Docker does', () => {
    const req = (over: Partial<NodeRunRequest>): NodeRunRequest => ({ name: 'n', mode: { kind: 'network', network: 'bridge' }, ip: null, hostname: null, publish: [], publishAll: false, expose: [], links: [], cmd: null, ...over });
    expect(() => checkRunRequest(req({}))).not.toThrow();
    expect(bad(() => checkRunRequest(req({ mode: { kind: 'host' }, publish: [parsePortSpec('80')] })))).toMatch(/-p\/-P with --net host: ports are published on a network's bridge only/);
    expect(bad(() => checkRunRequest(req({ mode: { kind: 'container', other: 'web' }, hostname: 'h' })))).toMatch(/--hostname with --net container:web: conflicting options/);
    expect(bad(() => checkRunRequest(req({ mode: { kind: 'none' }, ip: '10.0.0.1' })))).toMatch(/--ip 10\.0\.0\.1 with --net none/);
    expect(bad(() => checkRunRequest(req({ mode: { kind: 'container', other: 'n' } })))).toMatch(/cannot share its own netns/);
  });
});

describe('IPAM', () => {
  test("subnets: Docker's pools in order, skipping networks and host routes", () => {
    expect(defaultPools().slice(0, 3)).toEqual(['172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16']);
    expect(defaultPools()).toContain('192.168.240.0/20');
    expect(pickSubnet(['172.17.0.0/16'])).toBe('172.18.0.0/16');
    expect(pickSubnet(['172.17.0.0/16', '172.18.0.0/16'])).toBe('172.19.0.0/16');
    expect(pickSubnet(['172.17.0.0/16', '172.18.5.0/24', '10.0.0.0/8'])).toBe('172.19.0.0/16');
    expect(pickSubnet(['172.16.0.0/12'])).toBe('192.168.0.0/20');
    expect(pickSubnet(['0.0.0.0/0'])).toBeNull();
  });

  test('addresses: lowest free, never the gateway, the network or broadcast address; static ones checked', () => {
    const pool = { subnet: '172.19.0.0/16', range: '172.19.0.0/16', gateway: '172.19.0.1' };
    expect(allocate(pool, new Set(['172.19.0.1']), null)).toBe('172.19.0.2');
    expect(allocate(pool, new Set(['172.19.0.1', '172.19.0.2', '172.19.0.3']), null)).toBe('172.19.0.4');
    expect(allocate({ ...pool, gateway: '172.19.0.2' }, new Set(), null)).toBe('172.19.0.1');
    expect(allocate(pool, new Set(), '172.19.0.100')).toBe('172.19.0.100');
    expect(bad(() => allocate(pool, new Set(['172.19.0.100']), '172.19.0.100'))).toBe('--ip 172.19.0.100 is already in use on this network');
    expect(bad(() => allocate(pool, new Set(), '172.20.0.100'))).toBe("--ip 172.20.0.100 is outside the network's subnet 172.19.0.0/16");
    expect(bad(() => allocate(pool, new Set(), '172.19.0.1'))).toBe('--ip 172.19.0.1 is the gateway of 172.19.0.0/16');
    expect(bad(() => allocate(pool, new Set(), '172.19.255.255'))).toMatch(/broadcast address/);
    // --fixed-cidr: from the range; a full range says so
    const fixed = { subnet: '172.17.0.0/24', range: '172.17.0.0/30', gateway: '172.17.0.1' };
    expect(allocate(fixed, new Set(), null)).toBe('172.17.0.2');
    expect(bad(() => allocate(fixed, new Set(['172.17.0.2']), null))).toMatch(/^no free address left in 172\.17\.0\.0\/30/);
  });

  test("Docker's MACs, host ports from 49000-49900, listening sockets", () => {
    expect(dockerMac('172.17.0.2')).toBe('02:42:ac:11:00:02');
    expect(pickHostPort('tcp', '0.0.0.0', [])).toBe(49000);
    expect(pickHostPort('tcp', '0.0.0.0', [{ proto: 'tcp', hostIp: '10.0.0.1', hostPort: 49000 }])).toBe(49001);
    expect(pickHostPort('tcp', '10.0.0.2', [{ proto: 'tcp', hostIp: '10.0.0.1', hostPort: 49000 }])).toBe(49000);
    expect(pickHostPort('udp', '0.0.0.0', [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 49000 }])).toBe(49000);
    const tcp = '  sl  local_address rem_address   st\n   0: 0100007F:BF68 00000000:0000 0A 00000000:00000000\n   1: 00000000:0050 0100007F:1234 01 00000000:00000000\n';
    expect(listeningPorts(tcp, 'tcp')).toEqual([{ proto: 'tcp', hostIp: '127.0.0.1', hostPort: 49000 }]);
    // tcp6: a socket on :: takes IPv4 too (counts as 0.0.0.0); one on ::1 does not
    const tcp6 = '  sl  local_address rem_address st\n   0: 00000000000000000000000000000000:1F9A 00000000000000000000000000000000:0000 0A 0\n   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0\n';
    expect(listeningPorts(tcp6, 'tcp')).toEqual([{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8090 }]);
  });
});

describe('iptables', () => {
  const r1 = { table: 'nat' as const, chain: 'POSTROUTING', spec: ['-s', '172.17.0.0/16', '!', '-o', 'nslab0', '-j', 'MASQUERADE'], comment: 'nslab:net=bridge', insert: true };
  test('lines carry the owner comment before -j; one iptables-restore --noflush per table; undo in reverse', () => {
    expect(ruleLine(r1, 'add')).toBe('-I POSTROUTING 1 -s 172.17.0.0/16 ! -o nslab0 -m comment --comment nslab:net=bridge -j MASQUERADE');
    expect(ruleLine(r1, 'del')).toBe('-D POSTROUTING -s 172.17.0.0/16 ! -o nslab0 -m comment --comment nslab:net=bridge -j MASQUERADE');
    const steps = addRules([...networkRules(net()), ...baseRules()], [{ table: 'nat', name: 'NSLAB' }], 'test');
    expect(steps).toHaveLength(2);
    const [filter, nat] = steps;
    expect(opArgv(filter!.do)).toEqual(['iptables-restore', '-w', '--noflush']);
    const input = (s: typeof filter) => (s!.do.tool === 'cmd' ? s!.do.cmd.input : '');
    expect(input(filter)!.split('\n')[0]).toBe('*filter');
    expect(input(nat)).toMatch(/^\*nat\n:NSLAB - \[0:0\]\n/);
    const undo = nat!.undo[0]!.tool === 'cmd' ? nat!.undo[0]!.cmd.input! : '';
    expect(undo.split('\n').slice(-3)).toEqual(['-X NSLAB', 'COMMIT', '']);
    expect(undo.split('\n')[1]).toMatch(/^-D OUTPUT /);
    expect(() => ruleLine({ ...r1, comment: 'a b' }, 'add')).toThrow(/blanks, quotes/);
  });

  test('iptables-save is read back: chains, policies, rules with their comments (quoted or not)', () => {
    const text = `# Generated by iptables-save v1.8.9 (nf_tables) on now\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [12:345]\n:OUTPUT ACCEPT [0:0]\n:NSLAB - [0:0]\n-A FORWARD -m comment --comment nslab -j NSLAB-FORWARD\n-A NSLAB -d 172.17.0.2/32 -m comment --comment "nslab:node=web" -j ACCEPT\n-A INPUT -s 10.9.9.9/32 -j DROP\nCOMMIT\n`;
    const s = parseSave(text);
    const f = s.get('filter')!;
    expect(f.chains.get('FORWARD')).toBe('DROP');
    expect(f.rules.map((x) => [x.chain, x.comment])).toEqual([['FORWARD', 'nslab'], ['NSLAB', 'nslab:node=web'], ['INPUT', null]]);
    expect(f.rules[1]!.text).toBe('-d 172.17.0.2/32 -m comment --comment "nslab:node=web" -j ACCEPT');
    expect(normalizeSave(text)).not.toMatch(/Generated|\[12:345\]/);
    expect(pristine(f, BUILTIN.filter)).toBe(false);
    expect(pristine(parseSave('*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n').get('nat'), BUILTIN.nat)).toBe(true);
  });
});

describe("Docker's rules and steps", () => {
  test("the default network's rules are the notes' (MASQUERADE -s 172.17.0.0/16 ! -o docker0, FORWARD -i docker0 -o docker0 ACCEPT)", () => {
    const lines = networkRules(net()).map((r) => `${r.table} ${ruleLine(r, 'add')}`);
    expect(lines).toContain('nat -I POSTROUTING 1 -s 172.17.0.0/16 ! -o nslab0 -m comment --comment nslab:net=bridge -j MASQUERADE');
    expect(lines).toContain('filter -A NSLAB-FORWARD -i nslab0 -o nslab0 -m comment --comment nslab:net=bridge -j ACCEPT');
    expect(lines).toContain('filter -A NSLAB-FORWARD -o nslab0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment nslab:net=bridge -j ACCEPT');
    expect(lines).toContain('filter -A NSLAB-ISOLATION-STAGE-1 -i nslab0 ! -o nslab0 -m comment --comment nslab:net=bridge -j NSLAB-ISOLATION-STAGE-2');
    expect(lines).toContain('filter -A NSLAB-ISOLATION-STAGE-2 -o nslab0 -m comment --comment nslab:net=bridge -j DROP');
    expect(networkRules(net({ icc: false })).map((r) => ruleLine(r, 'add'))).toContain('-A NSLAB-FORWARD -i nslab0 -o nslab0 -m comment --comment nslab:net=bridge -j DROP');
  });

  test('a published port: DNAT (on its host address when given), hairpin MASQUERADE, ACCEPT', () => {
    const b = { proto: 'udp' as const, hostIp: '127.0.0.1', hostPort: 53, containerPort: 5353, network: 'bridge', ip: '172.17.0.2' };
    expect(portRules('dns', 'nslab0', b).map((r) => ruleLine(r, 'add'))).toEqual([
      '-A NSLAB -d 127.0.0.1/32 -p udp -m udp --dport 53 -m comment --comment nslab:node=dns -j DNAT --to-destination 172.17.0.2:5353',
      '-I POSTROUTING 1 -s 172.17.0.2/32 -d 172.17.0.2/32 -p udp -m udp --dport 5353 -m comment --comment nslab:node=dns -j MASQUERADE',
      '-A NSLAB -d 172.17.0.2/32 ! -i nslab0 -o nslab0 -p udp -m udp --dport 5353 -m comment --comment nslab:node=dns -j ACCEPT',
    ]);
    // two host ports for one container port share the hairpin and ACCEPT rules
    const steps = planPorts('web', () => 'nslab0', [{ ...b, proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }, { ...b, proto: 'tcp', hostIp: '0.0.0.0', hostPort: 49000, containerPort: 80 }]);
    const all = steps.map((s) => (s.do.tool === 'cmd' ? s.do.cmd.input! : '')).join('');
    expect(all.match(/-j DNAT/g)).toHaveLength(2);
    expect(all.match(/-j MASQUERADE/g)).toHaveLength(1);
  });

  test('the host setup: ip_forward written always, undone and FORWARD DROP only when nslab turns forwarding on; nothing of iptables with --iptables=false', () => {
    const before = { ipForward: '0', forwardPolicy: 'ACCEPT', tables: new Set<string>(), chains: new Set<string>() };
    const p = planHostSetup({ ipForward: true, iptables: true }, before);
    expect(p.steps.map((s) => opArgv(s.do).join(' ')).slice(0, 2)).toEqual(['sysctl -q -w net.ipv4.ip_forward=1', 'iptables -w -P FORWARD DROP']);
    expect(p.steps[0]!.undo.map((o) => opArgv(o).join(' '))).toEqual(['sysctl -q -w net.ipv4.ip_forward=0']);
    expect(p).toMatchObject({ ipForwardPrev: '0', policyPrev: 'ACCEPT', tablesCreated: ['filter', 'nat'] });
    const on = planHostSetup({ ipForward: true, iptables: true }, { ...before, ipForward: '1', tables: new Set(['filter', 'nat']) });
    expect(on).toMatchObject({ ipForwardPrev: null, policyPrev: null, tablesCreated: [] });
    // On already: written again without undo (a recorded lab script turns it on where it is replayed), no DROP policy
    expect([opArgv(on.steps[0]!.do).join(' '), on.steps[0]!.undo]).toEqual(['sysctl -q -w net.ipv4.ip_forward=1', []]);
    expect(on.steps.slice(1).every((s) => opArgv(s.do)[0] === 'iptables-restore')).toBe(true);
    const off = planHostSetup({ ipForward: true, iptables: false }, before);
    expect(off.steps.map((s) => opArgv(s.do).join(' '))).toEqual(['sysctl -q -w net.ipv4.ip_forward=1']);
  });

  test('a network: bridge with its MTU and mark, gateway address, route_localnet, then its rules; an external bridge is left alone', () => {
    const argv = planNetwork(net({ name: 'nw-01', bridge: 'br-0123456789ab', subnet: '172.19.0.0/16', gateway: '172.19.0.1', mtu: 1450, isDefault: false })).map((s) => opArgv(s.do).join(' '));
    expect(argv.slice(0, 6)).toEqual([
      'ip link add name br-0123456789ab mtu 1450 type bridge',
      'ip link set dev br-0123456789ab alias nslab:net name=nw-01',
      'ip link set dev br-0123456789ab type bridge nf_call_iptables 1',
      'ip addr add 172.19.0.1/16 dev br-0123456789ab',
      'ip link set dev br-0123456789ab up',
      'sysctl -q -w net/ipv4/conf/br-0123456789ab/route_localnet=1',
    ]);
    const ext = planNetwork(net({ bridge: 'bridge0', external: true, routeLocalnetPrev: '0' }));
    expect(ext.map((s) => opArgv(s.do)[0])).toEqual(['sysctl', 'iptables-restore', 'iptables-restore']);
    expect(opArgv(ext[0]!.undo[0]!).join(' ')).toBe('sysctl -q -w net/ipv4/conf/bridge0/route_localnet=0');
  });
});

describe('names', () => {
  const node = (name: string, network: string, ip: string, over: Partial<NodeRecord> = {}): NodeRecord => ({
    name,
    mode: { kind: 'network', network },
    netns: name,
    hostname: name,
    endpoints: [{ network, ifname: 'eth0', ip, prefix: 16, mac: dockerMac(ip), gateway: null }],
    ports: [],
    exposed: [],
    links: [],
    env: {},
    cmd: null,
    pid: null,
    pidStart: null,
    created: '',
    ...over,
  });
  test('peers on a user-defined network resolve each other; on the default bridge only --link names do', () => {
    const st: NetState = emptyState();
    st.networks = { bridge: net(), 'nw-01': net({ name: 'nw-01', isDefault: false }) };
    st.nodes = {
      test00: node('test00', 'nw-01', '172.19.0.2'),
      test01: node('test01', 'nw-01', '172.19.0.3', { hostname: 'one' }),
      db: node('db', 'bridge', '172.17.0.5'),
      b2: node('b2', 'bridge', '172.17.0.6'),
      web: node('web', 'bridge', '172.17.0.7', { links: [{ target: 'db', alias: 'dblink' }] }),
    };
    const h0 = renderHosts(st, st.nodes.test00!);
    expect(h0).toMatch(/^127\.0\.0\.1\tlocalhost\n/);
    expect(h0).toContain('172.19.0.2\ttest00\n');
    expect(h0).toContain('172.19.0.3\ttest01\n');
    expect(renderHosts(st, st.nodes.test01!)).toContain('172.19.0.3\tone test01\n');
    const hw = renderHosts(st, st.nodes.web!);
    expect(hw).toContain('172.17.0.5\tdblink db\n');
    expect(hw).not.toContain('b2');
  });
});
