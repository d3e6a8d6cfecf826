// The fault suite: a command killed with SIGKILL at every step in turn (NSLAB_KILL_AT, counted over
// the whole command), and at random moments with its whole process group, then `nslab clean`; the
// sandbox must read byte for byte as before: links, addresses, routes, netns, iptables, OVS, sysctls,
// processes and nslab's files. Runs in a sandbox of its own (npm run test:faults).
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertSandbox } from '../helpers/kernel.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NSLAB = join(root, 'bin', 'nslab');
const TOPO = join(root, 'test', 'faults', 'topology.yaml');

interface Figures {
  scenario: string;
  killPoints: number;
  randomKills: number;
  leftovers: number;
  seconds: number;
}
const figures: Figures[] = [];

beforeAll(assertSandbox);
afterAll(() => {
  const total = figures.reduce((a, f) => ({ k: a.k + f.killPoints, r: a.r + f.randomKills, l: a.l + f.leftovers }), { k: 0, r: 0, l: 0 });
  const lines = figures.map((f) => `  ${f.scenario.padEnd(34)} kill points ${String(f.killPoints).padStart(3)}, random kills ${f.randomKills}, leftovers ${f.leftovers}, ${f.seconds.toFixed(1)} s`);
  process.stderr.write(`\nfault suite:\n${lines.join('\n')}\n  total: ${total.k} kill points and ${total.r} random kills tried, leftovers found: ${total.l}\n`);
});

/** Runs nslab; `killAt` kills it (SIGKILL) once that many steps are applied. */
function nslab(args: string[], killAt?: number): { code: number | null; signal: string | null; out: string } {
  const env = { ...process.env, ...(killAt !== undefined ? { NSLAB_KILL_AT: String(killAt) } : {}) };
  const res = spawnSync(NSLAB, args, { env, encoding: 'utf8', timeout: 120_000 });
  return { code: res.status, signal: res.signal, out: `${res.stdout}${res.stderr}` };
}

function sh(cmd: string): string {
  return spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;
}

/**
 * Everything a command may leave, as text: `ip -d -o link`, addresses, routes, netns, `iptables-save`
 * without counters and dates, OVS bridges (when an ovsdb answers), sysctls, processes (by name, the
 * test runner's own left out) and the files under /run/nslab, /etc/netns and /dev/shm.
 */
function state(): string {
  // One shell for all the reads: ~10 processes of its own instead of 10 more shells.
  const text = sh(`
ip -d -o link show; echo ---
ip -o addr show; echo ---
ip route show table all; ip -6 route show table all; echo ---
ip netns list; echo ---
iptables-save | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'; echo ---
test -S /run/nslab/ovs/run/db.sock && OVS_RUNDIR=/run/nslab/ovs/run ovs-vsctl --timeout=5 list-br; echo ---
sysctl -a 2>/dev/null | grep -E '^net\.(ipv4\.(ip_forward|conf\.)|ipv6\.conf\.all\.)' | grep -v stable_secret; echo ---
find /run/nslab /etc/netns /dev/shm -mindepth 1 2>/dev/null | sort; echo ---
ps -eo comm=`);
  const [head, procs] = [text.slice(0, text.lastIndexOf('---\n') + 4), text.slice(text.lastIndexOf('---\n') + 4)];
  const names = procs
    .split('\n')
    .filter((p) => p && !/^(node|npm|npm exec|jest|sh|ps|unshare|nslab-sandbox|MainThread)$/.test(p))
    .sort()
    .join(' ');
  return `${head}processes: ${names}`;
}

function diff(a: string, b: string): string {
  const al = new Set(a.split('\n'));
  const bl = new Set(b.split('\n'));
  return [...[...al].filter((l) => !bl.has(l)).map((l) => `- ${l}`), ...[...bl].filter((l) => !al.has(l)).map((l) => `+ ${l}`)].slice(0, 12).join('\n');
}

/** Waits until no netns is being torn down: deleted netns free their veths a moment later. */
async function settle(base: string): Promise<string> {
  let now = state();
  for (let i = 0; i < 50 && now !== base; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = state();
  }
  return now;
}

/**
 * Kills `args` at every step k = 0, 1, … until it finishes by itself, and at `delays` ms with its
 * process group; after each, `nslab clean` must bring the sandbox back to what it was. `setup` runs
 * before each try (its own objects are cleaned too: clean removes all that nslab owns).
 */
