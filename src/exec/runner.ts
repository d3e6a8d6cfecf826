// The one runner: every external command nslab runs goes through here, as an argv array.
import { spawn } from 'node:child_process';
import { startupSnapshot } from 'node:v8';
import { availableParallelism, constants as osConstants } from 'node:os';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isQuery } from './tee.js';
import type { BatchJob, BatchResult, BatchTool, Command, Result, SysctlWrite } from './command.js';
import { NslabError } from '../errors.js';
import { hintFor } from './hints.js';
import { batchLine, parseBatchErrors } from './batch.js';
import { packageRoot, stateDir } from '../paths.js';
import { checkInterrupted, isInterrupted } from './interrupt.js';

/**
 * A netns is named by its name under NETNS_DIR, or by an absolute path (`/proc/PID/ns/net`).
 * Where `ip netns add` keeps its named netns mounts (ip-netns(8)). */
export const NETNS_DIR = '/run/netns';

/** Options of {@link Runner.run}. */
export interface RunOptions {
  /** Throw an {@link NslabError} (`COMMAND_FAILED`) on a non-zero exit; default true. */
  check?: boolean;
}

/** Options of {@link Runner.batch}. */
export interface BatchOptions {
  /** `-force`: go on after a failed line and report every failure (used for undo). */
  force?: boolean;
  /** Sysctls to write in the netns first, by the same process (`ip` without `-force` only). */
  sysctls?: SysctlWrite[];
}

/**
 * Runs external commands. The real runner spawns processes; the recording runner only records,
 * for unit tests, `plan` and `--dry-run` (STYLE.md §2).
 */
export interface Runner {
  /** Runs one command; throws `COMMAND_FAILED` on a non-zero exit unless `check` is false. */
  run(cmd: Command, opts?: RunOptions): Promise<Result>;
  /**
   * Runs `TOOL -batch -` with one line per entry of `lines` (each an argv without the tool name),
   * inside `netns` when given. Failed lines are returned, not thrown; a failure to start throws.
   */
  batch(tool: BatchTool, netns: string | null, lines: string[][], opts?: BatchOptions): Promise<BatchResult>;
  /**
   * Runs one `ip -batch` (sysctls first) in each of many netns, in turn, as if by {@link batch} each:
   * one result per job, in order; a job that could not start (its netns is gone) has one failure at
   * index -1 (nothing of it ran). For the real runner this is one process per core, not one per netns.
   */
  batchEach(jobs: BatchJob[]): Promise<BatchResult[]>;
}

/** The script that writes sysctls and runs `ip -batch` inside netns, job after job (share/netns-batch.sh). */
export function netnsBatchScript(): string {
  return join(packageRoot(), 'share', 'netns-batch.sh');
}

/** The sysctls of a batch as netns-batch.sh takes them: `KEY=VALUE KEY=VALUE`. */
function sysctlArg(sysctls: SysctlWrite[] = []): string {
  for (const w of sysctls) {
    if (!/^[A-Za-z0-9_./@+-]+$/.test(w.key) || !/^[A-Za-z0-9_.:-]*$/.test(w.value)) throw new NslabError('INVALID_INPUT', `sysctl ${w.key}=${w.value}: a key or value netns-batch.sh cannot carry (blanks or shell characters)`);
  }
  return sysctls.map((w) => `${w.key}=${w.value}`).join(' ');
}

/** A netns as a path nsenter opens: `/run/netns/NAME`, or the path itself. */
export function netnsPath(netns: string): string {
  return netns.startsWith('/') ? netns : `${NETNS_DIR}/${netns}`;
}

/** The argv that runs `cmd` inside its netns: `nsenter --net=/run/netns/NS -- ...` (linear cost, unlike `ip -n`). */
export function netnsArgv(cmd: Command): string[] {
  if (!cmd.netns) return cmd.argv;
  return ['nsenter', `--net=${netnsPath(cmd.netns)}`, '--', ...cmd.argv];
}

