// Every lab: run (up -> expectations -> down) leaves the sandbox as it was; its printed script, run by
// sh, builds a topology that `lab verify` passes, and `lab down` then removes.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labScript, runLab } from '../../src/engine/lab.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
import { listLabs, loadLab } from '../../src/model/lab.js';
import { assertSandbox, runner, snapshot } from '../helpers/kernel.js';

beforeAll(assertSandbox);

const ids = (await listLabs()).map((l) => l.id);

test('there are labs', () => {
  expect(ids.length).toBe(14);
});

describe.each(ids)('lab %s', (id) => {
  test('run: every expectation holds and teardown leaves the sandbox as before', async () => {
    const lab = await loadLab(id);
    const before = await snapshot();
    const rep = await runLab(runner, lab);
    const failed = rep.steps.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => `${s.title}: ${c.text} ${c.detail ?? ''}`));
    expect(failed).toEqual([]);
    expect(rep.teardown.errors).toEqual([]);
    expect(rep.ok).toBe(true);
    expect(await snapshot()).toEqual(before);
  });

  test('script: replayed by sh in a fresh sandbox, then lab verify passes there', async () => {
    const lab = await loadLab(id);
    const before = await snapshot();
    const script = await labScript(runner, lab);
    expect(await snapshot()).toEqual(before);
    expect(script).toMatch(/^#!\/bin\/sh\n/);
    const dir = mkdtempSync(join(tmpdir(), 'nslab-labscript-'));
    writeFileSync(join(dir, 'lab.sh'), script);
    // A fixed driver: replay, verify, then take down what it can and stop what the script started.
    const driver = `sh "$1/lab.sh" >"$1/out" 2>"$1/err"; rc=$?
nslab lab verify "$2" --json >"$1/verify.json"
for n in $(ip netns list | cut -d' ' -f1); do for p in $(ip netns pids "$n"); do kill "$p" 2>/dev/null; done; done
nslab lab down "$2" >/dev/null 2>&1
me=$(readlink /proc/self/ns/net)
for p in $(ls /proc | grep -E '^[0-9]+$'); do [ "$p" != $$ ] && [ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$me" ] && kill "$p" 2>/dev/null; done
exit $rc`;
    const res = await execa('node', [CLI, 'sandbox', '--', 'sh', '-c', driver, 'driver', dir, id], { reject: false });
    const err = readFileSync(join(dir, 'err'), 'utf8');
    expect({ exitCode: res.exitCode, err: res.exitCode === 0 ? '' : err }).toEqual({ exitCode: 0, err: '' });
    const checks = JSON.parse(readFileSync(join(dir, 'verify.json'), 'utf8')) as Array<{ ok: boolean; text: string }>;
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.length).toBeGreaterThan(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
