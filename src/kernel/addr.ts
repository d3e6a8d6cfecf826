// IPv4 and IPv6 addresses on a link.
import type { Runner } from '../exec/runner.js';
import { ipOp, linkKey, type Step } from './step.js';
import { where } from './link.js';

/** What `ip -j addr show` reports per link (the fields nslab reads). */
export interface AddrInfo {
  ifname: string;
  addr_info: Array<{ family: 'inet' | 'inet6'; local: string; prefixlen: number; scope: string }>;
}

/**
 * `ip addr add CIDR dev DEV` (CIDR as `10.0.0.1/24` or `fd00::1/64`). IPv6 addresses get `nodad`:
 * a lab must be usable the moment it is up, not after duplicate address detection (about 2 s).
 * Undo: `ip addr del CIDR dev DEV`.
 */
export function addAddr(netns: string | null, dev: string, cidr: string): Step {
  const v6 = cidr.includes(':');
  return {
    describe: `add address ${cidr} to ${where(netns, dev)}`,
    do: ipOp(netns, ['addr', 'add', cidr, 'dev', dev, ...(v6 ? ['nodad'] : [])]),
    undo: [ipOp(netns, ['addr', 'del', cidr, 'dev', dev])],
    parent: linkKey(netns, dev),
  };
}

/** Reads the addresses of a netns (`ip -j addr show`). */
export async function readAddrs(r: Runner, netns: string | null): Promise<AddrInfo[]> {
  const res = await r.run({ argv: ['ip', '-j', 'addr', 'show'], netns });
  return JSON.parse(res.stdout || '[]') as AddrInfo[];
}
