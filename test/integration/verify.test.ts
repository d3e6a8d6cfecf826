// verify, pingall and inspect against real kernel objects in the sandbox: each mismatch made on purpose.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { down, loadTopology, plan, up } from '../../src/engine/topology.js';
import type { Model } from '../../src/model/types.js';
import { listNetns } from '../../src/kernel/netns.js';
import { inspect } from '../../src/verify/inspect.js';
import { pingall, SEED_PROTOCOL, type PingallReport } from '../../src/verify/pingall.js';
import { verify } from '../../src/verify/verify.js';
import { assertSandbox, runner, snapshot, waitLinksGone } from '../helpers/kernel.js';
import { example, model, topoFile } from '../helpers/topo.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
const nslab = (...args: string[]) => execa('node', [CLI, ...args], { reject: false });
const ip = (netns: string | null, ...argv: string[]) => runner.run({ argv: ['ip', ...argv], netns });
const lines = async (m: Model) => (await verify(runner, m)).mismatches.map((x) => x.message);

beforeAll(assertSandbox);

/** A bridge with two nodes, a node-to-node veth behind one of them, a MAC, IPv6, a route and a sysctl. */
const VT = `name: vt
bridges:
  br0: { addresses: [10.0.0.254/24] }
nodes:
  h1:
    interfaces:
      eth0: { addresses: [10.0.0.1/24], mac: "02:00:00:00:01:01" }
    routes: [ { to: default, via: 10.0.0.254 } ]
  h2:
    interfaces:
      eth0: { addresses: [10.0.0.2/24, "fd00::2/64"] }
      eth1: { addresses: [10.1.0.2/24] }
    sysctls: { net.ipv4.ip_forward: 1 }
  h3:
    interfaces:
      eth0: { addresses: [10.1.0.3/24] }
    routes: [ { to: 10.0.0.0/24, via: 10.1.0.2 } ]
links:
  - [h1:eth0, br0]
  - [h2:eth0, br0]
  - [h2:eth1, h3:eth0]
`;

