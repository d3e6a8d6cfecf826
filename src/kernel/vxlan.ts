// VXLAN tunnels (ip-link(8) `type vxlan`, RFC 7348): a bridge on several hosts joined into one L2
// segment over the hosts' own network (the underlay).
import { delLinkOp } from './link.js';
import { ipOp, linkKey, type Step } from './step.js';

/** IANA's VXLAN port (RFC 7348 §5); Linux's default is the older 8472, so it is always given. */
export const VXLAN_PORT = 4789;
/** What VXLAN adds to each frame over IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 bytes. */
export const VXLAN_OVERHEAD = 50;

/** A VXLAN interface in the current namespace. */
export interface VxlanOptions {
  name: string;
  /** VXLAN Network Identifier, 1..16777215. */
  vni: number;
  /** This host's underlay address (the tunnel's source). */
  local: string;
  /** The underlay device, when named (`dev`): the kernel then sizes the MTU from it. */
  dev: string | null;
  /** MTU in bytes (the underlay's minus {@link VXLAN_OVERHEAD}). */
  mtu: number;
}

/**
 * `ip link add NAME mtu M type vxlan id VNI local A dstport 4789 [dev DEV]`: no `remote`, so that any
 * number of peers is reached by head-end replication (one all-zeros forwarding entry per peer, see
 * {@link addFloodPeer}) while the bridge-like VXLAN FDB learns the rest. Undo: `ip link del`.
 */
export function addVxlan(o: VxlanOptions): Step {
  return {
    describe: `add VXLAN ${o.name} (VNI ${o.vni}, local ${o.local}, UDP ${VXLAN_PORT})`,
    do: ipOp(null, ['link', 'add', 'name', o.name, 'mtu', String(o.mtu), 'type', 'vxlan', 'id', String(o.vni), 'local', o.local, 'dstport', String(VXLAN_PORT), ...(o.dev ? ['dev', o.dev] : [])]),
    undo: [delLinkOp(null, o.name)],
    creates: linkKey(null, o.name),
  };
}

/**
 * Sends the tunnel's broadcast, unknown-unicast and multicast frames to a peer host:
 * `bridge fdb append 00:00:00:00:00:00 dev VX dst PEER` (bridge(8)). Goes with the interface.
 */
export function addFloodPeer(vx: string, peer: string): Step {
  return {
    describe: `flood ${vx}'s broadcasts to ${peer}`,
    do: { tool: 'cmd', cmd: { argv: ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', vx, 'dst', peer], netns: null } },
    undo: [],
    parent: linkKey(null, vx),
  };
}
