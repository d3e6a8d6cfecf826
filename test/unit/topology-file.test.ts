// Topology files: every bad input is one line naming the file, line, key and value.
import { NslabError } from '../../src/errors.js';
import { model } from '../helpers/topo.js';

const base = (extra: string) => `name: t
bridges:
  br0: { addresses: [10.0.0.254/24] }
nodes:
  h1:
    interfaces:
      eth0: { addresses: [10.0.0.1/24] }
${extra}
links:
  - [h1:eth0, br0]
`;

async function errorOf(yaml: string): Promise<NslabError> {
  try {
    await model('t', yaml);
  } catch (e) {
    return e as NslabError;
  }
  throw new Error('expected an error');
}

describe('topology validation', () => {
  test.each([
    ['an unknown top-level key', 'name: t\nnodez: {}\n', /t\.yaml:2: nodez: unknown key "nodez"/],
    ['an unknown node key', base('    route: []'), /t\.yaml:8: nodes\.h1\.route: unknown key "route"/],
    // A block value starts on the line below its key: the key's own line is the one to name (issue 20).
    ['an unknown key whose value is a block', base('    route:\n      - { to: default, via: 10.0.0.254 }'), /t\.yaml:8: nodes\.h1\.route: unknown key "route"/],
    // Refused where it is named, as attach --to refuses it (issue 20): not at the link that uses it.
    ['a bridge name with a shell character', 'bridges:\n  "br;ls": {}\nnodes:\n  a: { interfaces: { eth0: {} } }\nlinks:\n  - [a:eth0, "br;ls"]\n', /t\.yaml:2: bridges\.br;ls: bad key "br;ls": bridge name "br;ls" has a character other than letters, digits/],
    ['an unknown top-level key whose value is a block', 'name: t\nnodez:\n  h1: {}\n', /t\.yaml:2: nodez: unknown key "nodez"/],
    ['a bad address', base('').replace('10.0.0.1/24', '10.0.0.300/24'), /t\.yaml:7: nodes\.h1\.interfaces\.eth0\.addresses\[0\]: expected an address with prefix length .*got "10\.0\.0\.300\/24"/],
    ['an address without prefix', base('').replace('10.0.0.1/24', '10.0.0.1'), /expected an address with prefix length.*got "10\.0\.0\.1"/],
    ['an MTU that is text', base('').replace('addresses: [10.0.0.1/24]', 'mtu: big'), /nodes\.h1\.interfaces\.eth0\.mtu: expected an MTU in bytes.*got "big"/],
    ['an MTU too small', base('').replace('addresses: [10.0.0.1/24]', 'mtu: 40'), /nodes\.h1\.interfaces\.eth0\.mtu: .*got 40/],
    ['a multicast MAC', base('').replace('addresses: [10.0.0.1/24]', 'mac: "01:00:5e:00:00:01"'), /unicast MAC.*got "01:00:5e:00:00:01"/],
    ['an interface name over 15 bytes', base('').replace(/eth0/g, 'eth0-is-too-long'), /"eth0-is-too-long" is 16 bytes long; an interface name has at most 15 \(IFNAMSIZ\)/],
    ['a link to an unknown node', base('').replace('[h1:eth0, br0]', '[h9:eth0, br0]'), /t\.yaml:10: links\[0\]\[0\]: endpoint "h9:eth0": no node or bridge named "h9"/],
    ['a node endpoint without interface', base('').replace('[h1:eth0, br0]', '[h1, br0]'), /links\[0\]\[0\]: endpoint "h1" names node h1 but no interface/],
    ['an interface on no link', base('').replace('eth0: { addresses', 'eth1: { addresses'), /nodes\.h1\.interfaces\.eth1: interface h1:eth1 is not an end of any link/],
    ['an interface on two links', base('').replace('  - [h1:eth0, br0]', '  - [h1:eth0, br0]\n  - [h1:eth0, br0]'), /links\[1\]\[0\]: interface h1:eth0 is an end of two links/],
    ['a route with neither via nor dev', base('    routes: [{to: default}]'), /nodes\.h1\.routes\[0\]: a unicast route needs "via"/],
    ['a reject route with a gateway', base('    routes: [{to: 10.0.0.0/8, type: reject, via: 10.0.0.254}]'), /takes neither "via" nor "dev"/],
    ['a bad gateway', base('    routes: [{to: default, via: 10.0.0}]'), /routes\[0\]\.via: expected an IPv4 or IPv6 address.*got "10\.0\.0"/],
    ['a node named host', 'nodes:\n  host: {}\n', /nodes\.host: "host" is reserved/],
    ['a bad node name', 'nodes:\n  "h 1": {}\n', /t\.yaml:2: nodes\.h 1: bad key "h 1": expected a name of letters, digits/],
    ['broken YAML', 'nodes: [\n', /t\.yaml:\d+: not valid YAML/],
    ['a duplicate key', 'nodes:\n  h1: {}\n  h1: {}\n', /t\.yaml:3: not valid YAML: Map keys must be unique/],
  ])('%s', async (_what, yaml, re) => {
    const e = await errorOf(yaml);
    expect(e).toBeInstanceOf(NslabError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(re);
    expect(e.message.split('\n')).toHaveLength(1);
  });

  test('a link-local IPv6 gateway is accepted (the kernel takes it; moby#38744)', async () => {
    const m = await model('t', base('    routes: [{to: default, via: "fe80::1", dev: eth0}]'));
    expect(m.nodes[0]!.routes[0]).toEqual({ to: 'default', via: 'fe80::1', dev: 'eth0', type: 'unicast' });
  });

  test('reject is route(8)\'s name for unreachable', async () => {
    const m = await model('t', base('    routes: [{to: 10.0.0.0/8, type: reject}]'));
    expect(m.nodes[0]!.routes[0]!.type).toBe('unreachable');
  });

  test('the veth end on a bridge takes the bridge MTU when the node gives none', async () => {
    const m = await model('t', base('').replace('br0: { addresses: [10.0.0.254/24] }', 'br0: { mtu: 9000 }'));
    expect(m.veths[0]!.a.mtu).toBe(9000);
    expect(m.veths[0]!.b.mtu).toBe(9000);
  });

  test('an explicit port name that clashes with a bridge is refused', async () => {
    const e = await errorOf(base('').replace('[h1:eth0, br0]', '[h1:eth0, "br0:br0"]'));
    expect(e.message).toMatch(/interface "br0" is already bridge br0/);
  });

  test('the topology name defaults to the file name', async () => {
    const m = await model('my-lab', 'nodes:\n  a: {}\n');
    expect(m.name).toBe('my-lab');
    expect(m.mark).toBe('nslab:my-lab');
  });
});
