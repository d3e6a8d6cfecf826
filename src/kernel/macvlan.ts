// macvlan children of a host interface: guests on the host's LAN, and the host's own access to them.
import { ipOp, linkKey, type Step } from './step.js';
import { delLinkOp, where } from './link.js';

/**
 * `ip link add link PARENT name NAME [netns NS] [mtu M] [address MAC] type macvlan mode bridge`
 * (ip-link(8)): the child is created straight in the guest's netns under its final name. Mode bridge
 * lets children of one parent talk to each other; never to the parent itself (hence host access).
 * Undo: delete the child.
 */
export function addMacvlan(parent: string, name: string, netns: string | null, o: { mtu?: number; mac?: string } = {}): Step {
  return {
    describe: `add macvlan ${where(netns, name)} on ${parent}`,
    do: ipOp(null, ['link', 'add', 'link', parent, 'name', name, ...(netns ? ['netns', netns] : []), ...(o.mtu ? ['mtu', String(o.mtu)] : []), ...(o.mac ? ['address', o.mac] : []), 'type', 'macvlan', 'mode', 'bridge']),
    undo: [delLinkOp(netns, name)],
    creates: linkKey(netns, name),
  };
}

/**
 * `ip link add link PARENT name NAME type vlan id ID` (802.1q sub-interface). Needs the kernel's
 * 8021q support; where it is missing the kernel answers "Unknown device type".
 */
export function addVlanLink(parent: string, name: string, id: number): Step {
  return {
    describe: `add VLAN ${id} sub-interface ${name} on ${parent}`,
    do: ipOp(null, ['link', 'add', 'link', parent, 'name', name, 'type', 'vlan', 'id', String(id)]),
    undo: [delLinkOp(null, name)],
    creates: linkKey(null, name),
  };
}
