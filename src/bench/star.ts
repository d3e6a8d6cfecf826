// `npm run bench -- --nodes N`: an N-node star built and torn down three ways, in a sandbox
// (`npm run bench -- cni`: the CNI plugin's benchmark, bench/cni.ts):
// nslab (the CLI, start-up included), one `ip` process per command, and a hand-written `ip -batch` floor.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSandbox } from '../exec/sandbox.js';
import { ExecRunner } from '../exec/runner.js';
import { RecordingRunner } from '../exec/recorder.js';
import { loadTopology, up } from '../engine/topology.js';
import { starYaml } from './stars.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bundle', 'main.mjs');

function args(): { nodes: number; runs: number } {
  const a = process.argv.slice(2);
  const get = (flag: string, def: number) => {
    const i = a.indexOf(flag);
    if (i < 0) return def;
    const v = Number(a[i + 1]);
    if (!Number.isInteger(v) || v < 1 || v > 5000) {
      process.stderr.write(`bench: ${flag} ${JSON.stringify(a[i + 1])}: expected a whole number from 1 to 5000\n`);
      process.exit(2);
    }
    return v;
  };
  return { nodes: get('--nodes', 200), runs: get('--runs', 3) };
}

const ms = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

async function floorUp(n: number): Promise<void> {
  const addr = (i: number) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}/16`;
  const nsLines = Array.from({ length: n }, (_, i) => `netns add n${i + 1}`);
  await execa('ip', ['-batch', '-'], { input: nsLines.join('\n') + '\n' });
  const root = ['link add name br0 type bridge', 'addr add 10.0.255.254/16 dev br0', 'link set dev br0 up'];
  for (let i = 1; i <= n; i++) root.push(`link add n${i}-eth0 type veth peer name eth0 netns n${i}`, `link set dev n${i}-eth0 master br0`, `link set dev n${i}-eth0 up`);
  await execa('ip', ['-batch', '-'], { input: root.join('\n') + '\n' });
  for (let i = 1; i <= n; i++) {
    const inner = ['link set dev lo up', `addr add ${addr(i - 1)} dev eth0`, 'link set dev eth0 up'];
    await execa('nsenter', [`--net=/run/netns/n${i}`, '--', 'ip', '-batch', '-'], { input: inner.join('\n') + '\n' });
  }
}

/** The fastest hand-written teardown: every netns in one batch, wait for the kernel to sweep their veths, then the bridge. */
async function floorDown(n: number): Promise<void> {
  await execa('ip', ['-batch', '-'], { input: Array.from({ length: n }, (_, i) => `netns del n${i + 1}`).join('\n') + '\n' });
  while ((await execa('ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout.trim()) await new Promise((r) => setTimeout(r, 20));
  await execa('ip', ['link', 'del', 'dev', 'br0']);
}

/** One process per command: the plan's commands as a person (or pipework) would type them. */
async function perCommand(argvs: string[][]): Promise<void> {
  for (const [file, ...rest] of argvs) await execa(file!, rest);
}

async function settle(): Promise<void> {
  // netns teardown finishes asynchronously in the kernel; let it, so runs do not interfere.
  await new Promise((r) => setTimeout(r, 1500));
}

async function main(): Promise<void> {
  const { nodes, runs } = args();
  await ensureSandbox();
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bench-'));
  const file = join(dir, 'bench-star.yaml');
  writeFileSync(file, starYaml(nodes));
  const model = await loadTopology(file);
  const rec = new RecordingRunner();
  await up(rec, model);
  const upArgv = rec.argvs();
  // Teardown as a person types it: each host-side veth, the bridge, then each netns.
  const downArgv = [...model.veths.map((v) => ['ip', 'link', 'del', 'dev', v.b.name]), ['ip', 'link', 'del', 'dev', 'br0'], ...model.nodes.map((n) => ['ip', 'netns', 'del', n.name])];
  const results: Record<string, { up: number[]; down: number[] }> = { floor: { up: [], down: [] }, nslab: { up: [], down: [] }, 'one ip per command': { up: [], down: [] } };
  const r = new ExecRunner();
  for (let k = 0; k < runs; k++) {
    results.floor!.up.push(await ms(() => floorUp(nodes)));
    results.floor!.down.push(await ms(() => floorDown(nodes)));
    await settle();
    results.nslab!.up.push(await ms(() => execa('node', [CLI, 'up', file])));
    results.nslab!.down.push(await ms(() => execa('node', [CLI, 'down', file])));
    await settle();
    if (k === 0 || nodes <= 200) {
      results['one ip per command']!.up.push(await ms(() => perCommand(upArgv)));
      results['one ip per command']!.down.push(await ms(() => perCommand(downArgv)));
      await settle();
    }
  }
  // Nothing may be left: the bench checks that its own sandbox is clean again.
  const left = (await r.run({ argv: ['ip', '-o', 'link'] })).stdout.trim().split('\n').length - 1 + (await r.run({ argv: ['ip', 'netns', 'list'] })).stdout.trim().split('\n').filter(Boolean).length;
  rmSync(dir, { recursive: true, force: true });

  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const floorUpMs = med(results.floor!.up);
  const floorDownMs = med(results.floor!.down);
  const { default: Table } = await import('cli-table3');
  const t = new Table({ head: ['way', 'up (s)', 'up / floor', 'down (s)', 'down / floor', 'runs'], style: { head: [], border: [] } });
  for (const [way, x] of Object.entries(results)) {
    t.push([way, (med(x.up) / 1000).toFixed(2), (med(x.up) / floorUpMs).toFixed(2), (med(x.down) / 1000).toFixed(2), (med(x.down) / floorDownMs).toFixed(2), String(x.up.length)]);
  }
  process.stdout.write(`star of ${nodes} nodes (N netns, N veth, one bridge); median of runs; nslab = CLI process, start-up included\n`);
  process.stdout.write(t.toString() + '\n');
  const ratio = med(results.nslab!.up) / floorUpMs;
  process.stdout.write(`nslab up / floor = ${ratio.toFixed(2)} (target <= 1.5)${left ? `; LEFTOVERS: ${left} objects` : ''}\n`);
  if (left) process.exitCode = 1;
}

// `npm run bench -- cni`: the CNI plugin against the reference bridge plugin (bench/cni.ts).
if (process.argv[2] === 'cni') {
  await ensureSandbox();
  await (await import('./cni.js')).cniBench(process.argv.slice(3));
} else await main();
