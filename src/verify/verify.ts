// verify: read the kernel back and compare it with the model; it never trusts what `up` believed it did.
import type { Runner } from '../exec/runner.js';
import type { Model } from '../model/types.js';
import { diffExpectations, type Mismatch } from './diff.js';
import { expectations, readingsFor } from './expect.js';
import { readKernel } from './read.js';
import { netnsInode, readIntents } from '../model/link-intent.js';
import type { KernelView } from './diff.js';

/** What {@link verify} found. */
export interface VerifyReport {
  topology: string;
  /** True when the kernel matches the model. */
  ok: boolean;
  /** How many facts were checked. */
  checked: number;
  mismatches: Mismatch[];
  /** Interfaces down on purpose (`nslab link down`), as `OWNER: IFNAME`: not mismatches, but said. */
  downOnPurpose: string[];
  /** Wall time in milliseconds. */
  ms: number;
}

/**
 * Checks that the kernel holds the topology: netns, bridges, veths (kind, peer, MTU, MAC, master,
 * up), addresses, declared routes and sysctls, and no extra interface in a node or port on a bridge.
 * It reads only, and does not need the ownership marks (a topology built by hand verifies too).
 * @param r the runner
 * @param m the resolved model
 * @throws NslabError `COMMAND_FAILED` when the kernel cannot be read
 */
export async function verify(r: Runner, m: Model): Promise<VerifyReport> {
  const t0 = performance.now();
  const exps = expectations(m);
  const view = await readKernel(r, readingsFor(exps));
  view.downOnPurpose = intendedDown(view);
  const mismatches = diffExpectations(exps, view);
  const owners = new Map(m.veths.flatMap((v) => [v.a, v.b]).map((e) => [`${e.netns ?? '-'}:${e.name}`, e.owner]));
  const down = [...view.downOnPurpose].filter((k) => owners.has(k)).map((k) => `${owners.get(k)}: ${k.slice(k.indexOf(':') + 1)}`);
  return { topology: m.name, ok: mismatches.length === 0, checked: exps.length, mismatches, downOnPurpose: down, ms: performance.now() - t0 };
}

/**
 * The interfaces `nslab link down` recorded (model/link-intent.ts) that are still those very links (same
 * netns inode, same ifindex) and still down in the kernel just read: an intended `link down` is what a
 * live lab is being shown, not a fault (a link that went down by itself has no record and stays a
 * mismatch).
 * @returns keys `NETNS:IFNAME` (`-` for the current namespace)
 */
export function intendedDown(view: KernelView): Set<string> {
  const out = new Set<string>();
  for (const x of readIntents()) {
    if (!x.down || netnsInode(x.netns) !== x.nsIno) continue;
    const l = view.readings.get(x.netns ?? '')?.links.find((y) => y.ifname === x.ifname && y.ifindex === x.ifindex);
    if (l && !l.flags.includes('UP')) out.add(`${x.netns ?? '-'}:${x.ifname}`);
  }
  return out;
}