/** With NSLAB_TRACE set, prints `nslab-trace at Tms LABEL` (ms since the process started): for finding where a call's time goes. */
export function traceMark(label: string): void {
  if (process.env.NSLAB_TRACE) process.stderr.write(`nslab-trace at ${performance.now().toFixed(0)}ms ${label}\n`);
}

/** Builds the `COMMAND_FAILED` error for a command: names the command, its exit code and stderr, with a hint. */
export function commandError(cmd: Command, exitCode: number, stderr: string): NslabError {
  const where = cmd.netns ? ` (in netns ${cmd.netns})` : '';
  const first = stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? `exit code ${exitCode}`;
  return new NslabError('COMMAND_FAILED', `${cmd.argv.join(' ')}${where}: ${first}`, {
    hint: hintFor(stderr),
    details: { argv: cmd.argv, netns: cmd.netns ?? null, exitCode, stderr: stderr.trim() },
  });
}

/** The real runner: spawns each command with node's spawn (an argv, no shell). */
export class ExecRunner implements Runner {
  async run(cmd: Command, opts: RunOptions = {}): Promise<Result> {
    // After Ctrl-C nothing new starts; unchecked runs go on (undo, reads whose failure is handled).
    if (opts.check !== false) checkInterrupted(cmd.argv.join(' '));
    if (process.env.NSLAB_RECORD && !isQuery(cmd.argv)) record(asRecorded(cmd));
    return this.exec(cmd, opts);
  }

  /** Runs without recording (batch() has recorded its lines already). */
  private async exec(cmd: Command, opts: RunOptions = {}): Promise<Result> {
    const [file, ...args] = netnsArgv(cmd);
    const t0 = performance.now();
    let res;
    try {
      res = await spawnCollect(file!, args, cmd.input ?? '', cmd.logFile, cmd.timeoutMs, cmd.env);
    } catch (err) {
      throw new NslabError('MISSING_TOOL', `cannot run ${file}: ${(err as Error).message}`, { cause: err, hint: 'run `nslab doctor` to see what to install' });
    }
    if (res.failed && res.exitCode === undefined) {
      throw new NslabError('MISSING_TOOL', `cannot run ${file}: ${res.shortMessage}`, { hint: 'run `nslab doctor` to see what to install' });
    }
    if (process.env.NSLAB_TRACE) process.stderr.write(`nslab-trace at ${t0.toFixed(0)}ms took ${(performance.now() - t0).toFixed(1)}ms exit=${res.exitCode} ${file} ${args.join(' ').slice(0, 300)}${cmd.input ? ` <<< ${JSON.stringify(cmd.input.slice(0, 200))}` : ''}\n`);
    const logged = cmd.logFile && res.exitCode !== 0 ? await readTail(cmd.logFile) : '';
    const result: Result = { stdout: String(res.stdout ?? ''), stderr: logged || String(res.stderr ?? ''), exitCode: res.exitCode ?? 1, ...(res.timedOut ? { timedOut: true } : {}) };
    if (result.exitCode !== 0 && opts.check !== false) throw commandError(cmd, result.exitCode, result.stderr);
    return result;
  }

  async batch(tool: BatchTool, netns: string | null, lines: string[][], opts: BatchOptions = {}): Promise<BatchResult> {
    const sysctls = opts.sysctls ?? [];
    if (lines.length === 0 && sysctls.length === 0) return { failed: [], stderr: '' };
    if (sysctls.length > 0 && (tool !== 'ip' || opts.force)) throw new Error('runner: sysctls go only with a plain ip batch');
    if (!opts.force) checkInterrupted(`${tool} -batch (${lines.length} commands)`);
    recordBatch(tool, netns, lines, opts);
    const input = lines.map(batchLine).join('\n') + '\n';
    // With sysctls, one process writes them and becomes ip (share/netns-batch.sh), not two.
    const argv = sysctls.length ? ['sh', netnsBatchScript(), 'in', sysctlArg(sysctls)] : [tool, ...(opts.force ? ['-force'] : []), '-batch', '-'];
    const res = await this.exec({ argv, netns, input }, { check: false });
    const out = batchOutcome(res.exitCode, res.stderr, lines);
    if (out === null) {
      // The tool failed before reading any line (bad netns, missing tool): nothing was applied.
      throw commandError({ argv, netns }, res.exitCode, res.stderr);
    }
    return out;
  }

