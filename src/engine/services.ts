// Daemons nslab starts for labs, tests and `nslab service`: Open vSwitch (userspace datapath) and
// dnsmasq, their state in nslab's state folder (the sandbox's private /run/nslab).
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../exec/runner.js';
import { NslabError } from '../errors.js';
import { stateDir } from '../paths.js';

/**
 * Where the Open vSwitch of this sandbox keeps its database, sockets and logs: `STATE/ovs`
 * (`/run/nslab/ovs`), for `nslab service ovs start` and the labs that start OVS (09, 14) alike: one
 * OVS per network namespace, since each userspace datapath makes its own `ovs-netdev` device.
 */
export function sandboxOvsDir(): string {
  return join(stateDir(), 'ovs');
}

/**
 * Points this process's OVS tools at the sandbox's OVS (`sandboxOvsDir()`) when it runs and
 * OVS_RUNDIR does not name another: what `nslab service ovs start` or `nslab lab up 09` started is
 * then found by attach, detach, inspect, verify and clean without exporting anything.
 */
export function useSandboxOvs(): void {
  if (!process.env.OVS_RUNDIR && existsSync(join(sandboxOvsDir(), 'run', 'db.sock'))) Object.assign(process.env, ovsEnv(sandboxOvsDir()));
}

/** The OVS tools' socket folder: OVS_RUNDIR, else the packaged default (ovs-vsctl(8) "ENVIRONMENT"). */
export function ovsRunDir(): string {
  return process.env.OVS_RUNDIR || '/var/run/openvswitch';
}

/** True when an ovsdb-server answers where the OVS tools look ({@link ovsRunDir}). */
export function ovsRunning(): boolean {
  return existsSync(join(ovsRunDir(), 'db.sock'));
}

/** What to do when OVS is needed and not running: start one here, or install it first. */
export function ovsHint(): string {
  const installed = ['/usr/sbin/ovs-vswitchd', '/usr/bin/ovs-vsctl'].some((p) => existsSync(p));
  return installed
    ? `start Open vSwitch in this sandbox: nslab service ovs start (or set OVS_RUNDIR to where yours runs)`
    : 'apt-get install openvswitch-switch, then start it in this sandbox: nslab service ovs start';
}

/** The environment OVS tools need to find an instance whose state is under `dir` (exported in printed scripts). */
export function ovsEnv(dir: string): Record<string, string> {
  return { OVS_RUNDIR: `${dir}/run`, OVS_DBDIR: `${dir}/db`, OVS_LOGDIR: `${dir}/log`, OVS_SYSCONFDIR: `${dir}/etc` };
}

/**
 * Starts ovsdb-server and ovs-vswitchd with their state under `dir` (database, sockets, pid files,
 * logs), and points this process's ovs-vsctl at them. About 0.2 s here.
 */
