// plan and apply against the recording runner: argv lists, batching, rollback order. No root needed.
import { applySteps } from '../../src/engine/apply.js';
import { planUp } from '../../src/engine/plan.js';
import { down, plan, up } from '../../src/engine/topology.js';
import { RecordingRunner } from '../../src/exec/recorder.js';
import { NslabError } from '../../src/errors.js';
import { ipOp, opArgv, type Step } from '../../src/kernel/step.js';
import { writeSysctlOp } from '../../src/kernel/sysctl.js';
import { jest } from '@jest/globals';
import { example, model } from '../helpers/topo.js';
import { loadTopology } from '../../src/engine/topology.js';

describe('plan', () => {
  test('a star: netns, bridge, veths straight into their netns, ports, addresses, routes', async () => {
    const m = await loadTopology(example('star'));
    const argv = planUp(m).map((s) => opArgv(s.do).join(' '));
    expect(argv.slice(0, 3)).toEqual(['ip netns add h1', 'ip netns add h2', 'ip netns add h3']);
    expect(argv).toContain('ip link add name br0 type bridge');
    expect(argv).toContain('ip link add h1-eth0 type veth peer name eth0 netns h1');
    expect(argv).toContain('ip link set dev h1-eth0 master br0');
    expect(argv).toContain('ip link set dev br0 alias nslab:star');
    expect(argv).toContain('ip -n h1 addr add 10.0.0.1/24 dev eth0');
    expect(argv).toContain('ip -n h3 addr add fd00::3/64 dev eth0 nodad');
    expect(argv).toContain('ip -n h1 route add default via 10.0.0.254');
    expect(argv).toContain('ip -n h1 link set dev lo alias nslab:star');
    // the address comes before the route that needs it
    expect(argv.indexOf('ip -n h1 addr add 10.0.0.1/24 dev eth0')).toBeLessThan(argv.indexOf('ip -n h1 route add default via 10.0.0.254'));
  });

  test('every step has an undo, except marks that go with their object', async () => {
    const m = await loadTopology(example('chain'));
    for (const s of planUp(m)) {
      if (/^mark /.test(s.describe)) expect(s.undo).toEqual([]);
      else expect(s.undo.length + (s.capture ? 1 : 0)).toBeGreaterThan(0);
    }
  });

  test('the chain: a veth between two nodes, a reject route, ip_forward in the router', async () => {
    const m = await loadTopology(example('chain'));
    const argv = planUp(m).map((s) => opArgv(s.do).join(' '));
    expect(argv).toContain('ip link add eth0 netns a type veth peer name eth0 netns r');
    expect(argv).toContain('ip -n a route add unreachable 10.9.0.0/16');
    expect(argv).toContain('ip netns exec r sysctl -q -w net.ipv4.ip_forward=1');
  });

  test('brctl bridges use brctl addbr / addif, and STP and MTU follow', async () => {
    const m = await model('b', `bridges:\n  br0: { driver: brctl, stp: true, mtu: 1400 }\nnodes:\n  n1: {}\nlinks:\n  - [n1:eth0, br0]\n`);
    const argv = planUp(m).map((s) => opArgv(s.do).join(' '));
    expect(argv).toEqual(expect.arrayContaining(['brctl addbr br0', 'brctl stp br0 on', 'ip link set dev br0 mtu 1400', 'brctl addif br0 n1-eth0']));
    expect(argv).toContain('ip link add n1-eth0 mtu 1400 type veth peer name eth0 netns n1 mtu 1400');
  });

  test('a host end (the current namespace) and MAC/MTU are set at creation', async () => {
    const m = await model('l1', `host:\n  interfaces:\n    veth-a: { addresses: [10.0.0.1/24] }\nnodes:\n  ns-test:\n    interfaces:\n      veth-b: { addresses: [10.0.0.2/24], mac: "02:00:00:00:00:02", mtu: 1400 }\nlinks:\n  - [host:veth-a, ns-test:veth-b]\n`);
    const argv = planUp(m).map((s) => opArgv(s.do).join(' '));
    expect(argv).toContain('ip link add veth-a mtu 1400 type veth peer name veth-b netns ns-test mtu 1400 address 02:00:00:00:00:02');
    expect(argv).toContain('ip addr add 10.0.0.1/24 dev veth-a');
    expect(argv).toContain('ip link set dev veth-a alias nslab:l1');
  });
});

