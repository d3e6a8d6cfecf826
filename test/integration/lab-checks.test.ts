// Lab checks against real netns: tcp/http failures told apart (refused, unreachable, timeout) as the
// kernel reports them, every check's deadline honoured (a dropped SYN no longer waits ~130 s), output
// checks comparing a counter before and after a step, `ok: false` commands, and `lab script` with a
// tool that is not installed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { check } from '../../src/engine/labs/check.js';
import { labScript, runLab } from '../../src/engine/labs/lab.js';
import { down, up } from '../../src/engine/topology.js';
import { LabRaw, type Lab, type LabExpect } from '../../src/model/lab.js';
import { resolveTopology } from '../../src/model/resolve.js';
import { TopologyRaw } from '../../src/model/schema.js';
import { assertSandbox, runner, snapshot } from '../helpers/kernel.js';

const topo = resolveTopology(
  TopologyRaw.parse({
    name: 'chk',
    nodes: { ca: { interfaces: { eth0: { addresses: ['10.77.0.1/24'] } } }, cb: { interfaces: { eth0: { addresses: ['10.77.0.2/24'] } } } },
    links: [['ca:eth0', 'cb:eth0']],
  }),
  'chk',
);
let web: ChildProcess;
let before: Awaited<ReturnType<typeof snapshot>>;

