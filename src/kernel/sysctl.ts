// Kernel parameters (sysctl), per netns for the net.* ones.
import type { Runner } from '../exec/runner.js';
import { cmdOp, netnsKey, type Step } from './step.js';

/**
 * `sysctl -q -w KEY=VALUE` inside a netns (net.* keys are per netns, so one set in a node's netns
 * goes with it). The undo restores the value read just before the change.
 */
export function setSysctl(netns: string | null, key: string, value: string): Step {
  return {
    describe: `set ${key}=${value}${netns ? ` in ${netns}` : ''}`,
    do: cmdOp(['sysctl', '-q', '-w', `${key}=${value}`], netns),
    undo: [],
    capture: {
      read: { argv: ['sysctl', '-n', key], netns },
      undo: (stdout) => [cmdOp(['sysctl', '-q', '-w', `${key}=${stdout.trim()}`], netns)],
    },
    ...(netns ? { parent: netnsKey(netns) } : {}),
  };
}

/** Reads one sysctl in a netns (`sysctl -n KEY`). */
export async function readSysctl(r: Runner, netns: string | null, key: string): Promise<string> {
  return (await r.run({ argv: ['sysctl', '-n', key], netns })).stdout.trim();
}