describe('apply (recording runner)', () => {
  test('batches: one batch of netns adds, one for the current netns, one per node', async () => {
    const m = await loadTopology(example('star'));
    const r = new RecordingRunner();
    await up(r, m);
    const batches = r.calls.filter((c) => c.type === 'batch');
    expect(batches).toHaveLength(1 + 1 + 3);
    expect(batches[0]).toMatchObject({ netns: null, lines: [['netns', 'add', 'h1'], ['netns', 'add', 'h2'], ['netns', 'add', 'h3']] });
    expect(batches.slice(2).map((b) => (b.type === 'batch' ? b.netns : ''))).toEqual(['h1', 'h2', 'h3']);
  });

  test('a failure rolls back exactly what was applied, in reverse order, and names the step', async () => {
    const m = await loadTopology(example('star'));
    const r = new RecordingRunner((argv) => (argv.join(' ') === 'ip link add h2-eth0 type veth peer name eth0 netns h2' ? { error: 'RTNETLINK answers: File exists' } : undefined));
    const err = await up(r, m).catch((e: unknown) => e as NslabError);
    expect(err).toBeInstanceOf(NslabError);
    expect((err as NslabError).code).toBe('APPLY_FAILED');
    expect((err as NslabError).message).toMatch(/step 11\/34 "add veth h2-eth0 <-> h2:eth0" failed: ip link add h2-eth0 .*: RTNETLINK answers: File exists/);
    const undo = r.calls.filter((c) => c.type === 'batch' && c.force).flatMap((c) => (c.type === 'batch' ? c.lines.map((l) => l.join(' ')) : []));
    expect(undo).toEqual([
      'link set dev h1-eth0 nomaster',
      'link del dev h1-eth0',
      'link set dev br0 down',
      'addr del 10.0.0.254/24 dev br0',
      'link del dev br0',
      'netns del h3',
      'netns del h2',
      'netns del h1',
    ]);
  });

  test('fault injection replaces step k by a command the kernel refuses', async () => {
    const m = await loadTopology(example('chain'));
    const r = new RecordingRunner((argv) => (argv.includes('nlfault4') ? { error: 'Cannot find device "nlfault4"' } : undefined));
    await expect(applySteps(r, planUp(m), { faultAt: 4 })).rejects.toThrow(/step 5\/23 .*nlfault4/);
  });

  test('a sysctl is read before it is set, and its undo restores the old value', async () => {
    const m = await model('s', `host:\n  sysctls: { net.ipv4.ip_forward: 1 }\n`);
    const r = new RecordingRunner((argv) => (argv[0] === 'sysctl' && argv[1] === '-n' ? { stdout: '0\n' } : undefined));
    const { undo } = await applySteps(r, planUp(m));
    expect(undo.map(opArgv)).toEqual([['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']]);
  });
});

describe('apply: sysctl writes ride in the ip batch that follows them in their netns', () => {
  const g = (ns: string): Step[] => [
    { describe: `add veth ${ns}`, do: ipOp(null, ['link', 'add', `${ns}-e`, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns]), undo: [ipOp(null, ['link', 'del', 'dev', `${ns}-e`])], phase: 1 },
    { describe: `arp_notify ${ns}`, do: writeSysctlOp(ns, 'net/ipv4/conf/eth1/arp_notify', '1'), undo: [], phase: 2 },
    { describe: `addr ${ns}`, do: ipOp(ns, ['addr', 'add', '10.0.0.1/24', 'dev', 'eth1']), undo: [], phase: 2 },
  ];

  test('many netns: one batchEach call, each job with its sysctl, printed as sysctl -w then ip', async () => {
    const r = new RecordingRunner();
    const each = jest.spyOn(r, 'batchEach');
    await applySteps(r, [...g('a'), ...g('b')].sort((x, y) => x.phase! - y.phase!));
    expect(each).toHaveBeenCalledTimes(1);
    expect(each.mock.calls[0]![0]).toEqual([
      { netns: 'a', lines: [['addr', 'add', '10.0.0.1/24', 'dev', 'eth1']], sysctls: [{ key: 'net/ipv4/conf/eth1/arp_notify', value: '1' }] },
      { netns: 'b', lines: [['addr', 'add', '10.0.0.1/24', 'dev', 'eth1']], sysctls: [{ key: 'net/ipv4/conf/eth1/arp_notify', value: '1' }] },
    ]);
    expect(r.argvs().map((a) => a.join(' '))).toContain('ip netns exec a sysctl -q -w net/ipv4/conf/eth1/arp_notify=1');
  });

  test('a batch that cannot start (its netns gone) fails its first step and rolls back the rest', async () => {
    class Gone extends RecordingRunner {
      override async batch(...args: Parameters<RecordingRunner['batch']>) {
        if (args[1] === 'a') throw new NslabError('COMMAND_FAILED', 'nsenter: cannot open /run/netns/a: No such file or directory');
        return super.batch(...args);
      }
    }
    const r = new Gone();
    const err = (await applySteps(r, g('a')).then(() => null, (e: unknown) => e)) as NslabError;
    expect(err).toBeInstanceOf(NslabError);
    expect(err.message).toMatch(/^step 2\/3 "arp_notify a" failed: .*cannot open \/run\/netns\/a/);
    const undone = r.calls.filter((c) => c.type === 'batch' && c.force).flatMap((c) => (c.type === 'batch' ? c.lines.map((l) => l.join(' ')) : []));
    expect(undone).toEqual(['link del dev a-e']);
  });

  test('a sysctl that cannot be written fails its own step and rolls back the rest', async () => {
    const r = new RecordingRunner((argv, netns) => (argv[0] === 'sysctl' && netns === 'b' ? { error: 'cannot set sysctl net/ipv4/conf/eth1/arp_notify: no writable /proc/sys/net/ipv4/conf/eth1/arp_notify in this netns' } : undefined));
    const err = (await applySteps(r, [...g('a'), ...g('b')].sort((x, y) => x.phase! - y.phase!)).then(() => null, (e: unknown) => e)) as NslabError;
    expect(err).toBeInstanceOf(NslabError);
    expect(err.message).toMatch(/^step 5\/6 "arp_notify b" failed: ip netns exec b sysctl -q -w net\/ipv4\/conf\/eth1\/arp_notify=1: cannot set sysctl/);
    const undone = r.calls.filter((c) => c.type === 'batch' && c.force).flatMap((c) => (c.type === 'batch' ? c.lines.map((l) => l.join(' ')) : []));
    expect(undone).toEqual(['link del dev b-e', 'link del dev a-e']);
  });
});

