// verify's comparison with hand-made `ip -j` output: every kind of mismatch, its line, and no false alarm.
import { diffTopology, type KernelView, type NetnsReading } from '../../src/verify/diff.js';
import { expectations, readingsFor } from '../../src/verify/expect.js';
import type { LinkInfo } from '../../src/kernel/link.js';
import type { AddrInfo } from '../../src/kernel/addr.js';
import type { RouteInfo } from '../../src/kernel/route.js';
import { example, model } from '../helpers/topo.js';
import { loadTopology } from '../../src/engine/topology.js';

const UP = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const lo = (): LinkInfo => ({ ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN', address: '00:00:00:00:00:00' });
const veth = (ifname: string, ifindex: number, peerIndex: number, extra: Partial<LinkInfo> = {}): LinkInfo => ({
  ifindex,
  ifname,
  link_index: peerIndex,
  flags: [...UP],
  mtu: 1500,
  operstate: 'UP',
  address: `02:00:00:00:00:${ifindex.toString(16).padStart(2, '0')}`,
  linkinfo: { info_kind: 'veth', ...(extra.master ? { info_slave_kind: 'bridge' } : {}) },
  ...extra,
});
const addrs = (ifname: string, ...cidrs: string[]): AddrInfo => ({
  ifname,
  addr_info: [
    ...cidrs.map((c) => ({ family: (c.includes(':') ? 'inet6' : 'inet') as 'inet' | 'inet6', local: c.split('/')[0]!, prefixlen: Number(c.split('/')[1]), scope: 'global' })),
    { family: 'inet6' as const, local: 'fe80::1', prefixlen: 64, scope: 'link' },
  ],
});
const ns = (r: Partial<NetnsReading>): NetnsReading => ({ links: [], addrs: [], routes4: [], routes6: [], sysctls: {}, ...r });
const connected = (dst: string, dev: string): RouteInfo => ({ dst, dev, protocol: 'kernel', scope: 'link', flags: [] });

/** What the kernel reports for examples/star.yaml built by `up` (trimmed to the fields nslab reads). */
function healthyStar(): KernelView {
  const root = ns({
    links: [
      lo(),
      { ifindex: 2, ifname: 'br0', flags: [...UP], mtu: 1500, operstate: 'UP', address: '7e:3e:dc:25:c4:3c', linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } }, ifalias: 'nslab:star' },
      veth('h1-eth0', 3, 2, { master: 'br0', link_netnsid: 0 }),
      veth('h2-eth0', 4, 2, { master: 'br0', link_netnsid: 1 }),
      veth('h3-eth0', 5, 2, { master: 'br0', link_netnsid: 2 }),
    ],
    addrs: [addrs('br0', '10.0.0.254/24')],
  });
  const node = (i: number, cidrs: string[], routes: RouteInfo[]) =>
    ns({ links: [lo(), veth('eth0', 2, 2 + i, { link_netnsid: 0 })], addrs: [addrs('eth0', ...cidrs)], routes4: [...routes, connected('10.0.0.0/24', 'eth0')] });
  const dflt: RouteInfo = { dst: 'default', gateway: '10.0.0.254', dev: 'eth0', flags: [] };
  return {
    netns: new Map([
      ['h1', 0],
      ['h2', 1],
      ['h3', 2],
    ]),
    readings: new Map([
      ['', root],
      ['h1', node(1, ['10.0.0.1/24'], [dflt])],
      ['h2', node(2, ['10.0.0.2/24'], [dflt])],
      ['h3', node(3, ['10.0.0.3/24', 'fd00::3/64'], [])],
    ]),
  };
}

const star = () => loadTopology(example('star'));
const lines = async (view: KernelView) => diffTopology(await star(), view).map((m) => m.message);
const link = (v: KernelView, netns: string, name: string) => v.readings.get(netns)!.links.find((l) => l.ifname === name)!;

