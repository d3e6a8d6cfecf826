// A smoke run of `npm run bench` (N = 50, one round, in a sandbox of its own): the benchmark itself is
// not a test (its figures go to the README), but it must run, reach its floors and leave nothing.
import { execa } from 'execa';
import { join } from 'node:path';
import { assertSandbox } from '../helpers/kernel.js';

beforeAll(assertSandbox);

test('npm run bench at N = 50: up, verify and down of a star and a chain against their floors, start-up, node run, pingall, the targets, nothing left', async () => {
  const res = await execa('node', [join(process.cwd(), 'dist', 'bundle', 'main.mjs'), 'sandbox', '--', 'node', join(process.cwd(), 'dist', 'bench', 'scale.js'), '--nodes', '50', '--rounds', '1', '--node-runs', '25', '--pingall', '20'], { reject: false });
  expect(res.stderr).not.toMatch(/Error|LEFTOVERS/);
  expect(res.exitCode).toBe(0);
  for (const row of ['up, star 50', 'verify, star 50', 'down, star 50', 'up, chain 50', 'verify, chain 50', 'down, chain 50', 'nslab --version', 'nslab plan (3 nodes)']) {
    // Each row has nslab's and the floor's times and a ratio.
    expect(res.stdout).toMatch(new RegExp(`│ ${row.replace(/[()]/g, '\\$&')}\\s+│ [\\d.]+ / [\\d.]+( ms)?\\s+│ [\\d.]+ / [\\d.]+.*│ \\d+\\.\\d\\d\\s+│`));
  }
  expect(res.stdout).toMatch(/python3-pyroute2/);
  expect(res.stdout).toMatch(/│ node run, 25 in a row\s+│ \d+ \/ \d+ ms\s+│ \d+ \/ \d+ ms \(by hand\)/);
  expect(res.stdout).toMatch(/│ node run drift \(last 20 \/ first 20\)/);
  // A star of 20 on one bridge: 400 probes, every one answered, by nslab and by hand.
  expect(res.stdout).toMatch(/│ pingall, star 20 \(400 probes; lost: nslab 0, by hand 0\)/);
  // Every target is printed with its verdict.
  for (const t of [/^ {2}up star 50: [\d.]+x its floor \(target <= 1.15x\): (met|NOT met)$/m, /^ {2}down chain 50: /m, /^ {2}nslab --version: /m, /^ {2}node run: \d+ ms a call \(target <= 40 ms\)/m, /^ {2}pingall star 20: /m]) expect(res.stdout).toMatch(t);
});
