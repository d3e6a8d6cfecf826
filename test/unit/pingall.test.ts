// pingall without a network: rounds that respect the neighbour table, fping/ping results against the model.
import { loadTopology } from '../../src/engine/topology.js';
import { RecordingRunner } from '../../src/exec/recorder.js';
import { blockSizeFor, formatPingall, parseCount, parsePingallFlags, pingall, planRounds, planSeeds, samplePairs, type KernelIf, type Member } from '../../src/verify/pingall.js';
import { pingSources, pingTargets, type PingSource, type PingTarget } from '../../src/verify/reach.js';
import { example } from '../helpers/topo.js';

/** A runner whose fping/ping answer for every address except those in `dead` (as "from>address" or "address"). */
function fakeNet(dead: string[], opts: { fping?: boolean; flaky?: string[] } = {}) {
  const seen = new Map<string, number>();
  return new RecordingRunner((argv, netns) => {
    const from = netns ?? 'host';
    const isDead = (a: string) => dead.includes(a) || dead.includes(`${from}>${a}`);
    if (argv[0] === 'sysctl') return { stdout: '1024\n' };
    if (argv[0] === 'fping' && argv[1] === '-v') return opts.fping === false ? { error: 'not found' } : { stdout: 'fping: Version 5.1' };
    if (argv[0] === 'fping') {
      const addrs = argv.slice(9);
      return { stdout: addrs.map((a) => `${a} is ${isDead(a) ? 'unreachable' : 'alive'}`).join('\n') };
    }
    if (argv[0] === 'ping') {
      const a = argv[argv.length - 1]!;
      const n = (seen.get(`${from}>${a}`) ?? 0) + 1;
      seen.set(`${from}>${a}`, n);
      // A flaky pair loses its first probe only: the retry must save it.
      if (opts.flaky?.includes(`${from}>${a}`) && n === 1) return { error: '1 packets transmitted, 0 received' };
      return isDead(a) ? { error: '1 packets transmitted, 0 received' } : { stdout: '' };
    }
    return undefined;
  });
}

const members = (names: string[]): Member[] => names.map((n) => ({ name: n, netns: n, devices: ['eth0'] }));
const sources = (names: string[]): PingSource[] => names.map((n) => ({ name: n, netns: n }));
const targets = (names: string[]): PingTarget[] => names.map((n, i) => ({ address: `10.0.0.${i + 1}`, node: n, owner: n, ifname: 'eth0' }));

