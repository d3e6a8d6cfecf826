// One exit-code contract for every command, through bin/nslab as a user calls it (README "Exit codes"):
// 0 ok; 1 a step or check failed (after rollback); 2 bad input or a missing object, nothing changed;
// 3 a needed tool or daemon missing, with the hint; 130 interrupted, after cleanup. Never 255, never a
// tool's raw message without nslab's one-line framing. And `-h` on every command and subcommand, usage
// with examples when one is called without what it needs.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSandbox, netSnapshot, runner } from '../helpers/kernel.js';
import { example, topoFile } from '../helpers/topo.js';

const NSLAB = join(process.cwd(), 'bin', 'nslab');
const PIPEWORK = join(process.cwd(), 'bin', 'pipework');
const nslab = (args: string[], o: { env?: Record<string, string>; input?: string } = {}) =>
  execa(NSLAB, args, { reject: false, env: { NO_COLOR: '1', ...o.env }, ...(o.input !== undefined ? { input: o.input } : { stdin: 'ignore' }) });

/** A PATH holding only node, sh and ip: graphviz's `dot` (and most tools) missing; and one without ip too. */
let barePath = '';
let noIpPath = '';

type Row = [what: string, argv: string[], exit: 0 | 1 | 2 | 3, stderr?: RegExp, opts?: { env?: () => Record<string, string>; usage?: boolean }];

const STAR = example('star');
const MISSING = '/nonexistent/topo.yaml';

/**
 * Every command and subcommand, with the situations of the contract it can meet here. Rows run in
 * order (up before verify and down). For exit 2 and 3, the sandbox must be as before.
 */
