// The state of networks and nodes on disk (IPAM, published ports, PIDs), read and written under one
// cross-process lock, so that nslab processes running at once never hand out an address twice.
import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { NslabError } from '../../errors.js';
import type { Table } from '../../kernel/iptables.js';
import type { DaemonOptions, Exposed, LinkSpec, NetMode, Proto } from '../../model/netmodes.js';
import { DEFAULT_DAEMON } from '../../model/netmodes.js';
import { stateDir } from '../state.js';

/** A network, as created. */
export interface NetworkRecord {
  name: string;
  /** 64 hex, random (Docker's network ID); the bridge of a user-defined network is `br-` + its first 12. */
  id: string;
  driver: 'bridge';
  bridge: string;
  /** The bridge existed before (the daemon's `--bridge`): nslab never deletes it. */
  external: boolean;
  subnet: string;
  gateway: string;
  /** `--fixed-cidr`: node addresses come from here; null: the whole subnet. */
  ipRange: string | null;
  mtu: number;
  icc: boolean;
  /** Created with `--subnet`: only then may nodes ask for a static `--ip` (as in Docker, notes 003). */
  userSubnet: boolean;
  iptables: boolean;
  isDefault: boolean;
  created: string;
  /** An external bridge's `route_localnet` before nslab set it, restored when the network goes. */
  routeLocalnetPrev: string | null;
}

/** A node's interface on a network. */
export interface Endpoint {
  network: string;
  ifname: string;
  ip: string;
  prefix: number;
  mac: string;
  /** The gateway of the node's default route, on its first network only (as Docker). */
  gateway: string | null;
}

/** A published port. */
export interface PortBinding {
  proto: Proto;
  hostIp: string;
  hostPort: number;
  containerPort: number;
  /** The network whose bridge the DNAT leads to, and the node's address there. */
  network: string;
  ip: string;
}

/** A node, as run. */
export interface NodeRecord {
  name: string;
  mode: NetMode;
  /** Its netns name (its own, or the shared one's alias), or null in host mode. */
  netns: string | null;
  hostname: string;
  endpoints: Endpoint[];
  ports: PortBinding[];
  /**
   * Ports it published on a network it was then disconnected from: published again, same host ports,
   * when it is connected back (Docker keeps a container's port bindings in its host config).
   */
  unpublished?: PortBinding[];
  exposed: Exposed[];
  links: LinkSpec[];
  /** Environment of its process and of `node exec` (the `--link` variables). */
  env: Record<string, string>;
  cmd: string[] | null;
  pid: number | null;
  /** The process's start time (field 22 of /proc/PID/stat), so a reused PID is never killed. */
  pidStart: string | null;
  created: string;
}

/** What nslab changed in the host's namespace when the first network came, to undo when the last goes. */
export interface HostRecord {
  /** `net.ipv4.ip_forward` before nslab turned it on, or null when nslab left it alone. */
  ipForwardPrev: string | null;
  /** FORWARD's policy before nslab set DROP, or null when nslab left it alone. */
  policyPrev: string | null;
  /** iptables tables that did not exist before nslab's rules (deleted again once empty). */
  tablesCreated: Table[];
  /** The shared chains and jumps exist (`--iptables`). */
  base: boolean;
}

/** An address nslab's IPAM handed to a CNI attachment (engine/cni/ipam.ts). */
export interface CniLease {
  /** The CNI network's `name`. */
  network: string;
  containerId: string;
  ifname: string;
  subnet: string;
  /** The address, without its length. */
  ip: string;
  gateway: string;
}

/** Everything on disk. */
export interface NetState {
  version: 1;
  daemon: DaemonOptions;
  host: HostRecord | null;
  networks: Record<string, NetworkRecord>;
  nodes: Record<string, NodeRecord>;
  /** CNI attachments' addresses, by `NETWORK/CONTAINERID/IFNAME`: the same lock as the nodes'. */
  cni?: Record<string, CniLease>;
}

