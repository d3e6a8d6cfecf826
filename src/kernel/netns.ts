// Network namespaces: add, delete (synchronously), list, exec, identify, and naming a PID's netns.
import { readlink, stat } from 'node:fs/promises';
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
 * Deletes a named netns and waits for the kernel: `ip netns del` returns before the netns is torn
 * down, and the peers of its veths (in other namespaces) linger about a second, so a rebuild right
 * after hits "File exists". Deleting those veths first, inside the netns, removes both ends at once.
 * Deleting a netns that is already gone is not an error.
 */
export async function deleteNetns(r: Runner, name: string): Promise<void> {
  const res = await r.run({ argv: ['ip', '-j', 'link', 'show'], netns: name }, { check: false });
  if (res.exitCode !== 0) {
    await r.run({ argv: ['ip', 'netns', 'del', name] }, { check: false });
    return;
  }
  const links = JSON.parse(res.stdout || '[]') as Array<{ ifname: string; link_netnsid?: number }>;
  const lines = links.filter((l) => l.link_netnsid !== undefined).map((l) => ['link', 'del', 'dev', l.ifname]);
  await r.batch('ip', name, lines, { force: true });
  await r.run({ argv: ['ip', 'netns', 'del', name] }, { check: false });
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

