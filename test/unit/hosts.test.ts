// Multi-host topologies without root: each host's part, its VXLAN joins and MTUs, the merged view,
// and the refusals, planned as argv lists with the recording runner.
import { join } from 'node:path';
import { planUp } from '../../src/engine/plan.js';
import { loadTopologyFor } from '../../src/engine/topology.js';
import { NslabError } from '../../src/errors.js';
import { RecordingRunner } from '../../src/exec/recorder.js';
import { opArgv } from '../../src/kernel/step.js';
import { deriveVni, vxlanName } from '../../src/model/hosts.js';
import { topoFile } from '../helpers/topo.js';

const LAB15 = join(process.cwd(), 'labs', '15-vxlan-hosts', 'topology.yaml');
const here = (addrs: string[]) =>
  new RecordingRunner((argv) => (argv.join(' ') === 'ip -j addr show' ? { stdout: JSON.stringify([{ ifname: 'eth1', addr_info: addrs.map((local) => ({ local })) }]) } : undefined));

test('lab 15 on vm1: its two nodes, br15 with a VXLAN port flooding to vm2, MTU 1450 on the ports', async () => {
  const t = await loadTopologyFor(here([]), LAB15, 'vm1');
  expect(t.host).toBe('vm1');
  expect(t.model.name).toBe('lab15.vm1');
  expect(t.model.nodes.map((n) => n.name)).toEqual(['a1', 'a2']);
  expect(t.model.bridges.map((b) => b.name)).toEqual(['br15']);
  expect(t.model.vxlans).toEqual([{ name: 'vx-br15', bridge: 'br15', vni: 1015, local: '192.168.50.11', dev: null, mtu: 1450, peers: ['192.168.50.12'] }]);
  expect(t.model.notes).toEqual(['bridge br15 spans hosts vm1, vm2: joined by VXLAN; MTU 1450 on its ports (1500 of the underlay minus 50 bytes of VXLAN)']);
  const argv = planUp(t.model).map((s) => opArgv(s.do).join(' '));
  expect(argv).toContain('ip link add name vx-br15 mtu 1450 type vxlan id 1015 local 192.168.50.11 dstport 4789');
  expect(argv).toContain('ip link set dev vx-br15 master br15');
  expect(argv).toContain('bridge fdb append 00:00:00:00:00:00 dev vx-br15 dst 192.168.50.12');
  expect(argv).toContain('ip link add name br15 mtu 1450 type bridge');
  expect(argv.filter((a) => a.includes('peer name eth0'))).toEqual([
    'ip link add a1-eth0 mtu 1450 type veth peer name eth0 netns a1 mtu 1450',
    'ip link add a2-eth0 mtu 1450 type veth peer name eth0 netns a2 mtu 1450',
  ]);
  // The merged view (for pingall): every node, br15 once.
  expect(t.merged!.nodes.map((n) => n.name).sort()).toEqual(['a1', 'a2', 'b1', 'b2', 'r']);
  expect(t.nodeHosts.get('b2')).toBe('vm2');
});

test('lab 15 on vm2: the router, the second network (not joined), and the host found by its address', async () => {
  const t = await loadTopologyFor(here(['127.0.0.1', '192.168.50.12']), LAB15, null);
  expect(t.host).toBe('vm2');
  expect(t.model.bridges.map((b) => b.name).sort()).toEqual(['br15', 'br15b']);
  expect(t.model.vxlans!.map((x) => [x.bridge, x.peers])).toEqual([['br15', ['192.168.50.11']]]);
  expect(t.model.bridges.find((b) => b.name === 'br15b')!.mtu).toBeNull();
});

test('a VNI is derived from the topology and bridge names when not given; long bridge names hash', () => {
  expect(deriveVni('t', 'br0')).toBe(deriveVni('t', 'br0'));
  expect(deriveVni('t', 'br0')).not.toBe(deriveVni('t', 'br1'));
  expect(deriveVni('t', 'br0')).toBeGreaterThanOrEqual(1);
  expect(deriveVni('t', 'br0')).toBeLessThanOrEqual(16777215);
  expect(vxlanName('br0')).toBe('vx-br0');
  expect(vxlanName('a-long-bridge1')).toMatch(/^vx-[0-9a-f]{8}$/);
});

const two = (extra: string) => `hosts:
  h1: { address: 10.9.0.1 }
  h2: { address: 10.9.0.2, mtu: 9000 }
bridges:
  br0: {}
nodes:
  a: { host: h1, interfaces: { eth0: { addresses: [10.0.0.1/24] } } }
  b: { host: h2, interfaces: { eth0: { addresses: [10.0.0.2/24] } } }
links:
  - [a:eth0, br0]
  - [b:eth0, br0]
${extra}`;

test.each([
  ['no host given and none of the hosts here', two(''), null, /spans hosts h1, h2 and none of their addresses is on this machine: expected --host NAME/],
  ['an unknown --host', two(''), 'h9', /--host h9: no such host in .*: expected one of h1, h2/],
  ['--host for a single-host file', 'nodes:\n  a: {}\n', 'h1', /--host h1: .* declares no hosts/],
  ['a node without a host', two('').replace('b: { host: h2, ', 'b: { '), 'h1', /node b has no "host:": expected one of h1, h2/],
  ['a node on an undeclared host', two('').replace('host: h2', 'host: h3'), 'h1', /host "h3" is not declared: expected one of h1, h2/],
  ['a veth between two hosts', two('  - [a:eth1, b:eth1]'), 'h1', /a:eth1 is on h1 and b:eth1 on h2: a veth cannot span hosts/],
  ['a node on a bridge pinned to another host', two('').replace('br0: {}', 'br0: { host: h2 }'), 'h1', /bridge br0 is not on h1/],
  ['an MTU too big for the tunnel', two('').replace('{ addresses: [10.0.0.1/24] }', '{ addresses: [10.0.0.1/24], mtu: 1500 }'), 'h1', /a:eth0 is on bridge br0, which spans hosts, with MTU 1500: expected at most 1450/],
  ['two hosts with one address', two('').replace('10.9.0.2', '10.9.0.1'), 'h1', /address 10.9.0.1 is host h1's already/],
  ['a top-level host: beside hosts:', `host: { sysctls: { net.ipv4.ip_forward: 1 } }\n${two('')}`, 'h1', /a multi-host topology has no single "host:"/],
  ['a VNI out of range', two('').replace('br0: {}', 'br0: { vni: 0 }'), 'h1', /expected a VXLAN id \(VNI\)/],
])('refused: %s', async (_what, yaml, host, msg) => {
  const err = await loadTopologyFor(here(['10.1.1.1']), topoFile('mh', yaml), host as string | null).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NslabError);
  expect((err as NslabError).code).toBe('INVALID_INPUT');
  expect((err as NslabError).message).toMatch(msg);
  expect((err as NslabError).message).not.toContain('\n');
});
