// IP addresses for verify and pingall, through ip-cidr (no arithmetic of our own): parse, canonical
// form, prefix membership (IPv4 and IPv6).
import IPCIDR from 'ip-cidr';

/** An address: `family` 4 or 6, `value` its 32- or 128-bit integer, `text` its canonical form. */
export interface IpValue {
  family: 4 | 6;
  value: bigint;
  text: string;
}

/** A network: the first and last address of its range, its prefix length, the address as written. */
export interface IpNet extends IpValue {
  prefix: number;
  /** The address as written (host bits kept): `10.0.0.1` of `10.0.0.1/24`. */
  address: IpValue;
  /** The last address of the range (`10.0.0.255` of `10.0.0.1/24`). */
  last: bigint;
}

const width = (f: 4 | 6) => (f === 4 ? 32 : 128);
const big = (c: IPCIDR, end: boolean) => BigInt(String(end ? c.end({ type: 'bigInteger' }) : c.start({ type: 'bigInteger' })));

/**
 * Parses a bare IPv4 or IPv6 address (no prefix, no zone).
 * @returns its family, value and canonical text (RFC 5952 for IPv6), or null when it is not an address
 */
export function parseIp(text: string): IpValue | null {
  const known = parsed.get(text);
  if (known !== undefined) return known;
  let ip: IpValue | null = null;
  if (!text.includes('/') && !text.includes('%') && IPCIDR.isValidAddress(text)) {
    const family = text.includes(':') ? 6 : 4;
    ip = { family, value: big(new IPCIDR(`${text}/${width(family)}`), false), text: canonicalIp(text) };
  }
  if (parsed.size < 100_000) parsed.set(text, ip);
  return ip;
}

/** parseIp's answers: pingall asks about the same few hundred addresses thousands of times. */
const parsed = new Map<string, IpValue | null>();

/**
 * Parses `ADDRESS/PREFIX` (a missing prefix means a host: /32 or /128).
 * @throws Error when the text is not an address with a valid prefix length
 */
export function parseCidr(text: string): IpNet {
  const known = nets.get(text);
  if (known) return known;
  const net = parseCidrOnce(text);
  if (nets.size < 100_000) nets.set(text, net);
  return net;
}

const nets = new Map<string, IpNet>();

function parseCidrOnce(text: string): IpNet {
  const [addr, len] = text.split('/') as [string, string | undefined];
  const ip = parseIp(addr);
  if (!ip) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  const prefix = len === undefined ? width(ip.family) : Number(len);
  if (!/^\d+$/.test(String(len ?? prefix)) || prefix > width(ip.family)) throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
  const c = new IPCIDR(`${addr}/${prefix}`);
  const value = big(c, false);
  return { family: ip.family, value, text: c.start(), prefix, address: ip, last: big(c, true) };
}

/** True when `ip` lies in network `net` (same family, inside its range). */
export function inNet(net: IpNet, ip: IpValue): boolean {
  return net.family === ip.family && ip.value >= net.value && ip.value <= net.last;
}

/** The canonical text of an address (RFC 5952 for IPv6: `fd00::0003` → `fd00::3`); other text is returned as is. */
export function canonicalIp(text: string): string {
  if (text.includes('/') || !IPCIDR.isValidAddress(text)) return text;
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

/**
 * A route destination as a key: `default` for the zero networks (as `ip -j route` prints them), a host
 * route without its /32 or /128, the rest in canonical form (RFC 5952 for IPv6). Used by
 * `verify attachments` and nslab-cni's CHECK to compare what was asked with what the kernel reports.
 */
export function routeDstKey(dst: string): string {
  return dst === 'default' || dst === '0.0.0.0/0' || dst === '::/0' ? 'default' : canonicalCidr(dst.replace(/\/(32|128)$/, ''));
}
