// IPAM, pure: subnets from Docker's pools, addresses and host ports handed out once. The CIDR math is
// the netmask package's; the state these functions read lives on disk, under nslab's lock.
import { isIP } from './ip-family.js';
import netmask from 'netmask';
import { invalid } from '../errors.js';
import type { Proto } from './netmodes.js';

const { Netmask, ip2long, long2ip } = netmask;
type Block = InstanceType<typeof Netmask>;

/** A parsed IPv4 `ADDR/LEN`: the address as written and its block. */
export interface Cidr4 {
  ip: string;
  net: Block;
}

/**
 * Parses an IPv4 `ADDR/LEN` (host bits allowed; `net.base` is the network address).
 * @param what the flag or field, for the message
 * @throws NslabError INVALID_INPUT naming the value
 */
export function parseCidr4(what: string, v: string): Cidr4 {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(v);
  if (!m || isIP(m[1]!) !== 4 || Number(m[2]) > 32) throw invalid(`${what} ${JSON.stringify(v)}: expected an IPv4 address with its prefix length, such as 172.17.0.1/16`);
  return { ip: m[1]!, net: new Netmask(`${m[1]}/${m[2]}`) };
}

/** True when two IPv4 CIDRs share an address. */
export function overlaps(a: string, b: string): boolean {
  const x = new Netmask(a);
  const y = new Netmask(b);
  return x.contains(y.base) || y.contains(x.base);
}

/**
 * Docker's default address pools, in order: 172.17.0.0/16 to 172.31.0.0/16, then the /20s of
 * 192.168.0.0/16 (moby's `defaultipam` predefined local scope pools).
 */
export function defaultPools(): string[] {
  const out: string[] = [];
  for (let b = 17; b <= 31; b++) out.push(`172.${b}.0.0/16`);
  for (let n = new Netmask('192.168.0.0/20'); new Netmask('192.168.0.0/16').contains(n.base); n = n.next()) out.push(`${n.base}/20`);
  return out;
}

/**
 * The first pool that overlaps none of `taken` (other networks' subnets, and the destinations of the
 * routes already on the host: "searches for an IP address range which doesn't overlap with an existing
 * route", notes 004), or null when all are used.
 */
export function pickSubnet(taken: string[], pools: string[] = defaultPools()): string | null {
  return pools.find((p) => !taken.some((t) => overlaps(p, t))) ?? null;
}

/** Where a network hands out addresses from. */
export interface Pool {
  /** The subnet (`172.19.0.0/16`). */
  subnet: string;
  /** The range within it (`--fixed-cidr`), or the subnet. */
  range: string;
  gateway: string;
}

/**
 * Hands out one address of a pool. A requested address must lie in the subnet and be a host address
 * (not its network or broadcast address), not the gateway and not in use; otherwise the lowest free
 * address of the range is taken, never the gateway (moby#10096, #19086).
 * @param used addresses in use on this network (by nodes, and the gateway)
 * @param requested a static address (`--ip`), or null
 * @throws NslabError INVALID_INPUT when the requested address is refused; NOT_FOUND-like INVALID_INPUT when the range is full
 */
export function allocate(pool: Pool, used: ReadonlySet<string>, requested: string | null): string {
  const subnet = new Netmask(pool.subnet);
  if (requested !== null) {
    if (isIP(requested) !== 4) throw invalid(`--ip ${JSON.stringify(requested)}: expected an IPv4 address`);
    if (!subnet.contains(requested)) throw invalid(`--ip ${requested} is outside the network's subnet ${pool.subnet}`);
    if (requested === subnet.base || requested === subnet.broadcast) throw invalid(`--ip ${requested} is the ${requested === subnet.base ? 'network' : 'broadcast'} address of ${pool.subnet}, not a host address`);
    if (requested === pool.gateway) throw invalid(`--ip ${requested} is the gateway of ${pool.subnet}`);
    if (used.has(requested)) throw invalid(`--ip ${requested} is already in use on this network`);
    return requested;
  }
  const range = new Netmask(pool.range);
  const last = ip2long(range.last);
  for (let a = ip2long(range.first); a <= last; a++) {
    const ip = long2ip(a);
    if (ip === pool.gateway || ip === subnet.base || ip === subnet.broadcast || used.has(ip)) continue;
    return ip;
  }
  throw invalid(`no free address left in ${pool.range} (${used.size} in use)`);
}

/** Docker's MAC for a container address: 02:42 and the four bytes of the IPv4 address (02:42:ac:11:00:02). */
export function dockerMac(ip: string): string {
  return ['02', '42', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

/** The range `-P` and `-p CONTAINERPORT` pick host ports from (the notes' 49000-49900). */
export const EPHEMERAL = { first: 49000, last: 49900 } as const;

/** A host port in use: by a published port, or by a listening socket of the host. */
export interface HostPortUse {
  proto: Proto;
  hostIp: string;
  hostPort: number;
}

/** Two bindings collide when protocol and port match and one address is the other or `0.0.0.0`. */
export function portsCollide(a: HostPortUse, b: HostPortUse): boolean {
  return a.proto === b.proto && a.hostPort === b.hostPort && (a.hostIp === b.hostIp || a.hostIp === '0.0.0.0' || b.hostIp === '0.0.0.0');
}

/**
 * The lowest port of 49000-49900 free for `proto` on `hostIp`.
 * @throws NslabError INVALID_INPUT when all are taken
 */
export function pickHostPort(proto: Proto, hostIp: string, used: HostPortUse[]): number {
  for (let p = EPHEMERAL.first; p <= EPHEMERAL.last; p++) if (!used.some((u) => portsCollide(u, { proto, hostIp, hostPort: p }))) return p;
  throw invalid(`no free host port left in ${EPHEMERAL.first}-${EPHEMERAL.last} for ${proto} on ${hostIp}`);
}

/**
 * The listening sockets in `/proc/net/{tcp,udp}` or `{tcp6,udp6}` text (state 0A = LISTEN for TCP;
 * every bound UDP socket), as IPv4 uses: an IPv6 socket on `::` takes IPv4 too (bindv6only=0, the
 * default), so it counts as 0.0.0.0; other IPv6 addresses are left out.
 */
export function listeningPorts(text: string, proto: Proto): HostPortUse[] {
  const out: HostPortUse[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const [hexIp, hexPort] = f[1]!.split(':') as [string, string];
    if (proto === 'tcp' && f[3] !== '0A') continue;
    if (hexIp.length === 32) {
      if (/^0+$/.test(hexIp)) out.push({ proto, hostIp: '0.0.0.0', hostPort: parseInt(hexPort, 16) });
      continue;
    }
    // /proc prints the address as a little-endian 32-bit hex number.
    const ip = long2ip(Buffer.from(hexIp, 'hex').readUInt32LE(0));
    out.push({ proto, hostIp: ip, hostPort: parseInt(hexPort, 16) });
  }
  return out;
}
