// Never over-reach: unmarked look-alikes of what nslab makes (netns named like nodes, bridges named
// like its own, iptables rules in the same chains as its rules, an OVS port) survive down, clean,
// node rm, network rm and lab down, and a killed up whose bridge name was taken.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOvs, type Ovs } from '../helpers/daemons.js';
import { assertSandbox, netSnapshot, runner, waitLinksGone } from '../helpers/kernel.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NSLAB = join(root, 'bin', 'nslab');

function nslab(args: string[], env: Record<string, string> = {}): { code: number | null; signal: string | null; out: string } {
  const res = spawnSync(NSLAB, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, signal: res.signal, out: `${res.stdout}${res.stderr}` };
}

function sh(cmd: string): void {
  const res = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', env: process.env });
  if (res.status !== 0) throw new Error(`${cmd}: ${res.stderr}`);
}

let ovs: Ovs | null = null;
beforeAll(assertSandbox);
afterAll(async () => {
  sh('ip netns del a; ip netns del web; ip netns del c1; ip netns del g1; ip link del fbr0; ip link del nslab0; ip link del docker0; ip link del br0; ip link del h1-eth0; iptables -F FORWARD; iptables -t nat -F POSTROUTING; iptables -X NSLAB-FORWARD || true');
  sh("iptables-restore <<'EOF'\n*filter\nCOMMIT\nEOF\niptables-restore <<'EOF'\n*nat\nCOMMIT\nEOF");
  await ovs?.stop();
});

/** The look-alikes as the kernel reports them, and the OVS ports with their external-ids. */
async function lookalikes() {
  const ports = (await runner.run({ argv: ['ovs-vsctl', '--timeout=5', '--format=json', '--columns=name,external_ids', 'list', 'Interface'] })).stdout;
  return { ...(await netSnapshot()), ports };
}

test('unmarked look-alikes survive down, clean, node rm, network rm, lab down and a killed up', async () => {
  ovs = await startOvs();
  // Netns named like the fault topology's node, node run's node, lab 03's and lab 09's guests.
  sh('ip netns add a; ip netns add web; ip netns add c1; ip netns add g1');
  // Bridges named like a topology's, a network's and lab 03's; a veth named like star's host end.
  sh('ip link add fbr0 type bridge; ip link add nslab0 type bridge; ip link add docker0 type bridge; ip link add h1-eth0 type veth peer name h1-peer');
  // Rules in the chains nslab writes to, one of them exactly lab 03's (without nslab's comment).
  sh('iptables -A FORWARD -i docker0 -o docker0 -j ACCEPT; iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE; iptables -N NSLAB-FORWARD; iptables -A NSLAB-FORWARD -j RETURN');
  // An OVS bridge named like lab 09's, with a port and no nslab external-ids.
  sh('ovs-vsctl --timeout=5 add-br ovs-br0 -- set bridge ovs-br0 datapath_type=netdev -- add-port ovs-br0 h1-peer');
  const before = await lookalikes();

  const calls: Array<[string[], RegExp | null]> = [
    [['down', join(root, 'test', 'faults', 'topology.yaml')], null],
    [['clean'], null],
    [['clean', '--dry-run'], null],
    [['node', 'rm', 'web'], /not found/],
    [['network', 'rm', 'nslab0'], /not found/],
    [['lab', 'down', '03'], null],
    [['lab', 'down', '09'], null],
    [['detach', 'g1', 'eth1'], /nothing attached/],
  ];
  const problems: string[] = [];
  for (const [args, refused] of calls) {
    const res = nslab(args);
    if (refused ? !refused.test(res.out) : res.code !== 0 && !/still exist/.test(res.out)) problems.push(`nslab ${args.join(' ')}: exit ${res.code}: ${res.out.trim()}`);
    if (JSON.stringify(await lookalikes()) !== JSON.stringify(before)) problems.push(`nslab ${args.join(' ')} changed a look-alike`);
  }

  // A killed up: star's netns made (3 steps), then killed as its bridge phase starts; its bridge br0
  // was someone else's before it ran. clean removes the netns and leaves br0.
  sh('ip link add br0 type bridge');
  const withBr0 = await lookalikes();
  const killed = nslab(['up', join(root, 'examples', 'star.yaml')], { NSLAB_KILL_AT: '3' });
  expect(killed.signal).toBe('SIGKILL');
  const c = nslab(['clean']);
  expect(c.out).toMatch(/delete netns h1/);
  expect(c.out).toMatch(/left alone \(not nslab's\): link:-:br0/);
  await waitLinksGone((n) => /^h\d-eth0$/.test(n) && n !== 'h1-eth0');
  if (JSON.stringify(await lookalikes()) !== JSON.stringify(withBr0)) problems.push('clean after a killed up changed a look-alike');
  expect(problems).toEqual([]);
});