  async batchEach(jobs: BatchJob[]): Promise<BatchResult[]> {
    if (jobs.length === 0) return [];
    // After Ctrl-C: none of them starts (index -1, as for a netns that is gone), so apply rolls back.
    if (isInterrupted()) return jobs.map(() => ({ failed: [{ index: -1, message: 'interrupted (Ctrl-C)' }], stderr: 'interrupted (Ctrl-C)' }));
    for (const j of jobs) recordBatch('ip', j.netns, j.lines, { sysctls: j.sysctls ?? [] });
    const dir = batchDir();
    try {
      const files = jobs.map((j, k) => {
        const file = join(dir, String(k));
        writeFileSync(file, j.lines.map(batchLine).join('\n') + '\n');
        return file;
      });
      // One process per core, each taking every n-th job: a job is mostly starting processes (CPU),
      // which two cores halve (50 guests: 92 against 155-188 ms here); the kernel's part is small.
      const n = Math.min(availableParallelism(), jobs.length);
      const lanes = Array.from({ length: n }, (_, l) => jobs.map((_, k) => k).filter((k) => k % n === l));
      const out = new Array<BatchResult>(jobs.length);
      await Promise.all(
        lanes.map(async (ks) => {
          const args = ks.flatMap((k) => [netnsPath(jobs[k]!.netns), files[k]!, sysctlArg(jobs[k]!.sysctls)]);
          const res = await this.exec({ argv: ['sh', netnsBatchScript(), 'each', ...args] }, { check: false });
          splitJobs(res.stderr, ks.map((k) => jobs[k]!.lines), res.exitCode).forEach((r, i) => (out[ks[i]!] = r));
        }),
      );
      return out;
    } finally {
      rmSync(dir, { recursive: true, force: true });
      try {
        rmdirSync(stateDir()); // made for the batch files alone: it goes with them
      } catch {
        /* holds other state, or is a mount point (the sandbox's) */
      }
    }
  }
}

/**
 * Read-only `ip -j GLOBAL -batch` queries in many named netns, one `sh netns-batch.sh query` process
 * per core walking its share of them (a netns costs one nsenter + ip there, 1-2 ms, instead of a
 * process spawned from node, 3.6 ms of main thread each). Through `r.run`, so a recording runner sees it.
 * @param r the runner
 * @param netns netns names (or paths) to read, each at most once
 * @param queries the batch lines (argv without `ip`), the same in every netns
 * @param global global options for every line (e.g. `['-d']`)
 * @returns per netns, one parsed JSON array per query; a netns that could not be read (gone, or ip
 *   failed there) maps to an Error with ip's message instead
 */
export async function queryJsonEach(r: Runner, netns: string[], queries: string[][], global: string[] = []): Promise<Map<string, unknown[][] | Error>> {
  const out = new Map<string, unknown[][] | Error>();
  if (netns.length === 0) return out;
  const dir = batchDir();
  try {
    const file = join(dir, 'queries');
    writeFileSync(file, queries.map(batchLine).join('\n') + '\n');
    const n = Math.min(availableParallelism(), netns.length);
    const lanes = Array.from({ length: n }, (_, l) => netns.filter((_, k) => k % n === l));
    await Promise.all(
      lanes.map(async (names) => {
        const res = await r.run({ argv: ['sh', netnsBatchScript(), 'query', file, global.join(' '), ...names.map(netnsPath)] }, { check: false });
        const outs = res.stdout.split(/^nslab-job-end$/m);
        const errs = splitJobs(res.stderr, names.map(() => queries), res.exitCode);
        names.forEach((name, k) => {
          const e = errs[k]!;
          if (e.failed.length) {
            out.set(name, new Error(e.failed[0]!.message));
            return;
          }
          const lines = (outs[k] ?? '').split('\n').filter((l) => l.trim());
          out.set(name, queries.map((_, i) => (lines[i] ? (JSON.parse(lines[i]!) as unknown[]) : [])));
        });
      }),
    );
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync(stateDir());
    } catch {
      /* holds other state, or is a mount point (the sandbox's) */
    }
  }
}

