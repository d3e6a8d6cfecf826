// `npm run bench -- [--nodes 100,1000] [--shapes star,chain] [--rounds 3]`: nslab against the physical
// floor of each command, measured side by side in one run, in a sandbox, in interleaved rounds.
// (`npm run bench -- cni`: the CNI plugin against the reference bridge plugin, bench/cni.ts.)
//   up      the CLI (bin/nslab, start-up included) against one Python process that makes the same
//           objects by setns + rtnetlink (scripts/bench-floor.py, python3-pyroute2): no process per netns
//   verify  against one `nsenter ip -j -d -batch` per netns (links and addresses) in a shell loop, a
//           lane per core (busybox's nsenter when installed), and one for the current namespace
//   down    against one `ip -batch` of `netns del`, then waiting for the kernel to sweep the veths the
//           current namespace held (star) and deleting the bridge
//   start   `bin/nslab --version` and `bin/nslab plan` of a 3-node file against node starting an empty
//           module as the launcher starts it
// A topology of more than 1023 nodes is a tree (`nslab gen tree`: a bridge holds 1023 ports).
// Prints min and median per way, their ratio (medians), per-node cost, peak RSS of the nslab processes
// and the machine's load; exits 1 when something is left behind in the sandbox.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSandbox } from '../exec/sandbox.js';
import { loadTopology } from '../engine/topology.js';
import { genTopology, type GenKind } from '../model/gen.js';
import type { Model } from '../model/types.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NSLAB = join(ROOT, 'bin', 'nslab');
const FLOOR = join(ROOT, 'scripts', 'bench-floor.py');
const PYTHON = '/usr/bin/python3';

interface Args {
  nodes: number[];
  shapes: GenKind[];
  rounds: number;
}

function args(): Args {
  const a = process.argv.slice(2);
  const get = (flag: string, def: string) => {
    const i = a.indexOf(flag);
    return i < 0 ? def : (a[i + 1] ?? '');
  };
  const fail = (msg: string): never => {
    process.stderr.write(`bench: ${msg}\n`);
    process.exit(2);
  };
  const nodes = get('--nodes', '100,1000').split(',').map((x) => (/^\d+$/.test(x) && Number(x) >= 2 && Number(x) <= 8000 ? Number(x) : fail(`--nodes ${JSON.stringify(x)}: expected whole numbers from 2 to 8000, comma-separated`)));
  const shapes = get('--shapes', 'star,chain').split(',').map((x) => (x === 'star' || x === 'chain' || x === 'tree' ? (x as GenKind) : fail(`--shapes ${JSON.stringify(x)}: expected star, chain or tree, comma-separated`)));
  const r = get('--rounds', '3');
  const rounds = /^\d+$/.test(r) && Number(r) >= 1 && Number(r) <= 20 ? Number(r) : fail(`--rounds ${JSON.stringify(r)}: expected a whole number from 1 to 20`);
  return { nodes, shapes, rounds };
}

/** One timed run: wall ms and, for nslab's processes, peak RSS in KB (GNU time's %M). */
interface Sample {
  ms: number;
  rssKb?: number;
}

