// A 3-node star on a bridge and a 3-node routed chain, built for real in the sandbox and read back.
import { down, loadTopology, up } from '../../src/engine/topology.js';
import type { LinkInfo } from '../../src/kernel/link.js';
import { readLinks } from '../../src/kernel/link.js';
import { genTopology } from '../../src/model/gen.js';
import { verify } from '../../src/verify/verify.js';
import { pingall } from '../../src/verify/pingall.js';
import type { Runner } from '../../src/exec/runner.js';
import { readAddrs } from '../../src/kernel/addr.js';
import { listNetns } from '../../src/kernel/netns.js';
import { readRoutes } from '../../src/kernel/route.js';
import { readSysctl } from '../../src/kernel/sysctl.js';
import { assertSandbox, inheritedForwarding, ping, pingError, runner, snapshot } from '../helpers/kernel.js';
import { example, model } from '../helpers/topo.js';


const byName = (links: LinkInfo[], name: string) => links.find((l) => l.ifname === name);

beforeAll(assertSandbox);

describe('star: h1, h2, h3 on br0', () => {
  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    before = await snapshot();
    await up(runner, await loadTopology(example('star')));
  });
  afterAll(async () => {
    await down(runner, await loadTopology(example('star')));
  });

  test('the kernel has the netns, the bridge and its ports, marked as nslab:star', async () => {
    expect(await listNetns(runner)).toEqual(expect.arrayContaining(['h1', 'h2', 'h3']));
    const root = await readLinks(runner, null);
    expect(byName(root, 'br0')).toMatchObject({ linkinfo: { info_kind: 'bridge' }, ifalias: 'nslab:star' });
    expect(byName(root, 'br0')!.flags).toContain('UP');
    for (const h of ['h1', 'h2', 'h3']) {
      expect(byName(root, `${h}-eth0`)).toMatchObject({ master: 'br0', ifalias: 'nslab:star', linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge' } });
      const inside = await readLinks(runner, h);
      expect(byName(inside, 'eth0')).toMatchObject({ linkinfo: { info_kind: 'veth' }, operstate: 'UP' });
      expect(byName(inside, 'lo')).toMatchObject({ ifalias: 'nslab:star' });
    }
  });

  test('addresses and routes are where the file says', async () => {
    const a = await readAddrs(runner, 'h3');
    const eth0 = a.find((x) => x.ifname === 'eth0')!.addr_info.map((x) => `${x.local}/${x.prefixlen}`);
    expect(eth0).toEqual(expect.arrayContaining(['10.0.0.3/24', 'fd00::3/64']));
    const br0 = (await readAddrs(runner, null)).find((x) => x.ifname === 'br0')!.addr_info.map((x) => `${x.local}/${x.prefixlen}`);
    expect(br0).toContain('10.0.0.254/24');
    expect(await readRoutes(runner, 'h1')).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: '10.0.0.254', dev: 'eth0' })]));
  });

  test('nodes ping each other and the bridge; IPv6 works without waiting for DAD', async () => {
    expect(await ping('h1', '10.0.0.2')).toBe(true);
    expect(await ping('h2', '10.0.0.3')).toBe(true);
    expect(await ping('h3', '10.0.0.254')).toBe(true);
    await runner.run({ argv: ['ip', 'addr', 'add', 'fd00::fe/64', 'dev', 'br0', 'nodad'] });
    expect(await ping('h3', 'fd00::fe')).toBe(true);
    await runner.run({ argv: ['ip', 'addr', 'del', 'fd00::fe/64', 'dev', 'br0'] });
  });

  test('an address nobody has does not answer', async () => {
    expect(await ping('h1', '10.0.0.99')).toBe(false);
  });

  test('up again fails on the first existing object and leaves the running star intact', async () => {
    const live = await snapshot();
    await expect(up(runner, await loadTopology(example('star')))).rejects.toThrow(/step 1\/34 "add netns h1" failed: .*File exists/);
    expect(await snapshot()).toEqual(live);
  });

  test('down removes everything, twice is a no-op, and the sandbox is as before', async () => {
    const m = await loadTopology(example('star'));
    await down(runner, m);
    expect(await snapshot()).toEqual(before);
    const again = await down(runner, m);
    expect(again.commands).toBe(0);
    expect(await snapshot()).toEqual(before);
  });
});

