// Live labs without root: tc values and commands, impair: in files, plan and verify of impairments,
// pingall's expectation with a link down, tcpdump's argv, the graph's ids and JUnit XML.
import { XMLParser } from 'fast-xml-parser';
import { planUp, PHASES } from '../../src/engine/plan.js';
import { planSettings, planState, planText } from '../../src/engine/live/links.js';
import { checkCaptureOptions, tcpdumpArgv } from '../../src/engine/live/capture.js';
import type { LiveTarget } from '../../src/engine/live/target.js';
import { opArgv } from '../../src/kernel/step.js';
import { impairArgv, impairProblem, parseLoss, parseRate, parseTime, tbfRate } from '../../src/kernel/tc.js';
import { diffExpectations, type KernelView, type NetnsReading } from '../../src/verify/diff.js';
import { expectations, readingsFor } from '../../src/verify/expect.js';
import { toDot } from '../../src/verify/graph.js';
import { toJunit, verifyCases, pingallCases } from '../../src/verify/junit.js';
import { buildNet, expectReach } from '../../src/verify/reach.js';
import type { PingallReport } from '../../src/verify/pingall.js';
import { example, model, topoFile } from '../helpers/topo.js';
import { loadTopology } from '../../src/engine/topology.js';

const PAIR = (impair: string) => `name: shaped
nodes:
  ta: { interfaces: { eth0: { addresses: [10.50.0.1/24] } } }
  tb: { interfaces: { eth0: { addresses: [10.50.0.2/24] } } }
links:
  - { endpoints: [ta:eth0, tb:eth0]${impair} }
`;