const ROWS: Row[] = [
  // topology files
  ['plan: ok', ['plan', STAR], 0],
  ['plan: a missing file', ['plan', MISSING], 2, /^nslab: cannot read \/nonexistent\/topo\.yaml: no such file$/],
  ['up: a missing file', ['up', MISSING], 2, /cannot read/],
  ['up: a step fails (rolled back)', ['up', STAR, '--fault-at', '5'], 1, /^nslab: step 6\/\d+ .* failed: /],
  ['verify: not up', ['verify', STAR], 1],
  ['pingall: not up', ['pingall', STAR], 2, /^nslab: topology star is not up here/],
  ['up: ok', ['up', STAR], 0],
  ['verify: ok', ['verify', STAR], 0],
  ['pingall: ok', ['pingall', STAR], 0],
  ['down: ok', ['down', STAR], 0],
  ['down: a missing file', ['down', MISSING], 2, /cannot read/],
  ['verify: a missing file', ['verify', MISSING], 2, /cannot read/],
  ['pingall: a missing file', ['pingall', MISSING], 2, /cannot read/],
  ['graph: ok', ['graph', STAR], 0],
  ['graph: a missing file', ['graph', MISSING], 2, /cannot read/],
  ['graph: a bad format', ['graph', STAR, '--format', 'png'], 2, /--format "png": expected one of dot, mermaid, svg/],
  ['graph: svg without graphviz', ['graph', STAR, '--format', 'svg'], 3, /needs graphviz, which is not installed/, { env: () => ({ PATH: barePath }) }],
  ['graph lab: an unknown lab', ['graph', 'lab', '99'], 2, /no lab "99"/],
  ['verify lab: not up', ['verify', 'lab', '07'], 2, /lab 07 is not up here/],
  ['pingall lab: not up', ['pingall', 'lab', '07'], 2, /lab 07 is not up here/],
  // attach, detach, pipework
  ['attach: no such guest', ['attach', 'nosuch', '--to', 'br0'], 2, /guest "nosuch": no netns of that name/],
  ['attach: OVS not running', ['attach', 'g1', '--to', 'ovs-br0', '--ip', '10.10.0.1/24', '--vlan', '10'], 3, /needs ovsdb-server and ovs-vswitchd running/],
  ['attach: a step fails (rolled back)', ['attach', 'g1', '--to', 'br0', '--ip', '10.0.0.1/24', '--fault-at', '2'], 1],
  ['attach: a bridge name a topology file refuses too', ['attach', 'g1', '--to', 'br;ls', '--ip', '10.0.0.1/24'], 2, /^nslab: --to "br;ls": bridge name "br;ls" has a character other than letters, digits/],
  ['attach --dhcp: no server answers (rolled back)', ['attach', 'g1', '--to', 'br0', '--dhcp'], 1, /-n: udhcpc: no lease, failing$/],
  ['pipework dhcp: an option udhcpc refuses', ['pipework', 'br0', 'g1', 'dhcp:--bogus'], 1, /: udhcpc: unrecognized option '--bogus'$/],
  ['detach: nothing attached', ['detach', 'nosuch', 'eth1'], 2, /nothing attached by nslab as nosuch:eth1/],
  ['verify attachments: none here', ['verify', 'attachments'], 0],
  ['verify attachments: a guest with none', ['verify', 'attachments', 'nosuch'], 2, /^nslab: guest "nosuch": nslab attached nothing to it here$/],
  ['verify attachments: --host', ['verify', 'attachment', '--host', 'vm1'], 2, /^nslab: --host "vm1": verify attachments reads this machine's attachments; --host is for a multi-host topology file$/],
  ['pipework: no such guest', ['pipework', 'br0', 'nosuch', '10.0.0.1/24'], 2, /guest "nosuch"/],
  ['pipework route: no such guest', ['pipework', 'route', 'nosuch', 'add', '10.0.0.0/8', 'dev', 'lo'], 2, /guest "nosuch"/],
  ['pipework route: ip refuses it', ['pipework', 'route', 'g1', 'add', '10.0.0.0/8', 'via', '1.2.3.4'], 1, /^nslab: pipework route g1: ip route add 10\.0\.0\.0\/8 via 1\.2\.3\.4 failed in the guest: /],
  ['pipework: no arguments', ['pipework'], 2, /^nslab: pipework needs a host interface/, { usage: true }],
  // labs
  ['lab ls: ok', ['lab', 'ls'], 0],
  ['lab show: ok', ['lab', 'show', '01'], 0],
  ['lab show: an unknown lab', ['lab', 'show', '99'], 2, /no lab "99"/],
  ['lab run: an unknown lab', ['lab', 'run', '99'], 2, /no lab "99"/],
  ['lab up: an unknown lab', ['lab', 'up', '99'], 2, /no lab "99"/],
  ['lab down: an unknown lab', ['lab', 'down', '99'], 2, /no lab "99"/],
  ['lab verify: not up', ['lab', 'verify', '07'], 2, /lab 07 is not up here/],
  ['lab script: an unknown lab', ['lab', 'script', '99'], 2, /no lab "99"/],
  ['lab shell: no such node', ['lab', 'shell', '07', 'nosuch'], 2, /^nslab: lab shell 07 nosuch: no netns "nosuch" here; lab 07's nodes: c1, c2$/],
  ['lab: an unknown action', ['lab', 'bogus'], 2, /Invalid values/],
  // networks and nodes
  ['network ls: ok', ['network', 'ls'], 0],
  ['network create: a reserved name', ['network', 'create', 'host'], 2, /network name "host" is reserved/],
  ['network inspect: no such network', ['network', 'inspect', 'nosuch'], 2, /network "nosuch" not found/],
  ['network rm: no such network', ['network', 'rm', 'nosuch'], 2, /network "nosuch" not found/],
  ['network connect: no such node', ['network', 'connect', 'nonet', 'g9'], 2, /not found/],
  ['network disconnect: no such node', ['network', 'disconnect', 'nonet', 'g9'], 2, /not found/],
  ['network default: a bad --bip', ['network', 'default', '--bip', 'bogus'], 2, /--bip "bogus"/],
  ['node ls: ok', ['node', 'ls'], 0],
  ['node run: a bad name', ['node', 'run', 'x y'], 2, /node name "x y"/],
  ['node inspect: no such node', ['node', 'inspect', 'nosuch'], 2, /node "nosuch" not found/],
  ['node exec: no such node', ['node', 'exec', 'nosuch', '--', 'true'], 2, /node "nosuch" not found/],
  ['node rm: no such node', ['node', 'rm', 'nosuch'], 2, /node "nosuch" not found/],
  // services
  ['service ovs status: not running (as an LSB status: 3)', ['service', 'ovs', 'status'], 3],
  ['service: an unknown service', ['service', 'bogus', 'start'], 2, /Invalid values/],
  ['service dnsmasq start: no interface named', ['service', 'dnsmasq', 'start'], 2, /needs the interface/],
  ['service dnsmasq start: no such interface', ['service', 'dnsmasq', 'start', 'nosuch0'], 2, /interface "nosuch0" does not exist here/],
  ['service dnsmasq status: not running', ['service', 'dnsmasq', 'status'], 3],
  // the rest
  ['inspect: ok', ['inspect'], 0],
  ['inspect: an unknown option', ['inspect', '--bogus'], 2, /^nslab: Unknown argument: bogus \(nslab inspect --help\)$/],
  ['clean: nothing to clean', ['clean', '--dry-run'], 0],
  ['clean: no such owner', ['clean', 'nosuch'], 2, /nothing here is owned by nosuch/],
  ['doctor: ok', ['doctor', '--json'], 0],
  ['doctor: iproute2 missing', ['doctor'], 3, undefined, { env: () => ({ PATH: noIpPath }) }],
  ['docker watch: an unknown option', ['docker', 'watch', '--bogus'], 2, /Unknown argument: bogus/],
  ['docker plugin: an unknown option', ['docker', 'plugin', '--bogus'], 2, /Unknown argument: bogus/],
  ['docker restore: no container named', ['docker', 'restore'], 2, /docker restore needs CONTAINER/, { usage: true }],
  ['capture: an unknown option', ['capture', 'h1:eth0', '--bogus'], 2, /Unknown argument: bogus/],
  ['link: an unknown option', ['link', 'down', 'h1:eth0', '--bogus'], 2, /Unknown argument: bogus/],
  ['ui: an unknown option', ['ui', STAR, '--bogus'], 2, /Unknown argument: bogus/],
  ['completion: ok', ['completion', 'bash'], 0],
  ['gen: ok', ['gen', 'star', '--nodes', '3'], 0],
  ['gen: a bad count', ['gen', 'star', '--nodes', '0'], 2, /^nslab: --nodes "0": expected a whole number from 1 to 60000$/],
  ['completion: an unknown shell', ['completion', 'tcsh'], 2, /Choices: "bash", "zsh", "fish"/],
  ['sandbox: ok', ['sandbox', '--', 'true'], 0],
  ['no command', [], 2, /^nslab: name a command \(listed above\)$/, { usage: true }],
  ['an unknown command', ['bogus'], 2, /Unknown argument: bogus/],
];

let before: Awaited<ReturnType<typeof netSnapshot>>;

/** Rows that change nothing whatever their order (refusals, 2 and 3; reads): run at once, 3 at a time, before the others. */
const READS = new Set(['plan: ok', 'graph: ok', 'lab ls: ok', 'lab show: ok', 'network ls: ok', 'node ls: ok', 'inspect: ok', 'clean: nothing to clean', 'completion: ok', 'gen: ok', 'gen: a bad count', 'sandbox: ok']);
const concurrent = (r: Row) => r[2] === 2 || r[2] === 3 || READS.has(r[0]);
const early = new Map<string, Awaited<ReturnType<typeof nslab>>>();
let afterEarly: Awaited<ReturnType<typeof netSnapshot>>;

beforeAll(async () => {
  await assertSandbox();
  const dir = mkdtempSync(join(tmpdir(), 'nslab-bare-'));
  for (const [sub, tools] of [['bare', ['node', 'sh', 'ip']], ['noip', ['node', 'sh']]] as const) {
    mkdirSync(join(dir, sub));
    for (const t of tools) symlinkSync((await execa('sh', ['-c', `command -v ${t}`])).stdout.trim(), join(dir, sub, t));
  }
  barePath = join(dir, 'bare');
  noIpPath = join(dir, 'noip');
  await runner.run({ argv: ['ip', 'netns', 'add', 'g1'] });
  before = await netSnapshot();
  // The concurrent rows' results, then one look at the sandbox: it must be as before (each row's
  // own assertions follow in its test).
  const rows = ROWS.filter(concurrent);
  for (let i = 0; i < rows.length; i += 3) {
    await Promise.all(rows.slice(i, i + 3).map(async (r) => early.set(r[0], await nslab(r[1], { env: r[4]?.env?.() }))));
  }
  afterEarly = await netSnapshot();
});

afterAll(async () => {
  await runner.run({ argv: ['ip', 'netns', 'del', 'g1'] }, { check: false });
  if (barePath) rmSync(join(barePath, '..'), { recursive: true, force: true });
});

// Rows padded to one length: jest takes a test function declaring more parameters than its row has
// values for a done-callback test, and waits for the callback.
test.each(ROWS.map((r) => [r[0], r[1], r[2], r[3], r[4] ?? {}] as const))('%s', async (_what, argv, exit, re, o) => {
  const res = early.get(_what) ?? (await nslab(argv, { env: o.env?.() }));
  const lines = res.stderr.split('\n').filter(Boolean);
  expect({ argv, exit: res.exitCode, stderr: res.stderr }).toMatchObject({ exit });
  expect(res.exitCode).not.toBe(255);
  if (exit !== 0) {
    if (o.usage) {
      expect(res.stderr).toContain('Examples:');
      expect(lines[lines.length - 1]).toMatch(/^nslab: /);
      if (re) expect(lines[lines.length - 1]).toMatch(re);
    } else {
      // nslab's framing: its one line, then at most a hint. A report (verify's mismatches, doctor's
      // table, a service's status) is on stdout, with nothing unframed on stderr.
      for (const l of lines) expect(l).toMatch(/^(nslab: |  hint: |note: )/);
      const report = res.stdout.trim() !== '' && (argv[0] === 'verify' || argv[0] === 'doctor' || argv[2] === 'status');
      expect(lines.filter((l) => l.startsWith('nslab: '))).toHaveLength(report ? 0 : 1);
      if (re) expect(lines[0]).toMatch(re);
    }
  }
  // A refusal changes nothing; so does a rolled-back failure (1); a success is undone by its row's pair.
  if (early.has(_what)) expect(afterEarly).toEqual(before);
  else if (exit !== 0 || argv[0] === 'down') expect(await netSnapshot()).toEqual(before);
});

test('the table names every command and subcommand that `nslab --help` lists', async () => {
  const named = new Set(ROWS.map((r) => r[1].filter((w) => /^[a-z]+$/.test(w)).slice(0, 2).join(' ')));
  for (const path of await commandPaths()) expect([...named].some((n) => n === path || n.startsWith(`${path} `))).toBe(true);
});

/** Every command (and the subcommands of those that have them) as `nslab --help` lists it. */
async function commandPaths(): Promise<string[]> {
  // The "Commands:" section of a help text only (its examples name commands too).
  const section = (help: string) => (help.split('\nCommands:\n')[1] ?? '').split('\n\n')[0]!;
  const list = async (args: string[]) => [...section((await nslab([...args, '--help'])).stdout).matchAll(/^ {2}nslab ((?:[a-z]+ ?)+?)(?: [<[]|\s{2,}|$)/gm)].map((m) => m[1]!.trim());
  const top = await list([]);
  const out: string[] = [];
  for (const c of top) {
    const subs = (await list([c])).filter((x) => x.startsWith(`${c} `));
    out.push(...(subs.length ? subs : [c]));
  }
  return out;
}

test('-h on every command and subcommand: usage and examples, exit 0; bin/pipework --help too', async () => {
  const paths = await commandPaths();
  expect(paths.length).toBeGreaterThanOrEqual(25);
  const outs: Array<readonly [string, Awaited<ReturnType<typeof nslab>>]> = [];
  for (let i = 0; i < paths.length; i += 4) outs.push(...(await Promise.all(paths.slice(i, i + 4).map(async (p) => [p, await nslab([...p.split(' '), '-h'])] as const))));
  for (const [p, res] of outs) {
    expect({ p, exit: res.exitCode }).toEqual({ p, exit: 0 });
    expect(res.stdout).toMatch(new RegExp(`^(nslab ${p}|Usage)`));
    expect(res.stdout).toContain('Examples:');
  }
  const pw = await execa(PIPEWORK, ['--help'], { reject: false });
  expect(pw.exitCode).toBe(0);
  expect(pw.stdout).toMatch(/^Usage:\n {2}pipework <hostinterface>/);
  expect(pw.stdout).toContain('Examples:');
});

test.each([
  [['up'], 'up needs FILE'],
  [['lab'], 'lab needs ACTION'],
  [['node'], 'node needs COMMAND'],
  [['network'], 'network needs COMMAND'],
  [['detach', 'g1'], 'detach needs IFNAME'],
  [['node', 'rm'], 'node rm needs NAMES'],
  [['service', 'ovs'], 'service needs ACTION'],
])('%j without what it needs: its usage and examples, then one line naming what is missing, exit 2', async (argv, line) => {
  const res = await nslab(argv);
  expect(res.exitCode).toBe(2);
  expect(res.stdout).toBe('');
  expect(res.stderr).toContain(`nslab ${argv[0]}`);
  expect(res.stderr).toContain('Examples:');
  expect(res.stderr.trimEnd().split('\n').pop()).toBe(`nslab: ${line} (usage above)`);
});

test('a failed step: the one line and --json name the same step number', async () => {
  const line = await nslab(['up', STAR, '--fault-at', '7']);
  const json = await nslab(['up', STAR, '--fault-at', '7', '--json']);
  expect([line.exitCode, json.exitCode]).toEqual([1, 1]);
  const n = Number(/^nslab: step (\d+)\/\d+ /.exec(line.stderr)?.[1]);
  expect(n).toBe(8);
  expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: 'APPLY_FAILED', failedStep: 8, steps: 34 } });
  expect(await netSnapshot()).toEqual(before);
});