describe('chain: a -- r -- b with routes and ip_forward', () => {
  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    before = await snapshot();
    await up(runner, await loadTopology(example('chain')));
  });
  afterAll(async () => {
    await down(runner, await loadTopology(example('chain')));
  });

  test('r forwards: a reaches b and b reaches a, two hops (ttl 63)', async () => {
    expect(await readSysctl(runner, 'r', 'net.ipv4.ip_forward')).toBe('1');
    // a declares no forwarding: it keeps what a new netns gets on this machine.
    expect(await readSysctl(runner, 'a', 'net.ipv4.ip_forward')).toBe(inheritedForwarding());
    const res = await runner.run({ argv: ['ping', '-c', '1', '-W', '1', '10.0.2.1'], netns: 'a' });
    expect(res.stdout).toMatch(/ttl=63/);
    expect(await ping('b', '10.0.1.1')).toBe(true);
  });

  test('the reject route answers "No route to host"; a net with no route is unreachable', async () => {
    expect(await readRoutes(runner, 'a')).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'unreachable', dst: '10.9.0.0/16' })]));
    expect(await pingError('a', '10.9.0.1')).toMatch(/No route to host/);
    expect(await pingError('a', '192.0.2.1')).toMatch(/Network is unreachable/);
  });

  test('without ip_forward on r, a no longer reaches b', async () => {
    await runner.run({ argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'], netns: 'r' });
    expect(await ping('a', '10.0.2.1')).toBe(false);
    await runner.run({ argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], netns: 'r' });
    expect(await ping('a', '10.0.2.1')).toBe(true);
  });

  test('down leaves the sandbox as before', async () => {
    await down(runner, await loadTopology(example('chain')));
    expect(await snapshot()).toEqual(before);
  });
});