/**
 * A fresh folder for batch files, under nslab's state directory: /run is tmpfs (as fast as /dev/shm:
 * writing and removing 1000 small files took 11 + 10 ms there against 45 + 27 ms in /tmp), a sandbox
 * mounts its own there, and `nslab clean` removes what a killed run left (`batch-*`).
 */
function batchDir(): string {
  const base = stateDir();
  for (let tries = 0; ; tries++) {
    mkdirSync(base, { recursive: true });
    try {
      return mkdtempSync(join(base, 'batch-'));
    } catch (err) {
      // Another nslab that just ended may have removed the (empty) folder between the two calls.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || tries >= 5) throw err;
    }
  }
}

/** Splits the stderr of `netns-batch.sh each` (each job's messages, then `nslab-job-end EXIT`) into results. */
function splitJobs(stderr: string, jobLines: string[][][], exitCode: number): BatchResult[] {
  const count = jobLines.length;
  const parts: Array<{ exit: number; stderr: string }> = [];
  let buf: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^nslab-job-end (\d+)$/.exec(line);
    if (m) {
      parts.push({ exit: Number(m[1]), stderr: buf.join('\n') });
      buf = [];
    } else if (line) buf.push(line);
  }
  return Array.from({ length: count }, (_, k) => {
    const p = parts[k] ?? { exit: 1, stderr: buf.join('\n') || `netns-batch.sh stopped before this job (exit ${exitCode})` };
    // Could not start (netns gone): nothing of it ran, not even its sysctls (index -1).
    return batchOutcome(p.exit, p.stderr, jobLines[k]!) ?? { failed: [{ index: -1, message: p.stderr.trim().split('\n').slice(-1)[0] || `exit code ${p.exit}` }], stderr: p.stderr };
  });
}

/** What a batch's exit code and stderr say: failed lines, a sysctl that failed, or null when nothing ran. */
function batchOutcome(exitCode: number, stderr: string, lines: string[][] = []): BatchResult | null {
  if (exitCode === 3) {
    const m = /^cannot set sysctl (\S+): (.*)$/m.exec(stderr);
    if (m) return { failed: [], stderr, sysctlFailed: { key: m[1]!, message: m[0] } };
  }
  const failed = parseBatchErrors(stderr);
  if (exitCode !== 0 && failed.length === 0) {
    // ip exits at once on a bad argument (invarg(): `inet address is expected rather than "X"`),
    // without `Command failed -:N`, after running the lines before it: the line holding the quoted
    // value is the one that failed, not the batch's first.
    const k = lineNamedBy(stderr, lines);
    if (k !== null) return { failed: [{ index: k, message: stderr.trim().split('\n').slice(-1)[0]! }], stderr };
    return null;
  }
  return { failed, stderr };
}

/** The index of the first batch line holding a value the tool's message quotes, or null. */
function lineNamedBy(stderr: string, lines: string[][]): number | null {
  for (const m of stderr.matchAll(/"([^"\s]+)"/g)) {
    const k = lines.findIndex((l) => l.includes(m[1]!));
    if (k >= 0) return k;
  }
  return null;
}

/** With NSLAB_RECORD, a batch is recorded as its sysctls (one `sysctl -q -w` each) and its lines. */
function recordBatch(tool: BatchTool, netns: string | null, lines: string[][], opts: BatchOptions): void {
  if (!process.env.NSLAB_RECORD) return;
  for (const w of opts.sysctls ?? []) record({ type: 'run', cmd: { argv: ['sysctl', '-q', '-w', `${w.key}=${w.value}`], netns } });
  if (lines.length) record({ type: 'batch', tool, netns, lines, force: opts.force ?? false });
}

/**
 * With NSLAB_RECORD=FILE, every command that changes something is appended to FILE as a JSON line:
 * how a lab that calls `nslab` as a command still prints the plain commands it ran.
 */
