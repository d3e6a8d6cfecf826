// Daemons nslab starts for labs and tests: Open vSwitch (userspace datapath), state in one folder.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Runner } from '../exec/runner.js';

/** The environment OVS tools need to find an instance whose state is under `dir` (exported in printed scripts). */
export function ovsEnv(dir: string): Record<string, string> {
  return { OVS_RUNDIR: `${dir}/run`, OVS_DBDIR: `${dir}/db`, OVS_LOGDIR: `${dir}/log`, OVS_SYSCONFDIR: `${dir}/etc` };
}

/**
 * Starts ovsdb-server and ovs-vswitchd with their state under `dir` (database, sockets, pid files,
 * logs), and points this process's ovs-vsctl at them. About 0.2 s here.
 */
export async function startOvs(r: Runner, dir: string): Promise<void> {
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
