// Labs: run the course notes' experiments step by step, show the commands, check what must hold,
// take everything down again; or leave them up, verify them, print them as a plain shell script.
import { spawn } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { accessSync, constants, mkdirSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NETNS_DIR } from '../../exec/runner.js';
import { fileURLToPath } from 'node:url';
import type { Recorded } from '../../exec/recorder.js';
import type { Runner } from '../../exec/runner.js';
import { shJoin, toShellScript } from '../../exec/shell.js';
import { TeeRunner } from '../../exec/tee.js';
import { displayArgv } from '../../exec/command.js';
import { NslabError } from '../../errors.js';
import { parsePipework } from '../../model/pipework.js';
import type { Lab, LabAction } from '../../model/lab.js';
import { captureBefore, check, words, type Checked, type Pids } from './check.js';

export { check, words, type Checked } from './check.js';
import { resolveTopology } from '../../model/resolve.js';
import { attach, detach } from '../attach/attach.js';
import { down, up } from '../topology.js';
import { stateDir } from '../state.js';
import { journaled, runUndo } from '../apply.js';
import { activeJournal } from '../clean/journal.js';
import { startTimeSync } from '../../kernel/proc.js';
import { dropPristineTables, tablesNow } from '../clean/recover.js';
import { cmdOp } from '../../kernel/step.js';
import { ovsEnv, startOvs, stopOvs, waitExit } from '../services.js';

/** Language of narration. */
export type Lang = 'en' | 'zh';


/** What {@link runLab} reports. */
export interface LabReport {
  id: string;
  title: string;
  ok: boolean;
  steps: Array<{ title: string; commands: string[]; checks: Checked[] }>;
  teardown: { clean: boolean; errors: string[] };
  /** Set when a `--step` pause said stop (end of input, Ctrl-C): after how many of how many steps. */
  stopped?: { after: number; of: number };
}

const where = (w: string): string | null => (w === 'host' ? null : w);

/** Where OVS keeps its state for labs: inside the sandbox's private /run/nslab. */
function ovsDir(): string {
  return join(stateDir(), 'ovs');
}

/**
 * Points this process's ovs-vsctl at the Open vSwitch a lab started (`lab up` in an earlier process),
 * unless OVS_RUNDIR says otherwise: `lab verify`, `graph --live` and `pingall lab` read its ports.
 */
export function useLabOvs(): void {
  if (!process.env.OVS_RUNDIR && existsSync(join(ovsDir(), 'run', 'db.sock'))) Object.assign(process.env, ovsEnv(ovsDir()));
}

/**
 * In a sandbox without root (a user namespace mapping only the user to root), dnsmasq cannot switch
 * to its own user and group (dnsmasq, dip): it stays root there, which is the user outside.
 */
function rootlessUser(): string[] {
  return process.env.NSLAB_ROOTLESS === '1' ? ['--user=root', '--group=root'] : [];
}

/**
 * What a lab needs that a sandbox without root (a user namespace) cannot give on this machine, or
 * null: Open vSwitch's userspace datapath opens /dev/net/tun, which a user namespace reaches only
 * when the device is open to all (mode 0666, the kernel's default; Debian's udev may make it 0600);
 * dnsmasq drops its supplementary groups (setgroups(2)), which a user namespace denies unless the
 * user's subordinate ids are mapped (/etc/subuid and /etc/subgid, as podman's rootless mode needs).
 * @returns the one-line reason and what to do instead
 */
export function rootlessProblem(lab: Lab): { message: string; hint: string } | null {
  if (process.env.NSLAB_ROOTLESS !== '1') return null;
  const services = new Set(lab.steps.flatMap((st) => st.do.flatMap((a) => ('service' in a ? [a.service] : []))));
  const root = `or run it as root (sudo nslab lab run ${lab.id})`;
  if (services.has('ovs')) {
    let open = false;
    try {
      accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
      open = true;
    } catch {
      /* not open to this user */
    }
    if (!open) return { message: `lab ${lab.id} needs Open vSwitch's userspace datapath, which opens /dev/net/tun: not open to users here, so not in a sandbox without root`, hint: `chmod 0666 /dev/net/tun (the kernel's default mode), ${root}` };
  }
  if (services.has('dnsmasq') && readFileSyncSafe('/proc/self/setgroups') === 'deny') {
    return { message: `lab ${lab.id} runs dnsmasq, which drops its groups (setgroups), denied in a user namespace without subordinate ids`, hint: `give the user subordinate ids (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER), ${root}` };
  }
  return null;
}

