// Small IP arithmetic for verify and pingall: parse, canonical form, prefix membership (IPv4 and IPv6).
import IPCIDR from 'ip-cidr';

/** An address as a number: `family` 4 or 6, `value` its 32- or 128-bit integer. */
export interface IpValue {
  family: 4 | 6;
  value: bigint;
}

/** A network: the address's family, its prefix length and the network bits (host bits cleared). */
export interface IpNet extends IpValue {
  prefix: number;
  /** The address as written (host bits kept): `10.0.0.1` of `10.0.0.1/24`. */
  address: bigint;
}

const width = (f: 4 | 6) => (f === 4 ? 32 : 128);

/**
 * Parses a bare IPv4 or IPv6 address (no prefix, no zone).
 * @returns its family and value, or null when it is not an address
 */
export function parseIp(text: string): IpValue | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p) => p > 255)) return null;
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (!text.includes(':') || !/^[0-9a-fA-F:]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (all.some((g) => g.length === 0 || g.length > 4)) return null;
  return { family: 6, value: all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/**
 * Parses `ADDRESS/PREFIX` (a missing prefix means a host: /32 or /128).
 * @throws Error when the text is not an address with a valid prefix length
 */
export function parseCidr(text: string): IpNet {
  const [addr, len] = text.split('/') as [string, string | undefined];
  const ip = parseIp(addr);
  if (!ip) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  const w = width(ip.family);
  const prefix = len === undefined ? w : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > w) throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(w - prefix);
  return { family: ip.family, value: ip.value & mask, prefix, address: ip.value };
}

/** True when `ip` lies in network `net` (same family, same prefix bits). */
export function inNet(net: IpNet, ip: IpValue): boolean {
  if (net.family !== ip.family) return false;
  const w = width(net.family);
  const mask = net.prefix === 0 ? 0n : ((1n << BigInt(net.prefix)) - 1n) << BigInt(w - net.prefix);
  return (ip.value & mask) === net.value;
}

/** The canonical text of an address (RFC 5952 for IPv6: `fd00::0003` → `fd00::3`); other text is returned as is. */
export function canonicalIp(text: string): string {
  if (!parseIp(text)) return text;
  return IPCIDR.createAddress(text).correctForm();
}

/** The canonical text of `ADDRESS/PREFIX` (the address part canonical, the prefix kept; none added). */
export function canonicalCidr(text: string): string {
  const [addr, len] = text.split('/') as [string, string | undefined];
  return len === undefined ? canonicalIp(addr) : `${canonicalIp(addr)}/${len}`;
}

/** The bare address of `ADDRESS/PREFIX`. */
export function addressOf(cidr: string): string {
  return cidr.split('/')[0]!;
}

/** The family (4 or 6) of an address or CIDR, by its text. */
export function familyOf(text: string): 4 | 6 {
  return text.includes(':') ? 6 : 4;
}
