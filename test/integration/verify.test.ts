// verify, pingall and inspect against real kernel objects in the sandbox: each mismatch made on purpose.
import { execa } from 'execa';
import { join } from 'node:path';
import { down, loadTopology, plan, up } from '../../src/engine/topology.js';
import type { Model } from '../../src/model/types.js';
import { verify } from '../../src/verify/verify.js';
import { assertSandbox, runner, snapshot } from '../helpers/kernel.js';
import { example, model, topoFile } from '../helpers/topo.js';

const CLI = join(process.cwd(), 'dist', 'cli', 'main.js');
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
