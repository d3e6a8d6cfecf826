// A smoke run of `npm run bench` (N = 50, one round, in a sandbox of its own): the benchmark itself is
// not a test (its figures go to the README), but it must run, reach its floors and leave nothing.
import { execa } from 'execa';
import { join } from 'node:path';
import { assertSandbox } from '../helpers/kernel.js';

beforeAll(assertSandbox);

test('npm run bench at N = 50: up, verify and down of a star and a chain against their floors, start-up, nothing left', async () => {
  const res = await execa('node', [join(process.cwd(), 'dist', 'bundle', 'main.mjs'), 'sandbox', '--', 'node', join(process.cwd(), 'dist', 'bench', 'scale.js'), '--nodes', '50', '--rounds', '1'], { reject: false });
  expect(res.stderr).not.toMatch(/Error|LEFTOVERS/);
  expect(res.exitCode).toBe(0);
  for (const row of ['up, star 50', 'verify, star 50', 'down, star 50', 'up, chain 50', 'verify, chain 50', 'down, chain 50', 'nslab --version', 'nslab plan (3 nodes)']) {
    // Each row has nslab's and the floor's times and a ratio.
    expect(res.stdout).toMatch(new RegExp(`│ ${row.replace(/[()]/g, '\\$&')}\\s+│ [\\d.]+ / [\\d.]+( ms)?\\s+│ [\\d.]+ / [\\d.]+.*│ \\d+\\.\\d\\d\\s+│`));
  }
  expect(res.stdout).toMatch(/python3-pyroute2/);
});