/** Runs a command under GNU time (for its peak RSS); throws with its output when it fails. */
async function timed(argv: string[], env: Record<string, string> = {}): Promise<Sample> {
  const t = performance.now();
  const res = await execa('/usr/bin/time', ['-f', 'nslab-bench-rss %M', ...argv], { reject: false, env: { ...env, NODE_EXTRA_CA_CERTS: '' } });
  const ms = performance.now() - t;
  if (res.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${res.exitCode}: ${(res.stderr || res.stdout).slice(-800)}`);
  const m = /nslab-bench-rss (\d+)/.exec(res.stderr);
  return { ms, ...(m ? { rssKb: Number(m[1]) } : {}) };
}

async function plain(argv: string[], input?: string): Promise<number> {
  const t = performance.now();
  await execa(argv[0]!, argv.slice(1), input === undefined ? {} : { input });
  return performance.now() - t;
}

/** The floor's description of a model (scripts/bench-floor.py). */
function floorSpec(m: Model): unknown {
  const end = (e: Model['veths'][number]['a']) => ({ netns: e.netns, name: e.name, addresses: e.addresses, bridge: e.bridge });
  return { mark: m.mark, netns: m.nodes.map((n) => n.netns), bridges: m.bridges.map((b) => ({ name: b.name, addresses: b.addresses })), veths: m.veths.map((v) => ({ a: end(v.a), b: end(v.b) })) };
}

/** Reading floor: one `ip -j -d -batch` per netns, entered by nsenter in a shell loop, a lane per core. */
async function floorVerify(m: Model, queries: string): Promise<number> {
  const names = m.nodes.map((n) => n.netns!);
  const n = Math.min(availableParallelism(), names.length);
  const lanes = Array.from({ length: n }, (_, l) => names.filter((_, k) => k % n === l));
  // busybox's nsenter when installed (half the start-up of util-linux's here), as nslab's own reader uses.
  const loop = 'f=$1; shift; if command -v busybox >/dev/null; then e="busybox nsenter"; else e=nsenter; fi; ip=$(command -v ip); for ns; do $e --net=/run/netns/$ns $ip -j -d -batch "$f" >/dev/null || exit 1; done';
  const t = performance.now();
  await Promise.all([...lanes.map((ns) => execa('sh', ['-c', loop, 'sh', queries, ...ns])), execa('ip', ['-j', '-d', '-batch', queries])]);
  return performance.now() - t;
}

/** Down floor: every netns in one batch, the kernel's sweep of the veths here awaited, the bridges deleted. */
async function floorDown(m: Model): Promise<number> {
  const t = performance.now();
  await execa('ip', ['-batch', '-'], { input: m.nodes.map((n) => `netns del ${n.netns}`).join('\n') + '\n' });
  const hostEnds = new Set(m.veths.flatMap((v) => [v.a, v.b]).filter((e) => e.netns === null).map((e) => e.name));
  while (hostEnds.size) {
    const left = (await execa('ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout.split('\n').some((l) => hostEnds.has(l.split(/[:@]\s*/)[1]?.trim() ?? ''));
    if (!left) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (m.bridges.length) await execa('ip', ['-batch', '-'], { input: m.bridges.map((b) => `link del dev ${b.name}`).join('\n') + '\n' });
  return performance.now() - t;
}

/** Waits for the kernel to finish tearing netns down (asynchronous), so that runs do not overlap. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1500));
}

type Way = 'nslab' | 'floor';
interface Case {
  label: string;
  nodes: number;
  file: string;
  spec: string;
  model: Model;
  samples: Record<string, Record<Way, Sample[]>>;
}

/** The median (of an even count: the mean of the middle two). */
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.floor(s.length / 2);
  return s.length % 2 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
};
const min = (xs: number[]) => Math.min(...xs);

async function main(): Promise<void> {
  const o = args();
  await ensureSandbox();
  await execa(PYTHON, ['-c', 'import pyroute2']).catch(() => {
    process.stderr.write('bench: the floor needs python3-pyroute2 (scripts/setup.sh installs it: apt-get install python3-pyroute2)\n');
    process.exit(2);
  });
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bench-'));
  const queries = join(dir, 'queries');
  writeFileSync(queries, 'link show\naddr show\n');
  const empty = join(dir, 'empty.mjs');
  writeFileSync(empty, 'export {};\n');
  const small = join(ROOT, 'examples', 'star.yaml');
  const loads: string[] = [];
  const cases: Case[] = [];
  for (const shape of o.shapes) {
    for (const n of o.nodes) {
      // A star past a bridge's ports is a tree of 1000-node leaves.
      const kind: GenKind = shape === 'star' && n > 1023 ? 'tree' : shape;
      const file = join(dir, `${kind}-${n}.yaml`);
      writeFileSync(file, genTopology({ kind, nodes: n, name: `b${kind}${n}` }));
      const model = await loadTopology(file);
      const spec = join(dir, `${kind}-${n}.json`);
      writeFileSync(spec, JSON.stringify(floorSpec(model)));
      cases.push({ label: `${kind} ${n}`, nodes: n, file, spec, model, samples: { up: { nslab: [], floor: [] }, verify: { nslab: [], floor: [] }, down: { nslab: [], floor: [] } } });
    }
  }
  const start: Record<string, Sample[]> = { 'node (empty module)': [], 'nslab --version': [], 'nslab plan (3 nodes)': [] };
  for (let k = 0; k < o.rounds; k++) {
    loads.push(loadavg()[0]!.toFixed(2));
    for (let i = 0; i < 5; i++) {
      start['node (empty module)']!.push(await timed([process.execPath, empty]));
      start['nslab --version']!.push(await timed([NSLAB, '--version']));
      start['nslab plan (3 nodes)']!.push(await timed([NSLAB, 'plan', small]));
    }
    for (const c of cases) {
      // Interleaved: the floor first in even rounds, nslab first in odd ones.
      const order: Way[] = k % 2 === 0 ? ['floor', 'nslab'] : ['nslab', 'floor'];
      for (const way of order) {
        if (way === 'floor') {
          c.samples.up!.floor.push(await timed([PYTHON, FLOOR, c.spec]));
          c.samples.verify!.floor.push({ ms: await floorVerify(c.model, queries) });
          c.samples.down!.floor.push({ ms: await floorDown(c.model) });
        } else {
          c.samples.up!.nslab.push(await timed([NSLAB, 'up', c.file]));
          c.samples.verify!.nslab.push(await timed([NSLAB, 'verify', c.file]));
          c.samples.down!.nslab.push(await timed([NSLAB, 'down', c.file]));
        }
        await settle();
      }
    }
    process.stderr.write(`bench: round ${k + 1}/${o.rounds} done (load ${loadavg()[0]!.toFixed(2)})\n`);
  }
  loads.push(loadavg()[0]!.toFixed(2));
  // Nothing may be left: the bench checks that its own sandbox is clean again.
  const links = (await execa('ip', ['-o', 'link'])).stdout.trim().split('\n').length - 1;
  const netns = (await execa('ip', ['netns', 'list'])).stdout.trim().split('\n').filter(Boolean).length;
  rmSync(dir, { recursive: true, force: true });

  const { default: Table } = await import('cli-table3');
  const t = new Table({ head: ['work', 'nslab min / median (s)', 'floor min / median (s)', 'ratio (medians)', 'nslab ms / node', 'nslab peak RSS (MB)'], style: { head: [], border: [] } });
  const s = (xs: number[]) => `${(min(xs) / 1000).toFixed(3)} / ${(med(xs) / 1000).toFixed(3)}`;
  for (const c of cases) {
    for (const [work, x] of Object.entries(c.samples)) {
      const a = x.nslab.map((y) => y.ms);
      const b = x.floor.map((y) => y.ms);
      const rss = x.nslab.flatMap((y) => (y.rssKb ? [y.rssKb] : []));
      t.push([`${work}, ${c.label}`, s(a), s(b), (med(a) / med(b)).toFixed(2), (med(a) / c.nodes).toFixed(2), rss.length ? (Math.max(...rss) / 1024).toFixed(0) : '']);
    }
  }
  const node = start['node (empty module)']!.map((y) => y.ms);
  for (const [what, x] of Object.entries(start)) {
    if (what.startsWith('node')) continue;
    const a = x.map((y) => y.ms);
    t.push([what, `${min(a).toFixed(0)} / ${med(a).toFixed(0)} ms`, `${min(node).toFixed(0)} / ${med(node).toFixed(0)} ms (node)`, (med(a) / med(node)).toFixed(2), '', (Math.max(...x.map((y) => y.rssKb ?? 0)) / 1024).toFixed(0)]);
  }
  process.stdout.write(`nslab against the floor, ${o.rounds} interleaved round(s), ${availableParallelism()} cores, load average (1 min) at each round's start and the end: ${loads.join(', ')}\n`);
  process.stdout.write('floors: up = one python3-pyroute2 process (setns + rtnetlink, scripts/bench-floor.py); verify = one nsenter ip -j -d -batch per netns; down = one ip -batch of netns del (+ sweep wait, bridge del)\n');
  process.stdout.write(t.toString() + '\n');
  if (links || netns) {
    process.stdout.write(`LEFTOVERS: ${links} links, ${netns} netns\n`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === 'cni') {
  await ensureSandbox();
  await (await import('./cni.js')).cniBench(process.argv.slice(3));
} else await main();
