// The private sandbox: a new network + mount namespace with its own /run/netns, so nothing touches the host.
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The setup run inside `unshare --net --mount --pid --fork --mount-proc` before the user's command: mounts made private,
 * tmpfs on /run/netns, /etc/netns and /run/nslab (so netns, per-netns files and nslab's state stay in
 * the sandbox; persisted records too: NSLAB_DATA_DIR under it), sysfs of the new netns with the cgroup mounts carried over (dockerd needs them), lo up.
 * It is a fixed script; the user's command reaches it only as "$@", never as shell text.
 */
const SETUP = `set -e
mount --make-rprivate /
mkdir -p /run/netns /etc/netns /run/nslab /run/.nslab-cg
mount -t tmpfs nslab-netns /run/netns
mount -t tmpfs nslab-etc-netns /etc/netns
mount -t tmpfs nslab-state /run/nslab
mount --rbind /sys/fs/cgroup /run/.nslab-cg
mount -t sysfs sysfs /sys
mount --move /run/.nslab-cg /sys/fs/cgroup
rmdir /run/.nslab-cg 2>/dev/null || true
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
  return ['unshare', '--net', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--', 'sh', '-c', SETUP, 'nslab-sandbox', ...cmd];
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
