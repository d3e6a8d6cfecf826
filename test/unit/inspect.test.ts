// inspect with the recording runner: ownership is read from marks (link aliases, lo's alias in a netns).
import { RecordingRunner } from '../../src/exec/recorder.js';
import { formatInspect, inspect } from '../../src/verify/inspect.js';

// No journal of a real nslab here: inspect reads them from the state folder.
process.env.NSLAB_STATE_DIR = '/nonexistent/nslab-unit-test';

const link = (ifname: string, extra: Record<string, unknown> = {}) => ({ ifindex: 1, ifname, flags: ['UP'], mtu: 1500, operstate: 'UP', ...extra });

test('marked links and netns are grouped by topology; unmarked or foreign-marked ones are left out', async () => {
  const r = new RecordingRunner((argv, netns) => {
    const cmd = argv.join(' ');
    if (cmd === 'ip -j netns list') return { stdout: JSON.stringify([{ name: 'h1' }, { name: 'mine' }, { name: 'a' }]) };
    if (cmd !== 'ip -j -d link show') return undefined;
    const by: Record<string, unknown[]> = {
      '': [link('lo'), link('br0', { ifalias: 'nslab:star', linkinfo: { info_kind: 'bridge' } }), link('h1-eth0', { ifalias: 'nslab:star', master: 'br0', linkinfo: { info_kind: 'veth' } }), link('eth0'), link('other', { ifalias: 'not nslab' })],
      h1: [link('lo', { ifalias: 'nslab:star' }), link('eth0', { linkinfo: { info_kind: 'veth' }, flags: [] })],
      mine: [link('lo')],
      a: [link('lo', { ifalias: 'nslab:chain' })],
    };
    return { stdout: JSON.stringify(by[netns ?? '']) };
  });
  const rep = await inspect(r);
  expect(rep).toEqual({
    topologies: [
      { name: 'chain', netns: [{ name: 'a', links: [], processes: [] }], links: [], ovsPorts: [], iptables: [], processes: [] },
      {
        name: 'star',
        netns: [{ name: 'h1', links: [{ ifname: 'eth0', kind: 'veth', master: null, up: false }], processes: [] }],
        links: [
          { ifname: 'br0', kind: 'bridge', master: null, up: true },
          { ifname: 'h1-eth0', kind: 'veth', master: 'br0', up: true },
        ],
        ovsPorts: [],
        iptables: [],
        processes: [],
      },
    ],
    incomplete: [],
  });
  const text = await formatInspect(rep);
  expect(text).toContain('h1-eth0 (veth, port of br0)');
  expect(text).toContain('eth0 (veth, down)');
  expect(text).toContain('(only lo)');
  expect(text.trimEnd().split('\n').pop()).toBe('chain: 1 netns, 0 links; star: 1 netns, 2 links');
  expect(await formatInspect({ topologies: [], incomplete: [] })).toBe('nslab owns nothing here (no link or netns carries an nslab: mark)\n');
});

test('every kind of owner: attaches (links, OVS ports), networks and nodes (iptables rules by comment); their names', async () => {
  const r = new RecordingRunner((argv, netns) => {
    const cmd = argv.join(' ');
    if (cmd === 'ip -j netns list') return { stdout: JSON.stringify([{ name: 'web' }]) };
    if (cmd === 'iptables-save')
      return {
        stdout: [
          '*nat',
          ':POSTROUTING ACCEPT [0:0]',
          '-A POSTROUTING -s 172.18.0.0/16 ! -o br-abc -m comment --comment "nslab:net=nw-01" -j MASQUERADE',
          '-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE',
          'COMMIT',
          '*filter',
          ':FORWARD ACCEPT [0:0]',
          '-A FORWARD -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -m comment --comment "nslab:node=web" -j ACCEPT',
          'COMMIT',
        ].join('\n'),
      };
    if (cmd !== 'ip -j -d link show') return undefined;
    const by: Record<string, unknown[]> = {
      '': [
        link('br0', { ifalias: 'nslab:bridge' }),
        link('c1-eth1', { ifalias: 'nslab:attach guest=c1 if=eth1', master: 'br0' }),
        link('br-abc', { ifalias: 'nslab:net name=nw-01', linkinfo: { info_kind: 'bridge' } }),
      ],
      web: [link('lo', { ifalias: 'nslab:node name=web' })],
    };
    return { stdout: JSON.stringify(by[netns ?? '']) };
  });
  const rep = await inspect(r);
  expect(rep.topologies.map((t) => `${t.name}: ${[...t.links.map((l) => l.ifname), ...t.netns.map((n) => `netns ${n.name}`), ...t.iptables].join(' | ')}`)).toEqual([
    'attach: br0',
    'attach c1: c1-eth1',
    'network nw-01: br-abc | -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br-abc -m comment --comment "nslab:net=nw-01" -j MASQUERADE',
    'node web: netns web | -t filter -A FORWARD -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -m comment --comment "nslab:node=web" -j ACCEPT',
  ]);
  expect(await formatInspect(rep)).toContain('node web: 1 netns, 0 links, 1 iptables rules');
});