function readFileSyncSafe(f: string): string {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    return '';
  }
}

function dnsmasqPid(iface: string): string {
  return join(stateDir(), `dnsmasq-${iface}.pid`);
}

/** Applies one action through the (teeing) runner. */
async function doAction(r: TeeRunner, a: LabAction, pids: Pids): Promise<string[]> {
  if ('run' in a) {
    // Write-ahead: its undo is journaled before it runs (engine/clean), so a killed lab is cleaned.
    const cmd = { argv: words(a.run, pids), netns: where(a.in) };
    const res = await journaled(r, { describe: cmd.argv.join(' '), do: { tool: 'cmd', cmd }, undo: a.undo ? [cmdOp(words(a.undo, pids), where(a.in))] : [] }, () => r.runShown(cmd, { check: false }));
    const shown = shJoin(displayArgv(words(a.run, pids), where(a.in)));
    // `ok: false`: students watch it fail (its error is shown); one that works is the surprise.
    if (a.ok === false) {
      if (res.exitCode === 0) throw new NslabError('COMMAND_FAILED', `${shown}: succeeded, but the lab says it must fail (ok: false)`);
      return [...(a.show ? `${res.stdout}${res.stderr}`.trimEnd().split('\n').filter(Boolean).map((l) => `# ${l}`) : []), `# (fails, as expected: exit code ${res.exitCode})`];
    }
    if (res.exitCode !== 0) throw new NslabError('COMMAND_FAILED', `${shown}: ${res.stderr.trim() || `exit code ${res.exitCode}`}`);
    return a.show && res.stdout.trim() ? res.stdout.trimEnd().split('\n').map((l) => `# ${l}`) : [];
  }
  if ('spawn' in a) {
    const argv = words(a.spawn, pids);
    const full = where(a.in) ? ['nsenter', `--net=/run/netns/${a.in}`, '--', ...argv] : argv;
    const child = spawn(full[0]!, full.slice(1), { stdio: 'ignore', detached: true });
    child.unref();
    pids[a.as] = child.pid!;
    activeJournal()?.write({ t: 'process', pid: child.pid!, start: startTimeSync(child.pid!), argv: full });
    // A process started into a new netns (unshare --net) enters it a moment later: wait for it.
    const self = readLinkSafe('/proc/self/ns/net');
    for (let i = 0; i < 100 && argv[0] === 'unshare' && readLinkSafe(`/proc/${child.pid}/ns/net`) === self; i++) await new Promise((res) => setTimeout(res, 10));
    return [`${shJoin(displayArgv(words(a.spawn, {}), where(a.in)))} >/dev/null 2>&1 &`, `${a.as}=$!`, 'sleep 0.2  # it enters its new netns a moment after it starts'];
  }
  if ('topology' in a) {
    await up(r, resolveTopology(a.topology, 'lab'));
    return [];
  }
  if ('nslab' in a) {
    const res = await runNslab(words(a.nslab, pids), r, where(a.in));
    if (res.exitCode !== 0) throw new NslabError('COMMAND_FAILED', `nslab ${words(a.nslab, pids).join(' ')}: ${res.stderr.trim() || `exit code ${res.exitCode}`}`);
    return res.stdout.trim() ? res.stdout.trimEnd().split('\n').map((l) => `# ${l}`) : [];
  }
  if ('attach' in a) {
    const c = parsePipework(words(a.attach, pids));
    if (c.kind !== 'attach') throw new NslabError('INVALID_INPUT', `attach ${a.attach}: expected pipework's attach form`);
    // Read the guest first: the lab's script must replay as printed, without a rolled-back first try.
    await attach(r, c.request, { readGuests: true });
    return [];
  }
  if (a.service === 'ovs') {
    activeJournal()?.write({ t: 'ovs', dir: ovsDir() });
    await startOvs(r, ovsDir());
    return [];
  }
  const pf = dnsmasqPid(a.iface);
  const leases = join(stateDir(), `dnsmasq-${a.iface}.leases`);
  activeJournal()?.write({ t: 'file', path: leases });
  activeJournal()?.write({ t: 'file', path: pf });
  await journaled(r, { describe: `dnsmasq on ${a.iface}`, do: cmdOp(['dnsmasq']), undo: [cmdOp(['pkill', '-F', pf])] }, () => r.run({
    argv: ['dnsmasq', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', `--interface=${a.iface}`, '--except-interface=lo', `--dhcp-range=${a.range[0]},${a.range[1]},255.255.255.0,1h`, `--dhcp-leasefile=${join(stateDir(), `dnsmasq-${a.iface}.leases`)}`, `--pid-file=${dnsmasqPid(a.iface)}`, '--no-ping', ...rootlessUser()],
    netns: where(a.in),
  }));
  return [];
}

function readLinkSafe(p: string): string {
  try {
    return require_readlink(p);
  } catch {
    return '';
  }
}
import { readlinkSync as require_readlink } from 'node:fs';

/** The CLI entry of this installation (the bundle), for labs that call `nslab` itself. */
function cliPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'main.mjs'))) return join(here, 'main.mjs'); // inside the bundle
  for (let d = here, i = 0; i < 4; i++, d = dirname(d)) if (existsSync(join(d, 'dist', 'bundle', 'main.mjs'))) return join(d, 'dist', 'bundle', 'main.mjs');
  throw new NslabError('MISSING_TOOL', 'the nslab CLI bundle is not built: npm run build');
}