/** The directory of the network state: `STATE_DIR/net`. */
export function netDir(): string {
  return join(stateDir(), 'net');
}

function stateFile(): string {
  return join(netDir(), 'state.json');
}

/** The log file of a node's process. */
export function nodeLog(name: string): string {
  return join(netDir(), 'nodes', `${name}.log`);
}

/** An empty state: no network, dockerd's defaults. */
export function emptyState(): NetState {
  return { version: 1, daemon: { ...DEFAULT_DAEMON }, host: null, networks: {}, nodes: {} };
}

/** Reads the state without the lock (writes are atomic renames, so a read is always whole). */
export async function readNetState(): Promise<NetState> {
  try {
    return JSON.parse(await readFile(stateFile(), 'utf8')) as NetState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw new NslabError('COMMAND_FAILED', `cannot read ${stateFile()}: ${(err as Error).message}`, { cause: err });
  }
}

/** No network, no node, no host setup. */
function isEmpty(st: NetState): boolean {
  return Object.keys(st.networks).length === 0 && Object.keys(st.nodes).length === 0 && st.host === null && Object.keys(st.cni ?? {}).length === 0;
}

async function writeNetState(st: NetState): Promise<void> {
  if (isEmpty(st)) {
    // Nothing left: no file either, so the state directory looks as it did before.
    await rm(stateFile(), { force: true });
    return;
  }
  const tmp = `${stateFile()}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(st, null, 2) + '\n');
  await rename(tmp, stateFile());
}

/**
 * Runs `fn` on the state while holding the lock (proper-lockfile: a `net.lock` directory in the state
 * folder made with mkdir, atomic on every filesystem, its mtime refreshed while held and taken over when stale after
 * 3 s, so a killed nslab does not block the next one for long). The state `fn` leaves is saved, even when it
 * throws after changing something (it records what was done before the failure).
 * @param fn reads and changes the state; its result is returned
 * @throws whatever `fn` throws; NslabError COMMAND_FAILED when the lock cannot be had within about a minute
 */
export async function withState<T>(fn: (st: NetState) => Promise<T>): Promise<T> {
  let compromised: Error | null = null;
  let release: () => Promise<void>;
  // The lock lives beside the folder, not in it: the folder goes once nothing is left in it (below),
  // and a lock inside it raced that removal (its mkdir failed with ENOENT, which proper-lockfile
  // retries like a held lock: a minute's wait, seen as a 62 s `network disconnect` in CI).
  const lockPath = join(stateDir(), 'net.lock');
  try {
    await mkdir(stateDir(), { recursive: true });
    release = await lockfile.lock(netDir(), {
      lockfilePath: lockPath,
      realpath: false,
      // A killed holder blocks the next nslab (clean after a crash, too) until its lock is stale:
      // 3 s, refreshed every 1.5 s while held (proper-lockfile's minimum stale is 2 s).
      stale: 3_000,
      retries: { retries: 2400, factor: 1, minTimeout: 25, maxTimeout: 25 },
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (err) {
    throw new NslabError('COMMAND_FAILED', `cannot lock ${lockPath}: ${(err as Error).message}`, { cause: err, hint: 'another nslab is changing networks; if none runs, remove the lock directory' });
  }
  await mkdir(join(netDir(), 'nodes'), { recursive: true });
  const st = await readNetState();
  const before = JSON.stringify(st);
  try {
    return await fn(st);
  } finally {
    try {
      if (JSON.stringify(st) !== before) await writeNetState(st);
    } finally {
      // No network, no node, no log: the folders go too, so a refused command or a full teardown
      // leaves the state folder as it was (rmdir refuses a folder that is not empty). Still under the
      // lock: the next holder makes them again.
      if (isEmpty(st)) await rmdir(join(netDir(), 'nodes')).then(() => rmdir(netDir())).catch(() => undefined);
      await release().catch(() => undefined);
    }
    if (compromised) throw new NslabError('COMMAND_FAILED', `the lock on ${netDir()} was lost while held: ${(compromised as Error).message}`);
  }
}
