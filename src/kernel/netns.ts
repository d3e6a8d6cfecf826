// Network namespaces: add, delete (synchronously), list, exec, identify, and naming a PID's netns.
import { readlink, stat } from 'node:fs/promises';
import { readlinkSync, statSync } from 'node:fs';
import { NslabError } from '../errors.js';
import type { Command } from '../exec/command.js';
import type { Runner } from '../exec/runner.js';
import { NETNS_DIR } from '../exec/runner.js';
import { cmdOp, ipOp, netnsKey, type Step } from './step.js';

/**
 * Adds a named netns (`ip netns add NAME`). Its batch key keeps it out of other batches: inside
 * `ip -batch`, `netns add` moves the batch process into the new netns, so any later line would run
 * there (learned on this machine). Undo: `ip netns del NAME`.
 */
export function addNetns(name: string): Step {
  return {
    describe: `add netns ${name}`,
    do: ipOp(null, ['netns', 'add', name], 'netns-add'),
    undo: [ipOp(null, ['netns', 'del', name], 'netns-del')],
    creates: netnsKey(name),
  };
}

/**
 * Names the netns of a running process, as the notes do by hand:
 * `ln -s /proc/PID/ns/net /run/netns/NAME` (so `ip netns exec NAME` works). Undo removes the link only.
 */
export function attachPid(pid: number, name: string): Step {
  return {
    describe: `name the netns of PID ${pid} ${name}`,
    do: cmdOp(['ln', '-s', `/proc/${pid}/ns/net`, `${NETNS_DIR}/${name}`]),
    undo: [cmdOp(['rm', '-f', `${NETNS_DIR}/${name}`])],
  };
}

/** A command run inside a named netns (what `ip netns exec NAME ...` does, without remounting /sys). */
export function execIn(name: string, argv: string[]): Command {
  return { argv, netns: name };
}

/** Names of the netns under /run/netns (`ip -j netns list`). */
export async function listNetns(r: Runner): Promise<string[]> {
  const res = await r.run({ argv: ['ip', '-j', 'netns', 'list'] });
  const text = res.stdout.trim();
  if (!text) return [];
  return (JSON.parse(text) as Array<{ name: string }>).map((n) => n.name).sort();
}

/** Named netns with their nsid in the current netns (`ip -j netns list`; no id until one is assigned). */
export async function listNetnsIds(r: Runner): Promise<Map<string, number | undefined>> {
  const text = (await r.run({ argv: ['ip', '-j', 'netns', 'list'] })).stdout.trim();
  return new Map((text ? (JSON.parse(text) as Array<{ name: string; id?: number }>) : []).map((n) => [n.name, n.id]));
}