describe('the current namespace as a node ("host"), bridges made with brctl, host sysctls', () => {
  const yaml = `name: hostside
host:
  interfaces:
    veth-a: { addresses: [10.1.0.1/24] }
  routes:
    - { to: 10.2.0.0/24, via: 10.1.0.2 }
  sysctls: { net.ipv4.conf.all.forwarding: 1 }
bridges:
  brx: { driver: brctl, mtu: 1400, addresses: [10.3.0.254/24] }
  bry: { driver: brctl, stp: true }
nodes:
  ns-test:
    interfaces:
      veth-b: { addresses: [10.1.0.2/24, 10.2.0.1/24], mac: "02:00:00:00:00:0b" }
      eth1: { addresses: [10.3.0.1/24] }
links:
  - [host:veth-a, ns-test:veth-b]
  - [ns-test:eth1, brx]
`;

  test('up, ping both ways, read back, down restores the sysctl and leaves nothing', async () => {
    const before = await snapshot();
    const fwd = await readSysctl(runner, null, 'net.ipv4.conf.all.forwarding');
    const m = await model('hostside', yaml);
    await up(runner, m);
    try {
      expect(await readSysctl(runner, null, 'net.ipv4.conf.all.forwarding')).toBe('1');
      const root = await readLinks(runner, null);
      expect(byName(root, 'veth-a')).toMatchObject({ ifalias: 'nslab:hostside' });
      expect(byName(root, 'brx')).toMatchObject({ mtu: 1400, linkinfo: { info_kind: 'bridge', info_data: expect.objectContaining({ stp_state: 0 }) } });
      // STP on: ports would wait the forward delay (15 s) before forwarding, so bry has none.
      expect(byName(root, 'bry')).toMatchObject({ linkinfo: { info_kind: 'bridge', info_data: expect.objectContaining({ stp_state: 1 }) } });
      expect(byName(root, 'ns-test-eth1')).toMatchObject({ master: 'brx', mtu: 1400 });
      expect(byName(await readLinks(runner, 'ns-test'), 'veth-b')).toMatchObject({ address: '02:00:00:00:00:0b' });
      expect(await ping('ns-test', '10.1.0.1')).toBe(true);
      expect(await ping('ns-test', '10.3.0.254')).toBe(true);
      const res = await runner.run({ argv: ['ping', '-c', '1', '-W', '1', '10.2.0.1'] }, { check: false });
      expect(res.exitCode).toBe(0);
    } finally {
      await down(runner, m);
    }
    expect(await readSysctl(runner, null, 'net.ipv4.conf.all.forwarding')).toBe(fwd);
    expect(await snapshot()).toEqual(before);
  });

  test('down leaves alone a same-named netns and link that nslab did not make', async () => {
    await runner.run({ argv: ['ip', 'netns', 'add', 'ns-test'] });
    await runner.run({ argv: ['ip', 'link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-z'] });
    await runner.run({ argv: ['ip', 'link', 'add', 'eth9', 'type', 'veth', 'peer', 'name', 'eth8'], netns: 'ns-test' });
    try {
      const rep = await down(runner, await model('hostside', yaml));
      expect(rep.skipped).toEqual(expect.arrayContaining(['link veth-a (not made by nslab)', 'netns:ns-test (not made by nslab)']));
      expect(await listNetns(runner)).toContain('ns-test');
      expect(byName(await readLinks(runner, null), 'veth-a')).toBeDefined();
    } finally {
      await runner.run({ argv: ['ip', 'link', 'del', 'veth-a'] });
      await runner.run({ argv: ['ip', 'netns', 'del', 'ns-test'] });
    }
  });

  test('down of a chain proves its netns by what up recorded, without entering them; one deleted and made again by someone else (same name, maybe the same inode) is left alone', async () => {
    const before = await snapshot();
    const m = await loadTopology(example('chain'));
    await up(runner, m);
    // Someone else deletes b and makes a netns b of their own: the kernel is free to give it b's inode number.
    await runner.run({ argv: ['ip', 'netns', 'del', 'b'] });
    await runner.run({ argv: ['ip', 'netns', 'add', 'b'] });
    // The netns down enters (a command run in one): only b, whose identity is not the one up recorded.
    const entered: string[] = [];
    const counting: Runner = {
      run: (cmd, o) => {
        if (cmd.netns) entered.push(cmd.netns);
        return runner.run(cmd, o);
      },
      batch: (tool, netns, lines, o) => {
        if (netns) entered.push(netns);
        return runner.batch(tool, netns, lines, o);
      },
      batchEach: (jobs) => runner.batchEach(jobs),
    };
    try {
      const rep = await down(counting, m);
      expect(entered).toEqual(['b']);
      expect(rep.skipped).toEqual(['netns:b (not made by nslab)']);
      expect(await listNetns(runner)).toEqual(expect.arrayContaining(['b']));
      expect(await listNetns(runner)).not.toEqual(expect.arrayContaining(['a']));
    } finally {
      await runner.run({ argv: ['ip', 'netns', 'del', 'b'] });
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe('nslab gen: the scale shapes, small', () => {
  test('a tree (core bridge, leaves joined to it by veths) and a chain come up, verify clean, every pair answers as expected, and go', async () => {
    const before = await snapshot();
    for (const yaml of [genTopology({ kind: 'tree', nodes: 7, fanout: 3, name: 'gt' }), genTopology({ kind: 'chain', nodes: 4, name: 'gc' })]) {
      const m = await model('gen', yaml);
      await up(runner, m);
      try {
        // The leaf-core veths have both ends here: ip names their peer instead of giving its ifindex.
        expect((await verify(runner, m)).mismatches.map((x) => x.message)).toEqual([]);
        const rep = await pingall(runner, m);
        expect(rep.differences).toEqual([]);
        expect(rep.results.filter((x) => x.reached).length).toBeGreaterThan(0);
      } finally {
        await down(runner, m);
      }
    }
    expect(await snapshot()).toEqual(before);
  });
});

