// What `nslab service dnsmasq start IFACE [--range FIRST,LAST]` hands out: checked and derived before anything runs.
import { isIPv4 } from 'node:net';
import netmask from 'netmask';
import { invalid } from '../errors.js';

/** A DHCP range for dnsmasq's `--dhcp-range=FIRST,LAST,NETMASK,LEASE` (dnsmasq(8)). */
export interface DhcpRange {
  first: string;
  last: string;
  netmask: string;
}

/**
 * The range dnsmasq serves on `iface`: `range` (`FIRST,LAST`, both in the interface's subnet) when
 * given, else .100-.200 of a /24 or larger subnet (the labs' choice), the upper half of a smaller one.
 * @param iface the interface's name (for messages)
 * @param cidr the interface's first IPv4 address with its prefix (`10.0.0.254/24`), or null when it has none
 * @param range the `--range` flag, if given
 * @throws NslabError INVALID_INPUT when the interface has no IPv4 address, or the range is malformed,
 *   reversed, or outside the subnet (dnsmasq would start and never answer)
 */
export function dhcpRange(iface: string, cidr: string | null, range?: string): DhcpRange {
  if (!cidr) throw invalid(`interface ${iface} has no IPv4 address: dnsmasq serves the subnet of the interface's address (ip addr add 10.0.0.254/24 dev ${iface})`);
  const block = new netmask.Netmask(cidr);
  const num = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const str = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
  if (range !== undefined) {
    const parts = range.split(',');
    if (parts.length !== 2 || !parts.every((p) => isIPv4(p))) throw invalid(`--range ${JSON.stringify(range)}: expected FIRST,LAST IPv4 addresses such as 10.0.0.100,10.0.0.200`);
    const [first, last] = parts as [string, string];
    for (const p of parts) if (!block.contains(p)) throw invalid(`--range ${range}: ${p} is outside ${iface}'s subnet ${block.base}/${block.bitmask}`);
    if (num(first) > num(last)) throw invalid(`--range ${range}: the first address comes after the last`);
    return { first, last, netmask: block.mask };
  }
  const base = num(block.base);
  if (block.size >= 256) {
    const start = num(block.first) - 1 + 100;
    return { first: str(start), last: str(start + 100), netmask: block.mask };
  }
  if (block.size < 8) throw invalid(`interface ${iface}'s subnet ${block.base}/${block.bitmask} is too small to hand out addresses from: give --range`);
  return { first: str(base + block.size / 2), last: str(base + block.size - 2), netmask: block.mask };
}
