// verify: read the kernel back and compare it with the model; it never trusts what `up` believed it did.
import type { Runner } from '../exec/runner.js';
import type { Model } from '../model/types.js';
import { diffExpectations, type Mismatch } from './diff.js';
import { expectations, readingsFor } from './expect.js';
import { readKernel } from './read.js';

/** What {@link verify} found. */
export interface VerifyReport {
  topology: string;
  /** True when the kernel matches the model. */
  ok: boolean;
  /** How many facts were checked. */
  checked: number;
  mismatches: Mismatch[];
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
  const mismatches = diffExpectations(exps, view);
  return { topology: m.name, ok: mismatches.length === 0, checked: exps.length, mismatches, ms: performance.now() - t0 };
}
