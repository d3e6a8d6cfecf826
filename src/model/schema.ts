// zod schemas of a topology file: the edge where every input is checked before anything is planned.
import { isIP } from './ip-family.js';
import IPCIDR from 'ip-cidr';
import { z } from 'zod';
import { bridgeNameProblem, ifnameProblem } from './names.js';
import { impairProblem } from '../kernel/tc.js';

/** A name usable as a netns (a file under /run/netns) and in `ip -batch` lines. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** An interface name: at most 15 bytes, as the kernel's dev_valid_name() takes it. */
export const IfName = z.string().superRefine((v, ctx) => {
  const p = ifnameProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: `interface name ${JSON.stringify(v)} ${p}` });
});

/** A node or topology name. */
export const NodeName = z.string().regex(NAME_RE, { message: 'expected a name of letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)' });

/** A bridge's name: as `attach --to` takes one for a bridge it makes (model/names.ts bridgeNameProblem). */
export const BridgeName = z.string().superRefine((v, ctx) => {
  const p = bridgeNameProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: `bridge name ${JSON.stringify(v)} ${p}` });
});

/** An IPv4 or IPv6 address with its prefix length: `10.0.0.1/24`, `fd00::1/64`. */
export const Cidr = z.string().refine((v) => v.includes('/') && IPCIDR.isValidCIDR(v), { message: 'expected an address with prefix length such as 10.0.0.1/24 or fd00::1/64' });

/** A bare IPv4 or IPv6 address (a gateway may be link-local, e.g. fe80::1: the kernel accepts it). */
export const IpAddr = z.string().refine((v) => isIP(v) !== 0, { message: 'expected an IPv4 or IPv6 address such as 10.0.0.1 or fe80::1' });

/** A unicast Ethernet MAC address (the kernel refuses a multicast one). */
export const Mac = z
  .string()
  .regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/, { message: 'expected a MAC address such as 02:42:ac:11:00:02' })
  .refine((v) => (parseInt(v.slice(0, 2), 16) & 1) === 0, { message: 'expected a unicast MAC address (the first byte must be even)' });

/** MTU in bytes: 68 (IPv4's minimum, RFC 791) to 65535. */
export const Mtu = z.number({ message: 'expected an MTU in bytes (a whole number from 68 to 65535)' }).int().min(68).max(65535);

const RouteRaw = z
  .strictObject({
    to: z.union([z.literal('default'), Cidr], { message: 'expected "default" or a network such as 10.0.0.0/8' }).describe('`default` or a network: 10.9.0.0/16, fd00:9::/64'),
    via: IpAddr.optional().describe('the gateway, on a subnet of the node (or `onlink: true`), of the family of `to:`'),
    dev: IfName.optional().describe('the interface it leaves by'),
    type: z.enum(['unicast', 'unreachable', 'prohibit', 'blackhole', 'reject']).default('unicast').describe('`reject` is route(8)\'s name for `unreachable`; the blocking kinds take neither via nor dev'),
    metric: z.number().int().min(0).optional().describe('its metric (lower wins)'),
    /** ip-route(8) `onlink`: the gateway is on the link though on no subnet of it; the kernel needs `dev` for it. */
    onlink: z.boolean().optional().describe('the gateway is on the link though on no subnet of it (needs dev)'),
  })
  .refine((r) => r.type !== 'unicast' || r.via !== undefined || r.dev !== undefined, {
    message: 'a unicast route needs "via" (a gateway) or "dev" (an interface)',
  })
  .refine((r) => r.type === 'unicast' || (r.via === undefined && r.dev === undefined), {
    message: 'an unreachable, prohibit, blackhole or reject route takes neither "via" nor "dev"',
  })
  .refine((r) => !r.onlink || (r.via !== undefined && r.dev !== undefined), {
    message: 'an onlink route needs "via" (the gateway) and "dev" (the link it is on), as ip-route(8) does',
  })
  // ip infers a route's family from its prefix: a gateway of the other family is refused by ip
  // itself ("inet address is expected rather than ...") and, inside `ip -batch`, stops the whole
  // batch with no line number, so it would be blamed on another step. `default` takes either.
  .superRefine((r, ctx) => {
    if (r.via === undefined || r.to === 'default') return;
    const to = isIP(r.to.split('/')[0]!);
    const via = isIP(r.via);
    if (to && via && to !== via) ctx.addIssue({ code: 'custom', path: ['via'], message: `gateway ${r.via} is IPv${via} but the route to ${r.to} is IPv${to}: expected an IPv${to} gateway` });
  });