describe('verify: diff of model and kernel readings', () => {
  test('a healthy star has no mismatch', async () => {
    expect(await lines(healthyStar())).toEqual([]);
  });

  test('a missing address, and the route through it that the kernel dropped with it', async () => {
    const v = healthyStar();
    v.readings.get('h1')!.addrs = [addrs('eth0')];
    v.readings.get('h1')!.routes4 = [];
    expect(await lines(v)).toEqual(['h1: eth0: address 10.0.0.1/24 missing', 'h1: route default via 10.0.0.254 missing (address 10.0.0.1/24 is missing)']);
  });

  test('a wrong address, an extra one, an IPv6 address in another spelling is the same', async () => {
    const v = healthyStar();
    v.readings.get('h2')!.addrs = [addrs('eth0', '10.0.0.22/24')];
    v.readings.get('h3')!.addrs = [addrs('eth0', '10.0.0.3/24', 'fd00:0:0:0::3/64', '10.9.9.9/8')];
    expect(await lines(v)).toEqual(['h2: eth0: address 10.0.0.22/24, expected 10.0.0.2/24', 'h3: eth0: extra address 10.9.9.9/8']);
  });

  test('MTU of the bridge and of a node end', async () => {
    const v = healthyStar();
    link(v, '', 'br0').mtu = 1400;
    link(v, 'h2', 'eth0').mtu = 9000;
    expect(await lines(v)).toEqual(['br0: mtu 1400, expected 1500', 'h2: eth0: mtu 9000, expected 1500']);
  });

  test('a link down, and the IPv6 address the kernel dropped with it', async () => {
    const v = healthyStar();
    const l = link(v, 'h3', 'eth0');
    l.flags = ['BROADCAST', 'MULTICAST'];
    v.readings.get('h3')!.addrs = [addrs('eth0', '10.0.0.3/24')];
    expect(await lines(v)).toEqual(['h3: eth0: link down', 'h3: eth0: address fd00::3/64 missing (eth0 is down)']);
  });

  test('a port taken off its bridge, a port added to it, STP turned on', async () => {
    const v = healthyStar();
    delete link(v, '', 'h2-eth0').master;
    v.readings.get('')!.links.push({ ifindex: 9, ifname: 'tap9', flags: [...UP], mtu: 1500, operstate: 'UP', master: 'br0', linkinfo: { info_kind: 'tun' } });
    link(v, '', 'br0').linkinfo!.info_data = { stp_state: 1 };
    expect(await lines(v)).toEqual(['br0: stp on, expected off', 'br0: h2-eth0: master none, expected br0', 'br0: tap9: extra port of br0 (tun)']);
  });

  test('a deleted veth is missing at both ends; its node routes name the cause', async () => {
    const v = healthyStar();
    v.readings.get('')!.links = v.readings.get('')!.links.filter((l) => l.ifname !== 'h1-eth0');
    v.readings.get('h1')!.links = [lo()];
    v.readings.get('h1')!.addrs = [];
    v.readings.get('h1')!.routes4 = [];
    expect(await lines(v)).toEqual(['br0: h1-eth0: missing', 'h1: eth0: missing', 'h1: route default via 10.0.0.254 missing (eth0 is missing)']);
  });

  test('an extra interface in a node, a replaced interface kind', async () => {
    const v = healthyStar();
    v.readings.get('h2')!.links.push(veth('eth1', 7, 8));
    const l = link(v, 'h3', 'eth0');
    l.linkinfo = { info_kind: 'macvlan' };
    expect(await lines(v)).toEqual(['h2: eth1: extra interface (veth)', 'h3: eth0: kind macvlan, expected veth']);
  });

  test('a missing netns is one line; its bridge port names it as the cause', async () => {
    const v = healthyStar();
    v.netns.delete('h2');
    v.readings.delete('h2');
    v.readings.get('')!.links = v.readings.get('')!.links.filter((l) => l.ifname !== 'h2-eth0');
    expect(await lines(v)).toEqual(['br0: h2-eth0: missing (netns h2 is missing)', 'h2: netns missing']);
  });

  test('veths wired to the wrong peers', async () => {
    const v = healthyStar();
    // h1-eth0 and h2-eth0 swapped their peers: h1's eth0 now pairs with h2-eth0 and the other way round.
    link(v, '', 'h1-eth0').link_netnsid = 1;
    link(v, '', 'h2-eth0').link_netnsid = 0;
    link(v, 'h1', 'eth0').link_index = 4;
    link(v, 'h2', 'eth0').link_index = 3;
    // Checked once per pair, on the end the file names first (the node's).
    expect(await lines(v)).toEqual(['h1: eth0: veth peer is h2-eth0, expected h1-eth0', 'h2: eth0: veth peer is h1-eth0, expected h2-eth0']);
  });

  test('a route replaced by another to the same destination, a MAC, a sysctl', async () => {
    const m = await model(
      'macs',
      `nodes:
  a:
    interfaces: { eth0: { addresses: [10.0.1.1/24], mac: "02:00:00:00:00:AA" } }
    routes: [ { to: 10.0.2.0/24, via: 10.0.1.254 }, { to: 10.9.0.0/16, type: reject } ]
  r:
    interfaces: { eth0: { addresses: [10.0.1.254/24] } }
    sysctls: { net.ipv4.ip_forward: 1 }
links:
  - [a:eth0, r:eth0]
`,
    );
    const view: KernelView = {
      netns: new Map([
        ['a', undefined],
        ['r', undefined],
      ]),
      readings: new Map([
        ['', ns({ links: [lo()] })],
        [
          'a',
          ns({
            links: [lo(), veth('eth0', 2, 2, { address: '02:00:00:00:00:ab' })],
            addrs: [addrs('eth0', '10.0.1.1/24')],
            routes4: [connected('10.0.1.0/24', 'eth0'), { dst: '10.0.2.0/24', gateway: '10.0.1.9', dev: 'eth0', flags: [] }, { dst: '10.9.0.0/16', type: 'unreachable', flags: [] }],
          }),
        ],
        ['r', ns({ links: [lo(), veth('eth0', 2, 2)], addrs: [addrs('eth0', '10.0.1.254/24')], sysctls: { 'net.ipv4.ip_forward': '0' } })],
      ]),
    };
    expect(diffTopology(m, view).map((x) => x.message)).toEqual([
      'a: eth0: mac 02:00:00:00:00:ab, expected 02:00:00:00:00:aa',
      'a: route 10.0.2.0/24 via 10.0.1.9 dev eth0, expected 10.0.2.0/24 via 10.0.1.254',
      'r: sysctl net.ipv4.ip_forward 0, expected 1',
    ]);
    const sys = diffTopology(m, view).find((x) => x.kind === 'sysctl')!;
    expect(sys).toMatchObject({ owner: 'r', ifname: null, expected: '1', actual: '0' });
  });

  test('lo down in a node is reported (up brings it up)', async () => {
    const v = healthyStar();
    link(v, 'h1', 'lo').flags = ['LOOPBACK'];
    expect(await lines(v)).toEqual(['h1: lo: link down']);
  });
});

