// Network modes as Docker names them: the values of `--net`, `-p`, `--expose`, `--link` and the
// daemon's options, validated into plain data with one-line errors.
import { isIP } from './ip-family.js';
import { invalid } from '../errors.js';
import { parseCidr4 } from './ipam.js';

/** The default network's name, as Docker's (`docker network ls` shows `bridge`). */
export const DEFAULT_NETWORK = 'bridge';

/** Names `nslab network create` refuses: Docker's predefined networks. */
export const RESERVED_NETWORKS = ['bridge', 'host', 'none', 'default'] as const;

/**
 * A node's network mode (`--net`, Docker's `--network`):
 * - `none`: its own netns with only `lo`;
 * - `host`: no netns of its own, the namespace nslab runs in;
 * - `container`: shares the netns of node `other` (one interface set, one address);
 * - `network`: its own netns with an `eth0` on a network (`bridge` is the default one).
 */
export type NetMode = { kind: 'none' } | { kind: 'host' } | { kind: 'container'; other: string } | { kind: 'network'; network: string };

/** Node and network names: Docker's rule for names, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 bytes. */
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Checks a node or network name (a node's name is also its netns name and its `/etc/netns` directory).
 * @throws NslabError INVALID_INPUT naming the value
 */
export function checkName(what: 'node' | 'network', v: string): string {
  if (!NAME_RE.test(v) || v.length > 64) throw invalid(`${what} name ${JSON.stringify(v)}: expected 1-64 characters from a-z A-Z 0-9 _ . -, starting with a letter or digit`);
  return v;
}

/** Parses `--net`: `none`, `host`, `bridge`, `container:NODE` or a network's name. */
export function parseNetMode(v: string): NetMode {
  if (v === 'none') return { kind: 'none' };
  if (v === 'host') return { kind: 'host' };
  if (v === 'default') return { kind: 'network', network: DEFAULT_NETWORK };
  if (v.startsWith('container:')) {
    const other = v.slice('container:'.length);
    if (!NAME_RE.test(other)) throw invalid(`--net ${JSON.stringify(v)}: expected container:NODE with the name of a node`);
    return { kind: 'container', other };
  }
  if (!NAME_RE.test(v)) throw invalid(`--net ${JSON.stringify(v)}: expected none, host, bridge, container:NODE or the name of a network`);
  return { kind: 'network', network: v };
}

/** The `--net` value of a mode, as a person types it. */
export function formatNetMode(m: NetMode): string {
  switch (m.kind) {
    case 'none':
    case 'host':
      return m.kind;
    case 'container':
      return `container:${m.other}`;
    case 'network':
      return m.network;
    default: {
      const never: never = m;
      return never;
    }
  }
}

/** A transport protocol of a published or exposed port. */
export type Proto = 'tcp' | 'udp';

/** One `-p` before a host port is picked: `hostPort` null means "pick one from 49000-49900". */
export interface PortSpec {
  /** The host address to bind, `0.0.0.0` for all. */
  hostIp: string;
  hostPort: number | null;
  containerPort: number;
  proto: Proto;
}

const PORT_FORMS = 'expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp], such as 8080:80, 127.0.0.1:8080:80, 127.0.0.1::80, 80 or 53:5353/udp';

function port(v: string, spec: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw invalid(`-p ${JSON.stringify(spec)}: port ${JSON.stringify(v)} is not a number from 1 to 65535; ${PORT_FORMS}`);
  return n;
}

/**
 * Parses a `-p` value in every form of the notes (`docker run -p`):
 * `HOSTPORT:CONTAINERPORT`, `IP:HOSTPORT:CONTAINERPORT`, `IP::CONTAINERPORT`, `CONTAINERPORT`, each
 * with an optional `/udp` (or `/tcp`, the default). Without a host port one is picked from 49000-49900.
 * @throws NslabError INVALID_INPUT naming the value and the forms expected
 */
export function parsePortSpec(spec: string): PortSpec {
  const [body, proto = 'tcp', ...extra] = spec.split('/');
  if (extra.length || (proto !== 'tcp' && proto !== 'udp')) throw invalid(`-p ${JSON.stringify(spec)}: protocol ${JSON.stringify(proto)} is not tcp or udp; ${PORT_FORMS}`);
  const parts = body!.split(':');
  let hostIp = '0.0.0.0';
  let hostPort: string | undefined;
  let containerPort: string;
  if (parts.length === 1) containerPort = parts[0]!;
  else if (parts.length === 2) [hostPort, containerPort] = parts as [string, string];
  else if (parts.length === 3) [hostIp, hostPort, containerPort] = parts as [string, string, string];
  else throw invalid(`-p ${JSON.stringify(spec)}: ${PORT_FORMS}`);
  if (isIP(hostIp) !== 4) throw invalid(`-p ${JSON.stringify(spec)}: host address ${JSON.stringify(hostIp)} is not an IPv4 address; ${PORT_FORMS}`);
  if (parts.length === 2 && hostPort === '') throw invalid(`-p ${JSON.stringify(spec)}: ${PORT_FORMS}`);
  return { hostIp, hostPort: hostPort ? port(hostPort, spec) : null, containerPort: port(containerPort, spec), proto: proto as Proto };
}

/** An exposed port (`--expose 80`, `--expose 53/udp`): what `-P` publishes and `--link` advertises. */
export interface Exposed {
  port: number;
  proto: Proto;
}

/** Parses `--expose PORT[/tcp|/udp]`. */
export function parseExpose(v: string): Exposed {
  const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(v);
  const n = m ? Number(m[1]) : 0;
  if (!m || n < 1 || n > 65535) throw invalid(`--expose ${JSON.stringify(v)}: expected PORT[/tcp|/udp] with a port from 1 to 65535, such as 80 or 53/udp`);
  return { port: n, proto: (m[2] ?? 'tcp') as Proto };
}

/** A legacy link (`--link OTHER[:ALIAS]`): the alias defaults to the other node's name. */
export interface LinkSpec {
  target: string;
  alias: string;
}

/** Parses `--link OTHER[:ALIAS]`. */
export function parseLink(v: string): LinkSpec {
  const [target, alias, ...extra] = v.split(':');
  if (extra.length || !target || !NAME_RE.test(target) || (alias !== undefined && !NAME_RE.test(alias))) {
    throw invalid(`--link ${JSON.stringify(v)}: expected NODE or NODE:ALIAS, such as db or db:dblink`);
  }
  return { target, alias: alias ?? target };
}

/**
 * The environment variables Docker gives a linked node's process, for alias `ALIAS` of node `other`
 * at `ip` exposing `ports` (notes 004: `DB_NAME=/web2/db`, `DB_PORT=tcp://172.17.0.5:5432`,
 * `DB_PORT_5432_TCP=…`, `…_PROTO`, `…_PORT`, `…_ADDR`). `ALIAS_PORT` names the lowest port.
 */
export function linkEnv(node: string, link: LinkSpec, ip: string, ports: Exposed[]): Record<string, string> {
  const p = link.alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const env: Record<string, string> = { [`${p}_NAME`]: `/${node}/${link.alias}` };
  const sorted = [...ports].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  if (sorted[0]) env[`${p}_PORT`] = `${sorted[0].proto}://${ip}:${sorted[0].port}`;
  for (const e of sorted) {
    const k = `${p}_PORT_${e.port}_${e.proto.toUpperCase()}`;
    env[k] = `${e.proto}://${ip}:${e.port}`;
    env[`${k}_PROTO`] = e.proto;
    env[`${k}_PORT`] = String(e.port);
    env[`${k}_ADDR`] = ip;
  }
  return env;
}

/** The default network's options: the dockerd flags of notes 000 and 004. */
export interface DaemonOptions {
  /** `--bip`: the bridge's address with the subnet's length (`172.17.0.1/16` when absent). */
  bip: string | null;
  /** `--fixed-cidr`: the range node addresses come from (within the subnet). */
  fixedCidr: string | null;
  /** `--mtu`: bytes, for the bridge and the nodes' interfaces. */
  mtu: number;
  /** `--bridge`: an existing bridge to use instead of creating `nslab0` (its address gives the subnet). */
  bridge: string | null;
  /** `--icc`: nodes on the default network may talk to each other. */
  icc: boolean;
  /** `--ip-forward`: turn `net.ipv4.ip_forward` on (restored when the last network goes). */
  ipForward: boolean;
  /** `--iptables`: add iptables rules (NAT, FORWARD, isolation, published ports); false: none at all. */
  iptables: boolean;
}

/** dockerd's defaults. */
export const DEFAULT_DAEMON: DaemonOptions = { bip: null, fixedCidr: null, mtu: 1500, bridge: null, icc: true, ipForward: true, iptables: true };

/** The flags of `nslab network default` as yargs gives them. */
export interface DaemonFlags {
  bip?: string;
  'fixed-cidr'?: string;
  mtu?: number;
  bridge?: string;
  icc?: boolean;
  'ip-forward'?: boolean;
  iptables?: boolean;
}

/**
 * Validates the daemon options. `--bip` must be a host address with its length; `--fixed-cidr` lies
 * within it (Docker accepts host bits, as in the notes' `172.17.0.1/25`); `--bridge` and `--bip`
 * exclude each other, as in dockerd.
 * @throws NslabError INVALID_INPUT naming the flag and value
 */
export function daemonOptions(f: DaemonFlags): DaemonOptions {
  const o: DaemonOptions = { ...DEFAULT_DAEMON };
  if (f.mtu !== undefined) {
    if (!Number.isInteger(f.mtu) || f.mtu < 68 || f.mtu > 65535) throw invalid(`--mtu ${f.mtu}: expected a whole number of bytes from 68 to 65535`);
    o.mtu = f.mtu;
  }
  if (f.bridge !== undefined && f.bip !== undefined) throw invalid(`--bridge ${f.bridge} and --bip ${f.bip} exclude each other: the bridge's own address gives the subnet`);
  if (f.bip !== undefined) {
    const c = parseCidr4('--bip', f.bip);
    if (c.ip === c.net.base || c.ip === c.net.broadcast) throw invalid(`--bip ${f.bip}: expected the bridge's own address with the length, such as 172.17.0.1/16, not the subnet's network or broadcast address`);
    o.bip = f.bip;
  }
  if (f['fixed-cidr'] !== undefined) {
    const fc = parseCidr4('--fixed-cidr', f['fixed-cidr']);
    if (o.bip) {
      const b = parseCidr4('--bip', o.bip);
      if (!b.net.contains(fc.net)) throw invalid(`--fixed-cidr ${f['fixed-cidr']} is not within --bip ${o.bip}`);
    }
    o.fixedCidr = `${fc.net.base}/${fc.net.bitmask}`;
  }
  if (f.bridge !== undefined) {
    if (!/^[^\s/:"#\\]{1,15}$/.test(f.bridge)) throw invalid(`--bridge ${JSON.stringify(f.bridge)}: expected the name of an existing bridge (at most 15 bytes)`);
    o.bridge = f.bridge;
  }
  if (f.icc !== undefined) o.icc = f.icc;
  if (f['ip-forward'] !== undefined) o.ipForward = f['ip-forward'];
  if (f.iptables !== undefined) o.iptables = f.iptables;
  return o;
}

/** What `nslab network create` asks for. */
export interface NetworkCreateRequest {
  name: string;
  driver: 'bridge';
  /** A CIDR; absent: picked from Docker's pools (172.18.0.0/16, 172.19.0.0/16, …). */
  subnet: string | null;
  /** Absent: the subnet's first address. */
  gateway: string | null;
}

/**
 * Validates `network create` flags: the driver is `bridge` (the only local one without plugins), a
 * subnet is a network address with its length (`172.33.1.0/24`), a gateway is a host of the subnet
 * and needs `--subnet` (Docker: "no matching subnet for gateway").
 * @throws NslabError INVALID_INPUT naming the flag and value
 */
export function networkCreateRequest(f: { name: string; driver?: string; subnet?: string; gateway?: string }): NetworkCreateRequest {
  const name = checkName('network', f.name);
  if ((RESERVED_NETWORKS as readonly string[]).includes(name)) throw invalid(`network name ${JSON.stringify(name)} is reserved for a predefined network (bridge, host, none)`);
  if (f.driver !== undefined && f.driver !== 'bridge') throw invalid(`--driver ${JSON.stringify(f.driver)}: only bridge is supported (overlay needs a cluster store, macvlan: use nslab attach)`);
  let subnet: string | null = null;
  if (f.subnet !== undefined) {
    const c = parseCidr4('--subnet', f.subnet);
    if (c.ip !== c.net.base) throw invalid(`--subnet ${f.subnet}: expected a network address, such as ${c.net.base}/${c.net.bitmask}`);
    if (c.net.bitmask > 30) throw invalid(`--subnet ${f.subnet}: a /${c.net.bitmask} leaves no room for a gateway and nodes; expected /30 or larger`);
    subnet = `${c.net.base}/${c.net.bitmask}`;
  }
  let gateway: string | null = null;
  if (f.gateway !== undefined) {
    if (isIP(f.gateway) !== 4) throw invalid(`--gateway ${JSON.stringify(f.gateway)}: expected an IPv4 address`);
    if (!subnet) throw invalid(`--gateway ${f.gateway} needs --subnet: the gateway must lie in a subnet you choose`);
    const c = parseCidr4('--subnet', subnet);
    if (!c.net.contains(f.gateway) || f.gateway === c.net.base || f.gateway === c.net.broadcast) throw invalid(`--gateway ${f.gateway} is not a host address of --subnet ${subnet}`);
    gateway = f.gateway;
  }
  return { name, driver: 'bridge', subnet, gateway };
}
