// `npm run bench -- cni [--runs N]`: ADD and DEL per call of nslab-cni against Debian's reference `bridge`
// plugin, in one run, on the same configuration (bridge, isGateway, ipMasq, host-local), in a sandbox.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecRunner } from '../exec/runner.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REFERENCE = process.env.CNI_REFERENCE || '/usr/lib/cni/bridge';

/**
 * Runs a plugin once as a runtime does, under bash, whose `times` then gives the CPU the plugin and its
 * children used (getrusage of its children: load-independent, unlike the wall time on a busy machine).
 * @returns wall time and CPU time (user + system) in ms, exit code, stdout
 */
function timed(bin: string, input: string, env: Record<string, string>): Promise<{ ms: number; cpu: number; code: number; out: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-c', '"$0"; rc=$?; times >&3; exit $rc', bin], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
    let out = '';
    let times = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => (times += b.toString()));
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      // `times`: the shell's own user/sys, then its children's: "0m0.031s 0m0.012s".
      const secs = [...(times.trim().split('\n')[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      resolve({ ms, cpu: (secs[0] ?? 0) * 1000 + (secs[1] ?? 0) * 1000, code: code ?? 1, out });
    });
    child.stdin!.end(input);
  });
}

/**
 * The benchmark: per round, for each plugin in turn (order alternating, so drift hits both alike), one
 * container's ADD then DEL onto a bridge that already exists (a second container keeps it, as on a
 * node with running pods), timed per call.
 * @param argv `--runs N` (default 20)
 */
export async function cniBench(argv: string[]): Promise<void> {
  const i = argv.indexOf('--runs');
  const runs = i >= 0 ? Number(argv[i + 1]) : 20;
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
    process.stderr.write(`bench cni: --runs ${JSON.stringify(argv[i + 1])}: expected a whole number from 1 to 1000\n`);
    process.exit(2);
  }
  const r = new ExecRunner();
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bench-cni-'));
  const plugins = [
    { name: 'reference bridge', bin: REFERENCE, type: 'bridge', bridge: 'cnib-ref' },
    { name: 'nslab-cni', bin: join(ROOT, 'bin', 'nslab-cni'), type: 'nslab-cni', bridge: 'cnib-nslab' },
  ];
  const times: Record<string, { add: number[]; del: number[]; addCpu: number[]; delCpu: number[] }> = {};
  try {
    for (const [k, p] of plugins.entries()) {
      times[p.name] = { add: [], del: [], addCpu: [], delCpu: [] };
      const conf = (_id: string) => JSON.stringify({ cniVersion: '1.0.0', name: `bench${k}`, type: p.type, bridge: p.bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: dir, subnet: `10.${90 + k}.0.0/24`, routes: [{ dst: '0.0.0.0/0' }] } });
      await r.run({ argv: ['ip', 'netns', 'add', `bk${k}`] });
      // The keeper: a container that stays, so every timed call finds the bridge there.
      const keep = await timed(p.bin, conf('keep'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `keep${k}`, CNI_NETNS: `/run/netns/bk${k}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' });
      if (keep.code !== 0) throw new Error(`${p.name} ADD failed: ${keep.out}`);
    }
    for (let n = 0; n < runs; n++) {
      const order = n % 2 === 0 ? plugins : [...plugins].reverse();
      for (const p of order) {
        const k = plugins.indexOf(p);
        const ns = `bc${k}-${n}`;
        await r.run({ argv: ['ip', 'netns', 'add', ns] });
        const env = { CNI_CONTAINERID: `c${k}-${n}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
        const c = JSON.stringify({ cniVersion: '1.0.0', name: `bench${k}`, type: p.type, bridge: p.bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: dir, subnet: `10.${90 + k}.0.0/24`, routes: [{ dst: '0.0.0.0/0' }] } });
        const add = await timed(p.bin, c, { ...env, CNI_COMMAND: 'ADD' });
        if (add.code !== 0) throw new Error(`${p.name} ADD failed: ${add.out}`);
        const del = await timed(p.bin, c, { ...env, CNI_COMMAND: 'DEL' });
        if (del.code !== 0) throw new Error(`${p.name} DEL failed: ${del.out}`);
        times[p.name]!.add.push(add.ms);
        times[p.name]!.del.push(del.ms);
        times[p.name]!.addCpu.push(add.cpu);
        times[p.name]!.delCpu.push(del.cpu);
        await r.run({ argv: ['ip', 'netns', 'del', ns] });
      }
    }
  } finally {
    for (const [k, p] of plugins.entries()) {
      const c = JSON.stringify({ cniVersion: '1.0.0', name: `bench${k}`, type: p.type, bridge: p.bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: dir, subnet: `10.${90 + k}.0.0/24` } });
      await timed(p.bin, c, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: `keep${k}`, CNI_NETNS: `/run/netns/bk${k}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' });
      await r.run({ argv: ['ip', 'netns', 'del', `bk${k}`] }, { check: false });
      await r.run({ argv: ['ip', 'link', 'del', p.bridge] }, { check: false });
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))]!;
  const { default: Table } = await import('cli-table3');
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const t = new Table({ head: ['plugin', 'ADD median (ms)', 'ADD p10-p90', 'ADD CPU (ms)', 'DEL median (ms)', 'DEL p10-p90', 'DEL CPU (ms)', 'calls'], style: { head: [], border: [] } });
  for (const [name, x] of Object.entries(times)) t.push([name, med(x.add).toFixed(1), `${q(x.add, 0.1).toFixed(0)}-${q(x.add, 0.9).toFixed(0)}`, avg(x.addCpu).toFixed(1), med(x.del).toFixed(1), `${q(x.del, 0.1).toFixed(0)}-${q(x.del, 0.9).toFixed(0)}`, avg(x.delCpu).toFixed(1), String(x.add.length)]);
  const ref = times['reference bridge']!;
  const mine = times['nslab-cni']!;
  const addRatio = med(mine.add) / med(ref.add);
  const delRatio = med(mine.del) / med(ref.del);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  process.stdout.write(`CNI ADD and DEL per call (bridge, isGateway, ipMasq, host-local; the bridge exists), whole plugin process; CPU = user + system of the plugin and its children (mean); load average ${load} on ${availableParallelism()} cores\n`);
  process.stdout.write(t.toString() + '\n');
  process.stdout.write(`nslab-cni / reference: ADD ${addRatio.toFixed(2)} (goal <= 2), DEL ${delRatio.toFixed(2)} (goal <= 1); CPU: ADD ${(avg(mine.addCpu) / avg(ref.addCpu)).toFixed(2)}, DEL ${(avg(mine.delCpu) / avg(ref.delCpu)).toFixed(2)}\n`);
  const left = (await r.run({ argv: ['ip', '-o', 'link'] })).stdout.trim().split('\n').length - 1;
  if (left) {
    process.stdout.write(`LEFTOVERS: ${left} links\n`);
    process.exitCode = 1;
  }
}
