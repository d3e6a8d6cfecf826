// `npm run bench:attach -- --guests N`: N attaches to one bridge, in a sandbox, two ways:
// N `nslab pipework` processes (start-up included, as pipework is called), and one `nslab attach -f`.
import { execa } from 'execa';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSandbox } from '../exec/sandbox.js';

/** The launcher users call (bin/nslab): `nslab pipework` starts from the build's V8 startup snapshot. */
const NSLAB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'nslab');
/** pipework's whole attach, measured on this machine by the author (ms). */
const PIPEWORK_MS = '65-73';

function guestsArg(): number {
  const a = process.argv.slice(2);
  const i = a.indexOf('--guests');
  if (i < 0) return 50;
  const v = Number(a[i + 1]);
  if (!Number.isInteger(v) || v < 1 || v > 1000) {
    process.stderr.write(`bench: --guests ${JSON.stringify(a[i + 1])}: expected a whole number from 1 to 1000\n`);
    process.exit(2);
  }
  return v;
}

const addr = (i: number) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}/16`;

async function setup(n: number): Promise<void> {
  await execa('ip', ['-batch', '-'], { input: Array.from({ length: n }, (_, i) => `netns add g${i + 1}`).join('\n') + '\n' });
}

async function teardown(n: number): Promise<void> {
  await execa('ip', ['-batch', '-'], { input: Array.from({ length: n }, (_, i) => `netns del g${i + 1}`).join('\n') + '\n' });
  while ((await execa('ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout.trim()) await new Promise((r) => setTimeout(r, 20));
  await execa('ip', ['link', 'del', 'dev', 'br0'], { reject: false });
  await new Promise((r) => setTimeout(r, 500));
}

/**
 * PIPEWORK=/path/to/pipework (jpetazzo/pipework's script, not shipped with nslab): times it on the same
 * kind of guests. pipework finds a guest through `docker inspect` (cgroup v2 here), so each guest is a
 * `sleep` in its netns and a `docker` stand-in on PATH answers inspect from a table (its own cost, a
 * shell starting, is counted in pipework's: the real docker CLI would cost far more).
 * @returns milliseconds per pipework attach
 */
async function benchPipework(script: string, n: number, stubArping: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bench-pw-'));
  await setup(n);
  const sleepers = Array.from({ length: n }, (_, i) => spawn('ip', ['netns', 'exec', `g${i + 1}`, 'sleep', '600'], { stdio: 'ignore' }));
  try {
    await new Promise((r) => setTimeout(r, 300)); // ip netns exec, then sleep: the PID's netns is g's a moment later
    writeFileSync(join(dir, 'pids'), sleepers.map((c, i) => `g${i + 1} ${c.pid}`).join('\n') + '\n');
    // `docker inspect --format=FMT NAME`: the PID for .State.Pid, the name otherwise.
    writeFileSync(join(dir, 'docker'), `#!/bin/sh\nfmt=$2; name=$3\npid=$(grep "^$name " "${dir}/pids" | cut -d' ' -f2)\n[ -n "$pid" ] || exit 1\ncase "$fmt" in *Pid*) echo "$pid" ;; *Name*) echo "/$name" ;; *) echo "$name" ;; esac\n`, { mode: 0o755 });
    // pipework's gratuitous ARP is `arping -c 1 -A`, which waits a second before it exits; stubbed, the
    // rest of pipework's cost shows (nslab has the kernel send it: arp_notify, no wait).
    if (stubArping) writeFileSync(join(dir, 'arping'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}` };
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      const res = spawnSync(script, ['br0', `g${i + 1}`, addr(i)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      if (res.status !== 0) throw new Error(`pipework br0 g${i + 1}: ${String(res.stderr).trim()}`);
    }
    return (performance.now() - t) / n;
  } finally {
    for (const c of sleepers) c.kill();
    await teardown(n);
    // pipework links /var/run/netns/PID for each guest
    for (const c of sleepers) rmSync(`/var/run/netns/${c.pid}`, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const n = guestsArg();
  await ensureSandbox();
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bench-'));
  const file = join(dir, 'guests.yaml');
  writeFileSync(file, Array.from({ length: n }, (_, i) => `- { guest: g${i + 1}, to: br0, ip: ${addr(i)} }`).join('\n') + '\n');

  // attach -f first, on a fresh machine: right after a teardown the kernel is still freeing the last
  // round's netns (a workqueue that takes the rtnl lock), which slowed a 0.25 s batch by a third.
  await setup(n);
  let t = performance.now();
  await execa(NSLAB, ['attach', '-f', file]);
  const batch = performance.now() - t;
  const ok2 = (await execa('ip', ['netns', 'exec', 'g1', 'ping', '-c1', '-W1', addr(n - 1).split('/')[0]!], { reject: false })).exitCode === 0;
  await teardown(n);

  await setup(n);
  t = performance.now();
  // spawnSync: timed as a shell runs it, without this process's own per-spawn overhead.
  for (let i = 0; i < n; i++) {
    const res = spawnSync(NSLAB, ['pipework', 'br0', `g${i + 1}`, addr(i)], { stdio: 'ignore' });
    if (res.status !== 0) throw new Error(`nslab pipework br0 g${i + 1} failed (exit ${res.status})`);
  }
  const perCall = (performance.now() - t) / n;
  const ok1 = (await execa('ip', ['netns', 'exec', 'g1', 'ping', '-c1', '-W1', addr(n - 1).split('/')[0]!], { reject: false })).exitCode === 0;
  await teardown(n);
  rmSync(dir, { recursive: true, force: true });

  const time = (env: NodeJS.ProcessEnv) => {
    const t1 = performance.now();
    for (let k = 0; k < 10; k++) spawnSync('node', ['-e', '0'], { env, stdio: 'ignore' });
    return (performance.now() - t1) / 10;
  };
  const bare = time(process.env);
  // bin/nslab runs node with NODE_EXTRA_CA_CERTS empty (Node parses that file at every start).
  const bareLauncher = time({ ...process.env, NODE_EXTRA_CA_CERTS: '' });
  const real = process.env.PIPEWORK ? await benchPipework(process.env.PIPEWORK, n, false) : null;
  const noArping = process.env.PIPEWORK ? await benchPipework(process.env.PIPEWORK, n, true) : null;
  const { default: Table } = await import('cli-table3');
  const tb = new Table({ head: ['way', `${n} attaches (s)`, 'per attach (ms)', 'vs one nslab pipework'], style: { head: [], border: [] } });
  tb.push([`${n} x nslab pipework (one process each)`, ((perCall * n) / 1000).toFixed(2), perCall.toFixed(0), '1.0']);
  const [lo, hi] = PIPEWORK_MS.split('-').map(Number) as [number, number];
  tb.push(['nslab attach -f FILE (one batch)', (batch / 1000).toFixed(2), (batch / n).toFixed(1), `${(perCall / (batch / n)).toFixed(1)}x faster (${(lo / (batch / n)).toFixed(1)}-${(hi / (batch / n)).toFixed(1)}x pipework's ${PIPEWORK_MS} ms)`]);
  const vs = (ms: number) => `${(ms / perCall).toFixed(2)}x the time`;
  if (real) tb.push([`${n} x pipework, measured now`, ((real * n) / 1000).toFixed(2), real.toFixed(0), vs(real)]);
  if (noArping) tb.push([`${n} x pipework, its arping stubbed out`, ((noArping * n) / 1000).toFixed(2), noArping.toFixed(0), vs(noArping)]);
  else tb.push(['pipework (reference, measured by the issue author; PIPEWORK=path measures it here)', '-', PIPEWORK_MS, '-']);
  tb.push(['bare `node -e 0` now', '-', bare.toFixed(0), '-']);
  tb.push(['bare `node -e 0` as bin/nslab starts node (floor)', '-', bareLauncher.toFixed(0), '-']);
  process.stdout.write(`${n} guests (named netns) onto bridge br0; pings across: ${ok1 && ok2 ? 'ok' : 'FAILED'}\n${tb.toString()}\n`);
  if (!ok1 || !ok2) process.exitCode = 1;
}

await main();
