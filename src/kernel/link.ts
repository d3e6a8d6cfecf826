// Links: up/down, rename, MTU, MAC, alias (ownership mark), master, move to another netns, read back.
import type { Runner } from '../exec/runner.js';
import { ipOp, linkKey, type Step } from './step.js';

/** What `ip -j -d link show` reports of one link (the fields nslab reads). */
export interface LinkInfo {
  ifindex: number;
  ifname: string;
  /** For a veth: the ifindex of its peer, in the peer's netns (see `link_netnsid`). */
  link_index?: number;
  /** For a veth or macvlan whose peer or parent is in the same netns: that link's name. */
  link?: string;
  flags: string[];
  mtu: number;
  operstate: string;
  address?: string;
  master?: string;
  ifalias?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_slave_kind?: string; info_data?: Record<string, unknown> };
}

/** `ip link set dev DEV up`; undo: down. Parent: the link (deleting it undoes this too). */
export function setUp(netns: string | null, dev: string): Step {
  return {
    describe: `set ${where(netns, dev)} up`,
    do: ipOp(netns, ['link', 'set', 'dev', dev, 'up']),
    undo: [ipOp(netns, ['link', 'set', 'dev', dev, 'down'])],
    parent: linkKey(netns, dev),
  };
}

/** `ip link set dev DEV mtu MTU` (bytes); undo restores `previous`. */
export function setMtu(netns: string | null, dev: string, mtu: number, previous: number): Step {
  return {
    describe: `set MTU of ${where(netns, dev)} to ${mtu}`,
    do: ipOp(netns, ['link', 'set', 'dev', dev, 'mtu', String(mtu)]),
    undo: [ipOp(netns, ['link', 'set', 'dev', dev, 'mtu', String(previous)])],
    parent: linkKey(netns, dev),
  };
}

/** `ip link set dev DEV address MAC`; undo restores `previous`. */
export function setMac(netns: string | null, dev: string, mac: string, previous: string): Step {
  return {
    describe: `set MAC of ${where(netns, dev)} to ${mac}`,
    do: ipOp(netns, ['link', 'set', 'dev', dev, 'address', mac]),
    undo: [ipOp(netns, ['link', 'set', 'dev', dev, 'address', previous])],
    parent: linkKey(netns, dev),
  };
}

/** `ip link set dev DEV name NEW` (the link must be down); undo renames it back. */
export function rename(netns: string | null, dev: string, newName: string): Step {
  return {
    describe: `rename ${where(netns, dev)} to ${newName}`,
    do: ipOp(netns, ['link', 'set', 'dev', dev, 'name', newName]),
    undo: [ipOp(netns, ['link', 'set', 'dev', newName, 'name', dev])],
    creates: linkKey(netns, newName),
  };
}

/**
 * Marks a link as nslab's with its alias (`ip link set dev DEV alias MARK`; `ip link add` ignores
 * `alias`, found here). The mark goes with the link, so there is nothing to undo.
 */
export function setAlias(netns: string | null, dev: string, mark: string): Step {
  return {
    describe: `mark ${where(netns, dev)} as ${mark}`,
    do: ipOp(netns, ['link', 'set', 'dev', dev, 'alias', mark]),
    undo: [],
    parent: linkKey(netns, dev),
  };
}

/** `ip link set dev DEV master BRIDGE`; undo: `nomaster`. */
export function setMaster(netns: string | null, dev: string, bridge: string): Step {
  return {
    describe: `attach ${where(netns, dev)} to bridge ${bridge}`,
    do: ipOp(netns, ['link', 'set', 'dev', dev, 'master', bridge]),
    undo: [ipOp(netns, ['link', 'set', 'dev', dev, 'nomaster'])],
    parent: linkKey(netns, dev),
  };
}

/**
 * Moves DEV from `fromNetns` into the named netns `toNetns` (`ip link set dev DEV netns NS`).
 * Undo moves it back; `backTo` names the netns to return to when `fromNetns` is the current one
 * (a PID in it: never PID 1, which is the host's netns even inside a sandbox).
 */
export function moveToNetns(fromNetns: string | null, dev: string, toNetns: string, backTo: string | number = process.pid): Step {
  const back = fromNetns ?? String(backTo);
  return {
    describe: `move ${where(fromNetns, dev)} into netns ${toNetns}`,
    do: ipOp(fromNetns, ['link', 'set', 'dev', dev, 'netns', toNetns]),
    undo: [ipOp(toNetns, ['link', 'set', 'dev', dev, 'netns', back])],
    creates: linkKey(toNetns, dev),
  };
}

/** `ip link del dev DEV`, as an undo op. */
export function delLinkOp(netns: string | null, dev: string) {
  return ipOp(netns, ['link', 'del', 'dev', dev]);
}

/** Reads all links of a netns (`ip -j -d link show`). */
export async function readLinks(r: Runner, netns: string | null): Promise<LinkInfo[]> {
  const res = await r.run({ argv: ['ip', '-j', '-d', 'link', 'show'], netns });
  return JSON.parse(res.stdout || '[]') as LinkInfo[];
}

/** "dev" or "netns:dev", for messages. */
export function where(netns: string | null, dev: string): string {
  return netns ? `${netns}:${dev}` : dev;
}
