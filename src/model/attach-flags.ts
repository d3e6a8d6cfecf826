// The native `nslab attach` flags -> an attach request (validated; one-line errors).
import { isIP } from './ip-family.js';
import { invalid } from '../errors.js';
import { checkIfname, parseDhcp, parseMac, parseRoute, parseStaticAddress, parseVlan, type AddressRequest, type AttachRequest } from './attach.js';

/** The flags of `nslab attach` as yargs gives them. */
export interface AttachFlags {
  guest: string;
  to: string;
  ip?: string[];
  gw?: string;
  ifname: string;
  local?: string;
  mac?: string;
  /** Bytes; a string as typed on the command line (checked here, so the message shows it as typed). */
  mtu?: number | string;
  vlan?: string;
  dhcp?: string;
  route?: string[];
  'host-access': boolean;
  'direct-phys': boolean;
}

/**
 * Builds the request from flags. `--gw` applies to the `--ip` of its family; `--dhcp` with no value
 * means busybox udhcpc kept running; MTU from 68 to 65535 bytes.
 * @throws NslabError INVALID_INPUT naming the flag and value
 */
export function requestFromFlags(f: AttachFlags, origin?: string): AttachRequest {
  checkIfname('--ifname', f.ifname);
  if (f.local !== undefined) checkIfname('--local', f.local);
  if (!f.to.startsWith('mac:')) checkIfname('--to', f.to);
  const addresses: AddressRequest[] = (f.ip ?? []).map((v) => (v === '0/0' ? { kind: 'none' as const } : parseStaticAddress(v)));
  if (f.gw !== undefined) {
    const fam = isIP(f.gw);
    if (fam === 0) throw invalid(`--gw ${JSON.stringify(f.gw)}: expected an IPv4 or IPv6 address`);
    const target = addresses.find((a) => a.kind === 'static' && isIP(a.cidr.split('/')[0]!) === fam);
    if (!target || target.kind !== 'static') throw invalid(`--gw ${f.gw}: no --ip of the same IP version to go with it`);
    if (target.gateway && target.gateway !== f.gw) throw invalid(`--gw ${f.gw} conflicts with the gateway in --ip ${target.cidr}@${target.gateway}`);
    target.gateway = f.gw;
  }
  if (f.dhcp !== undefined) {
    const d = parseDhcp(f.dhcp === '' ? 'dhcp' : f.dhcp);
    if (!d) throw invalid(`--dhcp=${f.dhcp}: expected udhcpc, udhcpc-f, dhclient, dhcpcd (or nothing)`);
    addresses.push(d);
  }
  const mtu = typeof f.mtu === 'string' ? (/^\d+$/.test(f.mtu) ? Number(f.mtu) : NaN) : f.mtu;
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw invalid(`--mtu ${Number.isNaN(mtu) ? JSON.stringify(f.mtu) : f.mtu}: expected a whole number of bytes from 68 to 65535`);
  return {
    guest: f.guest,
    hostIf: f.to,
    ifname: f.ifname,
    addresses: addresses.length ? addresses : [{ kind: 'none' }],
    routes: (f.route ?? []).map(parseRoute),
    hostAccess: f['host-access'],
    direct: f['direct-phys'],
    ...(f.local ? { localIfname: f.local } : {}),
    ...(f.mac ? { mac: parseMac(f.mac) } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(f.vlan !== undefined ? { vlan: parseVlan(f.vlan) } : {}),
    ...(origin ? { origin } : {}),
  };
}