async function scenario(name: string, args: string[], o: { setup?: string[][]; delays?: number[]; maxK?: number } = {}): Promise<void> {
  const t0 = Date.now();
  const base = state();
  const left: string[] = [];
  const prepare = () => {
    for (const s of o.setup ?? []) {
      const res = nslab(s);
      if (res.code !== 0) throw new Error(`setup nslab ${s.join(' ')}: ${res.out}`);
    }
  };
  const cleanAndCompare = async (what: string) => {
    const c = nslab(['clean']);
    if (c.code !== 0) left.push(`${what}: nslab clean exit ${c.code}: ${c.out.trim().split('\n').slice(-3).join(' | ')}`);
    const now = await settle(base);
    if (now !== base) left.push(`${what}:\n${diff(base, now)}`);
  };
  let k = 0;
  for (; k < (o.maxK ?? 400); k++) {
    prepare();
    const res = nslab(args, k);
    const killed = res.signal === 'SIGKILL';
    if (!killed && res.code !== 0) left.push(`k=${k}: exit ${res.code} without a kill: ${res.out.trim().split('\n').slice(-2).join(' | ')}`);
    await cleanAndCompare(`k=${k}${killed ? '' : ' (finished)'}`);
    if (!killed) break;
  }
  for (const ms of o.delays ?? []) {
    prepare();
    const child = spawn(NSLAB, args, { detached: true, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, ms));
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* finished first */
    }
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    await cleanAndCompare(`kill -9 of the group at ${ms} ms`);
  }
  figures.push({ scenario: name, killPoints: k + 1, randomKills: o.delays?.length ?? 0, leftovers: left.length, seconds: (Date.now() - t0) / 1000 });
  expect(left).toEqual([]);
}

const delays = (n: number, max: number) => Array.from({ length: n }, (_, i) => Math.round(20 + ((i + 1) / n) * (max - 20) * (0.7 + 0.3 * Math.random())));

test('up of a topology with a bridge, host addresses, routes and sysctls', async () => {
  await scenario('up (bridge, routes, sysctls)', ['up', TOPO], { delays: delays(4, 600) });
});

test('network create', async () => {
  await scenario('network create', ['network', 'create', 'fnet', '--subnet', '10.67.0.0/24'], { delays: delays(3, 500) });
});

test('node run -p with a process', async () => {
  await scenario('node run -p 8080:80', ['node', 'run', 'web', '--net', 'fnet', '-p', '8080:80', '--', 'busybox', 'httpd', '-f', '-p', '80'], {
    setup: [['network', 'create', 'fnet', '--subnet', '10.67.0.0/24']],
    delays: delays(3, 800),
  });
});

test.each(['03', '09', '14'])('lab up %s', async (id) => {
  // --no-check: the kill points are in the building; the checks only wait for pings.
  await scenario(`lab up ${id}`, ['lab', 'up', id, '--no-check'], { delays: delays(3, 1500) });
});

test.each(['03', '09'])('100 cycles of lab up / lab down %s: no "File exists", nothing left', async (id) => {
  const t0 = Date.now();
  const base = state();
  const problems: string[] = [];
  const cycles = Number(process.env.NSLAB_FAULT_CYCLES ?? 100);
  for (let i = 0; i < cycles; i++) {
    for (const cmd of [['lab', 'up', id, '--no-check'], ['lab', 'down', id]]) {
      const res = nslab(cmd);
      if (res.code !== 0 || /File exists/.test(res.out)) problems.push(`cycle ${i + 1}: nslab ${cmd.join(' ')}: exit ${res.code}: ${res.out.trim().split('\n').slice(-2).join(' | ')}`);
    }
    // Every tenth cycle, and the last, the sandbox must read as before (down is synchronous: no settle).
    if ((i + 1) % 10 === 0 || i === cycles - 1) {
      const now = state();
      if (now !== base) problems.push(`after cycle ${i + 1}:\n${diff(base, now)}`);
    }
    if (problems.length > 3) break;
  }
  figures.push({ scenario: `${cycles} x lab up/down ${id}`, killPoints: 0, randomKills: 0, leftovers: problems.length, seconds: (Date.now() - t0) / 1000 });
  expect(problems).toEqual([]);
});
