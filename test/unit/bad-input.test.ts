// Bad input at the model's edge, without root: every case is refused as one INVALID_INPUT line that
// names the bad value (issue 17, part 5); the CLI-level table is test/integration/bad-input.test.ts.
import { NslabError } from '../../src/errors.js';
import { checkBatchAddresses } from '../../src/engine/attach/attach.js';
import { precheckNetwork } from '../../src/engine/netmodes/network.js';
import type { NetState } from '../../src/engine/netmodes/netstate.js';
import { loadAttachFile } from '../../src/model/attach-file.js';
import { requestFromFlags, type AttachFlags } from '../../src/model/attach-flags.js';
import { sysctlKeyProblem, sysctlPath } from '../../src/model/schema.js';
import { model, topoFile } from '../helpers/topo.js';

/** Node a and b on bridge br0, and c linked to a by a veth; `aExtra` goes under node a. */
const topo = (o: { a?: string; b?: string; c?: string; a1?: string; aExtra?: string; bExtra?: string; hostExtra?: string; bridge?: string } = {}) => `name: t
${o.hostExtra ? `host:\n${o.hostExtra}\n` : ''}bridges:
  br0: { addresses: [${o.bridge ?? '10.0.0.254/24'}] }
nodes:
  a:
    interfaces:
      eth0: { addresses: [${o.a ?? '10.0.0.1/24'}] }
      eth1: { addresses: [${o.a1 ?? '10.1.0.1/24'}] }
${o.aExtra ?? ''}
  b:
    interfaces:
      eth0: { addresses: [${o.b ?? '10.0.0.2/24'}] }
${o.bExtra ?? ''}
  c:
    interfaces:
      eth0: { addresses: [${o.c ?? '10.1.0.2/24'}] }
links:
  - [a:eth0, br0]
  - [b:eth0, br0]
  - [a:eth1, c:eth0]
`;