/**
 * Runs `nslab ARGS` as a child. With a tee runner, the commands it ran (NSLAB_RECORD) are recorded
 * as if run here, so the lab shows and scripts the plain ip/iptables commands, not `nslab ...`.
 */
async function runNslab(args: string[], tee: TeeRunner | null, netns: string | null = null): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const { execa } = await import('execa');
  const rec = join(stateDir(), `lab-record-${process.pid}.jsonl`);
  mkdirSync(stateDir(), { recursive: true });
  rmSync(rec, { force: true });
  // `in: NETNS`: nslab runs there (a lab's "VM"), and what it does in its current namespace is shown
  // as done in that netns.
  const argv = [...(netns ? ['nsenter', `--net=${NETNS_DIR}/${netns}`, '--'] : []), process.execPath, cliPath(), ...args];
  const res = await execa(argv[0]!, argv.slice(1), { reject: false, env: tee ? { NSLAB_RECORD: rec } : {} });
  if (tee && existsSync(rec)) {
    for (const l of readFileSync(rec, 'utf8').split('\n').filter(Boolean)) tee.record(inNetns(JSON.parse(l) as Recorded, netns));
  }
  rmSync(rec, { force: true });
  return { exitCode: res.exitCode ?? 1, stdout: String(res.stdout), stderr: String(res.stderr) };
}

/** A recorded command of a child nslab that ran in `netns`: its "current namespace" is that netns. */
function inNetns(c: Recorded, netns: string | null): Recorded {
  if (!netns) return c;
  if (c.type === 'run') return c.cmd.netns ? c : { ...c, cmd: { ...c.cmd, netns } };
  // `ip netns add` names a netns in the mount namespace, which every netns shares; `ip -n X netns add`
  // would make it in ip's own private mount namespace (ip -n remounts /sys there), invisible after.
  if (c.lines.every((l) => l[0] === 'netns')) return c;
  return c.netns ? c : { ...c, netns };
}