/**
 * The `/proc/sys` path parts a sysctl key names, as sysctl(8) (procps-ng) reads it: the first separator
 * decides the form; in the dotted form `.` separates and `/` stands for a literal dot (an interface
 * name such as `eth1.10`), in the slash form the reverse.
 * @param key a key as written: `net.ipv4.ip_forward`, `net/ipv4/conf/eth1.10/arp_notify`
 * @returns the path parts under /proc/sys, e.g. `['net', 'ipv4', 'conf', 'eth1.10', 'arp_notify']`
 */
export function sysctlPath(key: string): string[] {
  const first = /[./]/.exec(key)?.[0];
  if (first !== '.') return key.split('/');
  return key.split('.').map((p) => p.replace(/\//g, '.'));
}

/**
 * Why `key` is not a sysctl nslab writes, or null when it is one. Only the `net.*` tree is per network
 * namespace (sysctl(8); the kernel's Documentation/admin-guide/sysctl/net.rst): a `kernel.*`, `vm.*` or
 * `fs.*` key written inside a node reaches the whole machine, so it is refused. No path part may be
 * empty, `.` or `..` (`net.ipv4..x`, `net/../../../tmp/x`): sysctl(8) opens /proc/sys/KEY, and such
 * a part would reach another file.
 * @param key the key as written in the file
 * @returns a phrase naming what is wrong and what was expected, or null
 */
export function sysctlKeyProblem(key: string): string | null {
  if (!/^[A-Za-z0-9_.\-/]+$/.test(key)) return 'expected a sysctl key of letters, digits, ".", "_", "-" and "/" such as net.ipv4.ip_forward';
  const parts = sysctlPath(key);
  const bad = parts.find((p) => p === '' || p === '.' || p === '..');
  if (bad !== undefined) return `an ${bad === '' ? 'empty' : JSON.stringify(bad)} path part: expected a key with no empty, "." or ".." parts, such as net.ipv4.ip_forward`;
  if (parts[0] !== 'net') return `a host-wide ${parts[0]}.* key, which would change the whole machine: expected a per-netns key under net. such as net.ipv4.ip_forward`;
  if (parts.length < 2) return 'the whole net tree: expected one key such as net.ipv4.ip_forward';
  return null;
}

/** A sysctl key a topology may set in a node or the host: see {@link sysctlKeyProblem}. */
export const SysctlKey = z.string().superRefine((v, ctx) => {
  const p = sysctlKeyProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

const IfaceRaw = z.strictObject({
  addresses: z.array(Cidr).default([]).describe('addresses with their prefix length: [10.0.0.1/24, fd00::1/64]'),
  mtu: Mtu.optional().describe('MTU in bytes'),
  mac: Mac.optional().describe('a unicast MAC address'),
});

const NodeRaw = z.strictObject({
  interfaces: z.record(z.string(), IfaceRaw).default({}).describe('its interfaces by name (each the end of a link)'),
  routes: z.array(RouteRaw).default([]).describe('its routes'),
  sysctls: z.record(SysctlKey, z.union([z.string(), z.number()])).default({}).describe('net.* sysctls: {net.ipv4.ip_forward: 1}'),
});

/** A node in the file: a {@link NodeRaw} and, in a multi-host topology, the host it lives on. */
const NodeEntryRaw = NodeRaw.extend({ host: NodeName.optional().describe('multi-host: the host (VM) it lives on') });

const BridgeRaw = z.strictObject({
  addresses: z.array(Cidr).default([]).describe('its own addresses (a gateway for the nodes on it)'),
  mtu: Mtu.optional().describe('MTU in bytes'),
  driver: z.enum(['iproute2', 'brctl']).default('iproute2').describe('which tool makes it (the commands shown)'),
  stp: z.boolean().default(false).describe('spanning tree on'),
  /** Multi-host: the host(s) it exists on (default: those of the nodes linked to it); joined by VXLAN. */
  host: z.union([NodeName, z.array(NodeName).min(1)]).optional().describe('multi-host: the host(s) it exists on'),
  /** Multi-host: the VXLAN Network Identifier joining its parts (default: derived from its name). */
  vni: z.number({ message: 'expected a VXLAN id (VNI), a whole number from 1 to 16777215' }).int().min(1).max(16777215).optional().describe('multi-host: the VXLAN id joining its parts'),
});

/**
 * A host of a multi-host topology (a VM): its underlay address (what the other hosts reach it by,
 * the VXLAN tunnels' endpoint), optionally the underlay device and its MTU, and, as the single-host
 * `host:` key, its own interfaces, routes and sysctls.
 */
const HostRaw = NodeRaw.extend({
  address: IpAddr,
  dev: IfName.optional(),
  /** The underlay's MTU in bytes (default 1500): ports of a joined bridge get 50 bytes less. */
  mtu: Mtu.optional(),
});

/** `NODE:IFNAME`, `host:IFNAME`, `BRIDGE` or `BRIDGE:PORTNAME`. */
const Endpoint = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*(:[^:\s]+)?$/, { message: 'expected an endpoint NODE:IFNAME, BRIDGE or BRIDGE:PORT' });

/**
 * What a link suffers, on both its ends' egress (`nslab link set` does the same by hand): `rate` by
 * tc tbf, `delay`/`jitter`/`loss` by netem (kernel module sch_netem). Values as tc(8) writes them.
 */
const ImpairRaw = z
  .strictObject({ rate: z.string().optional(), delay: z.string().optional(), jitter: z.string().optional(), loss: z.string().optional() })
  .superRefine((v, ctx) => {
    const p = impairProblem(v);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });

const LinkRaw = z.union(
  [
    z.tuple([Endpoint, Endpoint]),
    z.strictObject({ endpoints: z.tuple([Endpoint, Endpoint]), mtu: Mtu.optional(), impair: ImpairRaw.optional() }),
  ],
  { message: 'expected a link as [A, B] or {endpoints: [A, B], mtu: N, impair: {rate: 10mbit}}' },
);

/** The topology file (YAML). Unknown keys are errors. */
export const TopologyRaw = z.strictObject({
  name: NodeName.optional().describe('marks everything it makes (nslab:NAME); default: the file name'),
  host: NodeRaw.optional().describe('the namespace nslab runs in, as a node: its interfaces, routes, sysctls'),
  /** Multi-host topologies: the hosts (VMs) by name; every node then names its `host:`. */
  hosts: z.record(NodeName, HostRaw).optional().describe('multi-host: the hosts (VMs) by name'),
  nodes: z.record(NodeName, NodeEntryRaw).default({}).describe('the nodes (named netns) by name'),
  bridges: z.record(BridgeName, BridgeRaw).default({}).describe('Linux bridges in the host, by name'),
  links: z.array(LinkRaw).default([]).describe('veth pairs: [a:eth0, b:eth0], [a:eth0, br0], {endpoints: [A, B], mtu: N}'),
});

export type TopologyRaw = z.infer<typeof TopologyRaw>;
export type NodeRaw = z.infer<typeof NodeRaw>;
export type HostRaw = z.infer<typeof HostRaw>;