const TOPOLOGIES: Array<[string, string, RegExp]> = [
  ['an empty file', '', /^\S+t\.yaml: empty file: expected a topology with nodes:, bridges: and links:/],
  ['blanks only', '\n\n   \n', /empty file/],
  ['comments only', '# later\n', /empty file/],
  ['a lone document marker', '---\n', /empty file/],
  ['a null document', '~\n', /empty file/],
  ['an empty mapping', '{}\n', /t\.yaml:1: topology "t" has no nodes, bridges, links or host: expected at least one node or bridge/],
  ['a name only', 'name: x\n', /topology "x" has no nodes, bridges, links or host/],
  ['empty sections', 'nodes: {}\nbridges: {}\nlinks: []\n', /has no nodes, bridges, links or host/],
  ['a list instead of a mapping', '- a\n', /\(top level\): .*got \["a"\]/],
  ['two nodes of one bridge with one address', topo({ b: '10.0.0.1/24' }), /t\.yaml:\d+: nodes\.b\.interfaces\.eth0\.addresses\[0\]: address 10\.0\.0\.1\/24 is already on a:eth0, in the same L2 segment \(bridge br0\): expected each address once per segment/],
  ['one address, two prefix lengths, one bridge', topo({ b: '10.0.0.1/16' }), /address 10\.0\.0\.1\/16 is already on a:eth0/],
  ['a node with the bridge\'s own address', topo({ b: '10.0.0.254/24' }), /nodes\.b\.interfaces\.eth0\.addresses\[0\]: address 10\.0\.0\.254\/24 is already on bridge br0/],
  ['both ends of a veth with one address', topo({ c: '10.1.0.1/24' }), /nodes\.c\.interfaces\.eth0\.addresses\[0\]: address 10\.1\.0\.1\/24 is already on a:eth1, in the same L2 segment \(the veth a:eth1 - c:eth0\)/],
  ['one IPv6 address spelled two ways on a bridge', topo({ a: '"fd00::1/64"', b: '"fd00:0:0::1/64"', bridge: '"fd00::fe/64"' }), /address fd00:0:0::1\/64 is already on a:eth0/],
  ['one address twice on one interface', topo({ a: '10.0.0.1/24, 10.0.0.1/24' }), /addresses\[1\]: address 10\.0\.0\.1\/24 is already on a:eth0/],
  [
    'two bridges joined by a veth are one segment',
    'bridges:\n  br0: { addresses: [10.0.0.254/24] }\n  br1: { addresses: [10.0.0.254/24] }\nlinks:\n  - [br0, br1]\n',
    /bridges\.br1\.addresses\[0\]: address 10\.0\.0\.254\/24 is already on bridge br0, in the same L2 segment \(bridge br0, br1\)/,
  ],
  ['kernel.core_pattern in a node', topo({ aExtra: '    sysctls: { kernel.core_pattern: "|/tmp/x" }' }), /nodes\.a\.sysctls\.kernel\.core_pattern: bad key "kernel\.core_pattern": a host-wide kernel\.\* key, which would change the whole machine: expected a per-netns key under net\./],
  ['vm.* in a node', topo({ aExtra: '    sysctls: { vm.swappiness: 1 }' }), /bad key "vm\.swappiness": a host-wide vm\.\* key/],
  ['fs.* in a node', topo({ bExtra: '    sysctls: { fs.file-max: 1 }' }), /nodes\.b\.sysctls\.fs\.file-max: bad key "fs\.file-max": a host-wide fs\.\* key/],
  ['kernel.* on the host', topo({ hostExtra: '  sysctls: { kernel.panic: 1 }' }), /host\.sysctls\.kernel\.panic: bad key "kernel\.panic": a host-wide kernel\.\* key/],
  ['a slash-form key climbing out with ..', topo({ aExtra: '    sysctls: { "net/../../../tmp/x": 1 }' }), /bad key "net\/\.\.\/\.\.\/\.\.\/tmp\/x": an "\.\." path part: expected a key with no empty, "\." or "\.\." parts/],
  ['a dotted key with an empty part', topo({ aExtra: '    sysctls: { net.ipv4..ip_forward: 1 }' }), /bad key "net\.ipv4\.\.ip_forward": an empty path part/],
  ['a dotted key whose // is a .. part', topo({ aExtra: '    sysctls: { "net.ipv4.conf.//.x": 1 }' }), /bad key "net\.ipv4\.conf\.\/\/\.x": an "\.\." path part/],
  ['a key ending in a dot', topo({ aExtra: '    sysctls: { net.ipv4.: 1 }' }), /bad key "net\.ipv4\.": an empty path part/],
  ['a key starting with a slash', topo({ aExtra: '    sysctls: { "/net/ipv4/ip_forward": 1 }' }), /bad key "\/net\/ipv4\/ip_forward": an empty path part/],
  ['the whole net tree', topo({ aExtra: '    sysctls: { net: 1 }' }), /bad key "net": the whole net tree: expected one key/],
  ['a key with a space', topo({ aExtra: '    sysctls: { "net.ipv4.ip forward": 1 }' }), /bad key "net\.ipv4\.ip forward": expected a sysctl key of letters/],
  ['a gateway on no connected subnet', topo({ aExtra: '    routes: [{ to: default, via: 10.9.0.1 }]' }), /nodes\.a\.routes\[0\]\.via: gateway 10\.9\.0\.1 of the route to default is on no subnet connected to a \(127\.0\.0\.1\/8, 10\.0\.0\.1\/24, 10\.1\.0\.1\/24\): expected a gateway on one of them, or onlink: true with dev/],
  ['a gateway on another interface\'s subnet', topo({ aExtra: '    routes: [{ to: 10.8.0.0/16, via: 10.1.0.2, dev: eth0 }]' }), /nodes\.a\.routes\[0\]\.via: gateway 10\.1\.0\.2 of the route to 10\.8\.0\.0\/16 is on no subnet connected to a:eth0 \(10\.0\.0\.1\/24\)/],
  ['a gateway on a node without that family', topo({ bExtra: '    routes: [{ to: "::/0", via: "fd00::1" }]' }), /gateway fd00::1 of the route to ::\/0 is on no subnet connected to b \(::1\/128\)/],
  ['a gateway reachable only through another gateway', topo({ bExtra: '    routes: [{ to: 10.7.0.0/16, via: 10.0.0.254 }, { to: default, via: 10.7.0.1 }]' }), /nodes\.b\.routes\[1\]\.via: gateway 10\.7\.0\.1/],
  ['a route on an interface the node has not', topo({ aExtra: '    routes: [{ to: default, via: 10.0.0.254, dev: eth7 }]' }), /nodes\.a\.routes\[0\]\.dev: route to default: a has no interface "eth7"/],
  ['onlink without dev', topo({ aExtra: '    routes: [{ to: default, via: 10.9.0.1, onlink: true }]' }), /nodes\.a\.routes\[0\]: an onlink route needs "via" \(the gateway\) and "dev"/],
  ['onlink that is not a boolean', topo({ aExtra: '    routes: [{ to: default, via: 10.9.0.1, dev: eth0, onlink: yes please }]' }), /routes\[0\]\.onlink: .*got "yes please"/],
];