/** Undoes one action; already-gone is fine. Returns error lines. */
async function undoAction(r: Runner, a: LabAction, pids: Pids): Promise<string[]> {
  // An undo that puts something back which is there already (the step was skipped by hand, or undone
  // twice) has nothing to do: "Address already assigned", "File exists".
  if ('run' in a) return a.undo ? (await runUndo(r, [cmdOp(words(a.undo, pids), where(a.in))])).filter((e) => !/already assigned|File exists/i.test(e)) : [];
  if ('spawn' in a) {
    const pid = pids[a.as];
    if (pid) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      await waitExit(pid);
    }
    return [];
  }
  if ('topology' in a) {
    await down(r, resolveTopology(a.topology, 'lab'));
    return [];
  }
  if ('nslab' in a) {
    if (!a.undo) return [];
    const res = await runNslab(words(a.undo, pids), null, where(a.in));
    return res.exitCode === 0 || /not found|no such|nothing/i.test(res.stderr) ? [] : [`nslab ${words(a.undo, pids).join(' ')}: ${res.stderr.trim()}`];
  }
  if ('attach' in a) {
    const c = parsePipework(words(a.attach, pids));
    if (c.kind !== 'attach') return [];
    await detach(r, c.request.guest, c.request.ifname).catch((e: unknown) => {
      if (!(e instanceof NslabError) || e.code !== 'NOT_FOUND') throw e;
    });
    return [];
  }
  if (a.service === 'ovs') {
    await stopOvs(r, ovsDir());
    return [];
  }
  const pf = dnsmasqPid(a.iface);
  const errs = existsSync(pf) ? await runUndo(r, [cmdOp(['pkill', '-F', pf])]) : [];
  for (const f of [pf, join(stateDir(), `dnsmasq-${a.iface}.leases`)]) rmSync(f, { force: true });
  return errs;
}

/** Prints a recorded call as the shell lines it stands for. */
function show(c: Recorded): string[] {
  return toShellScript([c]).split('\n').slice(2).filter(Boolean);
}

/** Options of {@link runLab}. */
export interface RunLabOptions {
  lang?: Lang;
  /** Print narration, commands and checks as they happen. */
  print?: boolean;
  /** Leave the lab up at the end (`lab up`). */
  keep?: boolean;
  /** Called between steps (`--step`: wait for Enter); 'stop' ends the lab there (then teardown, or kept with `keep`). */
  pause?: () => Promise<void | 'stop'>;
  /** Check each step's expectations (default true); false only builds (`lab up --no-check`). */
  check?: boolean;
  /** Stop after this step (1-based): `lab up ID --until N` leaves the lab as step N left it. */
  until?: number;
}

/**
 * Runs a lab: each step's actions (their commands shown), then its expectations (✓/✗); then takes it
 * all down in reverse. Must run in a sandbox of its own (the CLI puts it in one).
 * @returns the report; `ok` only when every expectation held and teardown left nothing
 */
