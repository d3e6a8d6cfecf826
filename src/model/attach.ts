// An attach request: what the native `nslab attach` flags and pipework's grammar both parse into.
import { createHash } from 'node:crypto';
import { isIP } from './ip-family.js';
import IPCIDR from 'ip-cidr';
import { invalid } from '../errors.js';
import { ifnameProblem } from './names.js';

/** DHCP clients nslab can run in a guest (pipework's names; `dhcp` = busybox udhcpc kept running). */
export type DhcpClient = 'dhcp' | 'udhcpc' | 'dhclient' | 'dhcpcd';

/** How the guest interface gets its address. */
export type AddressRequest =
  | { kind: 'static'; cidr: string; gateway?: string }
  | { kind: 'none' } // pipework's 0/0: the interface, no address
  | { kind: 'dhcp'; client: DhcpClient; foreground: boolean; options: string[] };

/** A route added in the guest: NET (CIDR or `default`) via GW, or on the interface when no GW. */
export interface RouteRequest {
  to: string;
  via?: string;
}

/** One attach, before nslab looks at the kernel. */
export interface AttachRequest {
  /** A named netns, a PID, a Docker container name or ID, or a node nslab made (a named netns). */
  guest: string;
  /** A Linux bridge, an OVS bridge, another interface (macvlan parent), or `mac:MAC` of one. */
  hostIf: string;
  /** Interface name in the guest (pipework's -i; default eth1). */
  ifname: string;
  /** Host-side interface name (pipework's -l); derived when absent. */
  localIfname?: string;
  addresses: AddressRequest[];
  /** A MAC for the guest interface (already resolved from `U:str`). */
  mac?: string;
  /** MTU in bytes; default: the host interface's MTU. */
  mtu?: number;
  /** 802.1Q VLAN tag (1-4094): an OVS access port tag, or a VLAN sub-interface of a macvlan parent. */
  vlan?: number;
  routes: RouteRequest[];
  /** macvlan only: give the host a macvlan child carrying its addresses so it reaches the guests. */
  hostAccess: boolean;
  /** pipework --direct-phys: move the host interface itself into the guest. */
  direct: boolean;
  /** Linux bridge only: hairpin mode on the host end (a guest reaching itself through the host, by DNAT). */
  hairpin?: boolean;
  /** Where the request was written (`FILE:LINE: [N]` for `attach -f`): put before its errors. */
  origin?: string;
  /**
   * The guest's netns by path (a CNI runtime's `CNI_NETNS`, e.g. `/run/netns/cni-…`), not looked up:
   * `guest` is then only the name marks and journals use for it (`cni:CONTAINERID`).
   */
  netnsPath?: string;
  /** More fields for the host end's mark (CNI: `net=NETWORK ns=PATH`), read back by GC and clean. */
  markFields?: Record<string, string>;
  /** A missing host interface is created as this kind, whatever its name (CNI's `bridge`, default `cni0`). */
  createAs?: 'bridge' | 'ovs';
  /**
   * Linux bridge only: addresses the bridge gets (`ADDR/LEN`, CNI's isGateway), by `ip addr replace`
   * in the attach's own host batch. Shared by every port: detach leaves them; they go with the bridge.
   */
  bridgeAddrs?: string[];
  /** Turn IP forwarding on for these families (CNI's isGateway, as the reference plugin does; not undone). */
  ipForward?: Array<4 | 6>;
}

/**
 * pipework's `U:string` MAC: the first five bytes of md5(string + "\n") behind 02 (locally
 * administered, unicast), exactly as pipework computes it with `echo $s | md5sum`.
 */
export function macFromString(s: string): string {
  const h = createHash('md5').update(`${s}\n`).digest('hex');
  return `02:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}`;
}

/**
 * Parses a MAC argument: `02:42:ac:11:00:02` or `U:anything` (see {@link macFromString}).
 * @throws NslabError INVALID_INPUT naming the value
 */
