// Kernel parameters (sysctl), per netns for the net.* ones.
import type { SysctlWrite } from '../exec/command.js';
import type { Runner } from '../exec/runner.js';
import { cmdOp, netnsKey, type Op, type Step } from './step.js';

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

/**
 * `sysctl -q -w KEY=VALUE` in a netns, KEY in slash form (`net/ipv4/conf/eth1.10/arp_notify`: sysctl(8)
 * reads dots in a dotted key as slashes, which breaks interface names with a dot). The engine writes
 * such sysctls in the same process as the `ip -batch` that follows them in that netns.
 */
export function writeSysctlOp(netns: string | null, key: string, value: string): Op {
  return cmdOp(['sysctl', '-q', '-w', `${key}=${value}`], netns);
}

/** The sysctl an op made by {@link writeSysctlOp} writes (slash-form key), else null. */
export function sysctlWriteOf(op: Op): SysctlWrite | null {
  if (op.tool !== 'cmd' || op.cmd.input !== undefined || op.cmd.logFile) return null;
  const [p, q, w, kv, ...rest] = op.cmd.argv;
  if (p !== 'sysctl' || q !== '-q' || w !== '-w' || !kv || rest.length) return null;
  const eq = kv.indexOf('=');
  const key = kv.slice(0, eq);
  return eq > 0 && key.includes('/') ? { key, value: kv.slice(eq + 1) } : null;
}
