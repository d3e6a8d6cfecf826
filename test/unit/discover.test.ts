// Discovery without a kernel: readings (as `ip -j` prints them) to a model; the netns a lab uses;
// what reachability and graphs make of OVS tags and macvlans.
import { labNetns } from '../../src/engine/labs/lab.js';
import { parseSave, snatRules } from '../../src/kernel/iptables.js';
import type { LinkInfo } from '../../src/kernel/link.js';
import { loadLab } from '../../src/model/lab.js';
import { modelFromReadings, type SpaceReading } from '../../src/verify/discover.js';
import { toDot, toMermaid } from '../../src/verify/graph.js';
import { buildNet, expectReach, pingTargets } from '../../src/verify/reach.js';

const link = (ifindex: number, ifname: string, more: Partial<LinkInfo> = {}): LinkInfo => ({ ifindex, ifname, flags: ['UP'], mtu: 1500, operstate: 'UP', address: `02:00:00:00:00:${ifindex.toString(16).padStart(2, '0')}`, ...more });
const veth = (ifindex: number, ifname: string, peer: number | string, nsid?: number, more: Partial<LinkInfo> = {}) =>
  link(ifindex, ifname, { ...(typeof peer === 'number' ? { link_index: peer } : { link: peer }), ...(nsid !== undefined ? { link_netnsid: nsid } : {}), linkinfo: { info_kind: 'veth' }, ...more });
const addrs = (list: Array<[string, string]>) => list.map(([ifname, cidr]) => ({ ifname, addr_info: [{ family: cidr.includes(':') ? 'inet6' : 'inet', local: cidr.split('/')[0]!, prefixlen: Number(cidr.split('/')[1]), scope: 'global' }] }));
const space = (netns: string | null, links: LinkInfo[], a: Array<[string, string]>, nsids: Array<[number, string | null]>, more: Partial<SpaceReading> = {}): SpaceReading => ({
  netns,
  links: [link(1, 'lo'), ...links],
  addrs: addrs(a),
  routes: [],
  forwarding: ['0', '0'],
  nsids: new Map(nsids),
  snat: [],
  ...more,
});

// host: br0 (Linux bridge) with port a-eth0 (peer: a's eth0), ovs port g1-eth1 tag 10 (peer g1 eth1),
// ens33 <-> lan0 (a veth pair inside the host), macvlan mv0 in b on ens33, and an unrelated docker veth.
const host = space(
  null,
  [
    link(2, 'br0', { linkinfo: { info_kind: 'bridge' } }),
    veth(3, 'a-eth0', 2, 0, { master: 'br0' }),
    veth(4, 'g1-eth1', 2, 1),
    veth(5, 'ens33', 'lan0'),
    veth(6, 'lan0', 'ens33'),
    veth(7, 'vethd0c', 9, 5),
  ],
  [
    ['br0', '10.0.0.254/24'],
    ['ens33', '192.168.1.1/24'],
  ],
  [
    [0, 'a'],
    [1, 'g1'],
    [2, 'b'],
  ],
  { routes: [{ dst: 'default', gateway: '192.168.1.254', dev: 'ens33', flags: [] }, { dst: '10.0.0.0/24', dev: 'br0', protocol: 'kernel', flags: [] }], forwarding: ['1', '0'] },
);
const a = space('a', [veth(2, 'eth0', 3, 0)], [['eth0', '10.0.0.1/24']], [[0, null]]);
const g1 = space('g1', [veth(2, 'eth1', 4, 0)], [['eth1', '10.10.0.1/24']], [[0, null]]);
const b = space('b', [link(2, 'mv0', { link_index: 5, link_netnsid: 0, linkinfo: { info_kind: 'macvlan', info_data: { mode: 'bridge' } } })], [['mv0', '192.168.1.7/24']], [[0, null]]);
const ovs = { bridges: ['ovs-br0'], ports: [{ name: 'g1-eth1', bridge: 'ovs-br0', tag: 10 }] };

