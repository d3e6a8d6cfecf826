// veth pairs, created with each end straight in its netns (no temporary names, no rename).
import { ipOp, linkKey, type Step } from './step.js';
import { delLinkOp, where } from './link.js';

/** One end of a veth pair. `netns` null: the namespace nslab runs in. MTU in bytes. */
export interface VethEnd {
  name: string;
  netns: string | null;
  mtu?: number;
  mac?: string;
}

function endArgs(e: VethEnd): string[] {
  return [...(e.netns ? ['netns', e.netns] : []), ...(e.mtu ? ['mtu', String(e.mtu)] : []), ...(e.mac ? ['address', e.mac] : [])];
}

/**
 * `ip link add NAME [netns NS] [mtu M] [address MAC] type veth peer name PEER [netns NS2] ...`
 * (ip-link(8)). Creating each end directly in its netns means names are checked where they live
 * and never collide with the current namespace's (the CNI plugins rename for the same reason).
 * Undo: delete end `a`, which removes both ends at once.
 */
export function addVeth(a: VethEnd, b: VethEnd): Step {
  return {
    describe: `add veth ${where(a.netns, a.name)} <-> ${where(b.netns, b.name)}`,
    do: ipOp(null, ['link', 'add', a.name, ...endArgs(a), 'type', 'veth', 'peer', 'name', b.name, ...endArgs(b)]),
    undo: [delLinkOp(a.netns, a.name)],
    creates: linkKey(a.netns, a.name),
  };
}