test('Ctrl-C (SIGINT) during up: what was done is undone, exit 130', async () => {
  const nodes = Array.from({ length: 60 }, (_, i) => `h${i}`);
  const file = topoFile('sigint', `bridges:\n  br9: {}\nnodes:\n${nodes.map((n, i) => `  ${n}: { interfaces: { eth0: { addresses: [10.9.${Math.floor(i / 200)}.${(i % 200) + 1}/16] } } }`).join('\n')}\nlinks:\n${nodes.map((n) => `  - [${n}:eth0, br9]`).join('\n')}\n`);
  const child = execa(NSLAB, ['up', file], { reject: false, env: { NO_COLOR: '1' } });
  // Interrupt once it has started to change things: its netns appear first.
  for (let i = 0; i < 200 && readdirSafe('/run/netns').filter((n) => /^h\d+$/.test(n)).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  child.kill('SIGINT');
  const res = await child;
  expect({ exit: res.exitCode, stderr: res.stderr }).toMatchObject({ exit: 130 });
  expect(res.stderr).toMatch(/^nslab: interrupted/m);
  // Netns deletion is asynchronous in the kernel (~1 s): wait for it before comparing.
  for (let i = 0; i < 40 && readdirSafe('/run/netns').some((n) => /^h\d+$/.test(n)); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await netSnapshot()).toEqual(before);
});

test('lab run --step with stdin closed: stops after the first step with a summary, tears down, exit 130', async () => {
  const res = await nslab(['lab', 'run', '01', '--step'], { input: '' });
  expect(res.exitCode).toBe(130);
  expect(res.stdout.trimEnd().split('\n').pop()).toBe('lab 01: stopped after step 1/4 (1 check held, 0 failed), torn down');
  expect(await netSnapshot()).toEqual(before);
});

test('lab up --step with stdin closed: leaves what was built, and says so', async () => {
  const res = await nslab(['lab', 'up', '01', '--step'], { input: '' });
  expect(res.exitCode).toBe(130);
  expect(res.stdout.trimEnd().split('\n').pop()).toBe('lab 01: stopped after step 1/4 (1 check held, 0 failed); left up what step 1 built: nslab lab down 01');
  expect(readdirSafe('/run/netns')).toContain('ns-test');
  expect((await nslab(['lab', 'down', '01'])).exitCode).toBe(0);
  for (let i = 0; i < 40 && readdirSafe('/run/netns').includes('ns-test'); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await netSnapshot()).toEqual(before);
});

function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}
