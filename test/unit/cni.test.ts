// nslab-cni without root: configuration and environment checks, spec errors, results per version,
// routes, masquerade rules, and the attach plan a CNI ADD makes (recording runner).
import { planAttach } from '../../src/engine/attach/attach.js';
import { pathGuest } from '../../src/engine/attach/guest.js';
import { hostKindProblem, masqRules, routesOf, runCni } from '../../src/engine/cni/cni.js';
import { RecordingRunner } from '../../src/exec/recorder.js';
import { opArgv } from '../../src/kernel/step.js';
import { CniError, delegateVersion, parseConf, parseEnv, readResult, resultFor } from '../../src/model/cni.js';

const conf = (o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'n1', type: 'nslab-cni', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.22.0.0/24' }, ...o });
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof CniError ? { code: err.code, msg: err.message } : { code: -1, msg: String(err) };
  }
  return null;
};

describe('configuration and environment', () => {
  test('defaults of the bridge kind (the reference plugin’s): cni0, no gateway, no NAT', () => {
    expect(parseConf(JSON.stringify({ cniVersion: '0.4.0', name: 'x', type: 'nslab-cni' }))).toMatchObject({ bridge: 'cni0', isGateway: false, ipMasq: false, hairpinMode: false });
    // unknown fields a runtime adds are kept
    expect(parseConf(conf({ capabilities: { portMappings: true } }))).toMatchObject({ capabilities: { portMappings: true } });
  });

  test.each([
    ['{"cniVersion":', 6, /not JSON/],
    [conf({ cniVersion: '0.3.1' }), 1, /cniVersion "0\.3\.1": incompatible CNI version; expected one of 0\.4\.0, 1\.0\.0, 1\.1\.0/],
    [conf({ type: 'bridge' }), 7, /type "bridge": expected "nslab-cni"/],
    [conf({ kind: 'vxlan' }), 7, /kind "vxlan"/],
    [conf({ mtu: 10 }), 7, /mtu 10: expected an MTU from 68 to 65535/],
    [conf({ vlan: 10 }), 7, /vlan 10: a Linux bridge does not carry VLANs here/],
    [conf({ kind: 'ovs', vlan: 0 }), 7, /vlan 0: expected a VLAN tag from 1 to 4094/],
    [conf({ kind: 'macvlan' }), 7, /master: /],
    [conf({ ipam: { type: 'nslab' } }), 7, /ipam\.subnet: expected "subnet" or "network"/],
    [conf({ ipam: { type: 'nslab', subnet: '10.1.0.0/24', gateway: '10.1.0.300' } }), 7, /ipam\.gateway "10\.1\.0\.300": expected an IPv4 address/],
    [conf({ ipam: { type: '../bin/sh' } }), 7, /ipam\.type "\.\.\/bin\/sh": expected a plugin name/],
  ])('%s -> error %d', (text, c, msg) => {
    const e = code(() => parseConf(text));
    expect(e?.code).toBe(c);
    expect(e?.msg).toMatch(msg);
  });

  test('CNI_* variables: each bad one named with its value (error 4)', () => {
    const ok = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/a:/b', CNI_ARGS: 'K8S_POD_NAME=p;IgnoreUnknown=1' };
    expect(parseEnv(ok)).toEqual({ command: 'ADD', containerId: 'abc', netns: '/run/netns/x', ifname: 'eth0', path: ['/a', '/b'], args: { K8S_POD_NAME: 'p', IgnoreUnknown: '1' } });
    expect(code(() => parseEnv({ ...ok, CNI_COMMAND: 'ATTACH' }))).toEqual({ code: 4, msg: expect.stringContaining('CNI_COMMAND "ATTACH"') });
    expect(code(() => parseEnv({ ...ok, CNI_CONTAINERID: 'a b' }))).toEqual({ code: 4, msg: expect.stringContaining('CNI_CONTAINERID "a b"') });
    expect(code(() => parseEnv({ ...ok, CNI_IFNAME: 'a'.repeat(16) }))).toEqual({ code: 4, msg: expect.stringContaining('is 16 bytes long') });
    expect(code(() => parseEnv({ ...ok, CNI_NETNS: '' }))).toEqual({ code: 4, msg: expect.stringContaining('CNI_NETNS is missing') });
    expect(code(() => parseEnv({ ...ok, CNI_NETNS: 'relative' }))).toEqual({ code: 4, msg: expect.stringContaining('expected an absolute path') });
    // DEL may come without a netns (SPEC.md); VERSION needs nothing
    expect(parseEnv({ ...ok, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBe('');
    expect(parseEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
  });

  test('runCni: VERSION, and every error as spec JSON with exit 1 (never a throw)', async () => {
    const r = new RecordingRunner();
    expect(await runCni(r, '', { CNI_COMMAND: 'VERSION' })).toEqual({ stdout: JSON.stringify({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] }), exitCode: 0 });
    const bad = await runCni(r, conf({ kind: 'ovs', vlan: 5000 }), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/run/netns/c', CNI_IFNAME: 'eth0' });
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout)).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'invalid network configuration: vlan 5000: expected a VLAN tag from 1 to 4094' });
    // GC and STATUS are 1.1.0 commands
    expect(JSON.parse((await runCni(r, conf(), { CNI_COMMAND: 'GC' })).stdout)).toMatchObject({ code: 1, msg: expect.stringContaining('GC needs cniVersion 1.1.0') });
    expect(JSON.parse((await runCni(r, conf({ cniVersion: '1.1.0' }), { CNI_COMMAND: 'GC' })).stdout)).toMatchObject({ code: 7, msg: expect.stringContaining('cni.dev/valid-attachments is missing') });
    expect(r.calls).toEqual([]); // nothing ran
  });
});