describe('verify: each mismatch made on purpose is reported with its line', () => {
  let m: Model;
  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    before = await snapshot();
    m = await model('vt', VT);
    await up(runner, m);
  });
  afterAll(async () => {
    await down(runner, m);
    expect(await snapshot()).toEqual(before);
  });
  // Each case breaks one thing; the topology is rebuilt after it, and must verify clean again.
  afterEach(async () => {
    await down(runner, m);
    await up(runner, m);
    expect(await lines(m)).toEqual([]);
  });

  test('a healthy topology verifies clean', async () => {
    const rep = await verify(runner, m);
    expect(rep).toMatchObject({ topology: 'vt', ok: true, mismatches: [] });
    expect(rep.checked).toBeGreaterThan(15);
  });

  test('delete an address', async () => {
    await ip('h2', 'addr', 'del', '10.0.0.2/24', 'dev', 'eth0');
    expect(await lines(m)).toEqual(['h2: eth0: address 10.0.0.2/24 missing']);
  });

  test('change an MTU', async () => {
    await ip('h3', 'link', 'set', 'dev', 'eth0', 'mtu', '1400');
    expect(await lines(m)).toEqual(['h3: eth0: mtu 1400, expected 1500']);
  });

  test('change the bridge MTU', async () => {
    await ip(null, 'link', 'set', 'dev', 'br0', 'mtu', '1400');
    expect(await lines(m)).toEqual(['br0: mtu 1400, expected 1500']);
  });

  test('remove a route', async () => {
    await ip('h3', 'route', 'del', '10.0.0.0/24');
    expect(await lines(m)).toEqual(['h3: route 10.0.0.0/24 via 10.1.0.2 missing']);
  });

  test('set a link down', async () => {
    await ip('h2', 'link', 'set', 'dev', 'eth1', 'down');
    expect(await lines(m)).toEqual(['h2: eth1: link down']);
  });

  test('set a link down that carries a route: the kernel drops the route, and the line says why', async () => {
    await ip('h1', 'link', 'set', 'dev', 'eth0', 'down');
    expect(await lines(m)).toEqual(['h1: eth0: link down', 'h1: route default via 10.0.0.254 missing (eth0 is down)']);
  });

  test('change a MAC', async () => {
    await ip('h1', 'link', 'set', 'dev', 'eth0', 'address', '02:00:00:00:01:99');
    expect(await lines(m)).toEqual(['h1: eth0: mac 02:00:00:00:01:99, expected 02:00:00:00:01:01']);
  });

  test('move a port off its bridge', async () => {
    await ip(null, 'link', 'set', 'dev', 'h2-eth0', 'nomaster');
    expect(await lines(m)).toEqual(['br0: h2-eth0: master none, expected br0']);
  });

  test('delete an interface: both ends of the veth go, and the route through it', async () => {
    await ip('h3', 'link', 'del', 'dev', 'eth0');
    expect(await lines(m)).toEqual(['h2: eth1: missing', 'h3: eth0: missing', 'h3: route 10.0.0.0/24 via 10.1.0.2 missing (eth0 is missing)']);
  });

  test('add an extra interface to a node', async () => {
    await ip(null, 'link', 'add', 'x9', 'type', 'veth', 'peer', 'name', 'eth9', 'netns', 'h1');
    expect(await lines(m)).toEqual(['h1: eth9: extra interface (veth)']);
  });

  test('change a sysctl', async () => {
    await runner.run({ argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'], netns: 'h2' });
    expect(await lines(m)).toEqual(['h2: sysctl net.ipv4.ip_forward 0, expected 1']);
  });

  test('delete a netns: one line for it, its veth peer names it as the cause', async () => {
    await ip(null, 'netns', 'del', 'h3');
    // The kernel removes the netns's veths (and their peers) a moment after `netns del` returns.
    const want = ['h2: eth1: missing (netns h3 is missing)', 'h3: netns missing'];
    let got: string[] = [];
    for (let i = 0; i < 100 && JSON.stringify(got) !== JSON.stringify(want); i++) {
      got = await lines(m);
      if (JSON.stringify(got) !== JSON.stringify(want)) await new Promise((r) => setTimeout(r, 50));
    }
    expect(got).toEqual(want);
  });

  test('delete the bridge', async () => {
    await ip(null, 'link', 'del', 'dev', 'br0');
    expect(await lines(m)).toEqual(['br0: missing', 'br0: h1-eth0: master none, expected br0 (br0 is missing)', 'br0: h2-eth0: master none, expected br0 (br0 is missing)']);
  });
});

