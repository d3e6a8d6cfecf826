// `npm run bench -- [--nodes 100,1000] [--shapes star,chain] [--rounds 3] [--node-runs 200] [--pingall N]`: nslab against the physical
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
//   node run  --node-runs calls of `nslab node run NAME --net NET` in a row, each against the same node
//           made by hand (ip netns add; one ip -batch for the veth with its end in the netns, port, up;
//           one ip -n NAME -batch for lo, address, up, default route; its hosts file): per call, and the
//           drift (the last 20 calls' median over the first 20's)
//   pingall --pingall N: every pair of an N-node star (N x N probes) against the same method by hand
//           (one fping per node, -t 1000 -r 1 -B 1 -i 1 as nslab runs it, 16 at once, the kernel's ARP)
// A topology of more than 1023 nodes is a tree (`nslab gen tree`: a bridge holds 1023 ports).
// Prints min and median per way, their ratio (medians), per-node cost, peak RSS of the nslab processes
// and the machine's load; exits 1 when something is left behind in the sandbox.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  /** `node run` calls in a row (0: not measured) */
  nodeRuns: number;
  /** nodes of the star that pingall probes all pairs of (0: not measured) */
  pingall: number;
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
  const whole = (flag: string, def: string, max: number) => {
    const v = get(flag, def);
    return /^\d+$/.test(v) && Number(v) <= max ? Number(v) : fail(`${flag} ${JSON.stringify(v)}: expected a whole number from 0 to ${max}`);
  };
  return { nodes, shapes, rounds, nodeRuns: whole('--node-runs', '200', 2000), pingall: whole('--pingall', '0', 2000) };
}

/** One timed run: wall ms and, for nslab's processes, peak RSS in KB (GNU time's %M). */
interface Sample {
  ms: number;
  rssKb?: number;
  stdout: string;
}