test('the host interface must fit the kind: a bridge name on eth0, a macvlan master that is a bridge or missing', () => {
  const links = [{ ifindex: 2, ifname: 'eth0', flags: [], mtu: 1500, operstate: 'UP' }, { ifindex: 3, ifname: 'br0', flags: [], mtu: 1500, operstate: 'UP', linkinfo: { info_kind: 'bridge' } }];
  expect(hostKindProblem('bridge', 'eth0', links)).toBe('bridge "eth0" is an existing device interface, not a Linux bridge: expected a bridge\'s name (made when missing)');
  expect(hostKindProblem('bridge', 'br0', links)).toBeNull();
  expect(hostKindProblem('bridge', 'cni0', links)).toBeNull();
  expect(hostKindProblem('macvlan', 'br0', links)).toMatch(/master "br0" is a Linux bridge/);
  expect(hostKindProblem('macvlan', 'eth9', links)).toBe('master "eth9": no such interface here');
  expect(hostKindProblem('macvlan', 'eth0', links)).toBeNull();
});

describe('results', () => {
  const res = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/c' }], ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }, { address: 'fd00::2/64', interface: 0 }] };
  test('0.4.0 has ips[].version; 1.x does not; empty lists are left out', () => {
    expect(resultFor(res, '0.4.0')).toEqual({ cniVersion: '0.4.0', interfaces: res.interfaces, ips: [{ version: '4', ...res.ips[0] }, { version: '6', ...res.ips[1] }], dns: {} });
    expect(resultFor(res, '1.1.0')).toEqual({ cniVersion: '1.1.0', interfaces: res.interfaces, ips: res.ips, dns: {} });
  });
  test('a 0.4.0 IPAM result is read as 1.x; a broken one is error 6', () => {
    expect(readResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} }, 'x')).toEqual({ cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }] });
    expect(code(() => readResult({ ips: [{ address: '10.0.0.2' }] }, 'ipam host-local result'))).toEqual({ code: 6, msg: 'ipam host-local result: ips[].address "10.0.0.2": expected ADDRESS/LENGTH' });
  });
  test('delegated plugins get 1.0.0 for ADD/DEL/CHECK of a 1.1.0 configuration (Debian’s plugins stop at 1.0.0)', () => {
    expect(delegateVersion('ADD', '1.1.0')).toBe('1.0.0');
    expect(delegateVersion('GC', '1.1.0')).toBe('1.1.0');
    expect(delegateVersion('DEL', '0.4.0')).toBe('0.4.0');
  });
});

