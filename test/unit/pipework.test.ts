// pipework's grammar: a table of command lines, valid and invalid, to parsed form or one-line error.
import { NslabError } from '../../src/errors.js';
import { macFromString } from '../../src/model/attach.js';
import { parsePipework } from '../../src/model/pipework.js';

const ok: Array<[string, object]> = [
  ['br0 c1 172.17.2.24/24@172.17.2.1', { hostIf: 'br0', guest: 'c1', ifname: 'eth1', addresses: [{ kind: 'static', cidr: '172.17.2.24/24', gateway: '172.17.2.1' }] }],
  ['br0 c1 172.17.2.24/24', { addresses: [{ kind: 'static', cidr: '172.17.2.24/24' }] }],
  ['br0 -i eth2 c1 10.0.0.2/24', { ifname: 'eth2' }],
  ['br0 -i eth2 -l hostside0 c1 10.0.0.2/24', { ifname: 'eth2', localIfname: 'hostside0' }],
  ['br0 -l hostside0 c1 10.0.0.2/24', { localIfname: 'hostside0' }],
  ['br0 -a 6 c1 fd00::2/64@fd00::1', { addresses: [{ kind: 'static', cidr: 'fd00::2/64', gateway: 'fd00::1' }] }],
  ['br0 -i eth1 -a 4 c1 10.0.0.2/24', { ifname: 'eth1' }],
  ['br0 c1 fd00::2/64@fe80::1', { addresses: [{ kind: 'static', cidr: 'fd00::2/64', gateway: 'fe80::1' }] }],
  ['br0 c1 0/0', { addresses: [{ kind: 'none' }] }],
  ['br0 c1 dhcp', { addresses: [{ kind: 'dhcp', client: 'dhcp', foreground: true, options: [] }] }],
  ['br0 c1 dhcp:-f', { addresses: [{ kind: 'dhcp', client: 'dhcp', options: ['-f'] }] }],
  ['br0 c1 udhcpc', { addresses: [{ kind: 'dhcp', client: 'udhcpc', foreground: false }] }],
  ['br0 c1 udhcpc-f', { addresses: [{ kind: 'dhcp', client: 'udhcpc', foreground: true }] }],
  ['br0 c1 udhcpc:-b', { addresses: [{ kind: 'dhcp', client: 'udhcpc', options: ['-b'] }] }],
  ['br0 c1 dhclient', { addresses: [{ kind: 'dhcp', client: 'dhclient', foreground: false }] }],
  ['br0 c1 dhclient-f', { addresses: [{ kind: 'dhcp', client: 'dhclient', foreground: true }] }],
  ['br0 c1 dhcpcd', { addresses: [{ kind: 'dhcp', client: 'dhcpcd' }] }],
  ['br0 c1 10.0.0.2/24 02:42:ac:11:00:02', { mac: '02:42:ac:11:00:02' }],
  ['br0 c1 10.0.0.2/24 02:42:AC:11:00:02', { mac: '02:42:ac:11:00:02' }],
  ['br0 c1 10.0.0.2/24 U:c1', { mac: macFromString('c1') }],
  ['ovs-br0 g1 10.10.0.1/24 @10', { hostIf: 'ovs-br0', vlan: 10 }],
  ['ovs-br0 g1 10.10.0.1/24 02:00:00:00:00:01@20', { mac: '02:00:00:00:00:01', vlan: 20 }],
  ['ovsbr0 g1 dhcp @12', { vlan: 12, addresses: [{ kind: 'dhcp', client: 'dhcp' }] }],
  ['mac:02:00:00:00:00:aa g1 10.0.0.2/24', { hostIf: 'mac:02:00:00:00:00:aa' }],
  ['--direct-phys eth9 g1 10.0.0.2/24', { direct: true, hostIf: 'eth9' }],
  ['ens33 test02 192.168.192.134/24@192.168.192.2', { hostIf: 'ens33', guest: 'test02' }],
  ['br0 12345 10.0.0.2/24', { guest: '12345' }],
];

const other: Array<[string, object]> = [
  ['route c1 add 10.0.0.0/8 via 10.0.1.1', { kind: 'route', guest: 'c1', args: ['add', '10.0.0.0/8', 'via', '10.0.1.1'] }],
  ['rule c1 add from 10.0.0.0/8 table 100', { kind: 'rule', guest: 'c1', args: ['add', 'from', '10.0.0.0/8', 'table', '100'] }],
  ['tc c1 qdisc add dev eth1 root tbf rate 1mbit burst 32kbit latency 400ms', { kind: 'tc', guest: 'c1' }],
  ['--wait', { kind: 'wait', ifname: 'eth1' }],
  ['--wait -i eth2', { kind: 'wait', ifname: 'eth2' }],
];