const ATTACH_FILES: Array<[string, string, RegExp]> = [
  ['an empty attach file', '', /^\S+g\.yaml: empty file: expected a list of attaches/],
  ['an attach file of comments', '# none yet\n', /empty file: expected a list of attaches/],
  ['an empty list', '[]\n', /expected a list of attaches/],
  ['one address twice onto one bridge', '- { guest: g1, to: br0, ip: 10.0.0.5/24 }\n- { guest: g2, to: br0, ip: 10.0.0.5/24 }\n', /g\.yaml:2: \[1\]: --ip 10\.0\.0\.5\/24 for g2:eth1: 10\.0\.0\.5 is already asked for g1:eth1 on br0 in this call/],
  ['one IPv6 address twice, spelled otherwise', '- { guest: g1, to: br0, ip: "fd00::5/64" }\n- { guest: g2, to: br0, ip: "fd00:0::5/48" }\n', /--ip fd00:0::5\/48 for g2:eth1: fd00::5 is already asked for g1:eth1/],
  ['one address twice in one entry', '- { guest: g1, to: br0, ip: [10.0.0.5/24, 10.0.0.5/24] }\n', /\[0\]: --ip 10\.0\.0\.5\/24 for g1:eth1: 10\.0\.0\.5 is already asked for g1:eth1/],
];

/** Loads an attach file and applies the batch check attachMany makes before reading the kernel. */
async function attachFile(yaml: string): Promise<void> {
  checkBatchAddresses(await loadAttachFile(topoFile('g', yaml)));
}

const flags = (f: Partial<AttachFlags>): AttachFlags => ({ guest: 'g1', to: 'br0', ifname: 'eth1', 'host-access': false, 'direct-phys': false, ...f });

/** A network state with one user network and one node on it at 172.40.0.10. */
const state = (): NetState =>
  ({
    networks: { vnet: { name: 'vnet', subnet: '172.40.0.0/24', gateway: '172.40.0.1', userSubnet: true, isDefault: false, bridge: 'br-x' } },
    nodes: { n1: { name: 'n1', endpoints: [{ network: 'vnet', ip: '172.40.0.10' }] } },
  }) as unknown as NetState;

