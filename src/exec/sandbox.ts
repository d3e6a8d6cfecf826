// The private sandbox: a new network + mount namespace with its own /run/netns, so nothing touches the host.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The setup run inside `unshare --net --mount --pid --fork --mount-proc` before the user's command: mounts made private,
 * tmpfs on /run/netns, /etc/netns and /run/nslab (so netns, per-netns files and nslab's state stay in
 * the sandbox; persisted records too: NSLAB_DATA_DIR under it), sysfs of the new netns with the cgroup mounts carried over (dockerd needs them), lo up.
 * It is a fixed script; the user's command reaches it only as "$@", never as shell text; "$1" says
 * whether it runs as real root or as a user's root in a user namespace (`rootless`).
 */
const SETUP = `set -e
mount --make-rprivate /
# Without root (a user namespace): the host's /run and /etc are not ours to add folders to; a fresh
# /run is, and /etc/netns is used only where it exists.
if [ "$1" = rootless ]; then mount -t tmpfs nslab-run /run; export NSLAB_ROOTLESS=1; fi
shift
mkdir -p /run/netns /run/nslab
# A folder of its own to carry the cgroup mounts over: two sandboxes starting at once share the host's /run.
cg=$(mktemp -d /run/.nslab-cg.XXXXXX)
[ -d /etc/netns ] || mkdir -p /etc/netns 2>/dev/null || true
mount -t tmpfs nslab-netns /run/netns
if [ -d /etc/netns ]; then mount -t tmpfs nslab-etc-netns /etc/netns; fi
mount -t tmpfs nslab-state /run/nslab
mount --rbind /sys/fs/cgroup "$cg"
mount -t sysfs sysfs /sys
mount --move "$cg" /sys/fs/cgroup
rmdir "$cg" 2>/dev/null || true
ip link set lo up
export NSLAB_SANDBOX="$(readlink /proc/self/ns/net)"
export NSLAB_DATA_DIR=/run/nslab/data
"$@"`;

/** The directory of nslab's `bin/` (holding the `nslab` launcher), put first on PATH inside the sandbox. */
export function binDir(): string {
  const here = dirname(realpathSync(fileURLToPath(import.meta.url)));
  return join(here, '..', '..', 'bin');
}

/**
 * The argv that runs `cmd` in a new sandbox (as ../shared/recipes/sandbox.sh does, plus state dirs).
 * Inside, `NSLAB_SANDBOX` holds the sandbox's netns id (`net:[INODE]`) and `nslab` is on PATH.
 */
export function sandboxArgv(cmd: string[]): string[] {
  // Its own PID namespace: when the command ends (or unshare is killed: --kill-child), every process
  // started inside (a node's server, a daemon a killed test left) ends with it. The shell stays as
  // the namespace's init, the command its child: an init ignores signals it has no handler for
  // (Ctrl-C must reach the command) and must reap orphans, which sh does while it waits.
  const rootless = process.geteuid?.() !== 0;
  return ['unshare', ...(rootless ? userNamespaceArgs() : []), '--net', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--', 'sh', '-c', SETUP, 'nslab-sandbox', rootless ? 'rootless' : 'root', ...cmd];
}

/**
 * Without root, the sandbox is also a new user namespace (user_namespaces(7)) in which the user is
 * root, so it owns the network, mount and PID namespaces made with it: netns, veths, bridges,
 * iptables and daemons then work inside, and nothing outside changes. No setuid helper: the user's
 * subordinate ids (/etc/subuid, /etc/subgid, through newuidmap) are mapped as well when it has some,
 * for daemons that switch to another user (dnsmasq, OVS); otherwise only root is mapped.
 */
export function userNamespaceArgs(): string[] {
  const me = userInfo();
  const has = (f: string) => {
    try {
      return readFileSync(f, 'utf8').split('\n').some((l) => l.split(':')[0] === me.username || l.split(':')[0] === String(me.uid));
    } catch {
      return false;
    }
  };
  const sub = has('/etc/subuid') && has('/etc/subgid') && existsSync('/usr/bin/newuidmap');
  return sub ? ['--map-auto', '--map-root-user'] : ['--map-root-user'];
}

/** True when this process runs inside an nslab sandbox (its netns is the one the sandbox made). */
export async function inSandbox(): Promise<boolean> {
  const id = process.env.NSLAB_SANDBOX;
  if (!id) return false;
  return (await readlink('/proc/self/ns/net')) === id;
}

/**
 * Runs `cmd` in a new sandbox with the terminal attached and nslab on its PATH.
 * @returns the command's exit code (128 + 1 when a signal ended it)
 */
export async function runInSandbox(cmd: string[]): Promise<number> {
  const [file, ...args] = sandboxArgv(cmd);
  const env = { ...process.env, PATH: `${binDir()}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
  const child = spawn(file!, args, { stdio: 'inherit', env });
  return new Promise<number>((res) => child.on('exit', (c, sig) => res(c ?? (sig ? 128 + 1 : 1))));
}

/**
 * For commands that must run in a sandbox of their own (lab run, the benchmarks): when this process is
 * not in one, runs the same command line again inside a fresh one and exits with its code.
 */
export async function ensureSandbox(): Promise<void> {
  if (await inSandbox()) return;
  process.exit(await runInSandbox([process.execPath, ...process.argv.slice(1)]));
}