describe('modelFromReadings', () => {
  const m = modelFromReadings('live', [host, a, g1, b], ovs, true);

  test('veth pairs matched across netns by nsid and ifindex, and inside one netns by name; bridge and OVS ports as bridge ends', () => {
    const pairs = m.veths.map((v) => `${v.a.owner}:${v.a.name}${v.a.vlan !== null ? `@${v.a.vlan}` : ''} - ${v.b.owner}:${v.b.name} ${v.b.addresses.join(',')}`);
    expect(pairs).toEqual(['br0:a-eth0 - a:eth0 10.0.0.1/24', 'ovs-br0:g1-eth1@10 - g1:eth1 10.10.0.1/24', 'host:ens33 - host:lan0 ']);
    expect(m.bridges.map((x) => `${x.name} ${x.addresses.join(',')}`)).toEqual(['br0 10.0.0.254/24']);
    expect(m.ovsBridges).toEqual([{ name: 'ovs-br0', addresses: [], internal: [] }]);
  });

  test('a macvlan with its parent and mode; the host node with its own routes, not the kernel connected ones, and forwarding', () => {
    expect(m.macvlans).toEqual([{ owner: 'b', netns: 'b', name: 'mv0', mac: '02:00:00:00:00:02', addresses: ['192.168.1.7/24'], parent: 'ens33', mode: 'bridge' }]);
    expect(m.host.routes).toEqual([{ to: 'default', type: 'unicast', via: '192.168.1.254', dev: 'ens33' }]);
    expect(m.host.sysctls).toContainEqual(['net.ipv4.ip_forward', '1']);
    expect(m.nodes.map((n) => n.name)).toEqual(['a', 'g1', 'b']);
  });

  test('a veth whose peer is in a netns not read (a docker container) is left out; unfiltered, host-only veths stay', () => {
    expect(m.veths.some((v) => v.a.name === 'vethd0c' || v.b.name === 'vethd0c')).toBe(false);
    const hostOnly = modelFromReadings('h', [space(null, [veth(2, 'demo0', 'demo1'), veth(3, 'demo1', 'demo0')], [['demo0', '10.9.9.1/24']], [])], { bridges: [], ports: [] }, false);
    expect(hostOnly.veths.map((v) => `${v.a.name}-${v.b.name}`)).toEqual(['demo0-demo1']);
  });

  test('reachability: the host never reaches its macvlan child through the parent; OVS ports share frames only within a tag', () => {
    const net = buildNet(m);
    expect(expectReach(net, 'host', '192.168.1.7')).toEqual({ reachable: false, reason: 'host:ens33 and b:mv0 are a macvlan parent and child, or macvlans not in bridge mode: they exchange no frames' });
    expect(pingTargets(m).map((t) => `${t.owner}:${t.ifname} ${t.address}`)).toContain('b:mv0 192.168.1.7');

    const g2 = space('g2', [veth(2, 'eth1', 8, 0)], [['eth1', '10.10.0.2/24']], [[0, null]]);
    const g3 = space('g3', [veth(2, 'eth1', 9, 0)], [['eth1', '10.10.0.3/24']], [[0, null]]);
    const h2 = { ...host, links: [...host.links, veth(8, 'g2-eth1', 2, 3), veth(9, 'g3-eth1', 2, 4)], nsids: new Map([...host.nsids, [3, 'g2'], [4, 'g3']]) };
    const tags = { bridges: ['ovs-br0'], ports: [...ovs.ports, { name: 'g2-eth1', bridge: 'ovs-br0', tag: 10 }, { name: 'g3-eth1', bridge: 'ovs-br0', tag: 20 }] };
    const n2 = buildNet(modelFromReadings('ovs', [h2, g1, g2, g3], tags, true));
    expect(expectReach(n2, 'g1', '10.10.0.2')).toEqual({ reachable: true, reason: 'same segment' });
    expect(expectReach(n2, 'g1', '10.10.0.3').reachable).toBe(false);
  });

  test('graphs show OVS bridges, port tags and macvlans with their parent', () => {
    const mm = toMermaid(m);
    expect(mm).toContain('(["ovs ovs-br0"])');
    expect(mm).toContain('g1-eth1 tag 10 — eth1 10.10.0.1/24');
    expect(mm).toContain('mv0 (macvlan bridge) 192.168.1.7/24 — on ens33');
    expect(toDot(m)).toContain('"node:b" -- "node:host" [taillabel="mv0 (macvlan bridge)\\n192.168.1.7/24", headlabel="on ens33"]');
  });
});

describe('source NAT read from iptables-save and followed by the reachability walk', () => {
  const save = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -p tcp -s 10.1.0.0/16 -j MASQUERADE
-A POSTROUTING -s 10.2.0.0/16 -o wan0 -m comment --comment "nslab:network=x" -j SNAT --to-source 198.51.100.9
COMMIT
`;
  test('MASQUERADE and SNAT rules with their matches; a TCP-only rule says nothing about a ping', () => {
    expect(snatRules(parseSave(save))).toEqual([
      { source: { cidr: '172.17.0.0/16', not: false }, dest: null, out: { name: 'docker0', not: true }, toSource: null },
      { source: { cidr: '10.2.0.0/16', not: false }, dest: null, out: { name: 'wan0', not: false }, toSource: '198.51.100.9' },
    ]);
  });

  test('the reply to a masqueraded source goes to the host, which sends it on; without the rule it is lost', () => {
    const h = space(null, [link(2, 'docker0', { linkinfo: { info_kind: 'bridge' } }), veth(3, 'c1-eth0', 2, 0, { master: 'docker0' }), veth(4, 'wan0', 2, 1)], [['docker0', '172.17.0.1/16'], ['wan0', '198.51.100.1/24']], [[0, 'c1'], [1, 'outside']], { forwarding: ['1', '0'] });
    const c1 = space('c1', [veth(2, 'eth0', 3, 0)], [['eth0', '172.17.0.2/16']], [[0, null]], { routes: [{ dst: 'default', gateway: '172.17.0.1', dev: 'eth0', flags: [] }] });
    const out = space('outside', [veth(2, 'eth0', 4, 0)], [['eth0', '198.51.100.2/24']], [[0, null]]);
    const none = { bridges: [], ports: [] };
    expect(expectReach(buildNet(modelFromReadings('x', [h, c1, out], none, true)), 'c1', '198.51.100.2')).toEqual({ reachable: false, reason: 'the reply to 172.17.0.2 is lost: no route to 172.17.0.2 in outside' });
    const natted = modelFromReadings('x', [{ ...h, snat: snatRules(parseSave(save)) }, c1, out], none, true);
    expect(expectReach(buildNet(natted), 'c1', '198.51.100.2')).toEqual({ reachable: true, reason: 'via host, source NAT by host' });
  });
});

describe('labNetns', () => {
  test('the netns a lab makes or names, in order of mention', async () => {
    expect(labNetns(await loadLab('01'))).toEqual(['ns-test']);
    expect(labNetns(await loadLab('03'))).toEqual(['c1', 'c2', 'outside']);
    expect(labNetns(await loadLab('08'))).toEqual(['lan', 'test02', 'test03']);
    expect(labNetns(await loadLab('10'))).toEqual(['web', 'side']);
    expect(labNetns(await loadLab('11'))).toEqual([]); // a node on the host's network has no netns
  });
});