const CALLS: Array<[string, () => unknown, RegExp]> = [
  ['attach flags: one address twice', () => checkBatchAddresses([requestFromFlags(flags({ ip: ['10.0.0.5/24', '10.0.0.5/24'] }))]), /--ip 10\.0\.0\.5\/24 for g1:eth1: 10\.0\.0\.5 is already asked/],
  ['attach requests: two guests, one address, one bridge', () => checkBatchAddresses([requestFromFlags(flags({ ip: ['10.0.0.5/24'] })), requestFromFlags(flags({ guest: 'g2', ip: ['10.0.0.5/24'] }))]), /for g2:eth1: 10\.0\.0\.5 is already asked for g1:eth1 on br0/],
  ['node run --ip held by another node', () => precheckNetwork(state(), 'vnet', '172.40.0.10'), /^--ip 172\.40\.0\.10 is already in use on this network$/],
  ['node run --ip of the gateway', () => precheckNetwork(state(), 'vnet', '172.40.0.1'), /--ip 172\.40\.0\.1 is the gateway of 172\.40\.0\.0\/24/],
  ['node run --ip outside the subnet', () => precheckNetwork(state(), 'vnet', '10.0.0.1'), /--ip 10\.0\.0\.1 is outside the network's subnet 172\.40\.0\.0\/24/],
  ['node run --ip on the default network', () => precheckNetwork(state(), 'bridge', '172.17.0.9'), /--ip 172\.17\.0\.9: a static address is supported on user-defined networks only/],
  ['node run --net of an unknown network', () => precheckNetwork(state(), 'nw-9', null), /network "nw-9" not found/],
  ['node run --net host as a network to join', () => precheckNetwork(state(), 'host', '172.40.0.9'), /network host is a mode/],
];

/** The error a call throws (sync or async), or fails the test. */
async function errorOf(fn: () => unknown): Promise<NslabError> {
  try {
    await fn();
  } catch (e) {
    return e as NslabError;
  }
  throw new Error('expected an error');
}

function expectOneLine(e: NslabError, re: RegExp): void {
  expect(e).toBeInstanceOf(NslabError);
  expect(e.code).toBe('INVALID_INPUT');
  expect(e.message.split('\n')).toHaveLength(1);
  expect(e.message).toMatch(re);
}

describe('bad input is one INVALID_INPUT line naming the value', () => {
  test.each(TOPOLOGIES)('topology: %s', async (_w, yaml, re) => expectOneLine(await errorOf(() => model('t', yaml)), re));
  test.each(ATTACH_FILES)('attach -f: %s', async (_w, yaml, re) => expectOneLine(await errorOf(() => attachFile(yaml)), re));
  test.each(CALLS)('%s', async (_w, fn, re) => expectOneLine(await errorOf(fn), re));
});

describe('what stays accepted', () => {
  test.each([
    ['a gateway on the node\'s subnet', '    routes: [{ to: default, via: 10.0.0.254 }]'],
    ['a gateway on the subnet of the named dev', '    routes: [{ to: 10.8.0.0/16, via: 10.1.0.2, dev: eth1 }]'],
    ['an onlink gateway with dev', '    routes: [{ to: default, via: 10.9.0.1, dev: eth0, onlink: true }]'],
    ['a gateway made on-link by a dev route', '    routes: [{ to: 10.9.0.0/24, dev: eth0 }, { to: default, via: 10.9.0.1 }]'],
    ['a link-local IPv6 gateway', '    routes: [{ to: "::/0", via: "fe80::1", dev: eth0 }]'],
    ['a dotted key with an interface name holding a dot', '    sysctls: { net.ipv4.conf.eth1/10.arp_notify: 1 }'],
    ['a slash-form key', '    sysctls: { net/ipv4/conf/eth1.10/arp_notify: 1 }'],
  ])('%s', async (_w, extra) => {
    const m = await model('t', topo({ aExtra: extra }));
    expect(m.nodes[0]!.name).toBe('a');
  });

  test('onlink reaches the plan as ip-route(8) onlink', async () => {
    const m = await model('t', topo({ aExtra: '    routes: [{ to: default, via: 10.9.0.1, dev: eth0, onlink: true }]' }));
    expect(m.nodes[0]!.routes[0]).toEqual({ to: 'default', via: '10.9.0.1', dev: 'eth0', type: 'unicast', onlink: true });
  });

  test('one address on two segments, and a host route via the machine\'s own LAN, are fine', async () => {
    await model('t', topo({ c: '10.0.0.1/24', a1: '10.0.0.9/24', hostExtra: '  routes: [{ to: 10.99.0.0/16, via: 192.168.1.1 }]' }));
  });

  test('sysctl keys as sysctl(8) reads them', () => {
    expect(sysctlPath('net.ipv4.conf.eth1/10.arp_notify')).toEqual(['net', 'ipv4', 'conf', 'eth1.10', 'arp_notify']);
    expect(sysctlPath('net/ipv4/conf/eth1.10/arp_notify')).toEqual(['net', 'ipv4', 'conf', 'eth1.10', 'arp_notify']);
    expect(sysctlKeyProblem('net.ipv4.ip_forward')).toBeNull();
  });
});
