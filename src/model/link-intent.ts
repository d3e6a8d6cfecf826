// What `nslab link` was asked to do to an interface (down, a rate, an MTU), kept so that pingall, the
// web page and `link show` tell a link taken down on purpose from one that broke.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../paths.js';
import type { Impair } from '../kernel/tc.js';

/**
 * One interface nslab's `link` command changed. `nsIno` (the netns' nsfs inode) and `ifindex` tie the
 * record to that very interface: a netns made again under the same name, or a new link with the same
 * name, is another object and the record no longer applies to it.
 */
export interface LinkIntent {
  /** Node (`host` for the current namespace) as the user named it. */
  node: string;
  netns: string | null;
  ifname: string;
  nsIno: number;
  ifindex: number;
  /** Taken down on purpose (`nslab link down`). */
  down?: boolean;
  /**
   * What the kernel drops with a link that goes down and does not give back when it comes up, read
   * just before `link down`: the routes through it (not the prefix routes of its addresses) and its
   * IPv6 addresses (without keep_addr_on_down), as the `ip` argv that puts each back (`link up` runs them).
   */
  restore?: string[][];
  impair?: Impair;
  mtu?: number;
}

/** The file: `STATE_DIR/links.json` (tmpfs /run/nslab by default: gone at reboot, with the links). */
export function intentFile(): string {
  return join(stateDir(), 'links.json');
}

/** The nsfs inode of a netns (a named one under /run/netns, or null: the current one), or null when gone. */
export function netnsInode(netns: string | null): number | null {
  try {
    return statSync(netns === null ? '/proc/self/ns/net' : netns.startsWith('/') ? netns : `/run/netns/${netns}`).ino;
  } catch {
    return null;
  }
}

/** Every record (none when the file is missing or unreadable). */
export function readIntents(): LinkIntent[] {
  try {
    const v = JSON.parse(readFileSync(intentFile(), 'utf8')) as unknown;
    return Array.isArray(v) ? (v as LinkIntent[]) : [];
  } catch {
    return [];
  }
}

/**
 * Records what was done to one interface, merged with what was recorded before for it; a record left
 * with nothing in it (up again, no impairment) is dropped. Written whole through a temporary file and a
 * rename, so that a reader never sees half of it.
 */
export function recordIntent(x: LinkIntent): void {
  const same = (y: LinkIntent) => y.nsIno === x.nsIno && y.ifindex === x.ifindex;
  const prev = readIntents().find(same);
  const merged: LinkIntent = { ...prev, ...x };
  if (!merged.down) {
    delete merged.down;
    delete merged.restore;
  }
  if (!merged.impair || !Object.keys(merged.impair).length) delete merged.impair;
  if (merged.mtu === undefined) delete merged.mtu;
  // Records of netns that are gone are dropped on the way (their interfaces went with them).
  const rest = readIntents().filter((y) => !same(y) && netnsInode(y.netns) === y.nsIno);
  const all = merged.down || merged.impair || merged.mtu !== undefined ? [...rest, merged] : rest;
  mkdirSync(stateDir(), { recursive: true });
  const tmp = `${intentFile()}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n');
  renameSync(tmp, intentFile());
}

/** The record of one interface, if it still names it (same netns inode; `ifindex` when given). */
export function intentFor(netns: string | null, ifname: string, ifindex?: number): LinkIntent | undefined {
  const ino = netnsInode(netns);
  return readIntents().find((y) => y.nsIno === ino && y.ifname === ifname && (ifindex === undefined || y.ifindex === ifindex));
}