/** PIDs of the processes inside a named netns (`ip netns pids NAME`). */
export async function netnsPids(r: Runner, name: string): Promise<number[]> {
  const res = await r.run({ argv: ['ip', 'netns', 'pids', name] });
  return res.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** The name(s) under /run/netns of the netns a PID is in (`ip netns identify PID`); empty when unnamed. */
export async function identifyPid(r: Runner, pid: number): Promise<string[]> {
  const res = await r.run({ argv: ['ip', 'netns', 'identify', String(pid)] });
  return res.stdout.split(/\s+/).filter(Boolean);
}

/** The inode of a PID's netns (`/proc/PID/ns/net` reads `net:[INODE]`): equal inodes, same netns. */
export async function pidNetnsInode(pid: number | 'self'): Promise<number> {
  const link = await readlink(`/proc/${pid}/ns/net`);
  const m = /net:\[(\d+)\]/.exec(link);
  if (!m) throw new Error(`unexpected ns link ${link}`);
  return Number(m[1]);
}

/** The inode of a named netns (the nsfs file bind-mounted at /run/netns/NAME), or null when absent. */
export async function namedNetnsInode(name: string): Promise<number | null> {
  try {
    return (await stat(`${NETNS_DIR}/${name}`)).ino;
  } catch {
    return null;
  }
}

/**
 * Deletes named netns and waits for the kernel to finish. `ip netns del` returns at once; the netns
 * is torn down later (about a second here), and with it the veths whose other end lives in the
 * current netns: until they are gone, re-creating a topology fails with "File exists". Those ends
 * are found by the nsid their link points to (`link_netnsid` = the netns's `id`). Deleting the
 * netns first lets the kernel unregister all their devices in one batch (cleanup_net): at 200
 * veths, 0.2 s instead of 4.4 s for `ip link del` one by one (measured here).
 * Deleting a netns that is already gone is not an error.
 * @param names netns names under /run/netns
 * @param timeoutMs how long to wait for the peers to disappear
 * @returns names of peers still present after the timeout (empty when all went)
 */
export async function deleteNetns(r: Runner, names: string[], timeoutMs = 30_000): Promise<string[]> {
  return (await deleteNetnsSwept(r, names, { timeoutMs })).lingering;
}

/** What {@link deleteNetnsSwept} did. */
export interface NetnsDeleted {
  /** Peers in the current netns still present after the timeout. */
  lingering: string[];
  /** Peers in the current netns that went with their netns (their own undo has nothing left to do). */
  swept: string[];
}

/**
 * {@link deleteNetns}, also naming the current namespace's veth ends that went with the netns.
 * @param names netns names under /run/netns
 * @param opts `listed`: `ip -j netns list` as read just before (saves reading it again); `links`: the
 *   current namespace's links as read just before; `timeoutMs`: how long to wait for the peers to go
 */
export async function deleteNetnsSwept(
  r: Runner,
  names: string[],
  opts: { listed?: Map<string, number | undefined>; links?: Array<{ ifname: string; link_netnsid?: number }>; timeoutMs?: number } = {},
): Promise<NetnsDeleted> {
  if (names.length === 0) return { lingering: [], swept: [] };
  const listed = opts.listed ?? (await listNetnsIds(r));
  const ids = new Set(names.flatMap((n) => (listed.get(n) === undefined ? [] : [listed.get(n)!])));
  const links = opts.links ?? (JSON.parse((await r.run({ argv: ['ip', '-j', 'link', 'show'] })).stdout || '[]') as Array<{ ifname: string; link_netnsid?: number }>);
  const peers = new Set(links.filter((l) => l.link_netnsid !== undefined && ids.has(l.link_netnsid)).map((l) => l.ifname));
  await r.batch('ip', null, names.map((n) => ['netns', 'del', n]), { force: true });
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let left = peers.size ? await stillThere(r, peers) : [];
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 20));
    left = await stillThere(r, peers);
  }
  const stay = new Set(left);
  return { lingering: left, swept: [...peers].filter((p) => !stay.has(p)) };
}

async function stillThere(r: Runner, names: Set<string>): Promise<string[]> {
  const links = JSON.parse((await r.run({ argv: ['ip', '-j', 'link', 'show'] })).stdout || '[]') as Array<{ ifname: string }>;
  return links.map((l) => l.ifname).filter((n) => names.has(n));
}

/**
 * Who a named netns is, from its name file alone (no process): the nsfs inode bind-mounted at
 * /run/netns/NAME and that inode's change time in nanoseconds, as `INODE:CTIME`. The inode number
 * alone is not enough: the kernel reuses a freed netns's number for the next one (proc_alloc_inum),
 * so a netns deleted behind nslab's back and made again by someone else could carry it; its nsfs
 * inode is made anew, with the time of its making. A reading for the journal's proof (clean/recover.ts)
 * and for `down` (engine/topology.ts), never a replacement of the netns's mark.
 * @param name a netns name under /run/netns
 * @returns the identity, or null when there is no such netns
 */
export function netnsIdentity(name: string): string | null {
  try {
    const st = statSync(`${NETNS_DIR}/${name}`, { bigint: true });
    return `${st.ino}:${st.ctimeNs}`;
  } catch {
    return null;
  }
}

/** Marks a netns as nslab's: the alias of its `lo` (the netns itself carries the mark; no state file). */
export function markNetns(name: string, mark: string): Step {
  return {
    describe: `mark netns ${name} as ${mark}`,
    do: ipOp(name, ['link', 'set', 'dev', 'lo', 'alias', mark]),
    undo: [],
    parent: netnsKey(name),
  };
}


/**
 * Refuses to name netns from a mount namespace of its own: `ip netns exec` gives its command one
 * (ip-netns(8): it remounts /sys there), so `ip netns add` inside would bind the new netns in that
 * private mount table, gone with the command, leaving an empty file under /run/netns. PID 1's mount
 * namespace is the one /run/netns is shared in (the host's, or a sandbox's).
 * @throws NslabError INVALID_INPUT naming the way to run it instead
 */
export function checkNetnsVisible(): void {
  let mine = '';
  let init = '';
  try {
    mine = readlinkSync('/proc/self/ns/mnt');
    init = readlinkSync('/proc/1/ns/mnt');
  } catch {
    return; // unreadable (no /proc, or PID 1 not ours to read): nothing to compare
  }
  if (mine !== init) {
    throw new NslabError('INVALID_INPUT', `nslab runs in a mount namespace of its own (as under \`ip netns exec\`): the netns it would name would vanish when it ends; run it as \`nsenter --net=/run/netns/NAME nslab ...\` instead`);
  }
}
