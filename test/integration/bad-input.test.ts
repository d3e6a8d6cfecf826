// Bad input through the CLI, one table for every command: exit 2, one line on stderr naming the bad
// value, and the sandbox exactly as it was (issue 17, part 5).
import { execa } from 'execa';
import { join } from 'node:path';
import { assertSandbox, netSnapshot, runner } from '../helpers/kernel.js';
import { topoFile } from '../helpers/topo.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
const nslab = (...args: string[]) => execa('node', [CLI, ...args], { reject: false });
const ok = async (...args: string[]): Promise<void> => {
  const res = await nslab(...args);
  if (res.exitCode !== 0) throw new Error(`nslab ${args.join(' ')} exited ${res.exitCode}: ${res.stderr}`);
};
const sh = (...argv: string[]) => runner.run({ argv });

/** A topology around one bridge and two nodes: `extra` is put under node a, `b` is node b's address. */
const topo = (o: { a?: string; b?: string; aExtra?: string; bridge?: string } = {}) => `name: bad
bridges:
  br0: { addresses: [${o.bridge ?? '10.0.0.254/24'}] }
nodes:
  a:
    interfaces:
      eth0: { addresses: [${o.a ?? '10.0.0.1/24'}] }
${o.aExtra ?? ''}
  b:
    interfaces:
      eth0: { addresses: [${o.b ?? '10.0.0.2/24'}] }
links:
  - [a:eth0, br0]
  - [b:eth0, br0]
`;

/** Bad topology files: each is tried with every command that takes a topology file. */
const TOPOLOGIES: Array<[string, string, RegExp]> = [
  ['an empty file', '', /empty file: expected a topology/],
  ['a file of comments only', '# to do\n', /empty file: expected a topology/],
  ['a name and nothing to build', 'name: x\n', /topology "x" has no nodes, bridges, links or host/],
  ['one address on two nodes of a bridge', topo({ b: '10.0.0.1/24' }), /nodes\.b\.interfaces\.eth0\.addresses\[0\]: address 10\.0\.0\.1\/24 is already on a:eth0, in the same L2 segment \(bridge br0\)/],
  ['a node with the bridge\'s address', topo({ a: '10.0.0.254/24' }), /address 10\.0\.0\.254\/24 is already on bridge br0/],
  ['one IPv6 address spelled two ways', topo({ a: '"fd00::1/64"', b: '"fd00:0::1/64"', bridge: '"fd00::fe/64"' }), /address fd00:0::1\/64 is already on a:eth0/],
  ['a kernel.* sysctl in a node', topo({ aExtra: '    sysctls: { kernel.core_pattern: "|/tmp/x" }' }), /nodes\.a\.sysctls\.kernel\.core_pattern: bad key "kernel\.core_pattern": a host-wide kernel\.\* key/],
  ['a sysctl key with .. parts', topo({ aExtra: '    sysctls: { "net/../../../tmp/x": 1 }' }), /bad key "net\/\.\.\/\.\.\/\.\.\/tmp\/x": an "\.\." path part/],
  ['a sysctl key with an empty part', topo({ aExtra: '    sysctls: { net.ipv4..x: 1 }' }), /bad key "net\.ipv4\.\.x": an empty path part/],
  ['a gateway on no connected subnet', topo({ aExtra: '    routes: [{ to: default, via: 10.9.0.1 }]' }), /nodes\.a\.routes\[0\]\.via: gateway 10\.9\.0\.1 of the route to default is on no subnet connected to a \(.*10\.0\.0\.1\/24.*\): expected a gateway on one of them, or onlink: true with dev/],
  ['onlink without dev', topo({ aExtra: '    routes: [{ to: default, via: 10.9.0.1, onlink: true }]' }), /nodes\.a\.routes\[0\]: an onlink route needs "via" \(the gateway\) and "dev"/],
  // Issue 24: ip refused it inside a batch, and the failure was blamed on another step.
  ['an IPv6 gateway on an IPv4 route', topo({ a: '10.0.0.1/24, "2001:db8::1/64"', aExtra: '    routes: [{ to: 10.9.0.0/16, via: "2001:db8::fe" }]' }), /nodes\.a\.routes\[0\]\.via: gateway 2001:db8::fe is IPv6 but the route to 10\.9\.0\.0\/16 is IPv4: expected an IPv4 gateway/],
];