export async function runLab(real: Runner, lab: Lab, o: RunLabOptions = {}): Promise<LabReport> {
  const cannot = rootlessProblem(lab);
  if (cannot) throw new NslabError('MISSING_TOOL', cannot.message, { hint: cannot.hint });
  const lang = o.lang ?? 'en';
  const say = (s: string) => o.print && process.stdout.write(s);
  const pids: Pids = {};
  let cur: string[] = [];
  let heredoc = false;
  const r = new TeeRunner(real, (c) => {
    for (const l of show(c)) {
      cur.push(l);
      // A here-document's lines (iptables-restore's input) are input, not commands: no prompt.
      say(heredoc ? `    ${l}\n` : `  $ ${l}\n`);
      if (heredoc && l === 'NSLAB_EOF') heredoc = false;
      else if (!heredoc && l.endsWith("<<'NSLAB_EOF'")) heredoc = true;
    }
  });
  const report: LabReport = { id: lab.id, title: lab.title[lang], ok: true, steps: [], teardown: { clean: true, errors: [] } };
  activeJournal()?.setOwner(`lab ${lab.id}`);
  // Tables the lab's rules create stay, empty, when the rules go (nf_tables): dropped at teardown.
  const tablesBefore = await tablesNow(real);
  say(`Lab ${lab.id}: ${lab.title[lang]}\n${lab.teaches[lang]}\n\n`);
  const done: LabAction[] = [];
  let at = 0;
  try {
    const last = Math.min(o.until ?? lab.steps.length, lab.steps.length);
    for (const [i, st] of lab.steps.slice(0, last).entries()) {
      cur = [];
      at = i + 1;
      say(`[${i + 1}/${lab.steps.length}] ${st.say[lang]}\n`);
      // Numbers an `output` check compares (`compare:`) are read before the step changes anything.
      const before = o.check === false ? [] : await Promise.all(st.expect.map((e) => captureBefore(real, e, pids)));
      for (const a of st.do) {
        const extra = await doAction(r, a, pids);
        done.push(a);
        for (const l of extra) {
          if (!l.startsWith('#')) cur.push(l);
          say(l.startsWith('#') ? `    ${l.slice(2)}\n` : `  $ ${l}\n`);
        }
      }
      const checks: Checked[] = [];
      for (const [k, e] of (o.check === false ? [] : st.expect).entries()) {
        const c = await check(real, e, pids, before[k]);
        checks.push(c);
        say(`  ${c.ok ? '✓' : '✗'} ${c.text}${c.ok || !c.detail ? '' : `  [${c.detail}]`}\n`);
        if (!c.ok) report.ok = false;
      }
      report.steps.push({ title: st.say[lang], commands: cur, checks });
      say('\n');
      if (o.pause && i < last - 1 && (await o.pause()) === 'stop') {
        report.stopped = { after: i + 1, of: last };
        break;
      }
    }
  } catch (err) {
    report.ok = false;
    const msg = `step ${at}: ${err instanceof Error ? err.message : String(err)}`;
    report.steps.push({ title: 'error', commands: cur, checks: [{ ok: false, text: msg }] });
    say(`  ✗ ${msg}\n`);
  }
  if (o.keep) {
    saveLabState(lab.id, pids, tablesBefore, done.length, Math.min(o.until ?? lab.steps.length, lab.steps.length));
    // A teacher's lab outside labs/ is found again by its folder (`nslab clean` takes it down).
    writeFileSync(join(labStateDir(lab.id), 'dir.json'), JSON.stringify(lab.dir));
    return report;
  }
  say('teardown\n');
  report.teardown.errors = await teardown(real, done, pids);
  report.teardown.errors.push(...(await dropPristineTables(real, new Set(tablesBefore))));
  report.teardown.clean = report.teardown.errors.length === 0;
  if (!report.teardown.clean) report.ok = false;
  return report;
}

async function teardown(r: Runner, done: LabAction[], pids: Pids): Promise<string[]> {
  const errors: string[] = [];
  for (const a of [...done].reverse()) {
    try {
      errors.push(...(await undoAction(r, a, pids)));
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  // A bridge an attach made stays while something uses it (an address, a dnsmasq): in a lab those
  // are the lab's own, gone or going now, so its bridges go once they have no port left.
  const bridges = new Set(done.flatMap((a) => {
    if (!('attach' in a)) return [];
    const c = parsePipework(words(a.attach, pids));
    return c.kind === 'attach' ? [c.request.hostIf] : [];
  }));
  const { removeBridgeIfUnused } = await import('../attach/attach.js');
  for (const b of bridges) await removeBridgeIfUnused(r, b, { ownAddresses: true }).catch((e: Error) => errors.push(e.message));
  return errors;
}

/** Where a lab left up keeps the PIDs of the processes it started: one NAME.pid file each. */
function labStateDir(id: string): string {
  return join(stateDir(), 'labs', id);
}

/** Removes a folder if it is empty (the state folder reads as before nslab came). */
function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty, or gone */
  }
}

/** True when `lab up ID` left lab `id` up here (its state folder says how far it got). */
export function labIsUp(id: string): boolean {
  return existsSync(join(labStateDir(id), 'done.json'));
}

