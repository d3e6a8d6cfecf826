// zod schemas of a topology file: the edge where every input is checked before anything is planned.
import { isIP } from 'node:net';
import IPCIDR from 'ip-cidr';
import { z } from 'zod';
import { bridgeNameProblem, ifnameProblem } from './names.js';

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
    to: z.union([z.literal('default'), Cidr], { message: 'expected "default" or a network such as 10.0.0.0/8' }),
    via: IpAddr.optional(),
    dev: IfName.optional(),
    type: z.enum(['unicast', 'unreachable', 'prohibit', 'blackhole', 'reject']).default('unicast'),
    metric: z.number().int().min(0).optional(),
    /** ip-route(8) `onlink`: the gateway is on the link though on no subnet of it; the kernel needs `dev` for it. */
    onlink: z.boolean().optional(),
  })
  .refine((r) => r.type !== 'unicast' || r.via !== undefined || r.dev !== undefined, {
    message: 'a unicast route needs "via" (a gateway) or "dev" (an interface)',
  })
  .refine((r) => r.type === 'unicast' || (r.via === undefined && r.dev === undefined), {
    message: 'an unreachable, prohibit, blackhole or reject route takes neither "via" nor "dev"',
  })
  .refine((r) => !r.onlink || (r.via !== undefined && r.dev !== undefined), {
    message: 'an onlink route needs "via" (the gateway) and "dev" (the link it is on), as ip-route(8) does',
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
  addresses: z.array(Cidr).default([]),
  mtu: Mtu.optional(),
  mac: Mac.optional(),
});

const NodeRaw = z.strictObject({
  interfaces: z.record(z.string(), IfaceRaw).default({}),
  routes: z.array(RouteRaw).default([]),
  sysctls: z.record(SysctlKey, z.union([z.string(), z.number()])).default({}),
});

/** A node in the file: a {@link NodeRaw} and, in a multi-host topology, the host it lives on. */
const NodeEntryRaw = NodeRaw.extend({ host: NodeName.optional() });

const BridgeRaw = z.strictObject({
  addresses: z.array(Cidr).default([]),
  mtu: Mtu.optional(),
  driver: z.enum(['iproute2', 'brctl']).default('iproute2'),
  stp: z.boolean().default(false),
  /** Multi-host: the host(s) it exists on (default: those of the nodes linked to it); joined by VXLAN. */
  host: z.union([NodeName, z.array(NodeName).min(1)]).optional(),
  /** Multi-host: the VXLAN Network Identifier joining its parts (default: derived from its name). */
  vni: z.number({ message: 'expected a VXLAN id (VNI), a whole number from 1 to 16777215' }).int().min(1).max(16777215).optional(),
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

const LinkRaw = z.union(
  [
    z.tuple([Endpoint, Endpoint]),
    z.strictObject({ endpoints: z.tuple([Endpoint, Endpoint]), mtu: Mtu.optional() }),
  ],
  { message: 'expected a link as [A, B] or {endpoints: [A, B], mtu: N}' },
);

/** The topology file (YAML). Unknown keys are errors. */
export const TopologyRaw = z.strictObject({
  name: NodeName.optional(),
  host: NodeRaw.optional(),
  /** Multi-host topologies: the hosts (VMs) by name; every node then names its `host:`. */
  hosts: z.record(NodeName, HostRaw).optional(),
  nodes: z.record(NodeName, NodeEntryRaw).default({}),
  bridges: z.record(BridgeName, BridgeRaw).default({}),
  links: z.array(LinkRaw).default([]),
});

export type TopologyRaw = z.infer<typeof TopologyRaw>;
export type NodeRaw = z.infer<typeof NodeRaw>;
export type HostRaw = z.infer<typeof HostRaw>;