/** Runs a command under GNU time (for its peak RSS); throws with its output when it fails. */
async function timed(argv: string[], env: Record<string, string> = {}): Promise<Sample> {
  const t = performance.now();
  const res = await execa('/usr/bin/time', ['-f', 'nslab-bench-rss %M', ...argv], { reject: false, env: { ...env, NODE_EXTRA_CA_CERTS: '' } });
  const ms = performance.now() - t;
  if (res.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${res.exitCode}: ${(res.stderr || res.stdout).slice(-800)}`);
  const m = /nslab-bench-rss (\d+)/.exec(res.stderr);
  return { ms, stdout: res.stdout, ...(m ? { rssKb: Number(m[1]) } : {}) };
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

/**
 * `node run` by hand, the floor of one call: the processes nslab's engine needs at least (a netns, a
 * veth straight into it on the bridge, the inside configured by one batch) and the hosts file.
 */
async function floorNodeRun(name: string, k: number, bridge: string, gateway: string): Promise<number> {
  const t = performance.now();
  await execa('ip', ['netns', 'add', name]);
  await execa('ip', ['-batch', '-'], { input: `link add f${k} type veth peer name eth0 netns ${name}\nlink set f${k} master ${bridge} up\n` });
  const ip = `10.201.${Math.floor(k / 250)}.${(k % 250) + 2}`;
  await execa('ip', ['-n', name, '-batch', '-'], { input: `link set lo up\naddr add ${ip}/16 dev eth0\nlink set eth0 up\nroute add default via ${gateway}\n` });
  mkdirSync(`/etc/netns/${name}`, { recursive: true });
  writeFileSync(`/etc/netns/${name}/hosts`, `127.0.0.1\tlocalhost\n${ip}\t${name}\n`);
  return performance.now() - t;
}

/** `node run` against its floor, call by call (interleaved: a floor node, then an nslab node). */
async function nodeRunBench(calls: number): Promise<{ nslab: number[]; floor: number[]; rssKb: number }> {
  const nslab: number[] = [];
  const floor: number[] = [];
  let rssKb = 0;
  await execa(NSLAB, ['network', 'create', 'bnr', '--subnet', '10.200.0.0/16']);
  await execa('ip', ['-batch', '-'], { input: 'link add bfr type bridge\naddr add 10.201.0.1/16 dev bfr\nlink set bfr up\n' });
  try {
    for (let k = 0; k < calls; k++) {
      floor.push(await floorNodeRun(`f${k}`, k, 'bfr', '10.201.0.1'));
      const x = await timed([NSLAB, 'node', 'run', `r${k}`, '--net', 'bnr']);
      nslab.push(x.ms);
      rssKb = Math.max(rssKb, x.rssKb ?? 0);
    }
  } finally {
    await execa(NSLAB, ['node', 'rm', ...Array.from({ length: nslab.length }, (_, k) => `r${k}`)], { reject: false });
    await execa(NSLAB, ['network', 'rm', 'bnr'], { reject: false });
    await execa('ip', ['-batch', '-'], { input: Array.from({ length: floor.length }, (_, k) => `netns del f${k}\n`).join('') + 'link del bfr\n', reject: false });
    for (let k = 0; k < floor.length; k++) rmSync(`/etc/netns/f${k}`, { recursive: true, force: true });
    await settle();
  }
  return { nslab, floor, rssKb };
}

/** pingall of an N-node star against the same probes by hand: one fping per node, 16 at once. */
async function pingallBench(n: number, dir: string): Promise<{ nslab: number; floor: number; probes: number; lostNslab: number; lostFloor: number; rssKb: number }> {
  const file = join(dir, `ping-${n}.yaml`);
  writeFileSync(file, genTopology({ kind: 'star', nodes: n, name: `bping${n}` }));
  const model = await loadTopology(file);
  const addrs = model.nodes.map((x) => model.veths.flatMap((v) => [v.a, v.b]).find((e) => e.netns === x.netns)!.addresses[0]!.split('/')[0]!);
  await execa(NSLAB, ['up', file]);
  try {
    const targets = join(dir, 'targets');
    writeFileSync(targets, addrs.join('\n') + '\n');
    // By hand: 16 lanes, each a shell walking its share of the netns, one fping per netns to every address.
    const lanes = Array.from({ length: 16 }, (_, l) => model.nodes.filter((_, k) => k % 16 === l).map((x) => x.netns!));
    const loop = 'f=$1; shift; if command -v busybox >/dev/null; then e="busybox nsenter"; else e=nsenter; fi; fp=$(command -v fping); for ns; do $e --net=/run/netns/$ns $fp -t 1000 -r 1 -B 1 -i 1 -f "$f" 2>/dev/null; done; true';
    const t = performance.now();
    const outs = await Promise.all(lanes.filter((l) => l.length).map((ns) => execa('sh', ['-c', loop, 'sh', targets, ...ns])));
    const floor = performance.now() - t;
    const alive = outs.reduce((a, o) => a + o.stdout.split('\n').filter((l) => / is alive/.test(l)).length, 0);
    // Flushed as nslab's pingall leaves them (learned entries age out; nslab's run starts from the same).
    await Promise.all(model.nodes.map((x) => execa('ip', ['-n', x.netns!, 'neigh', 'flush', 'all'])));
    const x = await timed([NSLAB, 'pingall', file, '--json']);
    const rep = JSON.parse(x.stdout || '{}') as { results?: Array<{ reached: boolean; expected: boolean | null }> };
    const lostNslab = (rep.results ?? []).filter((r) => r.expected && !r.reached).length;
    return { nslab: x.ms, floor, probes: n * n, lostNslab, lostFloor: n * n - alive, rssKb: x.rssKb ?? 0 };
  } finally {
    await execa(NSLAB, ['down', file], { reject: false });
    await settle();
  }
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
          c.samples.verify!.floor.push({ ms: await floorVerify(c.model, queries), stdout: '' });
          c.samples.down!.floor.push({ ms: await floorDown(c.model), stdout: '' });
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
  const nodeRun = o.nodeRuns ? await nodeRunBench(o.nodeRuns) : null;
  if (nodeRun) process.stderr.write(`bench: ${o.nodeRuns} node run calls done (load ${loadavg()[0]!.toFixed(2)})\n`);
  const ping = o.pingall ? await pingallBench(o.pingall, dir) : null;
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
  if (nodeRun) {
    const first = nodeRun.nslab.slice(0, 20);
    const last = nodeRun.nslab.slice(-20);
    const r = (xs: number[]) => `${min(xs).toFixed(0)} / ${med(xs).toFixed(0)} ms`;
    t.push([`node run, ${nodeRun.nslab.length} in a row`, r(nodeRun.nslab), `${r(nodeRun.floor)} (by hand)`, (med(nodeRun.nslab) / med(nodeRun.floor)).toFixed(2), '', (nodeRun.rssKb / 1024).toFixed(0)]);
    t.push(['node run drift (last 20 / first 20)', `${med(first).toFixed(0)} -> ${med(last).toFixed(0)} ms`, `${med(nodeRun.floor.slice(0, 20)).toFixed(0)} -> ${med(nodeRun.floor.slice(-20)).toFixed(0)} ms`, (med(last) / med(first)).toFixed(2), '', '']);
  }
  if (ping) t.push([`pingall, star ${o.pingall} (${ping.probes} probes; lost: nslab ${ping.lostNslab}, by hand ${ping.lostFloor})`, (ping.nslab / 1000).toFixed(3), `${(ping.floor / 1000).toFixed(3)} (fping by hand)`, (ping.nslab / ping.floor).toFixed(2), (ping.nslab / o.pingall).toFixed(2), (ping.rssKb / 1024).toFixed(0)]);
  // Targets (issue 21), each as met or not, from the medians above.
  const verdicts: string[] = [];
  const ratioOf = (work: string, label: string) => {
    const c = cases.find((x) => x.label === label);
    const x = c?.samples[work];
    return x && x.nslab.length ? med(x.nslab.map((y) => y.ms)) / med(x.floor.map((y) => y.ms)) : null;
  };
  for (const c of cases) {
    for (const [work, limit] of [['up', 1.15], ['verify', 1.3], ['down', 1.3]] as const) {
      const q = ratioOf(work, c.label);
      if (q !== null) verdicts.push(`${work} ${c.label}: ${q.toFixed(2)}x its floor (target <= ${limit}x): ${q <= limit ? 'met' : 'NOT met'}`);
    }
  }
  for (const shape of new Set(cases.map((c) => c.label.split(' ')[0]))) {
    const mine = cases.filter((c) => c.label.startsWith(`${shape} `)).sort((a, b) => a.nodes - b.nodes);
    if (mine.length < 2) continue;
    const [lo, hi] = [mine[0]!, mine[mine.length - 1]!];
    for (const work of ['up', 'verify', 'down']) {
      const per = (c: Case) => med(c.samples[work]!.nslab.map((y) => y.ms)) / c.nodes;
      const q = per(hi) / per(lo);
      verdicts.push(`${work} ${shape}: cost per node at ${hi.nodes} is ${q.toFixed(2)}x that at ${lo.nodes} (target <= 1.2x): ${q <= 1.2 ? 'met' : 'NOT met'}`);
    }
  }
  const startRatio = (what: string) => med(start[what]!.map((y) => y.ms)) / med(node);
  verdicts.push(`nslab --version: ${startRatio('nslab --version').toFixed(2)}x node's start (target <= 2x): ${startRatio('nslab --version') <= 2 ? 'met' : 'NOT met'}`);
  verdicts.push(`nslab plan (3 nodes): ${startRatio('nslab plan (3 nodes)').toFixed(2)}x node's start (target <= 3x): ${startRatio('nslab plan (3 nodes)') <= 3 ? 'met' : 'NOT met'}`);
  if (nodeRun) {
    const m = med(nodeRun.nslab);
    const drift = med(nodeRun.nslab.slice(-20)) / med(nodeRun.nslab.slice(0, 20));
    verdicts.push(`node run: ${m.toFixed(0)} ms a call (target <= 40 ms): ${m <= 40 ? 'met' : 'NOT met'}; drift over ${nodeRun.nslab.length} calls ${drift.toFixed(2)}x (target: none, <= 1.2x): ${drift <= 1.2 ? 'met' : 'NOT met'}`);
  }
  if (ping) {
    const q = ping.nslab / ping.floor;
    verdicts.push(`pingall star ${o.pingall}: ${q.toFixed(2)}x by hand (target <= 1.15x at 1000), ${ping.lostNslab} lost: ${q <= 1.15 && ping.lostNslab === 0 ? 'met' : 'NOT met'}`);
  }
  process.stdout.write(`nslab against the floor, ${o.rounds} interleaved round(s), ${availableParallelism()} cores, load average (1 min) at each round's start and the end: ${loads.join(', ')}\n`);
  process.stdout.write('floors: up = one python3-pyroute2 process (setns + rtnetlink, scripts/bench-floor.py); verify = one nsenter ip -j -d -batch per netns; down = one ip -batch of netns del (+ sweep wait, bridge del)\n');
  process.stdout.write(t.toString() + '\n');
  process.stdout.write('targets:\n' + verdicts.map((v) => `  ${v}\n`).join(''));
  if (links || netns) {
    process.stdout.write(`LEFTOVERS: ${links} links, ${netns} netns\n`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === 'cni') {
  await ensureSandbox();
  await (await import('./cni.js')).cniBench(process.argv.slice(3));
} else await main();