export function parseMac(v: string): string {
  if (v.startsWith('U:')) return macFromString(v.slice(2));
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v)) throw invalid(`MAC ${JSON.stringify(v)}: expected six hex bytes such as 02:42:ac:11:00:02, or U:STRING for a MAC derived from STRING`);
  if ((parseInt(v.slice(0, 2), 16) & 1) === 1) throw invalid(`MAC ${JSON.stringify(v)}: a multicast address (odd first byte); expected a unicast MAC`);
  return v.toLowerCase();
}

/** Parses a VLAN tag: an integer from 1 to 4094 (IEEE 802.1Q; 0 and 4095 are reserved). */
export function parseVlan(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 4094) throw invalid(`VLAN ${JSON.stringify(v)}: expected a tag from 1 to 4094`);
  return n;
}

/** Checks an interface name argument (at most 15 bytes). */
export function checkIfname(what: string, v: string): string {
  const p = ifnameProblem(v);
  if (p) throw invalid(`${what} ${JSON.stringify(v)} ${p}`);
  return v;
}

/**
 * Parses `ADDR/LEN[@GW]` (pipework's address form). A gateway may be outside the subnet or
 * link-local (`fe80::1`): the kernel accepts both (moby#38744), and so does nslab.
 */
export function parseStaticAddress(v: string): AddressRequest {
  const [cidr, gw] = v.split('@') as [string, string | undefined];
  // pipework's own hint ("Maybe you meant $IPADDR/24 ?"), only where the text is an address.
  if (!cidr.includes('/') && isIP(cidr)) throw invalid(`address ${JSON.stringify(v)} has no prefix length: maybe you meant ${cidr}/${isIP(cidr) === 4 ? 24 : 64} ?`);
  if (!cidr.includes('/')) throw invalid(`address ${JSON.stringify(v)}: expected ADDRESS/LENGTH[@GATEWAY] such as 10.0.0.2/24@10.0.0.1, 0/0, dhcp, udhcpc, dhclient or dhcpcd`);
  if (!IPCIDR.isValidCIDR(cidr)) throw invalid(`address ${JSON.stringify(cidr)}: expected ADDRESS/LENGTH such as 10.0.0.2/24 or fd00::2/64`);
  if (gw !== undefined && isIP(gw) === 0) throw invalid(`gateway ${JSON.stringify(gw)}: expected an IPv4 or IPv6 address`);
  if (gw !== undefined && isIP(gw) !== isIP(cidr.split('/')[0]!)) throw invalid(`gateway ${gw} is not of the same family as ${cidr}`);
  return gw === undefined ? { kind: 'static', cidr } : { kind: 'static', cidr, gateway: gw };
}

/** Parses a DHCP method: `dhcp[:OPTS]`, `udhcpc[-f][:OPTS]`, `dhclient[-f][:OPTS]`, `dhcpcd[:OPTS]`. */
export function parseDhcp(v: string): AddressRequest | null {
  const m = /^(dhcp|udhcpc|dhclient|dhcpcd)(-f)?(?::(.*))?$/.exec(v);
  if (!m) return null;
  const client = m[1] as DhcpClient;
  if (m[2] && (client === 'dhcp' || client === 'dhcpcd')) throw invalid(`DHCP method ${JSON.stringify(v)}: only udhcpc-f and dhclient-f take -f`);
  return { kind: 'dhcp', client, foreground: m[2] !== undefined || client === 'dhcp', options: m[3] ? m[3].split(/\s+/).filter(Boolean) : [] };
}

/** Parses a route argument `NET[@GW]` (NET a CIDR or `default`). */
export function parseRoute(v: string): RouteRequest {
  const [to, via] = v.split('@') as [string, string | undefined];
  if (to !== 'default' && !(to.includes('/') && IPCIDR.isValidCIDR(to))) throw invalid(`route ${JSON.stringify(v)}: expected NET[@GATEWAY] with NET a network such as 10.1.0.0/16 or "default"`);
  if (via !== undefined && isIP(via) === 0) throw invalid(`route ${JSON.stringify(v)}: gateway ${JSON.stringify(via)} is not an IP address`);
  return via === undefined ? { to } : { to, via };
}