describe('planRounds', () => {
  test('one block: one round, every source probes every other address, nothing flushed', () => {
    const names = ['a', 'b', 'c'];
    const rounds = planRounds(members(names), sources(names), targets(names), 10);
    expect(rounds).toHaveLength(1);
    expect(rounds[0]!.flush).toEqual([]);
    expect(rounds[0]!.jobs.map((j) => `${j.source.name}: ${j.addresses.join(' ')}`)).toEqual(['a: 10.0.0.2 10.0.0.3', 'b: 10.0.0.1 10.0.0.3', 'c: 10.0.0.1 10.0.0.2']);
  });

  test('blocks: every (source, address) pair once, each round between two blocks, both ways, then flushed', () => {
    const names = Array.from({ length: 7 }, (_, i) => `n${i}`);
    const rounds = planRounds(members(names), sources(names), targets(names), 3);
    expect(rounds).toHaveLength(5); // blocks (0,0) (0,1) (0,2) (1,1) (1,2); (2,2) holds n6 alone, which probes nobody
    const pairs = rounds.flatMap((r) => r.jobs.flatMap((j) => j.addresses.map((a) => `${j.source.name}>${a}`)));
    expect(new Set(pairs).size).toBe(pairs.length);
    expect(pairs).toHaveLength(7 * 6);
    expect(rounds[1]!.flush.map((m) => m.name)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
    // Entries alive in a round stay under 2·size² (a request and its reply share a pair of entries).
    for (const r of rounds) expect(r.jobs.reduce((n, j) => n + j.addresses.length, 0)).toBeLessThanOrEqual(2 * 3 * 3);
  });

  test('the block size follows the kernel neighbour table limit', async () => {
    expect(await blockSizeFor(fakeNet([]), 101)).toBe(19); // sqrt((1024 - 101 - 128) / 2)
  });
});

describe('planSeeds', () => {
  const kernel = new Map<string, KernelIf[]>([
    ['a', [{ ifname: 'lo', mac: '00:00:00:00:00:00', addrs: ['127.0.0.1/8'] }, { ifname: 'eth0', mac: '02:00:00:00:00:0a', addrs: ['10.0.1.1/24'] }]],
    ['r', [{ ifname: 'eth0', mac: '02:00:00:00:01:00', addrs: ['10.0.1.254/24'] }, { ifname: 'eth1', mac: '02:00:00:00:02:00', addrs: ['10.0.2.254/24', 'fd00:2::fe/64'] }]],
    ['b', [{ ifname: 'eth0', mac: '02:00:00:00:00:0b', addrs: ['10.0.2.1/24', 'fd00:2::1/64'] }, { ifname: 'extra0', mac: '02:00:00:00:00:ee', addrs: ['10.0.1.9/24'] }]],
  ]);
  const mem: Member[] = [
    { name: 'a', netns: 'a', devices: ['eth0'] },
    { name: 'r', netns: 'r', devices: ['eth0', 'eth1'] },
    { name: 'b', netns: 'b', devices: ['eth0'] },
  ];
  const tg: PingTarget[] = [
    { address: '10.0.1.1', node: 'a', owner: 'a', ifname: 'eth0' },
    { address: '10.0.1.254', node: 'r', owner: 'r', ifname: 'eth0' },
    { address: '10.0.2.254', node: 'r', owner: 'r', ifname: 'eth1' },
    { address: 'fd00:2::fe', node: 'r', owner: 'r', ifname: 'eth1' },
    { address: '10.0.2.1', node: 'b', owner: 'b', ifname: 'eth0' },
    { address: 'fd00:2::1', node: 'b', owner: 'b', ifname: 'eth0' },
  ];
  const text = (m: Map<string, Array<{ netns: string | null; dev: string; address: string; mac: string }>>) =>
    [...m.entries()].flatMap(([n, xs]) => xs.map((x) => `${n}/${x.netns}: ${x.address} at ${x.mac} on ${x.dev}`));

  test('on-link addresses only, with the MAC of the interface holding them, IPv4 and IPv6; a router serves what is behind it', () => {
    expect(text(planSeeds(mem, kernel, tg))).toEqual([
      'a/a: 10.0.1.254 at 02:00:00:00:01:00 on eth0',
      'r/r: 10.0.1.1 at 02:00:00:00:00:0a on eth0',
      'r/r: 10.0.2.1 at 02:00:00:00:00:0b on eth1',
      'r/r: fd00:2::1 at 02:00:00:00:00:0b on eth1',
      'b/b: 10.0.2.254 at 02:00:00:00:02:00 on eth0',
      'b/b: fd00:2::fe at 02:00:00:00:02:00 on eth0',
    ]);
  });

  test('an entry set on purpose (permanent or noarp, listed as kept) gets no seed; the others still do', () => {
    const seeds = text(planSeeds(mem, kernel, tg, new Map([['r', new Set(['eth1 10.0.2.1'])]])));
    expect(seeds.filter((x) => x.startsWith('r/'))).toEqual(['r/r: 10.0.1.1 at 02:00:00:00:00:0a on eth0', 'r/r: fd00:2::1 at 02:00:00:00:00:0b on eth1']);
    expect(seeds).toContain('b/b: 10.0.2.254 at 02:00:00:00:02:00 on eth0');
  });

  test('interfaces outside the topology get no entries; an address whose interface is not in the kernel is not seeded', () => {
    const k2 = new Map(kernel);
    k2.set('b', [{ ifname: 'extra0', mac: '02:00:00:00:00:ee', addrs: ['10.0.1.9/24'] }]);
    const seeds = text(planSeeds(mem, k2, tg));
    expect(seeds.some((x) => x.includes('extra0'))).toBe(false);
    expect(seeds.some((x) => x.includes('10.0.2.1 '))).toBe(false);
  });
});

describe('pingall --sample', () => {
  test('every node probes K fixed addresses spread over the list, and the first M nodes all of each other: 5 probes instead of 11', async () => {
    const m = await loadTopology(example('star'));
    const { fixed } = samplePairs(pingTargets(m), ['h1', 'h2', 'h3'], { targets: 2, pairs: 2 });
    expect(fixed.map((t) => t.address)).toEqual(['10.0.0.1', '10.0.0.3']);
    const rep = await pingall(fakeNet([]), m, { sample: { targets: 2, pairs: 2 } });
    expect(rep.results.map((x) => `${x.from}>${x.to}`).sort()).toEqual(['h1>10.0.0.2', 'h1>10.0.0.3', 'h2>10.0.0.1', 'h2>10.0.0.3', 'h3>10.0.0.1']);
    expect(rep.ok).toBe(true);
  });

  test('flags: --sample K [--sample-pairs M], checked', () => {
    expect(parsePingallFlags({ sample: '50', 'sample-pairs': '1000' })).toEqual({ sample: { targets: 50, pairs: 1000 } });
    expect(() => parsePingallFlags({ 'sample-pairs': '10' })).toThrow('--sample-pairs 10: only with --sample K: expected --sample too');
    expect(() => parsePingallFlags({ sample: '0' })).toThrow('--sample "0": expected a whole number from 1 to 100000');
  });
});

describe('pingall (recording runner)', () => {
  test('star, fping: a full matrix as expected, one fping per node', async () => {
    const r = fakeNet(['fd00::3']);
    const rep = await pingall(r, await loadTopology(example('star')));
    expect(rep).toMatchObject({ topology: 'star', ok: true, tool: 'fping', sources: ['h1', 'h2', 'h3'], rounds: 1, differences: [] });
    expect(rep.results).toHaveLength(11);
    const fpings = r.argvs().filter((a) => a.includes('fping') && !a.includes('-v'));
    expect(fpings).toHaveLength(3);
    expect(fpings[0]).toEqual(['ip', 'netns', 'exec', 'h1', 'fping', '-t', '1000', '-r', '1', '-B', '1', '-i', '1', '10.0.0.2', '10.0.0.3', 'fd00::3', '10.0.0.254']);
  });

  test('an address that does not answer: exactly the pairs towards it differ', async () => {
    const rep = await pingall(fakeNet(['fd00::3', '10.0.0.2']), await loadTopology(example('star')));
    expect(rep.ok).toBe(false);
    expect(rep.differences.map((d) => `${d.from}>${d.to}`)).toEqual(['h1>10.0.0.2', 'h3>10.0.0.2']);
    const text = await formatPingall(rep);
    expect(text).toContain('h1 -> 10.0.0.2 (h2:eth0): lost, expected reachable (same segment)');
    // 1/2 towards h3: its IPv6 address is expected not to answer (no route): marked ✓, not read as loss.
    expect(text).toMatch(/│ h1\s+│ ·\s+│ 0\/1 ! │ 1\/2 ✓ │ 1\/1 │/);
    expect(text.trimEnd().split('\n').pop()).toMatch(/^pingall star: 11 probes from 3 nodes in [\d.]+ s \(fping\); 2 differ from the topology$/);
  });

  test('reaching what the model says is unreachable is a difference too', async () => {
    const rep = await pingall(fakeNet([]), await loadTopology(example('star')));
    expect(rep.differences.map((d) => `${d.from}>${d.to}: ${d.reason}`)).toEqual(['h1>fd00::3: no route to fd00::3 in h1', 'h2>fd00::3: no route to fd00::3 in h2']);
  });

  test('ping: one process per probe, a lost first probe is retried once', async () => {
    const r = fakeNet(['fd00::3'], { fping: false, flaky: ['h1>10.0.0.2'] });
    const rep = await pingall(r, await loadTopology(example('star')));
    expect(rep.tool).toBe('ping');
    expect(rep.ok).toBe(true);
    const pings = r.argvs().filter((a) => a.includes('ping') && a[4] === 'ping');
    expect(pings).toHaveLength(11 + 3); // 11 probes; retried: the flaky one and the two fd00::3 probes the model expects lost
    expect(pings[0]).toEqual(['ip', 'netns', 'exec', 'h1', 'ping', '-c1', '-W1', '-q', '10.0.0.2']);
  });

  test('bad options are one-line INVALID_INPUT', async () => {
    const m = await loadTopology(example('star'));
    await expect(pingall(fakeNet([]), m, { concurrency: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(pingall(fakeNet([]), m, { tool: 'nmap' as 'ping' })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: '--tool "nmap": expected one of fping, ping' });
    expect(() => parseCount('--concurrency', 'lots', 1, 256)).toThrow('--concurrency "lots": expected a whole number from 1 to 256');
    await expect(pingall(fakeNet([], { fping: false }), m, { tool: 'fping' })).rejects.toMatchObject({ code: 'MISSING_TOOL' });
  });

  test('sources and targets: the star has no host node; bridge addresses are probed', async () => {
    const m = await loadTopology(example('star'));
    expect(pingSources(m).map((s) => s.netns)).toEqual(['h1', 'h2', 'h3']);
    expect(pingTargets(m).find((t) => t.owner === 'br0')).toEqual({ address: '10.0.0.254', node: 'host', owner: 'br0', ifname: 'br0' });
  });
});