function saveLabState(id: string, pids: Pids, tablesBefore: string[], done: number, step: number): void {
  mkdirSync(labStateDir(id), { recursive: true });
  // `lab up --until N`: lab verify then checks step N's expectations, the state it was left in.
  writeFileSync(join(labStateDir(id), 'step.json'), JSON.stringify(step));
  for (const [n, p] of Object.entries(pids)) writeFileSync(join(labStateDir(id), `${n}.pid`), `${p}\n`);
  writeFileSync(join(labStateDir(id), 'tables.json'), JSON.stringify(tablesBefore));
  writeFileSync(join(labStateDir(id), 'done.json'), JSON.stringify(done));
}

function loadLabState(id: string): Pids {
  const d = labStateDir(id);
  if (!existsSync(d)) return {};
  const out: Pids = {};
  for (const f of readdirSync(d)) if (f.endsWith('.pid')) out[f.slice(0, -4)] = Number(readFileSync(join(d, f), 'utf8').trim());
  return out;
}

/**
 * Takes down a lab left up by `lab up`: the actions it did (its state says how many) undone in
 * reverse, after finishing a killed `lab up` of it from its journal. Without either, nothing of the
 * lab is touched; netns it names that still exist are reported (a hand-replayed script).
 */
export async function labDown(r: Runner, lab: Lab): Promise<string[]> {
  // A killed `lab up`/`lab run` of this lab: finished from its journal first (engine/clean).
  const { recoverJournals } = await import('../clean/clean.js');
  const recovered = await recoverJournals(r, (o) => o === `lab ${lab.id}`);
  const pids = loadLabState(lab.id);
  const tables = join(labStateDir(lab.id), 'tables.json');
  const before = existsSync(tables) ? (JSON.parse(readFileSync(tables, 'utf8')) as string[]) : null;
  // Only what `lab up` did: without its state, the lab's undo commands would remove look-alikes of
  // its objects that are not its own (an identical iptables rule of the user's, a netns named alike).
  const doneFile = join(labStateDir(lab.id), 'done.json');
  const done = existsSync(doneFile) ? (JSON.parse(readFileSync(doneFile, 'utf8')) as number) : 0;
  const errors = [...recovered.errors, ...(await teardown(r, lab.steps.flatMap((s) => s.do).slice(0, done), pids))];
  if (before) errors.push(...(await dropPristineTables(r, new Set(before))));
  rmSync(labStateDir(lab.id), { recursive: true, force: true });
  rmdirQuiet(dirname(labStateDir(lab.id)));
  // A lab replayed from its printed script has no nslab state for its networks and nodes: their
  // undo finds nothing to remove. Say what is left rather than report a clean teardown.
  const left = labNetns(lab).filter((n) => existsSync(join(NETNS_DIR, n)));
  if (left.length) errors.push(`netns ${left.join(', ')} still ${left.length === 1 ? 'exists' : 'exist'} (made by a replayed script? nslab's state does not know them): remove them by hand, or leave the sandbox, which drops everything`);
  return errors;
}

/** Checks what holds once the lab is complete (its `verify:` list, else the last step's expectations); left up to step N by `lab up --until N`: that step's expectations. */
export async function labVerify(r: Runner, lab: Lab): Promise<Checked[]> {
  await useLiveLab(r, lab, `nslab lab up ${lab.id} first (in a sandbox), or replay its script: nslab lab script ${lab.id}`);
  const pids = loadLabState(lab.id);
  const stepFile = join(labStateDir(lab.id), 'step.json');
  const step = existsSync(stepFile) ? (JSON.parse(readFileSync(stepFile, 'utf8')) as number) : lab.steps.length;
  const list = step < lab.steps.length ? lab.steps[step - 1]!.expect : (lab.verify ?? lab.steps[lab.steps.length - 1]!.expect);
  const out: Checked[] = [];
  for (const e of list) out.push(await check(r, e, pids));
  return out;
}

