// inspect with the recording runner: ownership is read from marks (link aliases, lo's alias in a netns).
import { RecordingRunner } from '../../src/exec/recorder.js';
import { formatInspect, inspect } from '../../src/verify/inspect.js';

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
      { name: 'chain', netns: [{ name: 'a', links: [] }], links: [] },
      {
        name: 'star',
        netns: [{ name: 'h1', links: [{ ifname: 'eth0', kind: 'veth', master: null, up: false }] }],
        links: [
          { ifname: 'br0', kind: 'bridge', master: null, up: true },
          { ifname: 'h1-eth0', kind: 'veth', master: 'br0', up: true },
        ],
      },
    ],
  });
  const text = await formatInspect(rep);
  expect(text).toContain('h1-eth0 (veth, port of br0)');
  expect(text).toContain('eth0 (veth, down)');
  expect(text).toContain('(only lo)');
  expect(text.trimEnd().split('\n').pop()).toBe('chain: 1 netns, 0 links; star: 1 netns, 2 links');
  expect(await formatInspect({ topologies: [] })).toBe('nslab owns nothing here (no link or netns carries an nslab: mark)\n');
});
