// verify attachments, the pure comparison: readings as the kernel reports them → findings.
import { compareAttachments, type AttachmentsReading, type GuestSpace } from '../../src/verify/attachments.js';
import { askedFields } from '../../src/engine/attach/attach.js';
import type { LinkInfo } from '../../src/kernel/link.js';
import type { AttachRequest } from '../../src/model/attach.js';

const link = (ifindex: number, ifname: string, extra: Partial<LinkInfo> = {}): LinkInfo => ({ ifindex, ifname, flags: ['BROADCAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', ...extra });
const veth = { linkinfo: { info_kind: 'veth' } };

/** c1 on br0 (veth 7 ↔ 2), 10.5.0.2/24, default via 10.5.0.1; c3 a macvlan of hp; OVS port of c2 with tag 10. */
function reading(): AttachmentsReading {
  const root = [
    link(1, 'lo'),
    link(5, 'br0', { linkinfo: { info_kind: 'bridge' } }),
    link(6, 'hp', veth),
    link(7, 'c1-eth1', { ...veth, master: 'br0', link_index: 2, link_netnsid: 0, ifalias: 'nslab:attach guest=c1 if=eth1 ip=10.5.0.2/24' }),
    link(8, 'c2-eth1', { ...veth, master: 'ovs-system', link_index: 2, link_netnsid: 1, ifalias: 'nslab:attach guest=c2 if=eth1' }),
  ];
  const c1: GuestSpace = {
    label: 'c1',
    links: [link(1, 'lo'), link(2, 'eth1', { ...veth, link_index: 7, link_netnsid: 0, address: '02:00:00:00:00:01', ifalias: 'nslab:attach host=br0 gw=10.5.0.1' })],
    addrs: new Map([['eth1', ['10.5.0.2/24']]]),
    routes: [{ dst: 'default', gateway: '10.5.0.1', dev: 'eth1' } as never, { dst: '10.5.0.0/24', dev: 'eth1' } as never],
  };
  const c2: GuestSpace = { label: 'c2', links: [link(2, 'eth1', { ...veth, link_index: 8, link_netnsid: 0, ifalias: 'nslab:attach host=ovs0 kind=ovs' })], addrs: new Map(), routes: [] };
  const c3: GuestSpace = { label: 'c3', links: [link(2, 'eth1', { linkinfo: { info_kind: 'macvlan' }, link_index: 6, link_netnsid: 0, ifalias: 'nslab:attach host=hp ip=10.6.0.2/24' })], addrs: new Map([['eth1', ['10.6.0.2/24']]]), routes: [] };
  return {
    root,
    ovs: [{ name: 'c2-eth1', bridge: 'ovs0', tag: 10, externalIds: { 'nslab-guest': 'c2', 'nslab-ifname': 'eth1' } }, { name: 'ovs0', bridge: 'ovs0', tag: null, externalIds: {} }],
    guests: new Map<string, GuestSpace | { gone: string }>([['c1', c1], ['c2', c2], ['c3', c3]]),
    guestEnds: new Map([['c1/eth1', { guest: 'c1', ifname: 'eth1' }], ['c2/eth1', { guest: 'c2', ifname: 'eth1' }], ['c3/eth1', { guest: 'c3', ifname: 'eth1' }]]),
    extra: new Map([['c2/eth1', { addresses: [], routes: [], vlan: 10, source: 'Docker record' }]]),
    downOnPurpose: new Set(),
    names: new Map(),
  };
}

test('what is as asked: ok, every fact counted, kinds and host interfaces named', () => {
  const rep = compareAttachments(reading());
  expect(rep.mismatches).toEqual([]);
  expect(rep.ok).toBe(true);
  expect(rep.attachments.map((a) => [a.guest, a.kind, a.host, a.hostEnd, a.ok])).toEqual([
    ['c1', 'veth', 'br0', 'c1-eth1', true],
    ['c2', 'veth', 'ovs0', 'c2-eth1', true],
    ['c3', 'macvlan', 'hp', null, true],
  ]);
  // c1: guest end, up, host end, peer, host end up, master, bridge up, address, default route; c2: the
  // first six and the tag; c3: guest end, up, parent there, parent is it, parent up, mode, address
  expect(rep.checked).toBe(9 + 7 + 7);
});

test('each fault is one line naming the guest, the interface and what is wrong', () => {
  const rd = reading();
  const c1 = rd.guests.get('c1') as GuestSpace;
  c1.routes = [];
  c1.addrs.set('eth1', []);
  rd.root[3] = { ...rd.root[3]!, master: undefined, flags: [] };
  rd.ovs![0]!.tag = 20;
  (rd.guests.get('c3') as GuestSpace).links[0]!.link_index = 99;
  const rep = compareAttachments(rd);
  expect(rep.ok).toBe(false);
  expect(rep.mismatches.map((m) => m.message)).toEqual([
    'attach c1: eth1: host end c1-eth1 is down',
    'attach c1: eth1: host end c1-eth1 is not a port of bridge br0',
    'attach c1: eth1: address 10.5.0.2/24 missing',
    'attach c1: eth1: route default via 10.5.0.1 missing in c1 (address 10.5.0.2/24 is missing)',
    'attach c2: eth1: host end c2-eth1: VLAN tag 20, expected 10',
    'attach c3: eth1: macvlan parent is not hp',
  ]);
  expect(rep.mismatches[4]).toMatchObject({ kind: 'vlan', expected: '10', actual: '20' });
  expect(rep.attachments.map((a) => a.ok)).toEqual([false, false, false]);
});

test('a guest gone leaves its host end named as left over; a guest end without its host end; a link down on purpose is no fault', () => {
  const rd = reading();
  rd.guests.set('c1', { gone: 'no netns named c1' });
  rd.root.splice(4, 1); // c2's host end gone
  (rd.guests.get('c3') as GuestSpace).links[0]!.flags = [];
  rd.downOnPurpose.add('c3:eth1');
  const rep = compareAttachments(rd);
  expect(rep.mismatches.map((m) => m.message)).toEqual([
    'attach c1: eth1: guest gone (no netns named c1): host end c1-eth1 is left over (nslab clean removes it)',
    'attach c2: eth1: its host end is missing (it was a port of ovs0)',
  ]);
  expect(rep.mismatches[0]!.kind).toBe('guest-gone');
});

test('only one guest: by its ref or name; a CNI container by its ID', () => {
  const rd = reading();
  rd.names.set('c2', 'web');
  expect(compareAttachments(rd, 'web').attachments.map((a) => a.guest)).toEqual(['c2']);
  expect(compareAttachments(rd, 'c3').attachments.map((a) => a.guest)).toEqual(['c3']);
  rd.guestEnds.set('cni:abc/eth0', { guest: 'cni:abc', ifname: 'eth0' });
  rd.guests.set('cni:abc', { gone: 'its netns /run/netns/x is gone' });
  expect(compareAttachments(rd, 'abc').attachments.map((a) => a.guest)).toEqual(['cni:abc']);
  expect(compareAttachments(rd, 'nobody').attachments).toEqual([]);
});

test("the guest end's mark records gateways and routes, an OVS tag, a macvlan's addresses; within the kernel's 255 bytes", () => {
  const req = (o: Partial<AttachRequest>): AttachRequest => ({ guest: 'c1', hostIf: 'br0', ifname: 'eth1', addresses: [], routes: [], hostAccess: false, direct: false, ...o });
  expect(askedFields(req({ addresses: [{ kind: 'static', cidr: '10.0.0.2/24', gateway: '10.0.0.1' }, { kind: 'static', cidr: 'fd00::2/64', gateway: 'fd00::1' }], routes: [{ to: '10.9.0.0/16', via: '10.0.0.254' }, { to: '10.8.0.0/16' }] }), 'bridge', 40)).toEqual({
    gw: '10.0.0.1,fd00::1',
    rt: '10.9.0.0/16@10.0.0.254,10.8.0.0/16',
  });
  expect(askedFields(req({ addresses: [{ kind: 'static', cidr: '10.0.0.2/24' }] }), 'phys', 40)).toEqual({ ip: '10.0.0.2/24' });
  expect(askedFields(req({ addresses: [{ kind: 'static', cidr: '10.0.0.2/24' }], vlan: 10 }), 'ovs', 40)).toEqual({ kind: 'ovs', tag: '10' });
  expect(askedFields(req({ mtu: 1400, mac: '02:00:00:00:00:24' }), 'bridge', 40)).toEqual({ mtu: '1400', mac: '02:00:00:00:00:24' });
  const many = Array.from({ length: 20 }, (_, i) => ({ to: `10.${i}.0.0/16`, via: '10.0.0.254' }));
  expect(askedFields(req({ addresses: [{ kind: 'static', cidr: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: many }), 'bridge', 40)).toEqual({ gw: '10.0.0.1' });
});

test('down on purpose: listed, and what the kernel drops with it (IPv6 addresses, routes) is not checked', () => {
  const rd = reading();
  const c1 = rd.guests.get('c1') as GuestSpace;
  c1.links[1]!.flags = ['BROADCAST'];
  c1.links[1]!.ifalias = 'nslab:attach host=br0 gw=10.5.0.1,fd00::1';
  c1.routes = [];
  rd.root[3]!.ifalias = 'nslab:attach guest=c1 if=eth1 ip=10.5.0.2/24,fd00::2/64';
  rd.downOnPurpose.add('c1:eth1');
  const rep = compareAttachments(rd);
  expect([rep.ok, rep.downOnPurpose, rep.mismatches]).toEqual([true, ['c1:eth1'], []]);
  // down by hand: the address lines and route lines name it as their cause
  rd.downOnPurpose.clear();
  expect(compareAttachments(rd).mismatches.map((m) => m.message)).toEqual([
    'attach c1: eth1: is down',
    'attach c1: eth1: address fd00::2/64 missing (eth1 is down)',
    'attach c1: eth1: route default via 10.5.0.1 missing in c1 (eth1 is down)',
    'attach c1: eth1: route default via fd00::1 missing in c1 (eth1 is down)',
  ]);
});

test('a route replaced says what holds it; a bridge down or gone, a macvlan parent down, its mode, MTU and MAC from the mark', () => {
  const rd = reading();
  const c1 = rd.guests.get('c1') as GuestSpace;
  c1.routes[0] = { dst: 'default', gateway: '10.5.0.2', dev: 'eth1' } as never;
  c1.links[1]!.ifalias = 'nslab:attach host=br0 gw=10.5.0.1 mtu=1400 mac=02:00:00:00:00:02';
  rd.root[1]!.flags = ['BROADCAST'];
  rd.root[2]!.flags = ['BROADCAST'];
  (rd.guests.get('c3') as GuestSpace).links[0]!.linkinfo = { info_kind: 'macvlan', info_data: { mode: 'private' } };
  expect(compareAttachments(rd).mismatches.map((m) => m.message)).toEqual([
    'attach c1: eth1: bridge br0 is down',
    'attach c1: eth1: MTU 1500, expected 1400',
    'attach c1: eth1: MAC 02:00:00:00:00:01, expected 02:00:00:00:00:02',
    'attach c1: eth1: route default via 10.5.0.1 expected in c1, it is default via 10.5.0.2 dev eth1',
    'attach c3: eth1: its parent hp is down',
    'attach c3: eth1: macvlan mode private, expected bridge',
  ]);
  rd.root.splice(1, 1); // br0 deleted (its ports are no port of anything)
  rd.root[2]!.master = undefined;
  rd.ovs = null;
  expect(compareAttachments(rd, 'c1').mismatches[0]!.message).toBe('attach c1: eth1: bridge br0 is missing (or it was an OVS bridge and Open vSwitch is not running here)');
  // c2's end says kind=ovs: with OVS stopped, that is what verify says
  expect(compareAttachments(rd, 'c2').mismatches.map((m) => m.message)).toEqual(['attach c2: eth1: host end c2-eth1: Open vSwitch is not running here, so OVS bridge ovs0 and its ports are gone (nslab service ovs start)']);
});