describe('tc values', () => {
  test('rates, times and losses as tc(8) writes them', () => {
    expect(parseRate('10mbit')).toBe(10e6);
    expect(parseRate('512kbit')).toBe(512e3);
    expect(parseRate('1.5gbit')).toBe(1.5e9);
    expect(parseRate('125kbps')).toBe(1e6);
    for (const bad of ['fast', '10', '-1mbit', '0mbit', 'mbit', '10 furlongs']) expect(parseRate(bad)).toBeNull();
    expect(parseTime('20ms')).toBe(20000);
    expect(parseTime('1s')).toBe(1e6);
    expect(parseTime('soon')).toBeNull();
    expect(parseLoss('1%')).toBe(1);
    expect(parseLoss('0.5')).toBe(0.5);
    expect(parseLoss('150%')).toBeNull();
  });

  test('one line per bad value, naming flag or key', () => {
    expect(impairProblem({ rate: 'fast' }, 'flag')).toBe('--rate "fast": expected a rate such as 10mbit, 512kbit or 1gbit (tc(8) units)');
    expect(impairProblem({ loss: '150%' })).toBe('loss "150%": expected a percentage from 0% to 100% such as 1%');
    expect(impairProblem({ jitter: '5ms' }, 'flag')).toMatch(/^--jitter 5ms without --delay/);
    expect(impairProblem({ rate: '10mbit', delay: '20ms', jitter: '5ms', loss: '1%' })).toBeNull();
  });

  test('commands: tbf at the root, netem under it; netem alone at the root', () => {
    expect(impairArgv('eth0', { rate: '10mbit' })).toEqual([['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'handle', '1:', 'tbf', 'rate', '10mbit', 'burst', '16384', 'latency', '50ms']]);
    expect(impairArgv('eth0', { rate: '100mbit', delay: '20ms', jitter: '5ms', loss: '1' })[1]).toEqual(['tc', 'qdisc', 'add', 'dev', 'eth0', 'parent', '1:1', 'handle', '10:', 'netem', 'delay', '20ms', '5ms', 'loss', '1%']);
    expect(impairArgv('eth0', { rate: '100mbit' })[0]).toContain('125000'); // 10 ms of 100 Mbit/s
    expect(impairArgv('eth0', { loss: '2%' })).toEqual([['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'handle', '1:', 'netem', 'loss', '2%']]);
    expect(tbfRate([{ kind: 'tbf', handle: '1:', root: true, options: { rate: 1250000 } }])).toBe(10e6);
  });
});

describe('impair: in a topology file', () => {
  test('resolved onto the link; planned on both ends after everything else, undone by deleting the root qdisc', async () => {
    const m = await model('shaped', PAIR(', impair: { rate: 20mbit }'));
    expect(m.veths[0]!.impair).toEqual({ rate: '20mbit' });
    const tc = planUp(m).filter((s) => opArgv(s.do).includes('tc'));
    expect(tc.map((s) => opArgv(s.do).join(' '))).toEqual([
      'ip netns exec ta tc qdisc replace dev eth0 root handle 1: tbf rate 20mbit burst 25000 latency 50ms',
      'ip netns exec tb tc qdisc replace dev eth0 root handle 1: tbf rate 20mbit burst 25000 latency 50ms',
    ]);
    expect(tc.every((s) => s.phase === PHASES.hostRoutes)).toBe(true);
    expect(tc.map((s) => s.undo.map((u) => opArgv(u).join(' ')))).toEqual([['ip netns exec ta tc qdisc del dev eth0 root'], ['ip netns exec tb tc qdisc del dev eth0 root']]);
  });

  test('bad values: the file line and key', async () => {
    await expect(loadTopology(topoFile('shaped', PAIR(', impair: { rate: fast }')))).rejects.toThrow(/shaped\.yaml:6: links\[0\]\.impair: rate "fast": expected a rate/);
    await expect(loadTopology(topoFile('shaped', PAIR(', impair: { loss: 150% }')))).rejects.toThrow(/loss "150%": expected a percentage from 0% to 100%/);
    await expect(loadTopology(topoFile('shaped', PAIR(', impair: { speed: 1 }')))).rejects.toThrow(/speed/);
  });

  test('verify: the rate read back within 1 %, a missing one named; netem asked for and absent named', async () => {
    const m = await model('shaped', PAIR(', impair: { rate: 20mbit, delay: 20ms }'));
    const exps = expectations(m);
    expect(exps.filter((e) => e.kind === 'qdisc')).toEqual([
      { kind: 'qdisc', owner: 'ta', netns: 'ta', ifname: 'eth0', rate: 20e6, netem: true },
      { kind: 'qdisc', owner: 'tb', netns: 'tb', ifname: 'eth0', rate: 20e6, netem: true },
    ]);
    expect([...readingsFor(exps).get('ta')!]).toContain('qdisc:eth0');
    const ns = (q: NetnsReading['qdiscs']): NetnsReading => ({ links: [{ ifindex: 2, ifname: 'eth0', flags: ['UP'], mtu: 1500, operstate: 'UP' }], addrs: [], routes4: [], routes6: [], sysctls: {}, qdiscs: q });
    const tbf = (rate: number) => ({ kind: 'tbf', handle: '1:', root: true, options: { rate } });
    const view: KernelView = {
      netns: new Map([['ta', 1], ['tb', 2]]),
      readings: new Map([
        ['ta', ns({ eth0: [tbf(2_500_000), { kind: 'netem', handle: '10:', parent: '1:1' }] })],
        ['tb', ns({ eth0: [{ kind: 'noqueue', handle: '0:', root: true }] })],
      ]),
    };
    expect(diffExpectations(exps.filter((e) => e.kind === 'qdisc'), view).map((x) => x.message)).toEqual(['tb: eth0: rate none, expected 20mbit (tc tbf)', 'tb: eth0: no netem qdisc, expected one (delay, jitter or loss)']);
  });
});

describe('link commands (pure)', () => {
  const t: LiveTarget = { label: 'h1:eth0', node: 'h1', netns: 'h1', ifname: 'eth0', link: { ifindex: 2, ifname: 'eth0', flags: ['UP'], mtu: 1500, operstate: 'UP' } };
  test('the plans --dry-run prints', () => {
    expect(planText(planState(t, false))).toBe('ip -n h1 link set dev eth0 down\n');
    expect(planText(planSettings(t, { impair: { rate: '10mbit' }, mtu: 1400 }))).toBe('ip -n h1 link set dev eth0 mtu 1400\nip netns exec h1 tc qdisc replace dev eth0 root handle 1: tbf rate 10mbit burst 16384 latency 50ms\n');
    expect(() => planSettings(t, { impair: {} })).toThrow(/nothing to set/);
    expect(() => planSettings(t, { impair: {}, mtu: 20 })).toThrow(/^--mtu 20: expected a whole number of bytes from 68 to 65535$/);
  });

  test('tcpdump argv: readable with link-level headers, or pcap packet by packet; filter last', () => {
    expect(tcpdumpArgv('eth0', {})).toEqual(['tcpdump', '-i', 'eth0', '-n', '--immediate-mode', '-Z', 'root', '-e', '-l']);
    expect(tcpdumpArgv('eth0', { write: '-', count: 4, filter: 'icmp or arp' })).toEqual(['tcpdump', '-i', 'eth0', '-n', '--immediate-mode', '-Z', 'root', '-U', '-w', '-', '-c', '4', 'icmp or arp']);
    expect(() => checkCaptureOptions({ count: 0 })).toThrow(/^-c 0: expected a whole number of packets/);
    expect(() => checkCaptureOptions({ duration: -1 })).toThrow(/^--duration -1: expected seconds/);
  });
});

test('pingall expects a link taken down on purpose to carry nothing, and says why', async () => {
  const m = await loadTopology(example('star'));
  expect(expectReach(buildNet(m), 'h1', '10.0.0.2')).toEqual({ reachable: true, reason: 'same segment' });
  const net = buildNet(m, new Set(['h2:eth0']));
  expect(expectReach(net, 'h1', '10.0.0.2')).toEqual({ reachable: false, reason: 'link h2:eth0 is down (nslab link down)' });
  expect(expectReach(net, 'h2', '10.0.0.254')).toEqual({ reachable: false, reason: 'link h2:eth0 is down (nslab link down)' });
  expect(expectReach(net, 'h1', '10.0.0.3').reachable).toBe(true);
  // the bridge-side end (a port in the current netns) cuts the link as well
  const port = m.veths[1]!.b.name;
  expect(expectReach(buildNet(m, new Set([`-:${port}`])), 'h3', '10.0.0.2').reachable).toBe(false);
});

test('toDot with ids: each vertex and veth carries an id into the SVG; without, the text is as before', async () => {
  const m = await loadTopology(example('star'));
  expect(toDot(m, { ids: true })).toContain('"node:h1" -- "bridge:br0" [taillabel="eth0\\n10.0.0.1/24", headlabel="star-h1-eth0", id="link-0"];'.replace('star-h1-eth0', m.veths[0]!.b.name));
  expect(toDot(m)).not.toContain('id=');
});

describe('JUnit XML', () => {
  const parse = (xml: string) => new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml);
  test('escaped, counted, one case per check', () => {
    const xml = toJunit('nslab <test> & "x"', [
      { suite: 's1', name: 'a < b', failure: 'expected "1" & got <2>', detail: 'line 1\nline 2' },
      { suite: 's1', name: 'ok one' },
      { suite: 's2', name: 'third\u0007' },
    ]);
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>/);
    const doc = parse(xml);
    expect(doc.testsuites).toMatchObject({ name: 'nslab <test> & "x"', tests: '3', failures: '1' });
    expect(doc.testsuites.testsuite[0].testcase[0]).toEqual({ name: 'a < b', classname: 's1', failure: { message: 'expected "1" & got <2>', '#text': 'line 1\nline 2' } });
    expect(doc.testsuites.testsuite[1]).toMatchObject({ name: 's2', tests: '1', failures: '0', testcase: { name: 'third' } });
  });

  test('verify: every fact a case, a mismatch on the fact it belongs to', async () => {
    const m = await loadTopology(example('star'));
    const mismatch = { kind: 'address-missing' as const, owner: 'h1', ifname: 'eth0', expected: '10.0.0.1/24', actual: null, message: 'h1: eth0: address 10.0.0.1/24 missing' };
    const cases = verifyCases(m, { topology: 'star', ok: false, checked: expectations(m).length, mismatches: [mismatch], downOnPurpose: [], ms: 1 });
    expect(cases).toHaveLength(expectations(m).length);
    expect(cases.filter((c) => c.failure)).toEqual([expect.objectContaining({ name: 'h1: eth0 (veth)', failure: 'h1: eth0: address 10.0.0.1/24 missing' })]);
  });

  test('pingall: one case per probe, failed when it went against the model', () => {
    const rep = {
      topology: 't',
      results: [
        { from: 'a', to: '10.0.0.2', owner: 'b', ifname: 'eth0', expected: true, reached: false, reason: 'same segment' },
        { from: 'a', to: '10.0.0.3', owner: 'c', ifname: 'eth0', expected: false, reached: false, reason: 'no route' },
      ],
    } as unknown as PingallReport;
    expect(pingallCases(rep)).toEqual([
      { suite: 'pingall t', classname: 'pingall t.a', name: 'a -> 10.0.0.2 (b:eth0) reachable', failure: 'a -> 10.0.0.2 (b:eth0): lost, expected reachable (same segment)' },
      { suite: 'pingall t', classname: 'pingall t.a', name: 'a -> 10.0.0.3 (c:eth0) unreachable' },
    ]);
  });
});
