// Every lab: run (up -> expectations -> down) leaves the sandbox as it was; its printed script, run by
// sh, builds a topology that `lab verify` passes, and `lab down` then removes.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labNetns, labScript, runLab } from '../../src/engine/labs/lab.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
import { listLabs, loadLab, type Lab } from '../../src/model/lab.js';
import { assertSandbox, inheritedForwarding, runner, snapshot } from '../helpers/kernel.js';

beforeAll(assertSandbox);
// Each replay's folder (script, outputs) goes at the end, also after a failure.
const cleanup: string[] = [];
afterAll(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

const hasDot = spawnSync('dot', ['-V']).status === 0;

/**
 * A diagram without what changes from build to build: network ids in bridge names (random, as
 * docker's) and addresses leased by DHCP (dnsmasq picks them from the MAC).
 */
/** On a machine that forwards, every new netns forwards too (see inheritedForwarding): not the lab's doing. */
const FORWARDS_HERE = inheritedForwarding() === '1';

function stable(lab: Lab, text: string): string {
  let out = text.replace(/br-[0-9a-f]{12}/g, 'br-ID');
  if (FORWARDS_HERE) out = out.replaceAll(' (forwarding)', '');
  for (const st of lab.steps) for (const a of st.do) if ('service' in a && a.service === 'dnsmasq') out = out.replaceAll(new RegExp(`${a.range[0].split('.').slice(0, 3).join('\\.')}\\.(?!1/)\\d+`, 'g'), 'LEASED');
  return out.trim();
}

/** Probes that differ from the model because iptables rules decide them (MASQUERADE, isolation, DROP). */
const IPTABLES_DECIDES: Record<string, string[]> = {
  // user-defined networks are isolated from each other (DOCKER-ISOLATION-like DROP rules)
  '04': ['test00>172.20.0.2', 'test01>172.20.0.2'],
};

const ids = (await listLabs()).map((l) => l.id);

test('there are labs', () => {
  expect(ids.length).toBe(16);
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
    cleanup.push(dir);
    writeFileSync(join(dir, 'lab.sh'), script);
    // A fixed driver: replay, verify, then take down what it can and stop what the script started.
    const driver = `sh "$1/lab.sh" >"$1/out" 2>"$1/err"; rc=$?
nslab lab verify "$2" --json >"$1/verify.json"
nslab graph lab "$2" --live --format mermaid >"$1/graph.mmd" 2>>"$1/err"
nslab graph lab "$2" --live --format dot >"$1/graph.dot" 2>>"$1/err"
nslab pingall lab "$2" --json >"$1/pingall.json" 2>>"$1/err"
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

    // Read back from the kernel, the lab built by hand is what its README draws, and graphviz parses it.
    const readme = readFileSync(join(lab.dir, 'README.md'), 'utf8');
    const drawn = /```mermaid\n([\s\S]*?)```\n<!-- end of diagram -->/.exec(readme)?.[1];
    expect(drawn).toBeDefined();
    expect(stable(lab, readFileSync(join(dir, 'graph.mmd'), 'utf8'))).toBe(stable(lab, drawn!));
    if (hasDot) expect((await execa('dot', ['-Tsvg', join(dir, 'graph.dot')], { reject: false })).stdout).toMatch(/<svg/);
    // pingall on the live lab: every probe went as its routes, bridges, tags and macvlans say, except
    // where iptables decides (NAT, isolation), which the model does not read.
    const pa = JSON.parse(readFileSync(join(dir, 'pingall.json'), 'utf8')) as { results: unknown[]; differences: Array<{ from: string; to: string }> };
    if (labNetns(lab).length) expect(pa.results.length).toBeGreaterThan(0); // lab 11 is all on the host's own network
    // Lab 15's bridges and VXLAN ports live in its "host" netns vm1 and vm2: discovery reads bridges in
    // the current namespace only, so `pingall lab 15` expects too little (the lab's own pingall --host
    // checks are in its steps). Known gap: discovery of bridges in any netns, joined by their VNI.
    if (id !== '15') expect(pa.differences.map((d) => `${d.from}>${d.to}`)).toEqual(IPTABLES_DECIDES[id] ?? []);
  });
});