/** A command as recorded: an `ip -batch -` run by hand becomes its lines, so scripts show them plainly. */
function asRecorded(cmd: Command): unknown {
  const i = cmd.argv.indexOf('-batch');
  if (i > 0 && cmd.argv[i + 1] === '-' && cmd.input && (cmd.argv[0] === 'ip' || cmd.argv[0] === 'tc' || cmd.argv[0] === 'bridge')) {
    const lines = cmd.input.split('\n').filter((l) => l.trim()).map((l) => (l.match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"(.*)"$/, '$1')));
    return { type: 'batch', tool: cmd.argv[0], netns: cmd.netns ?? null, lines, force: cmd.argv.includes('-force') };
  }
  return { type: 'run', cmd };
}

export function recordCall(c: unknown): void {
  if (process.env.NSLAB_RECORD) record(c);
}

function record(c: unknown): void {
  appendFileSync(process.env.NSLAB_RECORD!, JSON.stringify(c) + '\n');
}

async function readTail(file: string): Promise<string> {
  return logError(await readFile(file, 'utf8').catch(() => ''));
}

/**
 * The lines of a failed daemonizing client's log (busybox udhcpc) that say why it failed: its own
 * error line before a usage text it printed (an option it refused), else its last lines without the
 * progress it reports on the way ("broadcasting discover"), so "no lease, failing" is what is shown.
 */
export function logError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const usage = lines.findIndex((l) => /^(BusyBox v|Usage:)/.test(l));
  if (usage > 0) return lines.slice(Math.max(0, usage - 2), usage).join('\n');
  const said = lines.filter((l) => !/broadcasting discover|sending discover|started, v\d|broadcasting select/.test(l));
  return (said.length ? said : lines).slice(-3).join('\n');
}

/**
 * Spawns a command, feeds it `input` and collects its output: node's own spawn. Measured here (`ip -j
 * link show`, 2 cores): execa took 6-10 ms a call (4-6 ms of it blocking the event loop) against 3-4
 * ms, and its 250 KB made both startup snapshots slower to load. With `logFile`, stdout and stderr go
 * to that file (appended) instead: a daemonizing client (busybox udhcpc) keeps them open after its
 * foreground process exits, so the command ends at that exit, not when its output closes.
 * @returns stdout, stderr and the exit code (128 + signal number when killed); `failed` without an
 *   exit code when the program could not be started (ENOENT)
 */
function spawnCollect(file: string, args: string[], input: string, logFile?: string, timeoutMs?: number, env?: Record<string, string>): Promise<{ stdout: string; stderr: string; exitCode?: number; failed: boolean; shortMessage?: string; timedOut?: boolean }> {
  // A startup snapshot's build (scripts/bundle.mjs, as root on the build machine) warms code up by
  // calling it: a warm-up that reached a command handler once made a real node, bridge and iptables
  // rules on the builder's host. No program runs while a snapshot is built but `true` (the spawn
  // warm-up of cli/snapshot.ts, which changes nothing).
  if (startupSnapshot?.isBuildingSnapshot() && !(file === 'true' && args.length === 0)) throw new Error(`${file} ${args.join(' ')}: no command runs while a startup snapshot is built (a warm-up reached a command handler)`);
  return new Promise((resolve) => {
    const log = logFile === undefined ? undefined : openSync(logFile, 'a');
    // env given explicitly: node's own default is the real process.env, which differs from the
    // `process.env` a module sees under a test runner's VM context (jest copies it).
    const child = spawn(file, args, { stdio: ['pipe', log ?? 'pipe', log ?? 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    if (log !== undefined) closeSync(log); // the child has its own copy
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.stdin!.on('error', () => {}); // EPIPE: the tool exited without reading its input
    // A deadline (a lab check's timeout:): killed past it, so a check never hangs on a kernel timer.
    let timedOut = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ stdout: '', stderr: '', failed: true, shortMessage: e.message });
    });
    child.on(log === undefined ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode, failed: exitCode !== 0, ...(timedOut ? { timedOut } : {}) });
    });
    child.stdin!.end(input);
  });
}
