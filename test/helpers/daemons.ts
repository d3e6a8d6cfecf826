// Daemons the tests start themselves inside the sandbox (state in a temp dir) and always stop:
// Open vSwitch with the userspace datapath, dnsmasq as a DHCP server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runner } from './kernel.js';
import { ovsEnv, startOvs as startOvsAt, stopOvs as stopOvsAt } from '../../src/engine/services.js';

/** A running ovsdb-server + ovs-vswitchd, reachable by ovs-vsctl through OVS_RUNDIR. */
export interface Ovs {
  dir: string;
  stop(): Promise<void>;
}

/** Starts OVS with its state under a temp dir and points this process's ovs-vsctl at it (OVS_RUNDIR & co). */
export async function startOvs(): Promise<Ovs> {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-ovs-'));
  await startOvsAt(runner, dir);
  return {
    dir,
    async stop() {
      await stopOvsAt(runner, dir);
      for (const k of Object.keys(ovsEnv(dir))) delete process.env[k];
    },
  };
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

/** A dockerd of the test's own, its state in a temp dir, reached through DOCKER_HOST. */
export interface Dockerd {
  dir: string;
  /** Runs the docker CLI against this daemon. */
  docker(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The nested mount namespace dockerd runs in: overlays on /run and /etc take what it writes there
 * whatever its flags say (/run/docker, /run/containerd, /etc/docker/key.json), and vanish with it.
 * A fixed script: the temp dir and cgroup name reach it as "$1" and "$2".
 */
const DOCKERD_SH = `set -e
d=$1
for x in run etc; do mkdir -p "$d/ovl/$x-up" "$d/ovl/$x-wk"; mount -t overlay overlay -o "lowerdir=/$x,upperdir=$d/ovl/$x-up,workdir=$d/ovl/$x-wk" "/$x"; done
echo '{}' > "$d/daemon.json"
exec dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \\
  -H "unix://$d/docker.sock" --iptables=false --ip-forward=false --ip-masq=false --bridge=none \\
  --storage-driver=overlay2 --cgroup-parent="/$2" --shutdown-timeout=2`;

/**
 * Starts dockerd inside the sandbox (`--iptables=false --bridge=none`: it touches no network), with
 * containers under the cgroup parent /nslab-test-PID (removed by stop), and imports a busybox image
 * `nslab-busybox:1` made from busybox-static with relative applet links (no registry here).
 */
export async function startDockerd(o: { plugins?: Record<string, string> } = {}): Promise<Dockerd> {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-docker-'));
  // Plugin spec files (NAME.spec: the socket's URL) in /etc/docker/plugins as dockerd will see it:
  // the upper layer of its /etc overlay, written before it starts.
  for (const [name, url] of Object.entries(o.plugins ?? {})) {
    mkdirSync(join(dir, 'ovl', 'etc-up', 'docker', 'plugins'), { recursive: true });
    writeFileSync(join(dir, 'ovl', 'etc-up', 'docker', 'plugins', `${name}.spec`), `${url}\n`);
  }
  const cg = `nslab-test-${process.pid}`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', DOCKERD_SH, 'dockerd-sandbox', dir, cg], { stdio: ['ignore', 'ignore', 'ignore'] });
  const env = { DOCKER_HOST: `unix://${dir}/docker.sock`, DOCKER_CONFIG: `${dir}/cli` };
  Object.assign(process.env, env);
  const docker = async (...args: string[]) => (await runner.run({ argv: ['docker', ...args] })).stdout.trim();
  const stop = async (): Promise<void> => {
    const ids = (await runner.run({ argv: ['docker', 'ps', '-aq'] }, { check: false })).stdout.split('\n').filter(Boolean);
    if (ids.length) await runner.run({ argv: ['docker', 'rm', '-f', ...ids] }, { check: false });
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    // containerd and shims run in dockerd's mount namespace: make sure none outlives it
    const left = (await runner.run({ argv: ['pgrep', '-f', dir] }, { check: false })).stdout.split('\n').filter(Boolean);
    for (const p of left) await runner.run({ argv: ['kill', '-9', p] }, { check: false });
    for (let i = 0; i < 50; i++) {
      const cgs = (await runner.run({ argv: ['sh', '-c', 'ls -d /sys/fs/cgroup/*/"$1" 2>/dev/null', 'sh', cg] }, { check: false })).stdout.split('\n').filter(Boolean);
      if (!cgs.length) break;
      await runner.run({ argv: ['find', ...cgs, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';'] }, { check: false });
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const k of Object.keys(env)) delete process.env[k];
    rmSync(dir, { recursive: true, force: true });
  };
  // A start that fails part-way stops what it started: the daemon outlives the sandbox otherwise.
  try {
    for (let i = 0; i < 150; i++) {
      if ((await runner.run({ argv: ['docker', 'version', '-f', '{{.Server.Version}}'] }, { check: false })).exitCode === 0) break;
      if (child.exitCode !== null) throw new Error('dockerd exited at start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const rootfs = join(dir, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(rootfs, d), { recursive: true });
    const { copyFileSync, symlinkSync, chmodSync } = await import('node:fs');
    copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
    for (const a of (await runner.run({ argv: ['busybox', '--list'] })).stdout.split('\n').filter((x) => x && x !== 'busybox')) symlinkSync('busybox', join(rootfs, 'bin', a));
    await runner.run({ argv: ['tar', '-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.'] });
    await docker('import', join(dir, 'rootfs.tar'), 'nslab-busybox:1');
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, docker, stop };
}