describe('verify does not trust up: topologies built by hand', () => {
  test('the script `nslab plan` prints, run by sh, verifies clean', async () => {
    const before = await snapshot();
    const m = await loadTopology(example('chain'));
    const sh = await execa('sh', ['-c', (await plan(m)).script], { reject: false });
    expect(sh.exitCode).toBe(0);
    try {
      expect(await lines(m)).toEqual([]);
    } finally {
      await down(runner, m);
    }
    expect(await snapshot()).toEqual(before);
  });

  test('without the ownership marks (a student types the commands), it verifies clean too', async () => {
    const before = await snapshot();
    const m = await loadTopology(example('star'));
    const script = (await plan(m)).script
      .split('\n')
      .filter((l) => !/ alias nslab:/.test(l))
      .join('\n');
    expect(script).not.toContain('nslab:');
    await execa('sh', ['-c', script]);
    try {
      expect(await lines(m)).toEqual([]);
    } finally {
      // down leaves unmarked objects alone: remove them as the student would.
      for (const n of m.nodes) await ip(null, 'netns', 'del', n.name);
      await ip(null, 'link', 'del', 'dev', 'br0');
      await waitLinksGone((name) => m.nodes.some((n) => name === `${n.name}-eth0`));
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe('nslab verify (CLI)', () => {
  test('exit 0 and one ok line when clean; exit 1 and one line per mismatch; --json', async () => {
    const before = await snapshot();
    await nslab('up', example('star'));
    try {
      const ok = await nslab('verify', example('star'));
      expect(ok.exitCode).toBe(0);
      expect(ok.stdout).toMatch(/^verify star: ok \(\d+ facts checked\)$/);
      await ip('h3', 'addr', 'del', '10.0.0.3/24', 'dev', 'eth0');
      const bad = await nslab('verify', example('star'));
      expect(bad.exitCode).toBe(1);
      expect(bad.stdout).toBe('h3: eth0: address 10.0.0.3/24 missing');
      const json = await nslab('verify', example('star'), '--json');
      expect(json.exitCode).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ topology: 'star', ok: false, mismatches: [{ kind: 'address-missing', owner: 'h3', ifname: 'eth0', expected: '10.0.0.3/24', actual: null }] });
    } finally {
      await nslab('down', example('star'));
    }
    expect(await snapshot()).toEqual(before);
  });

  test('bad input: one line naming it, exit 2, nothing read or changed', async () => {
    const a = await nslab('verify', '/nonexistent/topo.yaml');
    expect(a.exitCode).toBe(2);
    expect(a.stderr.trim()).toBe('nslab: cannot read /nonexistent/topo.yaml: no such file');
    const b = await nslab('verify', topoFile('bad', 'nodes:\n  h1: { interfacez: {} }\n'));
    expect(b.exitCode).toBe(2);
    expect(b.stderr.trim()).toMatch(/^nslab: \S+bad\.yaml:2: nodes\.h1\.interfacez: unknown key "interfacez"$/);
  });
});

/** The pairs that went against the model, as "from>address". */
const diffs = (rep: PingallReport) => rep.differences.map((d) => `${d.from}>${d.to}`);
const tools: Array<'fping' | 'ping'> = spawnSync('fping', ['-v']).status === 0 ? ['fping', 'ping'] : ['ping'];

const modes: Array<'resolve' | 'seed'> = ['resolve', 'seed'];
const cases = tools.flatMap((tool) => modes.map((neighbours) => [tool, neighbours] as const));

/** The neighbour entries pingall seeded that are still there, in the host and in every named netns. */
async function seedsLeft(): Promise<string[]> {
  const names = (await listNetns(runner)).map((n) => n as string | null).concat([null]);
  const out: string[] = [];
  for (const n of names) {
    const res = await runner.run({ argv: ['ip', '-j', 'neigh', 'show', 'protocol', SEED_PROTOCOL], netns: n });
    for (const e of JSON.parse(res.stdout || '[]') as Array<{ dst: string }>) out.push(`${n ?? 'host'}:${e.dst}`);
  }
  return out;
}

describe.each(cases)('pingall with %s, neighbours %s', (tool, neighbours) => {
  test('star: a full matrix, no loss; with one node link down, exactly its pairs are lost', async () => {
    const before = await snapshot();
    const m = await loadTopology(example('star'));
    await up(runner, m);
    try {
      const rep = await pingall(runner, m, { tool, neighbours });
      expect(rep.neighbours).toBe(neighbours === 'seed' ? 'seeded' : 'resolved');
      if (neighbours === 'seed') expect(rep.seeded).toBeGreaterThan(0);
      expect(await seedsLeft()).toEqual([]);
      expect(rep).toMatchObject({ ok: true, tool, differences: [] });
      // every probe the model expects to work worked (fd00::3 is unreachable from h1 and h2: no IPv6 there)
      expect(rep.results.filter((x) => x.expected).every((x) => x.reached)).toBe(true);
      expect(rep.results.filter((x) => !x.reached).map((x) => `${x.from}>${x.to}`)).toEqual(['h1>fd00::3', 'h2>fd00::3']);

      await ip('h2', 'link', 'set', 'dev', 'eth0', 'down');
      const down1 = await pingall(runner, m, { tool, neighbours });
      expect(down1.ok).toBe(false);
      expect(diffs(down1)).toEqual(['h1>10.0.0.2', 'h2>10.0.0.1', 'h2>10.0.0.3', 'h2>10.0.0.254', 'h3>10.0.0.2']);
    } finally {
      await down(runner, m);
    }
    expect(await snapshot()).toEqual(before);
  });

  test('chain: with ip_forward=0 on the router, exactly the pairs across it are lost', async () => {
    const before = await snapshot();
    const m = await loadTopology(example('chain'));
    await up(runner, m);
    try {
      expect(diffs(await pingall(runner, m, { tool, neighbours }))).toEqual([]);
      await runner.run({ argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'], netns: 'r' });
      const rep = await pingall(runner, m, { tool, neighbours });
      expect(diffs(rep)).toEqual(['a>10.0.2.1', 'b>10.0.1.1']);
      expect(rep.differences[0]).toMatchObject({ reached: false, expected: true, reason: 'via r' });
    } finally {
      await down(runner, m);
    }
    expect(await snapshot()).toEqual(before);
  });
});

test('pingall after pings made neighbour entries: seeds replace the kernel entries, keep one set on purpose, and leave nothing (iproute2 `neigh add` ended the batch on "File exists")', async () => {
  const before = await snapshot();
  const m = await loadTopology(example('star'));
  await up(runner, m);
  try {
    // Entries the kernel resolved: h1 <-> h2 and h1 <-> the bridge's address.
    await runner.run({ argv: ['ping', '-c1', '-W1', '10.0.0.2'], netns: 'h1' });
    await runner.run({ argv: ['ping', '-c1', '-W1', '10.0.0.254'], netns: 'h1' });
    // One set by hand, permanent: pingall must leave it as it is.
    const mac3 = (JSON.parse((await ip('h3', '-j', 'link', 'show', 'dev', 'eth0')).stdout) as Array<{ address: string }>)[0]!.address;
    await ip('h2', 'neigh', 'replace', '10.0.0.3', 'lladdr', mac3, 'dev', 'eth0', 'nud', 'permanent');
    const neigh = async (ns: string) => (JSON.parse((await ip(ns, '-j', 'neigh', 'show')).stdout) as Array<{ dst: string; state: string[] }>).map((e) => `${e.dst} ${e.state.join(',')}`);
    expect(await neigh('h1')).toEqual(expect.arrayContaining([expect.stringMatching(/^10\.0\.0\.2 (REACHABLE|STALE|DELAY)/)]));
    const rep = await pingall(runner, m, { neighbours: 'seed' });
    expect(rep).toMatchObject({ ok: true, neighbours: 'seeded', differences: [] });
    expect(rep.results.filter((x) => x.expected).every((x) => x.reached)).toBe(true);
    expect(await seedsLeft()).toEqual([]);
    expect(await neigh('h2')).toContain('10.0.0.3 PERMANENT');
    // Through the CLI as a user runs it, twice (the first run's probes made entries again).
    for (let k = 0; k < 2; k++) {
      const cli = await nslab('pingall', example('star'), '--neighbours', 'seed');
      expect(cli.stderr).toBe('');
      expect(cli.exitCode).toBe(0);
    }
    await ip('h2', 'neigh', 'del', '10.0.0.3', 'dev', 'eth0');
  } finally {
    await down(runner, m);
  }
  expect(await snapshot()).toEqual(before);
});

test('pingall in rounds (small blocks, neighbour caches flushed between them): 10 nodes, no loss', async () => {
  const n = 10;
  const yaml = ['name: pstar', 'bridges:', '  br0: { addresses: [10.7.0.254/24] }', 'nodes:']
    .concat(Array.from({ length: n }, (_, i) => `  p${i + 1}: { interfaces: { eth0: { addresses: [10.7.0.${i + 1}/24] } } }`))
    .concat(['links:'], Array.from({ length: n }, (_, i) => `  - [p${i + 1}:eth0, br0]`))
    .join('\n');
  const before = await snapshot();
  const m = await model('pstar', yaml);
  await up(runner, m);
  try {
    const rep = await pingall(runner, m, { blockSize: 4, neighbours: 'resolve' });
    expect(rep.rounds).toBe(6); // 3 blocks of the 11 members (10 nodes + the host holding br0's address)
    expect(rep.results).toHaveLength(n * n);
    expect(rep.differences).toEqual([]);
  } finally {
    await down(runner, m);
  }
  expect(await snapshot()).toEqual(before);
});

test('pingall on a 100-node star: a full matrix with no loss in one round (neighbours seeded, then removed); one link down loses exactly its pairs', async () => {
  const n = 100;
  const addr = (i: number) => `10.8.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const yaml = ['name: big', 'bridges:', '  br0: {}', 'nodes:']
    .concat(Array.from({ length: n }, (_, i) => `  n${i + 1}: { interfaces: { eth0: { addresses: [${addr(i)}/16] } } }`))
    .concat(['links:'], Array.from({ length: n }, (_, i) => `  - [n${i + 1}:eth0, br0]`))
    .join('\n');
  const before = await snapshot();
  const m = await model('big', yaml);
  await up(runner, m);
  try {
    const rep = await pingall(runner, m);
    expect(rep).toMatchObject({ ok: true, neighbours: 'seeded', seeded: n * (n - 1), rounds: 1 });
    expect(rep.results).toHaveLength(n * (n - 1));
    expect(rep.results.every((x) => x.expected && x.reached)).toBe(true);
    expect(await seedsLeft()).toEqual([]);

    await ip('n7', 'link', 'set', 'dev', 'eth0', 'down');
    const lost = await pingall(runner, m);
    const pairs = Array.from({ length: n }, (_, i) => i + 1)
      .filter((i) => i !== 7)
      .flatMap((i) => [`n${i}>${addr(6)}`, `n7>${addr(i - 1)}`]);
    expect(diffs(lost).sort()).toEqual(pairs.sort());
    expect(await seedsLeft()).toEqual([]);
  } finally {
    await down(runner, m);
  }
  expect(await snapshot()).toEqual(before);
});

describe('inspect, graph and pingall through the CLI', () => {
  test('inspect finds what nslab owns by its marks, grouped by topology, and nothing else', async () => {
    const before = await snapshot();
    expect(await inspect(runner)).toEqual({ topologies: [], incomplete: [] });
    await up(runner, await loadTopology(example('star')));
    await up(runner, await loadTopology(example('chain')));
    await ip(null, 'netns', 'add', 'stranger');
    await ip(null, 'link', 'add', 'foo0', 'type', 'veth', 'peer', 'name', 'foo1');
    try {
      const rep = await inspect(runner);
      expect(rep.topologies.map((t) => t.name)).toEqual(['chain', 'star']);
      const star = rep.topologies[1]!;
      expect(star.netns.map((x) => x.name).sort()).toEqual(['h1', 'h2', 'h3']);
      expect(star.netns[0]!.links).toEqual([{ ifname: 'eth0', kind: 'veth', master: null, up: true }]);
      expect(star.netns[0]!.processes).toEqual([]);
      expect(star.links.map((l) => `${l.ifname} ${l.kind} ${l.master ?? '-'}`)).toEqual(['br0 bridge -', 'h1-eth0 veth br0', 'h2-eth0 veth br0', 'h3-eth0 veth br0']);
      expect(rep.topologies[0]!.netns.find((x) => x.name === 'r')!.links.map((l) => l.ifname)).toEqual(['eth0', 'eth1']);
      const cli = await nslab('inspect');
      expect(cli.exitCode).toBe(0);
      expect(cli.stdout).toMatch(/│ star\s+│ netns h1\s+│ eth0 \(veth\)/);
      expect(cli.stdout).not.toMatch(/stranger|foo0/);
      expect(cli.stdout.split('\n').pop()).toBe('chain: 3 netns, 0 links; star: 3 netns, 4 links');
    } finally {
      await down(runner, await loadTopology(example('star')));
      await down(runner, await loadTopology(example('chain')));
      await ip(null, 'netns', 'del', 'stranger');
      await ip(null, 'link', 'del', 'foo0');
    }
    expect(JSON.parse((await nslab('inspect', '--json')).stdout)).toEqual({ topologies: [], incomplete: [] });
    expect(await snapshot()).toEqual(before);
  });

  test('pingall: the matrix and exit 0 when as expected; the lost pairs and exit 1; bad flags exit 2', async () => {
    const before = await snapshot();
    await nslab('up', example('chain'));
    try {
      const ok = await nslab('pingall', example('chain'));
      expect(ok.exitCode).toBe(0);
      expect(ok.stdout).toMatch(/│ from \\ to │ a\s+│ r\s+│ b\s+│/);
      expect(ok.stdout.trimEnd().split('\n').pop()).toMatch(/^pingall chain: 8 probes from 3 nodes in [\d.]+ s \((fping|ping)\); all as the topology expects$/);
      await runner.run({ argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'], netns: 'r' });
      const bad = await nslab('pingall', example('chain'));
      expect(bad.exitCode).toBe(1);
      expect(bad.stdout).toContain('a -> 10.0.2.1 (b:eth0): lost, expected reachable (via r)\nb -> 10.0.1.1 (a:eth0): lost, expected reachable (via r)\n');
      const json = JSON.parse((await nslab('pingall', example('chain'), '--json')).stdout);
      expect(json).toMatchObject({ topology: 'chain', ok: false, differences: [{ from: 'a', to: '10.0.2.1' }, { from: 'b', to: '10.0.1.1' }] });
      for (const [flag, value, msg] of [
        ['--tool', 'nmap', 'nslab: --tool "nmap": expected one of fping, ping'],
        ['--concurrency', '0', 'nslab: --concurrency "0": expected a whole number from 1 to 256'],
        ['--neighbours', 'bogus', 'nslab: --neighbours "bogus": expected one of auto, resolve, seed'],
      ]) {
        const res = await nslab('pingall', example('chain'), flag!, value!);
        expect(res.exitCode).toBe(2);
        expect(res.stderr.trim()).toBe(msg);
      }
    } finally {
      await nslab('down', example('chain'));
    }
    expect(await snapshot()).toEqual(before);
    // Not up: one line naming what is missing, not a matrix of lost probes from netns that are not there.
    const notUp = await nslab('pingall', example('chain'));
    expect([notUp.exitCode, notUp.stderr.split('\n')[0]]).toEqual([1, 'nslab: topology chain is not up here: none of its netns (a, r, b) exists']);
    const dir = await nslab('verify', process.cwd());
    expect([dir.exitCode, dir.stderr.trim()]).toEqual([2, `nslab: cannot read ${process.cwd()}: it is a directory; expected a topology file (YAML)`]);
  });

  test('graph: svg through graphviz, or one line saying to install it; an unknown format is exit 2', async () => {
    const bad = await nslab('graph', example('star'), '--format', 'png');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toBe('nslab: --format "png": expected one of dot, mermaid, svg');
    // Without graphviz on PATH (node is started by its full path), svg says what to install.
    const none = await execa(process.execPath, [CLI, 'graph', example('star'), '--format', 'svg'], { reject: false, env: { PATH: '/nonexistent' }, extendEnv: false });
    expect(none.exitCode).toBe(1);
    expect(none.stderr.trim()).toBe('nslab: graph --format svg needs graphviz, which is not installed: apt-get install graphviz (or use --format dot or mermaid)');
    if (spawnSync('dot', ['-V']).status === 0) {
      const svg = await nslab('graph', example('chain'), '--format', 'svg');
      expect(svg.exitCode).toBe(0);
      expect(svg.stdout).toMatch(/<svg[\s\S]*10\.0\.1\.254\/24[\s\S]*<\/svg>/);
    }
  });
});
