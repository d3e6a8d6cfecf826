// Daemons the tests start themselves inside the sandbox (state in a temp dir) and always stop:
// Open vSwitch with the userspace datapath, dnsmasq as a DHCP server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runner } from './kernel.js';

/** A running ovsdb-server + ovs-vswitchd, reachable by ovs-vsctl through OVS_RUNDIR. */
export interface Ovs {
  dir: string;
  stop(): Promise<void>;
}

/** Starts OVS with its state under a temp dir and points this process's ovs-vsctl at it (OVS_RUNDIR & co). */
export async function startOvs(): Promise<Ovs> {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-ovs-'));
  const env = { OVS_RUNDIR: `${dir}/run`, OVS_DBDIR: `${dir}/db`, OVS_LOGDIR: `${dir}/log`, OVS_SYSCONFDIR: `${dir}/etc` };
  for (const d of Object.values(env)) mkdirSync(d, { recursive: true });
  Object.assign(process.env, env);
  const run = (argv: string[]) => runner.run({ argv });
  await run(['ovsdb-tool', 'create', `${dir}/db/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema']);
  await run(['ovsdb-server', `${dir}/db/conf.db`, `--remote=punix:${dir}/run/db.sock`, `--pidfile=${dir}/run/ovsdb-server.pid`, `--unixctl=${dir}/run/ovsdb-server.ctl`, `--log-file=${dir}/log/ovsdb-server.log`, '--detach', '--no-chdir']);
  await run(['ovs-vsctl', '--no-wait', 'init']);
  await run(['ovs-vswitchd', `unix:${dir}/run/db.sock`, `--pidfile=${dir}/run/ovs-vswitchd.pid`, `--unixctl=${dir}/run/ovs-vswitchd.ctl`, `--log-file=${dir}/log/ovs-vswitchd.log`, '--detach', '--no-chdir']);
  return {
    dir,
    async stop() {
      const brs = (await runner.run({ argv: ['ovs-vsctl', '--timeout=5', 'list-br'] }, { check: false })).stdout.split('\n').filter(Boolean);
      for (const b of brs) await runner.run({ argv: ['ovs-vsctl', '--timeout=10', 'del-br', b] }, { check: false });
      const pids = ['ovs-vswitchd', 'ovsdb-server'].map((n) => (existsSync(`${dir}/run/${n}.pid`) ? Number(readFileSync(`${dir}/run/${n}.pid`, 'utf8').trim()) : 0));
      await runner.run({ argv: ['ovs-appctl', '-t', `${dir}/run/ovs-vswitchd.ctl`, 'exit', '--cleanup'] }, { check: false });
      await runner.run({ argv: ['ovs-appctl', '-t', `${dir}/run/ovsdb-server.ctl`, 'exit'] }, { check: false });
      for (const p of pids) await waitGone(p);
      await runner.run({ argv: ['ip', 'link', 'del', 'ovs-netdev'] }, { check: false });
      for (const k of Object.keys(env)) delete process.env[k];
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitGone(pid: number): Promise<void> {
  if (!pid) return;
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** A dnsmasq DHCP server on one interface. */
export interface Dnsmasq {
  leases(): string;
  stop(): Promise<void>;
}

/**
 * Starts dnsmasq serving DHCP on `iface` (in `netns`, or the current netns) for FIRST..LAST with a
 * /24 mask; `--no-ping` makes a lease take 0.1 s instead of 3 s (learned here).
 */
export async function startDnsmasq(iface: string, first: string, last: string, netns: string | null = null): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-dnsmasq-'));
  const args = ['--no-daemon', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', `--interface=${iface}`, '--except-interface=lo', `--dhcp-range=${first},${last},255.255.255.0,1h`, `--dhcp-leasefile=${dir}/leases`, '--no-ping', '--log-dhcp', `--log-facility=${dir}/log`];
  const argv = netns ? ['nsenter', `--net=/run/netns/${netns}`, '--', 'dnsmasq', ...args] : ['dnsmasq', ...args];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    if (existsSync(`${dir}/log`) && readFileSync(`${dir}/log`, 'utf8').includes('sockets bound exclusively')) break;
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${existsSync(`${dir}/log`) ? readFileSync(`${dir}/log`, 'utf8') : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    leases: () => (existsSync(`${dir}/leases`) ? readFileSync(`${dir}/leases`, 'utf8') : ''),
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
