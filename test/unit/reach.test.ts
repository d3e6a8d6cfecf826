// pingall's expectations from the model alone: segments, routes, forwarding, blocking routes, replies.
import { loadTopology } from '../../src/engine/topology.js';
import { buildNet, expectReach, pingSources, pingTargets } from '../../src/verify/reach.js';
import { example, model } from '../helpers/topo.js';

describe('reachability expected from the model', () => {
  test('star: every node reaches every IPv4 address on the bridge; IPv6 only from a node with an IPv6 address', async () => {
    const m = await loadTopology(example('star'));
    const net = buildNet(m);
    expect(pingSources(m).map((s) => s.name)).toEqual(['h1', 'h2', 'h3']);
    expect(pingTargets(m).map((t) => `${t.owner}:${t.ifname} ${t.address}`)).toEqual(['h1:eth0 10.0.0.1', 'h2:eth0 10.0.0.2', 'h3:eth0 10.0.0.3', 'h3:eth0 fd00::3', 'br0:br0 10.0.0.254']);
    expect(expectReach(net, 'h1', '10.0.0.2')).toEqual({ reachable: true, reason: 'same segment' });
    expect(expectReach(net, 'h3', '10.0.0.254')).toEqual({ reachable: true, reason: 'same segment' });
    expect(expectReach(net, 'h1', 'fd00::3')).toEqual({ reachable: false, reason: 'no route to fd00::3 in h1' });
    expect(expectReach(net, 'h1', '10.0.0.1')).toEqual({ reachable: true, reason: 'its own address' });
  });

  test('chain: across r only while r forwards; r answers on both its addresses either way', async () => {
    const m = await loadTopology(example('chain'));
    const net = buildNet(m);
    expect(expectReach(net, 'a', '10.0.2.1')).toEqual({ reachable: true, reason: 'via r' });
    expect(expectReach(net, 'b', '10.0.1.1')).toEqual({ reachable: true, reason: 'via r' });
    expect(expectReach(net, 'a', '10.0.2.254')).toEqual({ reachable: true, reason: 'same segment' });
    const noFwd = await model('chain0', (await import('node:fs')).readFileSync(example('chain'), 'utf8').replace('net.ipv4.ip_forward: 1', 'net.ipv4.ip_forward: 0'));
    const n0 = buildNet(noFwd);
    expect(expectReach(n0, 'a', '10.0.2.1')).toEqual({ reachable: false, reason: 'r does not forward (net.ipv4.ip_forward=0)' });
    expect(expectReach(n0, 'a', '10.0.2.254')).toEqual({ reachable: true, reason: 'same segment' });
    expect(expectReach(n0, 'b', '10.0.1.254').reachable).toBe(true);
  });

  test('a blocking route, a missing route back, a gateway nobody has', async () => {
    const m = await model(
      'walk',
      `nodes:
  a:
    interfaces: { eth0: { addresses: [10.0.1.1/24] } }
    routes: [ { to: 10.0.2.0/24, via: 10.0.1.254 }, { to: 10.0.3.0/24, type: blackhole }, { to: 10.0.4.0/24, via: 10.0.1.99 } ]
  r:
    interfaces: { eth0: { addresses: [10.0.1.254/24] }, eth1: { addresses: [10.0.2.254/24] } }
    sysctls: { net.ipv4.ip_forward: 1 }
  b:
    interfaces: { eth0: { addresses: [10.0.2.1/24] } }
links:
  - [a:eth0, r:eth0]
  - [r:eth1, b:eth0]
`,
    );
    const net = buildNet(m);
    expect(expectReach(net, 'a', '10.0.3.1')).toEqual({ reachable: false, reason: 'blackhole 10.0.3.0/24 in a' });
    expect(expectReach(net, 'a', '10.0.4.1')).toEqual({ reachable: false, reason: 'nobody on the segment of a:eth0 has 10.0.1.99' });
    // b has no route back to 10.0.1.0/24: the request arrives, the reply does not.
    expect(expectReach(net, 'a', '10.0.2.1')).toEqual({ reachable: false, reason: 'the reply to 10.0.1.1 is lost: no route to 10.0.1.1 in b' });
  });

  test('the host is a source when it has interfaces; a bridge address belongs to the host', async () => {
    const m = await model('hostish', `host:\n  interfaces: { veth-a: { addresses: [10.1.0.1/24] } }\nbridges:\n  br0: { addresses: [10.3.0.254/24] }\nnodes:\n  n1:\n    interfaces: { veth-b: { addresses: [10.1.0.2/24] }, eth1: { addresses: [10.3.0.1/24] } }\nlinks:\n  - [host:veth-a, n1:veth-b]\n  - [n1:eth1, br0]\n`);
    expect(pingSources(m)).toEqual([{ name: 'host', netns: null }, { name: 'n1', netns: 'n1' }]);
    const net = buildNet(m);
    expect(expectReach(net, 'n1', '10.3.0.254')).toEqual({ reachable: true, reason: 'same segment' });
    // host holds br0's address, so it shares br0's segment with n1:eth1
    expect(expectReach(net, 'host', '10.3.0.1')).toEqual({ reachable: true, reason: 'same segment' });
  });
});