const bad: Array<[string, RegExp]> = [
  ['', /missing host interface/],
  ['br0', /missing guest/],
  ['br0 c1', /missing address for c1/],
  ['br0 c1 10.0.0.2', /address "10\.0\.0\.2" has no prefix length: maybe you meant 10\.0\.0\.2\/24 \?/],
  ['br0 c1 fd00::2', /address "fd00::2" has no prefix length: maybe you meant fd00::2\/64 \?/],
  ['br0 c1 banana', /^address "banana": expected ADDRESS\/LENGTH\[@GATEWAY\] such as 10\.0\.0\.2\/24@10\.0\.0\.1, 0\/0, dhcp, udhcpc, dhclient or dhcpcd$/],
  ['br0 c1 10.0.0.300/24', /address "10\.0\.0\.300\/24": expected ADDRESS\/LENGTH/],
  ['br0 c1 10.0.0.2/24@10.0.0', /gateway "10\.0\.0": expected an IPv4 or IPv6 address/],
  ['br0 c1 10.0.0.2/24@fd00::1', /gateway fd00::1 is not of the same family/],
  ['br0 c1 10.0.0.2/24 zz:zz', /MAC "zz:zz": expected six hex bytes/],
  ['br0 c1 10.0.0.2/24 01:00:5e:00:00:01', /multicast address/],
  ['br0 c1 10.0.0.2/24 @0', /VLAN "0": expected a tag from 1 to 4094/],
  ['br0 c1 10.0.0.2/24 @4095', /VLAN "4095"/],
  ['br0 c1 10.0.0.2/24 @ten', /VLAN "ten"/],
  ['br0 c1 10.0.0.2/24 02:00:00:00:00:01 extra', /unexpected argument "extra"/],
  ['br0 -i eth-name-too-long0 c1 10.0.0.2/24', /-i interface "eth-name-too-long0" is 18 bytes long; an interface name has at most 15/],
  ['br0 -l host-side-too-long c1 10.0.0.2/24', /-l interface "host-side-too-long" is 18 bytes/],
  ['bridge-name-too-long c1 10.0.0.2/24', /host interface "bridge-name-too-long" is 20 bytes/],
  ['br0 -a 5 c1 10.0.0.2/24', /-a "5": expected 4 or 6/],
  ['br0 -a 6 c1 10.0.0.2/24', /-a 6 but 10\.0\.0\.2\/24 is an IPv4 address/],
  ['br0 c1 -i eth2 10.0.0.2/24', /unexpected argument|out of place|no prefix/],
  ['br0 -x c1 10.0.0.2/24', /option -x is out of place/],
  ['route c1', /missing the route command/],
  ['tc', /pipework tc needs a guest/],
  ['--wait -i', /-i needs an interface name/],
  ['--wait eth1', /unexpected argument "eth1" after --wait/],
  ['-x br0 c1 10.0.0.2/24', /unknown option "-x"/],
  ['br0 c1 dhcp-f', /only udhcpc-f and dhclient-f take -f|no prefix length/],
  ['mac:zz c1 10.0.0.2/24', /MAC "zz"/],
];

const split = (s: string) => s.split(' ').filter(Boolean);

describe('pipework grammar', () => {
  test.each(ok)('pipework %s', (line, want) => {
    const cmd = parsePipework(split(line));
    expect(cmd.kind).toBe('attach');
    if (cmd.kind === 'attach') expect(cmd.request).toMatchObject(want);
  });
  test.each(other)('pipework %s', (line, want) => {
    expect(parsePipework(split(line))).toMatchObject(want);
  });
  test.each(bad)('pipework %j is refused in one line', (line, re) => {
    let err: unknown;
    try {
      parsePipework(split(line));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NslabError);
    expect((err as NslabError).code).toBe('INVALID_INPUT');
    expect((err as NslabError).message).toMatch(re);
    expect((err as NslabError).message).not.toContain('\n');
  });
  test('at least 30 command lines are covered', () => {
    expect(ok.length + other.length + bad.length).toBeGreaterThanOrEqual(30);
  });
  test('U:string MACs are pipework\'s: md5 of the string and a newline, behind 02', () => {
    // echo c2 | md5sum -> 0a4879f29d...
    expect(macFromString('c2')).toBe('02:0a:48:79:f2:9d');
    expect(macFromString('c2')).toBe(macFromString('c2'));
    expect(macFromString('c3')).not.toBe(macFromString('c2'));
  });
});
