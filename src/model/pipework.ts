// pipework's command-line grammar (jpetazzo/pipework), parsed into nslab's attach request.
import { invalid } from '../errors.js';
import { checkIfname, parseDhcp, parseMac, parseStaticAddress, parseVlan, type AttachRequest } from './attach.js';

/** What a pipework command line asks for. */
export type PipeworkCommand =
  | { kind: 'attach'; request: AttachRequest; wait: false }
  | { kind: 'route' | 'rule' | 'tc'; guest: string; args: string[] }
  | { kind: 'wait'; ifname: string };

/** pipework's usage text, printed with grammar errors. */
export const PIPEWORK_USAGE = [
  'pipework <hostinterface> [-i containerinterface] [-l localinterfacename] [-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]',
  'pipework <hostinterface> [-i containerinterface] [-l localinterfacename] <guest> dhcp [macaddr][@vlan]',
  'pipework mac:<hostinterface_macaddress> [-i containerinterface] [-l localinterfacename] [-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]',
  'pipework route <guest> <route_command>',
  'pipework rule <guest> <rule_command>',
  'pipework tc <guest> <tc_command>',
  'pipework --wait [-i containerinterface]',
].join('\n');

/**
 * Parses pipework's arguments (everything after `pipework`). Same grammar and defaults as pipework
 * (guest interface eth1; `--wait`; `--direct-phys`; `-i`, `-l`, `-a` in that order; `[mac][@vlan]`),
 * with its address forms: `ADDR/LEN[@GW]`, `0/0` (no address), `dhcp[:OPTS]`, `udhcpc[-f][:OPTS]`,
 * `dhclient[-f][:OPTS]`, `dhcpcd[:OPTS]`.
 * @throws NslabError INVALID_INPUT, one line naming the bad argument
 */
export function parsePipework(argv: string[]): PipeworkCommand {
  const a = [...argv];
  let direct = false;
  if (a[0] === '--wait') {
    a.shift();
    let ifname = 'eth1';
    if ((a[0] as string | undefined) === '-i') {
      if (a[1] === undefined) throw invalid('-i needs an interface name');
      ifname = checkIfname('-i interface', a[1]);
      a.splice(0, 2);
    }
    if (a.length) throw invalid(`unexpected argument ${JSON.stringify(a[0])} after --wait [-i IFNAME]`);
    return { kind: 'wait', ifname };
  }
  if (a[0] === '--direct-phys') {
    direct = true;
    a.shift();
  }
  const hostIf = a.shift();
  if (hostIf === undefined) throw invalid('missing host interface: expected pipework <hostinterface> ... <guest> <ipaddr>/<subnet>[@gateway]');
  if (hostIf.startsWith('-')) throw invalid(`unknown option ${JSON.stringify(hostIf)}: expected --wait, --direct-phys or a host interface`);
  if (hostIf === 'route' || hostIf === 'rule' || hostIf === 'tc') {
    const guest = a.shift();
    if (!guest) throw invalid(`pipework ${hostIf} needs a guest and a ${hostIf} command`);
    if (a.length === 0) throw invalid(`pipework ${hostIf} ${guest}: missing the ${hostIf} command (e.g. ${hostIf === 'tc' ? 'qdisc add dev eth1 root tbf rate 1mbit burst 32kbit latency 400ms' : 'add 10.0.0.0/8 via 10.1.0.1'})`);
    return { kind: hostIf, guest, args: a };
  }
  if (!hostIf.startsWith('mac:')) checkIfname('host interface', hostIf);
  else parseMac(hostIf.slice(4));

  let ifname = 'eth1';
  let localIfname: string | undefined;
  let family: 4 | 6 | undefined;
  if (a[0] === '-i') {
    if (a[1] === undefined) throw invalid('-i needs an interface name');
    ifname = checkIfname('-i interface', a[1]);
    a.splice(0, 2);
  }
  if (a[0] === '-l') {
    if (a[1] === undefined) throw invalid('-l needs an interface name');
    localIfname = checkIfname('-l interface', a[1]);
    a.splice(0, 2);
  }
  if (a[0] === '-a') {
    if (a[1] !== '4' && a[1] !== '6') throw invalid(`-a ${JSON.stringify(a[1] ?? '')}: expected 4 or 6`);
    family = Number(a[1]) as 4 | 6;
    a.splice(0, 2);
  }
  const guest = a.shift();
  if (guest === undefined || guest.startsWith('-')) throw invalid(guest ? `option ${guest} is out of place: pipework takes -i, -l, -a in that order, before the guest` : 'missing guest: expected a container, netns name or PID');
  const addr = a.shift();
  if (addr === undefined) throw invalid(`missing address for ${guest}: expected ADDR/LEN[@GATEWAY], 0/0, dhcp, udhcpc, dhclient or dhcpcd`);
  const macVlan = a.shift();
  if (a.length) throw invalid(`unexpected argument ${JSON.stringify(a[0])}: [macaddr][@vlan] is the last one`);

  const address = addr === '0/0' ? { kind: 'none' as const } : (parseDhcp(addr) ?? parseStaticAddress(addr));
  if (address.kind === 'static' && family !== undefined) {
    const v6 = address.cidr.includes(':');
    if ((family === 6) !== v6) throw invalid(`-a ${family} but ${address.cidr} is an IPv${v6 ? 6 : 4} address`);
  }
  let mac: string | undefined;
  let vlan: number | undefined;
  if (macVlan !== undefined) {
    const at = macVlan.indexOf('@');
    const m = at < 0 ? macVlan : macVlan.slice(0, at);
    if (at >= 0) vlan = parseVlan(macVlan.slice(at + 1).split('@')[0]!);
    if (m) mac = parseMac(m);
  }
  const request: AttachRequest = {
    guest,
    hostIf,
    ifname,
    addresses: [address],
    routes: [],
    hostAccess: false,
    direct,
    ...(localIfname ? { localIfname } : {}),
    ...(mac ? { mac } : {}),
    ...(vlan !== undefined ? { vlan } : {}),
  };
  return { kind: 'attach', request, wait: false };
}
