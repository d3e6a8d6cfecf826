// Rollback: a failure injected at every step k of an up leaves the sandbox exactly as before.
import { applySteps } from '../../src/engine/apply.js';
import { planUp } from '../../src/engine/plan.js';
import { loadTopology } from '../../src/engine/topology.js';
import { NslabError } from '../../src/errors.js';
import { assertSandbox, runner, snapshot } from '../helpers/kernel.js';
import { example, model } from '../helpers/topo.js';


beforeAll(assertSandbox);

async function everyStep(file: () => Promise<Parameters<typeof planUp>[0]>) {
  const m = await file();
  const steps = planUp(m);
  const before = await snapshot();
  const failures: string[] = [];
  for (let k = 0; k < steps.length; k++) {
    const err = await applySteps(runner, steps, { faultAt: k }).then(
      () => null,
      (e: unknown) => e as NslabError,
    );
    if (!(err instanceof NslabError) || err.code !== 'APPLY_FAILED') failures.push(`k=${k}: no APPLY_FAILED (${String(err)})`);
    else if (!err.message.startsWith(`step ${k + 1}/${steps.length} "${steps[k]!.describe}" failed`)) failures.push(`k=${k}: wrong step named: ${err.message}`);
    else if ((err.details?.rollbackErrors as string[]).length) failures.push(`k=${k}: rollback errors ${String(err.details?.rollbackErrors)}`);
    const after = await snapshot();
    if (JSON.stringify(after) !== JSON.stringify(before)) failures.push(`k=${k} (${steps[k]!.describe}): state differs after rollback`);
  }
  expect(failures).toEqual([]);
  return steps.length;
}

test('star: a fault at each of its steps is rolled back completely', async () => {
  expect(await everyStep(() => loadTopology(example('star')))).toBe(34);
});

test('chain (node-to-node veths, sysctls, blocking routes): every fault is rolled back', async () => {
  expect(await everyStep(() => loadTopology(example('chain')))).toBe(23);
});

test('host side (addresses, routes and a sysctl in the current netns, brctl bridge): every fault is rolled back', async () => {
  const yaml = `host:
  interfaces:
    veth-a: { addresses: [10.1.0.1/24] }
  routes:
    - { to: 10.2.0.0/24, via: 10.1.0.2 }
  sysctls: { net.ipv4.conf.all.forwarding: 1 }
bridges:
  brx: { driver: brctl, stp: true, addresses: [10.3.0.254/24] }
nodes:
  n1:
    interfaces:
      veth-b: { addresses: [10.1.0.2/24] }
      eth1: { addresses: [10.3.0.1/24] }
links:
  - [host:veth-a, n1:veth-b]
  - [n1:eth1, brx]
`;
  const fwd = (await runner.run({ argv: ['sysctl', '-n', 'net.ipv4.conf.all.forwarding'] })).stdout.trim();
  expect(await everyStep(() => model('rb', yaml))).toBeGreaterThan(15);
  expect((await runner.run({ argv: ['sysctl', '-n', 'net.ipv4.conf.all.forwarding'] })).stdout.trim()).toBe(fwd);
});
