// Every lab: run (up -> expectations -> down) leaves the sandbox as it was; its printed script, run by
// sh, builds a topology that `lab verify` passes, and `lab down` then removes.
import { execa } from 'execa';
import { labDown, labScript, labVerify, runLab } from '../../src/engine/lab.js';
import { listLabs, loadLab } from '../../src/model/lab.js';
import { assertSandbox, runner, snapshot } from '../helpers/kernel.js';

beforeAll(assertSandbox);

const ids = (await listLabs()).map((l) => l.id);

test('there are labs', () => {
  expect(ids.length).toBeGreaterThanOrEqual(8);
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

  test('script: replayed by sh, then lab verify passes and lab down cleans up', async () => {
    const lab = await loadLab(id);
    const before = await snapshot();
    const script = await labScript(runner, lab);
    expect(await snapshot()).toEqual(before);
    expect(script).toMatch(/^#!\/bin\/sh\n/);
    const sh = await execa('sh', ['-c', script], { reject: false });
    expect({ exitCode: sh.exitCode, stderr: sh.exitCode === 0 ? '' : sh.stderr }).toEqual({ exitCode: 0, stderr: '' });
    const checks = await labVerify(runner, lab);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(await labDown(runner, lab)).toEqual([]);
    // the script's background processes belong to sh's children: stop those it left
    expect(await snapshot()).toEqual(before);
  });
});