describe('verify: expectations', () => {
  test('a bridge without an MTU follows its smallest port; ports take a link MTU', async () => {
    const m = await model('jumbo', `bridges: { br9: {} }\nnodes: { n1: {}, n2: {} }\nlinks:\n  - { endpoints: [n1:eth0, br9], mtu: 9000 }\n  - { endpoints: [n2:eth0, br9], mtu: 9000 }\n`);
    const br = expectations(m).find((e) => e.kind === 'link' && e.ifname === 'br9');
    expect(br).toMatchObject({ mtu: 9000, linkKind: 'bridge' });
  });

  test('what is read where: IPv6 routes only when one is declared, sysctls by key', async () => {
    const m = await loadTopology(example('chain'));
    const needs = readingsFor(expectations(m));
    expect([...needs.get('a')!].sort()).toEqual(['addrs', 'links', 'routes4']);
    expect([...needs.get('r')!].sort()).toEqual(['addrs', 'links', 'sysctl:net.ipv4.ip_forward']);
    const six = await model('six', `nodes:\n  n1:\n    interfaces: { eth0: { addresses: ["fd00::1/64"] } }\n    routes: [ { to: default, via: "fe80::1", dev: eth0 } ]\n  n2: {}\nlinks:\n  - [n1:eth0, n2:eth0]\n`);
    expect(readingsFor(expectations(six)).get('n1')!.has('routes6')).toBe(true);
  });
});