describe('routes and NAT', () => {
  test("routes via the IPAM route's gw, else the gateway of its family (libcni ConfigureIface); isDefaultGateway adds defaults", () => {
    const c = parseConf(conf({ isDefaultGateway: true }));
    const ipam = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '192.168.0.0/16' }, { dst: '172.16.0.0/12', gw: '10.0.0.9' }] };
    expect(routesOf(c, ipam)).toEqual({
      kernel: [{ to: '192.168.0.0/16', via: '10.0.0.1' }, { to: '172.16.0.0/12', via: '10.0.0.9' }, { to: '0.0.0.0/0', via: '10.0.0.1' }],
      result: [{ dst: '192.168.0.0/16' }, { dst: '172.16.0.0/12', gw: '10.0.0.9' }, { dst: '0.0.0.0/0', gw: '10.0.0.1' }],
    });
  });
  test('ipMasq: the reference shape, one chain per attachment, every rule with its owner comment', () => {
    const m = masqRules('n1', 'abc', 'eth0', '10.22.0.7/24');
    expect(m.chain).toMatch(/^NSLAB-CNI-[0-9a-f]{12}$/);
    expect(m.rules.map((x) => [x.chain === m.chain ? 'CHAIN' : x.chain, ...x.spec.map((a) => (a === m.chain ? 'CHAIN' : a)), x.comment])).toEqual([
      ['CHAIN', '-d', '10.22.0.0/24', '-j', 'ACCEPT', 'nslab:cni=n1/abc/eth0'],
      ['CHAIN', '!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE', 'nslab:cni=n1/abc/eth0'],
      ['POSTROUTING', '-s', '10.22.0.7/32', '-j', 'CHAIN', 'nslab:cni=n1/abc/eth0'],
    ]);
  });
});

describe('the attach plan of an ADD', () => {
  test('veth straight into the netns path, marks naming the container, gateway and forwarding in the host batch', async () => {
    const guest = pathGuest('cni:abc', '/run/netns/cni-1');
    const req = { guest: 'cni:abc', netnsPath: '/run/netns/cni-1', hostIf: 'cni0', ifname: 'eth0', addresses: [{ kind: 'static' as const, cidr: '10.22.0.2/24' }], routes: [{ to: '0.0.0.0/0', via: '10.22.0.1' }], hostAccess: false, direct: false, mac: '02:11:22:33:44:55', markFields: { net: 'n1', ns: '/run/netns/cni-1' }, bridgeAddrs: ['10.22.0.1/24'], ipForward: [4 as const] };
    const steps = planAttach({ req, guest, host: { kind: 'bridge', name: 'cni0', exists: true, mtu: 1500 }, local: 'nv0123456789', existing: false, prevDefault: {}, guestRead: false });
    const argv = steps.map((s) => opArgv(s.do).join(' '));
    expect(argv).toEqual([
      'sysctl -q -w net/ipv4/ip_forward=1',
      'ip link add nv0123456789 mtu 1500 type veth peer name eth0 netns /run/netns/cni-1 mtu 1500 address 02:11:22:33:44:55',
      'ip link set dev nv0123456789 alias nslab:attach guest=cni:abc if=eth0 ip=10.22.0.2/24 net=n1 ns=/run/netns/cni-1',
      'ip link set dev nv0123456789 master cni0',
      'ip addr replace 10.22.0.1/24 dev cni0',
      'ip link set dev nv0123456789 up',
      'nsenter --net=/run/netns/cni-1 -- sysctl -q -w net/ipv4/conf/eth0/arp_notify=1',
      'nsenter --net=/run/netns/cni-1 -- ip link set dev eth0 alias nslab:attach host=cni0 guest=cni:abc mac=02:11:22:33:44:55 rt=0.0.0.0/0@10.22.0.1',
      'nsenter --net=/run/netns/cni-1 -- ip addr add 10.22.0.2/24 dev eth0',
      'nsenter --net=/run/netns/cni-1 -- ip link set dev eth0 up',
      'nsenter --net=/run/netns/cni-1 -- ip route add 0.0.0.0/0 via 10.22.0.1 dev eth0',
    ]);
    // The host side is one process (the sysctl folded into its batch), the guest's another.
    const r = new RecordingRunner();
    const { applySteps } = await import('../../src/engine/apply.js');
    await applySteps(r, steps, { journal: null });
    expect(r.calls.filter((c) => c.type === 'batch').length).toBe(2);
  });
});