describe('down (recording runner)', () => {
  test('deletes only what carries the mark; objects inside our netns go with it', async () => {
    const m = await loadTopology(example('star'));
    const links = [
      { ifname: 'lo', ifalias: undefined },
      { ifname: 'br0', ifalias: 'nslab:star' },
      { ifname: 'h1-eth0', ifalias: 'nslab:star' },
      { ifname: 'h2-eth0', ifalias: 'someone-else' },
    ];
    const r = new RecordingRunner((argv, netns) => {
      if (argv.join(' ') === 'ip -j link show' && !netns) return { stdout: JSON.stringify(links) };
      if (argv.join(' ') === 'ip -j netns list') return { stdout: JSON.stringify([{ name: 'h1' }, { name: 'h2' }]) };
      if (argv.join(' ') === 'ip -j link show' && netns === 'h1') return { stdout: JSON.stringify([{ ifname: 'lo', ifalias: 'nslab:star' }, { ifname: 'eth0' }]) };
      if (argv.join(' ') === 'ip -j link show' && netns === 'h2') return { stdout: JSON.stringify([{ ifname: 'lo', ifalias: 'nslab:other' }, { ifname: 'eth0' }]) };
      return undefined;
    });
    const rep = await down(r, m);
    const lines = r.calls.filter((c) => c.type === 'batch').flatMap((c) => (c.type === 'batch' ? c.lines.map((l) => l.join(' ')) : []));
    // netns first: the kernel then removes their veths in one sweep (see deleteNetns)
    expect(lines).toEqual(['netns del h1', 'link del dev h1-eth0', 'link del dev br0']);
    expect(rep.skipped).toEqual(expect.arrayContaining(['link h2-eth0 (marked someone-else)', 'netns:h2 (marked nslab:other)']));
  });
});

describe('plan output', () => {
  test('the script is plain ip commands; --json lists steps with their undo', async () => {
    const p = await plan(await loadTopology(example('chain')));
    expect(p.script).toMatch(/^#!\/bin\/sh\nset -e\n/);
    expect(p.script).toContain('ip netns exec r sysctl -q -w net.ipv4.ip_forward=1\n');
    expect(p.script).not.toContain('sysctl -n');
    // The undo line names the file as given, never the literal FILE (issue 20).
    const named = await plan(await loadTopology(example('chain')), 'examples/chain.yaml');
    expect(named.script).toContain('# undo: nslab down examples/chain.yaml\n');
    expect((await plan(await loadTopology(example('chain')), 'my lab/chain.yaml')).script).toContain("# undo: nslab down 'my lab/chain.yaml'\n");
    expect(p.steps[0]).toEqual({ describe: 'add netns a', phase: 0, command: ['ip', 'netns', 'add', 'a'], undo: [['ip', 'netns', 'del', 'a']] });
  });
});
