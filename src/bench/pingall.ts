// `npm run bench:pingall -- --nodes N`: pingall on an N-node star built with up, in a sandbox; prints the time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { down, loadTopology, up } from '../engine/topology.js';
import { ExecRunner } from '../exec/runner.js';
import { ensureSandbox } from '../exec/sandbox.js';
import { pingall, type ProbeTool } from '../verify/pingall.js';
import { starYaml } from './stars.js';

function args(): { nodes: number; runs: number; concurrency?: number; tool?: ProbeTool } {
  const a = process.argv.slice(2);
  const get = (flag: string, def: number | undefined, max: number) => {
    const i = a.indexOf(flag);
    if (i < 0) return def;
    const v = Number(a[i + 1]);
    if (!Number.isInteger(v) || v < 1 || v > max) {
      process.stderr.write(`bench: ${flag} ${JSON.stringify(a[i + 1])}: expected a whole number from 1 to ${max}\n`);
      process.exit(2);
    }
    return v;
  };
  const t = a.indexOf('--tool');
  const tool = t < 0 ? undefined : (a[t + 1] as ProbeTool);
  return { nodes: get('--nodes', 100, 1000)!, runs: get('--runs', 1, 20)!, concurrency: get('--concurrency', undefined, 256), ...(tool ? { tool } : {}) };
}

async function main(): Promise<void> {
  const o = args();
  await ensureSandbox();
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bench-'));
  const file = join(dir, 'ping-star.yaml');
  writeFileSync(file, starYaml(o.nodes, 'ping-star'));
  const m = await loadTopology(file);
  const r = new ExecRunner();
  await up(r, m);
  let failed = false;
  try {
    for (let k = 0; k < o.runs; k++) {
      const before = loadavg()[0]!;
      const rep = await pingall(r, m, { ...(o.concurrency ? { concurrency: o.concurrency } : {}), ...(o.tool ? { tool: o.tool } : {}) });
      const lost = rep.results.filter((x) => x.expected && !x.reached).length;
      process.stdout.write(
        `pingall star of ${o.nodes} nodes: ${rep.results.length} probes, ${rep.rounds} rounds, ${rep.tool}: ${(rep.ms / 1000).toFixed(2)} s; ` +
          `${lost} lost, ${rep.differences.length} differences (load average ${before.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)})\n`,
      );
      if (!rep.ok) failed = true;
    }
  } finally {
    await down(r, m);
    rmSync(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

await main();