/** True when `tool` is no program on PATH (nor a path to one): a lab command that cannot run here. */
function missingTool(tool: string): boolean {
  const isExe = (f: string) => {
    try {
      accessSync(f, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (tool.includes('/')) return !isExe(tool);
  return !(process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => d && isExe(join(d, tool)));
}

/**
 * The lab as a plain shell script: runs it in the current (sandbox) namespace recording what changed,
 * takes it down, and prints the commands with the narration as comments. PIDs of processes the lab
 * starts become shell variables. A `run` whose program is not installed here is printed as written,
 * unrun; an action that fails is said in the script and in `problems` ("step N: ..."), and the rest
 * is still recorded: a teacher gets the script without every tool of the lab.
 * @param problems filled with one line per step action that could not be recorded
 */
export async function labScript(real: Runner, lab: Lab, lang: Lang = 'en', problems: string[] = []): Promise<string> {
  const pids: Pids = {};
  const r = new TeeRunner(real);
  const done: LabAction[] = [];
  const out: string[] = ['#!/bin/sh', `# nslab lab ${lab.id}: ${lab.title[lang]}`, `# ${lab.teaches[lang]}`, `# Run it as root in a fresh sandbox (nslab sandbox), then: nslab lab verify ${lab.id}`, 'set -e'];
  const usesOvs = lab.steps.some((s) => s.do.some((a) => 'service' in a && a.service === 'ovs'));
  if (usesOvs) out.push(...Object.entries(ovsEnv(ovsDir())).map(([k, v]) => `export ${k}=${v}`));
  try {
    for (const [i, st] of lab.steps.entries()) {
      out.push('', `# ${st.say[lang].trim().replace(/\n/g, '\n# ')}`);
      for (const a of st.do) {
        const from = r.calls.length;
        if ('run' in a && missingTool(words(a.run, pids)[0]!)) {
          const tool = words(a.run, pids)[0]!;
          out.push(`${shJoin(displayArgv(words(a.run, pids), where(a.in)))}${a.ok === false ? ' || true' : ''}  # not recorded: ${tool} is not installed where this script was made`);
          problems.push(`step ${i + 1}: ${tool} is not installed here: its command is printed as written, not run`);
          continue;
        }
        let extra: string[];
        try {
          extra = await doAction(r, a, pids);
          done.push(a);
        } catch (err) {
          const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
          problems.push(`step ${i + 1}: could not record: ${msg}`);
          out.push(`# step ${i + 1}: could not record: ${msg}`);
          // What it ran before failing is shown; what it would have done after is not known here.
          extra = [];
          if ('run' in a) done.push(a); // its undo, if any, is harmless when nothing was made
        }
        const lines: string[] = [];
        for (const c of r.calls.slice(from)) {
          for (let l of show(c)) {
            for (const [name, pid] of Object.entries(pids)) l = l.replace(new RegExp(`(?<![0-9])${pid}(?![0-9])`, 'g'), `$${name}`);
            lines.push(l);
          }
        }
        // A command meant to fail must not stop the script (set -e).
        if ('run' in a && a.ok === false && lines.length) lines[lines.length - 1] += ' || true  # it fails, as the lab shows';
        out.push(...lines);
        out.push(...extra.filter((l) => !l.startsWith('#')));
        if ('spawn' in a) out.push(`mkdir -p ${labStateDir(lab.id)} && echo $${a.as} > ${join(labStateDir(lab.id), `${a.as}.pid`)}  # for nslab lab verify/down`);
      }
    }
  } finally {
    await teardown(real, done, pids);
  }
  return out.join('\n') + '\n';
}

/** The node names of a topology file, or none when it cannot be read (labNetns only lists names). */
function topologyNodes(file: string): string[] {
  try {
    const doc = parseYaml(readFileSync(file, 'utf8')) as { nodes?: Record<string, unknown> } | null;
    return Object.keys(doc?.nodes ?? {});
  } catch {
    return [];
  }
}

/**
 * The named netns a lab makes or uses, from its file (pure): its topologies' nodes, the guests of its
 * attaches, `ip netns add NAME` commands, `nslab node run NAME` (except `--net host`), and the nodes
 * its actions run in and its expectations name. What graph and pingall read of a lab built live.
 * @returns names in order of first mention, without `host`
 */
export function labNetns(lab: Lab): string[] {
  const out = new Set<string>();
  const add = (n: string | undefined) => {
    if (n && n !== 'host' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n)) out.add(n);
  };
  const argv = (c: string | string[]) => (Array.isArray(c) ? c : c.split(/\s+/).filter(Boolean));
  for (const st of lab.steps) {
    for (const a of st.do) {
      if ('topology' in a) for (const n of Object.keys(a.topology.nodes ?? {})) add(n);
      if ('attach' in a) {
        const c = parsePipework(words(a.attach, {}));
        if (c.kind === 'attach') add(c.request.guest);
      }
      if ('run' in a) {
        add(a.in);
        const w = argv(a.run);
        const i = w.findIndex((x, k) => x === 'netns' && w[k + 1] === 'add');
        if (w[0] === 'ip' && i >= 0) add(w[i + 2]);
      }
      if ('spawn' in a) add(a.in);
      if ('service' in a && a.service === 'dnsmasq') add(a.in);
      if ('nslab' in a) {
        const w = argv(a.nslab);
        const net = w.indexOf('--net');
        if (w[0] === 'node' && w[1] === 'run' && !(net >= 0 && w[net + 1] === 'host')) add(w[2]);
        // `nslab up FILE`: the file's nodes (a multi-host lab's nodes on every host).
        if (w[0] === 'up' && w[1]) for (const n of topologyNodes(w[1])) add(n);
        add(a.in);
      }
    }
    for (const e of [...st.expect, ...(lab.verify ?? [])]) {
      const x = Object.values(e)[0] as Record<string, unknown>;
      for (const k of ['from', 'in', 'server', 'client']) if (typeof x[k] === 'string') add(x[k] as string);
    }
  }
  return [...out];
}

/**
 * The model of a lab as the kernel holds it (see {@link discover}), read from the netns the lab uses
 * ({@link labNetns}). With `build`, the lab is first built here (as `lab up`, quietly) and taken down
 * after the reading: for a sandbox of its own.
 * @param o `build`: build it first; `hint`: what to suggest when it is not up
 * @throws NslabError `NOT_FOUND` when, live, none of the lab's netns exists here; `APPLY_FAILED` when it does not build
 */
export async function readLabModel(r: Runner, lab: Lab, o: { build: boolean; hint?: string }): Promise<import('../../model/types.js').Model> {
  const { discover } = await import('../../verify/discover.js');
  const names = labNetns(lab);
  if (o.build) {
    // Built to be drawn: its expectations are not checked (lab 09's pings that must fail wait 1 s each).
    const rep = await runLab(r, lab, { keep: true, check: false });
    try {
      if (!rep.ok) throw new NslabError('APPLY_FAILED', `lab ${lab.id} did not build cleanly: ${rep.steps.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => c.text)).join('; ') || 'a step failed'}`);
      return await discover(r, { name: `lab${lab.id}`, netns: names });
    } finally {
      await labDown(r, lab);
    }
  }
  await useLiveLab(r, lab, o.hint ?? `nslab lab up ${lab.id} first (in a sandbox)`);
  return discover(r, { name: `lab${lab.id}`, netns: names });
}

/**
 * Before reading a lab that is up (built in an earlier process): points ovs-vsctl at its OVS, and
 * refuses when none of its netns exists here.
 * @throws NslabError `NOT_FOUND` with `hint`
 */
async function useLiveLab(r: Runner, lab: Lab, hint: string): Promise<void> {
  useLabOvs();
  const names = labNetns(lab);
  const { listNetns } = await import('../../kernel/netns.js');
  const here = new Set(await listNetns(r));
  if (names.length && !names.some((n) => here.has(n))) throw new NslabError('NOT_FOUND', `lab ${lab.id} is not up here: none of its netns (${names.join(', ')}) exists`, { hint });
}
