// The CLI as a user runs it: exit codes, one-line errors that change nothing, plan replayed by hand, doctor.
import { execa } from 'execa';
import { join } from 'node:path';
import { assertSandbox, ping, snapshot } from '../helpers/kernel.js';
import { example, topoFile } from '../helpers/topo.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
const nslab = (...args: string[]) => execa('node', [CLI, ...args], { reject: false });

beforeAll(assertSandbox);

test('up, ping, down through the CLI; down twice is fine', async () => {
  const before = await snapshot();
  const upRes = await nslab('up', example('star'));
  expect(upRes.exitCode).toBe(0);
  expect(upRes.stdout).toMatch(/^up star: 34 steps in [\d.]+ s$/);
  expect(await ping('h1', '10.0.0.3')).toBe(true);
  for (let i = 0; i < 2; i++) {
    const d = await nslab('down', example('star'), '--json');
    expect(d.exitCode).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ ok: true, topology: 'star' });
  }
  expect(await snapshot()).toEqual(before);
});

test('the script `nslab plan` prints, run by sh, builds what `nslab up` builds', async () => {
  const before = await snapshot();
  await nslab('up', example('chain'));
  const byUp = await snapshot();
  await nslab('down', example('chain'));
  const script = (await nslab('plan', example('chain'))).stdout;
  const sh = await execa('sh', ['-c', script], { reject: false });
  expect(sh.stderr).toBe('');
  expect(sh.exitCode).toBe(0);
  expect(await snapshot()).toEqual(byUp);
  expect(await ping('a', '10.0.2.1')).toBe(true);
  // down finds the hand-built objects by their marks
  expect((await nslab('down', example('chain'))).exitCode).toBe(0);
  expect(await snapshot()).toEqual(before);
});

test.each([
  ['an unknown key', 'nodes:\n  h1: { interfacez: {} }\n', /^nslab: \S+bad\.yaml:2: nodes\.h1\.interfacez: unknown key "interfacez"$/],
  ['an address', 'nodes:\n  h1:\n    interfaces:\n      eth0: { addresses: [10.0.0.1/33] }\nlinks:\n  - [h1:eth0, h1:eth1]\n', /^nslab: \S+bad\.yaml:4: nodes\.h1\.interfaces\.eth0\.addresses\[0\]: expected an address with prefix length such as 10\.0\.0\.1\/24 or fd00::1\/64, got "10\.0\.0\.1\/33"$/],
  ['a long interface name', 'nodes:\n  h1: {}\n  h2: {}\nlinks:\n  - [h1:eth0-is-far-too-long, h2:eth0]\n', /^nslab: \S+bad\.yaml:5: links\[0\]\[0\]: interface name "eth0-is-far-too-long" is 20 bytes long; an interface name has at most 15 \(IFNAMSIZ\)$/],
])('bad input (%s): one line on stderr, exit 2, nothing changed', async (_w, yaml, re) => {
  const before = await snapshot();
  const file = topoFile('bad', yaml);
  for (const cmd of ['up', 'plan', 'down']) {
    const res = await nslab(cmd, file);
    expect(res.exitCode).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr.trim()).toMatch(re);
  }
  expect(await snapshot()).toEqual(before);
});

test('a missing file and a missing argument are one-line errors with exit 2', async () => {
  const a = await nslab('up', '/nonexistent/topo.yaml');
  expect(a.exitCode).toBe(2);
  expect(a.stderr.trim()).toBe('nslab: cannot read /nonexistent/topo.yaml: no such file');
  // Without FILE: up's usage and examples, then the one line naming what is missing (issue 20).
  const b = await nslab('up');
  expect(b.exitCode).toBe(2);
  expect(b.stderr).toContain('Examples:');
  expect(b.stderr.trim().split('\n').pop()).toBe('nslab: up needs FILE (usage above)');
});

test('a failed up names the step, undoes what it did and exits 1', async () => {
  const before = await snapshot();
  const res = await nslab('up', example('star'), '--fault-at', '20');
  expect(res.exitCode).toBe(1);
  expect(res.stderr).toMatch(/^nslab: step 21\/34 "set h1:lo up" failed: ip -n h1 link set dev nlfault20 up: Cannot find device "nlfault20"\n  hint: every step that had been applied \(\d+\) was undone$/);
  expect(await snapshot()).toEqual(before);
});

test('--dry-run prints the commands and changes nothing', async () => {
  const before = await snapshot();
  const res = await nslab('up', example('star'), '--dry-run');
  expect(res.exitCode).toBe(0);
  expect(res.stdout).toContain('ip link add h1-eth0 type veth peer name eth0 netns h1\n');
  expect(await snapshot()).toEqual(before);
});

test('doctor reports tools and kernel link types as the kernel answers them', async () => {
  const res = await nslab('doctor', '--json');
  const checks = JSON.parse(res.stdout) as Array<{ name: string; ok: boolean; detail: string }>;
  const get = (n: string) => checks.find((c) => c.name === n)!;
  expect(get('iproute2 (ip)').ok).toBe(true);
  expect(get('kernel: veth').ok).toBe(true);
  expect(get('kernel: bridge').ok).toBe(true);
  expect(get('kernel: macvlan (on a veth parent)').ok).toBe(true);
  // On this machine's kernel: no 802.1q, no dummy; the answer is the kernel's own.
  const vlan = get('kernel: 802.1q vlan');
  if (!vlan.ok) expect(vlan.detail).toMatch(/Unknown device type|not supported|Operation not supported/i);
  expect(get('iptables').detail).toMatch(/nf_tables|legacy|not found/);
  expect(res.exitCode).toBe(0);
});

test('sandbox runs a command in a fresh netns with only lo, and passes its exit code', async () => {
  const res = await execa('node', [CLI, 'sandbox', '--', 'sh', '-c', 'ip -o link | wc -l; ip netns list | wc -l; exit 7'], { reject: false });
  expect(res.stdout.split('\n')).toEqual(['1', '0']);
  expect(res.exitCode).toBe(7);
});