export async function startOvs(r: Runner, dir: string): Promise<void> {
  if (pidAlive(join(dir, 'run', 'ovsdb-server.pid'))) {
    throw new NslabError('INVALID_INPUT', `Open vSwitch already runs in this sandbox (${dir})`, { hint: 'nslab service ovs status; nslab service ovs stop first (a lab that starts OVS needs its own)' });
  }
  const e = ovsEnv(dir);
  Object.assign(process.env, e);
  await r.run({ argv: ['mkdir', '-p', e.OVS_RUNDIR!, e.OVS_DBDIR!, e.OVS_LOGDIR!, e.OVS_SYSCONFDIR!] });
  await r.run({ argv: ['ovsdb-tool', 'create', `${dir}/db/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema'] });
  await r.run({ argv: ['ovsdb-server', `${dir}/db/conf.db`, `--remote=punix:${dir}/run/db.sock`, `--pidfile=${dir}/run/ovsdb-server.pid`, `--unixctl=${dir}/run/ovsdb-server.ctl`, `--log-file=${dir}/log/ovsdb-server.log`, '--detach', '--no-chdir'] });
  try {
    await r.run({ argv: ['ovs-vsctl', '--no-wait', 'init'] });
    await r.run({ argv: ['ovs-vswitchd', `unix:${dir}/run/db.sock`, `--pidfile=${dir}/run/ovs-vswitchd.pid`, `--unixctl=${dir}/run/ovs-vswitchd.ctl`, `--log-file=${dir}/log/ovs-vswitchd.log`, '--detach', '--no-chdir'] });
  } catch (err) {
    // A daemon outlives the sandbox that started it (no PID namespace): stop what did start.
    await stopOvs(r, dir);
    throw err;
  }
}

/**
 * Stops the OVS instance under `dir`: deletes its bridges, asks both daemons to exit (vswitchd with
 * --cleanup), waits for them (SIGKILL after 5 s), removes the tap device the userspace datapath
 * leaves (`ovs-netdev`) and the folder. Safe when nothing runs there.
 */
export async function stopOvs(r: Runner, dir: string): Promise<void> {
  if (!existsSync(`${dir}/run`)) return;
  Object.assign(process.env, ovsEnv(dir));
  const brs = (await r.run({ argv: ['ovs-vsctl', '--timeout=5', 'list-br'] }, { check: false })).stdout.split('\n').filter(Boolean);
  for (const b of brs) await r.run({ argv: ['ovs-vsctl', '--timeout=10', 'del-br', b] }, { check: false });
  const pids = ['ovs-vswitchd', 'ovsdb-server'].map((n) => (existsSync(`${dir}/run/${n}.pid`) ? Number(readFileSync(`${dir}/run/${n}.pid`, 'utf8').trim()) : 0));
  await r.run({ argv: ['ovs-appctl', '-t', `${dir}/run/ovs-vswitchd.ctl`, 'exit', '--cleanup'] }, { check: false });
  await r.run({ argv: ['ovs-appctl', '-t', `${dir}/run/ovsdb-server.ctl`, 'exit'] }, { check: false });
  for (const p of pids) await waitExit(p);
  await r.run({ argv: ['ip', 'link', 'del', 'ovs-netdev'] }, { check: false });
  rmSync(dir, { recursive: true, force: true });
}

/** Waits for a PID to exit (up to 5 s), then kills it. */
export async function waitExit(pid: number): Promise<void> {
  if (!pid) return;
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** What `nslab service X status` reports. */
export interface ServiceStatus {
  service: 'ovs' | 'dnsmasq';
  running: boolean;
  /** PIDs of its daemons that run. */
  pids: number[];
  /** Where its state is (the OVS folder, dnsmasq's pid and lease files). */
  dir: string;
  /** For OVS: the environment its tools need (`export` it to run ovs-vsctl by hand). */
  env?: Record<string, string>;
  /** For dnsmasq: the interfaces it serves. */
  ifaces?: string[];
}

/** The PID in `file` when that process runs, else 0. */
function pidAlive(file: string): number {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!pid) return 0;
    process.kill(pid, 0);
    return pid;
  } catch {
    return 0;
  }
}

/** The status of the sandbox's Open vSwitch (`sandboxOvsDir()`): its two daemons' PIDs, if they run. */
export function ovsStatus(): ServiceStatus {
  const dir = sandboxOvsDir();
  const pids = ['ovsdb-server', 'ovs-vswitchd'].map((n) => pidAlive(join(dir, 'run', `${n}.pid`))).filter(Boolean);
  return { service: 'ovs', running: pids.length === 2, pids, dir, env: ovsEnv(dir) };
}

/** Where `nslab service dnsmasq` keeps the pid file of the dnsmasq serving `iface` (as labs do). */
export function dnsmasqPidFile(iface: string): string {
  return join(stateDir(), `dnsmasq-${iface}.pid`);
}

/** The dnsmasq instances nslab runs here (one per interface): their pid files under the state folder. */
export function dnsmasqStatus(): ServiceStatus {
  const dir = stateDir();
  let files: string[] = [];
  try {
    files = require_readdir(dir).filter((f) => /^dnsmasq-.+\.pid$/.test(f));
  } catch {
    /* no state folder: nothing runs */
  }
  const live = files.map((f) => ({ iface: f.slice('dnsmasq-'.length, -'.pid'.length), pid: pidAlive(join(dir, f)) })).filter((x) => x.pid);
  return { service: 'dnsmasq', running: live.length > 0, pids: live.map((x) => x.pid), dir, ifaces: live.map((x) => x.iface) };
}
import { readdirSync as require_readdir } from 'node:fs';

/**
 * Starts dnsmasq as a DHCP server (no DNS: --port=0) on `iface`, handing out `range` (first and last
 * address, /24 netmask as the labs use), leases and pid file under the state folder. `--no-ping`: its
 * default ping check delays every first offer ~3 s (shared/recipes/recipes.sh).
 * @throws NslabError INVALID_INPUT when nslab's dnsmasq already serves `iface`
 */
export async function startDnsmasq(r: Runner, iface: string, range: [string, string], netmask: string): Promise<void> {
  const pf = dnsmasqPidFile(iface);
  if (pidAlive(pf)) throw new NslabError('INVALID_INPUT', `dnsmasq already serves ${iface} (pid file ${pf})`, { hint: `nslab service dnsmasq stop ${iface}` });
  mkdirSync(stateDir(), { recursive: true });
  await r.run({
    argv: ['dnsmasq', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', `--interface=${iface}`, '--except-interface=lo', `--dhcp-range=${range[0]},${range[1]},${netmask},1h`, `--dhcp-leasefile=${join(stateDir(), `dnsmasq-${iface}.leases`)}`, `--pid-file=${pf}`, '--no-ping'],
  });
}

/** Stops nslab's dnsmasq on `iface` (SIGTERM, then waits) and removes its pid and lease files. Safe when none runs. */
export async function stopDnsmasq(iface: string): Promise<boolean> {
  const pf = dnsmasqPidFile(iface);
  const pid = pidAlive(pf);
  if (pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await waitExit(pid);
  }
  for (const f of [pf, join(stateDir(), `dnsmasq-${iface}.leases`)]) rmSync(f, { force: true });
  return pid !== 0;
}