/** How each file command is called: FILE goes where the placeholder is. */
const FILE_COMMANDS: Array<[string, (f: string) => string[]]> = [
  ['up', (f) => ['up', f]],
  ['plan', (f) => ['plan', f]],
  ['down', (f) => ['down', f]],
  ['verify', (f) => ['verify', f]],
  ['pingall', (f) => ['pingall', f]],
  ['graph', (f) => ['graph', f, '--format', 'dot']],
];

/** Commands with their bad argument and what the one line must name. `$F:NAME` is a file of FILES[NAME]. */
const FILES: Record<string, string> = {
  empty: '',
  good: topo(),
  comments: '# nothing yet\n',
  twice: '- { guest: g2, to: br9, ip: 10.6.0.5/24 }\n- { guest: g3, to: br9, ip: 10.6.0.5/24 }\n',
  twice6: '- { guest: g2, to: br9, ip: "fd06::5/64" }\n- { guest: g3, to: br9, ip: "fd06:0:0::5/64" }\n',
  held: '- { guest: g2, to: br0, ip: 10.5.0.1/24 }\n',
  badmtu: '- { guest: g2, to: br0, mtu: 20 }\n',
};
const COMMANDS: Array<[string, string[], RegExp]> = [
  ['attach: an address another guest on the bridge holds', ['attach', 'g2', '--to', 'br0', '--ip', '10.5.0.1/24'], /--ip 10\.5\.0\.1\/24: 10\.5\.0\.1 is already held by g1:eth1 on bridge br0/],
  ['attach: the bridge\'s own address', ['attach', 'g2', '--to', 'br0', '--ip', '10.5.0.254/24'], /--ip 10\.5\.0\.254\/24: 10\.5\.0\.254 is already held by bridge br0/],
  ['attach: an IPv6 address another guest holds, spelled otherwise', ['attach', 'g2', '--to', 'br0', '--ip', 'fd05:0::1/64'], /--ip fd05:0::1\/64: fd05::1 is already held by g1:eth1 on bridge br0/],
  ['attach: one address twice in one call', ['attach', 'g2', '--to', 'br0', '--ip', '10.5.0.7/24', '--ip', '10.5.0.7/24'], /--ip 10\.5\.0\.7\/24 for g2:eth1: 10\.5\.0\.7 is already asked for g2:eth1 on br0 in this call/],
  ['attach: an address without length', ['attach', 'g2', '--to', 'br0', '--ip', '10.5.0.9'], /address "10\.5\.0\.9" has no prefix length/],
  ['attach: a VLAN out of range', ['attach', 'g2', '--to', 'ovs-x', '--vlan', '4095'], /VLAN "4095": expected a tag from 1 to 4094/],
  ['attach: an MTU too small', ['attach', 'g2', '--to', 'br0', '--mtu', '20'], /--mtu 20: expected a whole number of bytes from 68 to 65535/],
  ['attach: a multicast MAC', ['attach', 'g2', '--to', 'br0', '--mac', '01:00:5e:00:00:01'], /MAC "01:00:5e:00:00:01": a multicast address/],
  ['attach -f: an empty file', ['attach', '-f', '$F:empty'], /empty file: expected a list of attaches/],
  ['attach -f: a file of comments only', ['attach', '-f', '$F:comments'], /empty file: expected a list of attaches/],
  ['attach -f: one address twice onto one bridge', ['attach', '-f', '$F:twice'], /:2: \[1\]: --ip 10\.6\.0\.5\/24 for g3:eth1: 10\.6\.0\.5 is already asked for g2:eth1 on br9/],
  ['attach -f: one IPv6 address twice, spelled otherwise', ['attach', '-f', '$F:twice6'], /--ip fd06:0:0::5\/64 for g3:eth1: fd06::5 is already asked for g2:eth1/],
  ['attach -f: an address another guest holds', ['attach', '-f', '$F:held'], /:1: \[0\]: --ip 10\.5\.0\.1\/24: 10\.5\.0\.1 is already held by g1:eth1 on bridge br0/],
  ['attach -f: an MTU too small', ['attach', '-f', '$F:badmtu'], /\[0\]: --mtu 20: expected a whole number/],
  ['detach: an interface nslab did not attach', ['detach', 'g1', 'lo'], /lo was not attached by nslab/],
  ['detach: an interface name too long', ['detach', 'g1', 'eth1-far-too-long'], /IFNAME "eth1-far-too-long" is 17 bytes long/],
  ['pipework: an address another guest holds', ['pipework', 'br0', 'g2', '10.5.0.1/24'], /10\.5\.0\.1 is already held by g1:eth1 on bridge br0/],
  ['pipework: an address without length', ['pipework', 'br0', 'g2', '10.5.0.9'], /"10\.5\.0\.9" has no prefix length: maybe you meant 10\.5\.0\.9\/24/],
  ['network create: a subnet length too big', ['network', 'create', '--subnet', '10.1.0.0/33', 'bad'], /--subnet "10\.1\.0\.0\/33"/],
  ['network create: a reserved name', ['network', 'create', 'host'], /network name "host" is reserved/],
  ['network create: a gateway outside the subnet', ['network', 'create', '--subnet', '172.44.0.0/24', '--gateway', '172.45.0.1', 'gw'], /--gateway 172\.45\.0\.1 is not a host address of --subnet 172\.44\.0\.0\/24/],
  ['network create: a subnet overlapping another', ['network', 'create', '--subnet', '172.40.0.0/16', 'over'], /--subnet 172\.40\.0\.0\/16 overlaps network vnet/],
  ['network connect: an address another node holds', ['network', 'connect', '--ip', '172.40.0.10', 'vnet', 'n2'], /--ip 172\.40\.0\.10 is already in use on this network/],
  ['network connect: a static address already held', ['network', 'connect', '--ip', '172.41.0.10', 'vnet2', 'n1'], /--ip 172\.41\.0\.10 is already in use on this network/],
  ['network connect: an address outside the subnet', ['network', 'connect', '--ip', '172.99.0.10', 'vnet2', 'n1'], /--ip 172\.99\.0\.10 is outside the network's subnet 172\.41\.0\.0\/24/],
  ['network connect: an unknown network', ['network', 'connect', 'nonet', 'n1'], /network "nonet" not found/],
  ['network rm: a predefined network', ['network', 'rm', 'host'], /network host is predefined/],
  ['network rm: an unknown network', ['network', 'rm', 'nosuch'], /network "nosuch" not found/],
  ['node run: a static address another node holds', ['node', 'run', 'x', '--net', 'vnet', '--ip', '172.40.0.10'], /--ip 172\.40\.0\.10 is already in use on this network/],
  ['node run: the gateway\'s address', ['node', 'run', 'x', '--net', 'vnet', '--ip', '172.40.0.1'], /--ip 172\.40\.0\.1 is the gateway of 172\.40\.0\.0\/24/],
  ['node run: an address outside the subnet', ['node', 'run', 'x', '--net', 'vnet', '--ip', '172.41.9.9'], /--ip 172\.41\.9\.9 is outside the network's subnet 172\.40\.0\.0\/24/],
  ['node run: --ip on the default network', ['node', 'run', 'x', '--ip', '172.17.0.9'], /--ip 172\.17\.0\.9: a static address is supported on user-defined networks only/],
  ['node run: an unknown network', ['node', 'run', 'x', '--net', 'nw-99'], /network "nw-99" not found/],
  ['node run: a bad port', ['node', 'run', 'x', '--net', 'vnet', '-p', '8080:99999'], /-p "8080:99999": port "99999"/],
  ['node run: a bad name', ['node', 'run', 'x y', '--net', 'vnet'], /node name "x y"/],
  ['node rm: an unknown node', ['node', 'rm', 'nosuch'], /node "nosuch" not found/],
  ['lab run: an unknown lab', ['lab', 'run', '99'], /no lab "99": expected one of/],
  ['lab up: an unknown lab', ['lab', 'up', 'nolab'], /no lab "nolab": expected one of/],
  ['lab down: an unknown lab', ['lab', 'down', '98'], /no lab "98": expected one of/],
  ['lab verify: an unknown lab', ['lab', 'verify', '97'], /no lab "97": expected one of/],
  ['pingall: an unknown lab', ['pingall', 'lab', '96'], /no lab "96"|96/],
  ['graph: an unknown format', ['graph', '$F:good', '--format', 'png'], /--format "png": expected one of dot, mermaid, svg/],
  ['inspect: an unknown option', ['inspect', '--bogus'], /bogus/],
];

let before: Awaited<ReturnType<typeof netSnapshot>>;

beforeAll(async () => {
  await assertSandbox();
  for (const g of ['g1', 'g2', 'g3']) await sh('ip', 'netns', 'add', g);
  await ok('attach', 'g1', '--to', 'br0', '--ip', '10.5.0.1/24', '--ip', 'fd05::1/64');
  await sh('ip', 'addr', 'add', '10.5.0.254/24', 'dev', 'br0');
  await ok('network', 'create', '--subnet', '172.40.0.0/24', 'vnet');
  await ok('network', 'create', '--subnet', '172.41.0.0/24', 'vnet2');
  await ok('node', 'run', 'n1', '--net', 'vnet', '--ip', '172.40.0.10');
  await ok('node', 'run', 'n2', '--net', 'vnet2', '--ip', '172.41.0.10');
  before = await netSnapshot();
});

afterAll(async () => {
  await nslab('node', 'rm', 'n1', 'n2');
  await nslab('network', 'rm', 'vnet', 'vnet2');
  await nslab('detach', 'g1', 'eth1');
  await runner.run({ argv: ['ip', 'link', 'del', 'br0'] }, { check: false });
  for (const g of ['g1', 'g2', 'g3']) await runner.run({ argv: ['ip', 'netns', 'del', g] }, { check: false });
});

/** Runs one bad command line and checks what the table promises. */
async function refused(args: string[], re: RegExp): Promise<void> {
  const res = await nslab(...args);
  const lines = res.stderr.trim().split('\n');
  expect({ exit: res.exitCode, lines: lines.length, stdout: res.stdout }).toEqual({ exit: 2, lines: 1, stdout: '' });
  expect(lines[0]).toMatch(/^nslab: /);
  expect(lines[0]).toMatch(re);
  expect(await netSnapshot()).toEqual(before);
}

const fileCases = TOPOLOGIES.flatMap(([what, yaml, re]) => FILE_COMMANDS.map(([cmd, argv]) => [`${cmd}: ${what}`, yaml, argv, re] as const));

test.each(fileCases)('%s', async (_what, yaml, argv, re) => {
  await refused(argv(topoFile('bad', yaml)), re);
});

test.each(COMMANDS)('%s', async (_what, args, re) => {
  await refused(args.map((a) => (a.startsWith('$F:') ? topoFile(a.slice(3), FILES[a.slice(3)]!) : a)), re);
});

test('the table has at least 60 cases and names every command', () => {
  expect(fileCases.length + COMMANDS.length).toBeGreaterThanOrEqual(60);
  const named = new Set([...fileCases.map((c) => c[0].split(':')[0]!), ...COMMANDS.map((c) => c[0].split(':')[0]!)]);
  for (const c of ['up', 'plan', 'down', 'verify', 'attach', 'attach -f', 'detach', 'pipework', 'network create', 'network connect', 'network rm', 'node run', 'node rm', 'lab run', 'lab up', 'lab down', 'lab verify', 'pingall', 'graph', 'inspect']) expect(named).toContain(c);
});