beforeAll(async () => {
  await assertSandbox();
  before = await snapshot();
  await up(runner, topo);
  web = spawn('nsenter', ['--net=/run/netns/cb', '--', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/usr/share/doc/busybox-static'], { stdio: 'ignore' });
  // Port 82 drops its SYNs: no answer at all, the case that hung ~130 s.
  await runner.run({ argv: ['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '82', '-j', 'DROP'], netns: 'cb' });
  await new Promise((r) => setTimeout(r, 300));
});
afterAll(async () => {
  web?.kill();
  await down(runner, topo);
  await new Promise((r) => setTimeout(r, 1200)); // netns deletion is asynchronous
  expect(await snapshot()).toEqual(before);
});

const ex = (e: unknown) => e as LabExpect;
async function timed(e: LabExpect): Promise<{ ok: boolean; detail: string | undefined; s: number }> {
  const t0 = Date.now();
  const c = await check(runner, e, {});
  return { ok: c.ok, detail: c.detail, s: (Date.now() - t0) / 1000 };
}

describe('tcp: how it fails, told apart', () => {
  test('a listening port connects', async () => {
    expect((await timed(ex({ tcp: { from: 'ca', to: '10.77.0.2', port: 80, ok: true } }))).ok).toBe(true);
  });
  test('a closed port is refused (a RST), and is not a timeout', async () => {
    expect((await timed(ex({ tcp: { from: 'ca', to: '10.77.0.2', port: 81, ok: true, error: 'refused' } }))).ok).toBe(true);
    const wrong = await timed(ex({ tcp: { from: 'ca', to: '10.77.0.2', port: 81, ok: true, error: 'timeout', timeout: 2 } }));
    expect(wrong).toMatchObject({ ok: false, detail: 'refused' });
  });
  test('no route is unreachable, at once', async () => {
    const r = await timed(ex({ tcp: { from: 'ca', to: '10.99.0.1', port: 80, ok: true, error: 'unreachable' } }));
    expect(r.ok).toBe(true);
    expect(r.s).toBeLessThan(3);
  });
  test('an on-link address nobody answers ARP for is unreachable (after the ~3 s of ARP)', async () => {
    const r = await timed(ex({ tcp: { from: 'ca', to: '10.77.0.99', port: 80, ok: true, error: 'unreachable', timeout: 6 } }));
    expect(r).toMatchObject({ ok: true });
  });
  test('a dropped SYN is a timeout, within the check\'s own timeout', async () => {
    const r = await timed(ex({ tcp: { from: 'ca', to: '10.77.0.2', port: 82, ok: true, error: 'timeout', timeout: 1 } }));
    expect(r.ok).toBe(true);
    expect(r.s).toBeLessThan(4);
    const wrong = await timed(ex({ tcp: { from: 'ca', to: '10.77.0.2', port: 82, ok: true, error: 'refused', timeout: 1 } }));
    expect(wrong).toMatchObject({ ok: false, detail: 'timeout' });
  });
});

describe('http', () => {
  test('a page that answers, with the text', async () => {
    expect((await timed(ex({ http: { from: 'ca', url: 'http://10.77.0.2/copyright', contains: 'BusyBox', ok: true } }))).ok).toBe(true);
  });
  test('a dropped SYN fails as "timeout" within the timeout (it waited ~130 s before)', async () => {
    const r = await timed(ex({ http: { from: 'ca', url: 'http://10.77.0.2:82/', ok: true, timeout: 1 } }));
    expect(r).toMatchObject({ ok: false, detail: 'timeout' });
    expect(r.s).toBeLessThan(4);
    expect((await timed(ex({ http: { from: 'ca', url: 'http://10.77.0.2:82/', ok: true, error: 'timeout', timeout: 1 } }))).ok).toBe(true);
  });
  test('the default timeout (5 s) is honoured too', async () => {
    const r = await timed(ex({ http: { from: 'ca', url: 'http://10.77.0.2:82/', ok: false } }));
    expect(r.ok).toBe(true);
    expect(r.s).toBeGreaterThan(4.5);
    expect(r.s).toBeLessThan(8);
  });
  test('a closed port is refused', async () => {
    expect((await timed(ex({ http: { from: 'ca', url: 'http://10.77.0.2:81/', ok: true, error: 'refused' } }))).ok).toBe(true);
  });
});

describe('output', () => {
  test('match:, absent:, contains: together; a regular expression that does not match names itself', async () => {
    const base = { run: 'ip -br addr show dev eth0', in: 'ca', ok: true };
    expect((await timed(ex({ output: { ...base, match: '10\\.77\\.0\\.\\d+/24', absent: '10.77.0.2/', contains: 'eth0' } }))).ok).toBe(true);
    const bad = await timed(ex({ output: { ...base, match: '^nothing$' } }));
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/no match of \/\^nothing\$\//);
  });
  test('a command that outlives the timeout is killed and the check fails as timeout', async () => {
    const r = await timed(ex({ output: { run: 'sleep 30', in: 'ca', contains: 'x', ok: true, timeout: 1 } }));
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/timeout after 1 s/);
    expect(r.s).toBeLessThan(3);
  });
});

/** A lab from YAML text, as loadLab makes it. */
function lab(yaml: string): Lab {
  return { ...(LabRaw.parse(parseYaml(yaml)) as Omit<Lab, 'id' | 'dir'>), id: '97', dir: '/tmp' };
}

describe('steps', () => {
  test('compare: a counter read before the step and after it; ok: false shows a failing command and goes on', async () => {
    const l = lab(`title: { en: t, zh: t }
teaches: { en: t, zh: t }
steps:
  - say: { en: s, zh: s }
    do:
      - run: ping -c 1 -W 1 10.99.0.1
        in: ca
        ok: false
      - run: ping -c 3 -i 0.2 10.77.0.2
        in: ca
    expect:
      - output: { run: ip -s link show dev eth0, in: cb, match: 'RX:.*\\n\\s*\\d+\\s+(\\d+)', compare: increases }
      - output: { run: ip -s link show dev eth0, in: cb, match: 'TX:.*\\n\\s*\\d+\\s+(\\d+)', compare: increases }
      - output: { run: ip -s link show dev lo, in: cb, match: 'RX:.*\\n\\s*\\d+\\s+(\\d+)', compare: unchanged }
      - output: { run: ip -s link show dev lo, in: cb, match: 'RX:.*\\n\\s*\\d+\\s+(\\d+)', compare: increases }
`);
    const rep = await runLab(runner, l);
    const checks = rep.steps[0]!.checks;
    expect(checks.map((c) => c.ok)).toEqual([true, true, true, false]);
    expect(checks[0]!.text).toMatch(/increases \(\d+ -> \d+\)/);
    expect(rep.steps[0]!.commands.join('\n')).toContain('ping -c 1 -W 1 10.99.0.1');
  });
  test('ok: false on a command that works stops the step, naming the step', async () => {
    const l = lab(`title: { en: t, zh: t }
teaches: { en: t, zh: t }
steps:
  - say: { en: s, zh: s }
    do:
      - run: ip link show lo
        in: ca
        ok: false
`);
    const rep = await runLab(runner, l);
    expect(rep.ok).toBe(false);
    expect(rep.steps.at(-1)!.checks[0]!.text).toMatch(/^step 1: ip -n ca link show lo: succeeded, but the lab says it must fail \(ok: false\)/);
  });
  test('lab script records a lab with a tool that is not installed: the command as written, and the step said', async () => {
    const l = lab(`title: { en: t, zh: t }
teaches: { en: t, zh: t }
steps:
  - say: { en: s, zh: s }
    do:
      - run: ip link set lo mtu 1500
        in: ca
  - say: { en: s2, zh: s2 }
    do:
      - run: nslab-no-such-tool -L
        in: ca
      - run: ip link show lo
        in: cb
`);
    const problems: string[] = [];
    const script = await labScript(runner, l, 'en', problems);
    expect(problems).toEqual(['step 2: nslab-no-such-tool is not installed here: its command is printed as written, not run']);
    expect(script).toContain('ip netns exec ca nslab-no-such-tool -L  # not recorded: nslab-no-such-tool is not installed where this script was made');
    expect(script).toContain('ip -n cb link show lo');
  });
});

describe('the CLI a teacher uses', () => {
  const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
  const nslab = (...args: string[]) => execa('node', [CLI, ...args], { reject: false });
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test('lab check of every shipped lab: exit 0, no problem', async () => {
    const res = await nslab('lab', 'check');
    expect({ code: res.exitCode, err: res.stderr }).toEqual({ code: 0, err: '' });
    expect(res.stdout).toMatch(/^\d+ labs: 0 errors, 0 warnings$/);
  });
  test('lab new, then lab check of its folder, then lab run of it: a lab made from the scaffold runs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nslab-teacher-'));
    dirs.push(root);
    expect((await nslab('lab', 'new', join(root, '96-first-lab'))).exitCode).toBe(0);
    const check = await nslab('lab', 'check', join(root, '96-first-lab'));
    expect({ code: check.exitCode, err: check.stderr }).toEqual({ code: 0, err: '' });
    const run = await nslab('lab', 'run', join(root, '96-first-lab'));
    expect({ code: run.exitCode, err: run.stderr }).toEqual({ code: 0, err: '' });
    expect(run.stdout).toMatch(/lab 96: all checks hold, torn down/);
  });
  test('lab run of a lab with mistakes: every one at once with FILE:LINE, exit 2, nothing run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nslab-teacher-'));
    dirs.push(root);
    mkdirSync(join(root, '95-bad'));
    writeFileSync(join(root, '95-bad', 'lab.yaml'), 'title: { en: t, zh: t }\nteaches: { en: t, zh: t }\nsteps:\n  - say: { en: s, zh: s }\n    do:\n      - run: ip netns add n1\n        undo: ip netns del n1\n    expect:\n      - pong: { from: n1, to: 10.0.0.1 }\n      - ping: { from: n2, to: 10.0.0.1 }\n');
    const before = await snapshot();
    const res = await nslab('lab', 'run', join(root, '95-bad'));
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toMatch(/95-bad\/lab\.yaml:9: error: steps\[0\]\.expect\[0\]\.pong: unknown check kind "pong" \(did you mean "ping"\?\)/);
    expect(res.stderr).toMatch(/95-bad\/lab\.yaml:10: error: steps\[0\]\.expect\[1\]\.ping\.from: no node "n2" in this lab \(did you mean "n1"\?\)/);
    expect(res.stderr).toMatch(/nslab: lab 95: 2 errors \(above\): nothing was run/);
    expect(await snapshot()).toEqual(before);
  });
  test('lab schema prints the JSON Schema of lab.yaml (--topology: of a topology file)', async () => {
    const lab = JSON.parse((await nslab('lab', 'schema')).stdout) as { $schema: string; properties: Record<string, unknown> };
    expect(lab.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(lab.properties)).toEqual(['title', 'teaches', 'note', 'steps', 'verify']);
    const t = JSON.parse((await nslab('lab', 'schema', '--topology')).stdout) as { properties: Record<string, unknown> };
    expect(Object.keys(t.properties)).toContain('links');
  });
  test('lab up 16 --until 3: graph draws MASQUERADE on r1, lab verify checks step 3, lab down removes it', async () => {
    const before = await snapshot();
    const upRes = await nslab('lab', 'up', '16', '--until', '3');
    expect({ code: upRes.exitCode, err: upRes.stderr }).toEqual({ code: 0, err: '' });
    expect(upRes.stdout).toMatch(/lab 16: all checks hold \(up to step 3\)/);
    try {
      const g = await nslab('graph', 'lab', '16', '--live', '--format', 'mermaid');
      expect(g.stdout).toMatch(/r1 \(forwarding\)<br\/>NAT MASQUERADE -s 192\.168\.16\.0\/24 -o eth1/);
      const v = await nslab('lab', 'verify', '16', '--json');
      const checks = JSON.parse(v.stdout) as Array<{ ok: boolean; text: string }>;
      expect(checks.some((c) => /GET http:\/\/198\.51\.100\.2\/copyright/.test(c.text))).toBe(true);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
    } finally {
      expect((await nslab('lab', 'down', '16')).exitCode).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 1200));
    expect(await snapshot()).toEqual(before);
  });
});

describe('ip -batch stopped by a bad argument', () => {
  test('the line that holds the quoted value is the failed one (not the batch\'s first), the lines before it ran', async () => {
    const res = await runner.batch('ip', 'ca', [['link', 'set', 'dev', 'lo', 'mtu', '60000'], ['route', 'add', '10.9.0.0/16', 'via', '2001:db8::1']]);
    try {
      expect(res.failed).toEqual([{ index: 1, message: expect.stringMatching(/inet address is expected rather than "2001:db8::1"/) }]);
      const lo = await runner.run({ argv: ['ip', '-j', 'link', 'show', 'lo'], netns: 'ca' });
      expect((JSON.parse(lo.stdout) as Array<{ mtu: number }>)[0]!.mtu).toBe(60000);
    } finally {
      await runner.run({ argv: ['ip', 'link', 'set', 'dev', 'lo', 'mtu', '65536'], netns: 'ca' });
    }
  });
});
