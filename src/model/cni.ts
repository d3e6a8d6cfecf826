// CNI, pure: the network configuration nslab-cni takes, the CNI_* environment, spec errors, and results
// in each spec version it speaks (CNI spec 1.1.0, SPEC.md; down to 0.4.0).
import { isIP } from './ip-family.js';
import IPCIDR from 'ip-cidr';
import * as z from 'zod/mini';
import type { $ZodIssue } from 'zod/v4/core';
import { ifnameProblem } from './names.js';

/** The spec versions nslab-cni speaks, oldest first (SPEC.md "Version considerations"). */
export const CNI_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
/** The version nslab-cni reports for itself. */
export const CNI_LATEST = '1.1.0';

/** The commands of SPEC.md §"Parameters" (CNI_COMMAND). */
export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** Well-known error codes (SPEC.md "Error"); 100+ are nslab's own. */
export const CNI_ERR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN: 11,
  NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
  /** nslab: CHECK found the kernel differing from the attachment's result. */
  CHECK_FAILED: 100,
  /** nslab: a kernel step failed (what was done was rolled back). */
  APPLY_FAILED: 101,
  INTERNAL: 999,
} as const;

/** A CNI error result: printed as `{cniVersion, code, msg, details}` on stdout, with a non-zero exit. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
  /** The spec's error object. */
  toResult(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** The CNI_* variables of one call, checked (SPEC.md "Parameters"). */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Path of the container's netns; '' when not given (allowed for DEL). */
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs. */
  args: Record<string, string>;
  /** CNI_PATH split on ':'. */
  path: string[];
}

/** Where plugins are looked for when CNI_PATH is empty: the reference's /opt/cni/bin, then Debian's. */
export const DEFAULT_CNI_PATH = ['/opt/cni/bin', '/usr/lib/cni'];

/**
 * Reads and checks the CNI_* environment for `command`: CNI_CONTAINERID (alphanumerics, `_.-`) and
 * CNI_IFNAME (≤ 15 bytes) for ADD/DEL/CHECK, CNI_NETNS for ADD and CHECK (SPEC.md).
 * @throws CniError 4 (invalid environment variables) naming the variable and its value
 */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_COMMAND ${JSON.stringify(command)}: expected one of ${CNI_COMMANDS.join(', ')}`);
  const out: CniEnv = {
    command: command as CniCommand,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    args: parseArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
  if (out.command === 'ADD' || out.command === 'DEL' || out.command === 'CHECK') {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(out.containerId)) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_CONTAINERID ${JSON.stringify(out.containerId)}: expected letters, digits, "_", "." or "-", starting with a letter or digit`);
    const p = ifnameProblem(out.ifname);
    if (p) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_IFNAME ${JSON.stringify(out.ifname)} ${p}`);
    if (out.command !== 'DEL' && !out.netns) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS is missing: ${out.command} needs the path of the container's network namespace`);
    if (out.netns && !out.netns.startsWith('/')) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS ${JSON.stringify(out.netns)}: expected an absolute path such as /run/netns/NAME`);
  }
  return out;
}

/** `K1=V1;K2=V2` (CNI_ARGS). */
function parseArgs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of s.split(';').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

// zod/mini (the same checks, tree-shaken: 26 KB bundled against 750 KB of zod's classic API), because
// nslab-cni starts from a V8 snapshot whose load time grows with its size (README "Attach benchmark").
const refine = <T>(fn: (v: T) => boolean, error: string) => z.refine<T>(fn, { error });
const cidr = z.string().check(refine((v: string) => v.includes('/') && IPCIDR.isValidCIDR(v), 'expected a CIDR such as 10.22.0.0/24'));
const ip = z.string().check(refine((v: string) => isIP(v) !== 0, 'expected an IP address'));
const ipv4Cidr = z.string().check(refine((v: string) => v.includes('/') && isIP(v.split('/')[0]!) === 4 && IPCIDR.isValidCIDR(v), 'expected an IPv4 CIDR such as 10.22.0.0/24'));
const ifname = z.string().check(refine((v: string) => ifnameProblem(v) === null, 'expected an interface name of at most 15 bytes, without blanks, "/" or ":"'));
const name = (what: string) => z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: what }));
const route = z.object({ dst: cidr, gw: z.optional(ip) });
const dns = z.object({ nameservers: z.optional(z.array(z.string())), domain: z.optional(z.string()), search: z.optional(z.array(z.string())), options: z.optional(z.array(z.string())) });

/** nslab's own IPAM: the address book of network modes (same state file, same lock). */
const nslabIpam = z
  .object({
    type: z.literal('nslab'),
    /** The subnet to hand out from; or `network`. */
    subnet: z.optional(ipv4Cidr),
    /** An nslab network (`nslab network create`): its subnet and gateway, skipping its nodes' addresses. */
    network: z.optional(name('expected a network name')),
    gateway: z.optional(z.string().check(refine((v: string) => isIP(v) === 4, 'expected an IPv4 address'))),
    /** Hand out only from this part of the subnet (Docker's --ip-range). */
    range: z.optional(ipv4Cidr),
    routes: z.optional(z.array(route)),
  })
  .check(z.refine((v) => v.subnet !== undefined || v.network !== undefined, { error: 'expected "subnet" or "network"', path: ['subnet'] }));

/** Any other IPAM: a plugin found on CNI_PATH, given the whole configuration (SPEC.md "IP Allocation"). */
const delegatedIpam = z.looseObject({ type: name('expected a plugin name (a file in CNI_PATH)') });

const common = {
  cniVersion: z.string(),
  name: name('expected letters, digits, "_", "." or "-"'),
  type: z.string(),
  mtu: z.optional(z.int().check(z.minimum(68, { error: 'expected an MTU from 68 to 65535' }), z.maximum(65535, { error: 'expected an MTU from 68 to 65535' }))),
  ipam: z.optional(z.looseObject({ type: z.string() })),
  dns: z.optional(dns),
  prevResult: z.optional(z.unknown()),
  runtimeConfig: z.optional(z.unknown()),
  /** The runtime's live attachments, for GC (SPEC.md "GC"). */
  'cni.dev/valid-attachments': z.optional(z.array(z.object({ containerID: z.string(), ifname: z.string() }))),
};

/** A Linux bridge (the reference `bridge` plugin's fields). */
const bridgeConf = z.looseObject({
  ...common,
  kind: z.optional(z.literal('bridge')),
  bridge: z._default(ifname, 'cni0'),
  isGateway: z._default(z.boolean(), false),
  isDefaultGateway: z._default(z.boolean(), false),
  ipMasq: z._default(z.boolean(), false),
  hairpinMode: z._default(z.boolean(), false),
  vlan: z.optional(z.undefined({ error: 'a Linux bridge does not carry VLANs here: use "kind": "ovs" with "vlan"' })),
});

/** An Open vSwitch bridge (userspace datapath where the kernel module is missing), an access port with `vlan`. */
const ovsConf = z.looseObject({
  ...common,
  kind: z.literal('ovs'),
  bridge: z._default(ifname, 'ovs-cni0'),
  vlan: z.optional(z.int().check(z.minimum(1, { error: 'expected a VLAN tag from 1 to 4094' }), z.maximum(4094, { error: 'expected a VLAN tag from 1 to 4094' }))),
});

/** A macvlan child of `master` in bridge mode. */
const macvlanConf = z.looseObject({
  ...common,
  kind: z.literal('macvlan'),
  master: ifname,
  mode: z._default(z.literal('bridge'), 'bridge'),
});

export type BridgeConf = z.infer<typeof bridgeConf>;
export type OvsConf = z.infer<typeof ovsConf>;
export type MacvlanConf = z.infer<typeof macvlanConf>;
/** A checked network configuration. */
export type CniConf = (BridgeConf & { kind?: 'bridge' }) | OvsConf | MacvlanConf;
export type NslabIpamConf = z.infer<typeof nslabIpam>;

/** The plugin names nslab-cni answers to (the `type` of its configurations). */
export const CNI_TYPES = ['nslab-cni', 'nslab'];

/** What a zod issue says, as `FIELD VALUE: EXPECTATION`. */
function issueLine(raw: unknown, iss: $ZodIssue): string {
  const path = iss.path.map(String);
  let v: unknown = raw;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  const field = path.join('.') || '(config)';
  return `${field}${v === undefined ? '' : ` ${JSON.stringify(v)}`}: ${iss.message}`;
}

/**
 * Parses the network configuration on stdin (SPEC.md "Section 1: Network configuration format"):
 * `kind` picks bridge (default), ovs or macvlan; unknown fields are kept (a runtime adds its own).
 * @param text stdin as given
 * @throws CniError 6 (not JSON), 1 (cniVersion not spoken), 7 (a field is wrong: names it and its value)
 */
export function parseConf(text: string): CniConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_ERR.DECODE, `network configuration on stdin is not JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CniError(CNI_ERR.DECODE, 'network configuration on stdin: expected a JSON object');
  const o = raw as Record<string, unknown>;
  checkVersion(o.cniVersion);
  if (typeof o.type !== 'string' || !CNI_TYPES.includes(o.type)) throw new CniError(CNI_ERR.INVALID_CONFIG, `type ${JSON.stringify(o.type)}: expected "nslab-cni"`);
  const kind = o.kind ?? 'bridge';
  const schema = kind === 'bridge' ? bridgeConf : kind === 'ovs' ? ovsConf : kind === 'macvlan' ? macvlanConf : null;
  if (!schema) throw new CniError(CNI_ERR.INVALID_CONFIG, `kind ${JSON.stringify(kind)}: expected "bridge", "ovs" or "macvlan"`);
  const res = schema.safeParse(raw);
  if (!res.success) throw new CniError(CNI_ERR.INVALID_CONFIG, `invalid network configuration: ${issueLine(raw, res.error.issues[0]!)}`, res.error.issues.slice(1).map((i) => issueLine(raw, i)).join('; '));
  if (res.data.ipam) {
    // `ipam.type` picks the schema: nslab's own fields are checked; a plugin's are its own business.
    const ipamRaw = o.ipam as Record<string, unknown>;
    const ir = (ipamRaw.type === 'nslab' ? nslabIpam : delegatedIpam).safeParse(ipamRaw);
    if (!ir.success) {
      const at = (i: $ZodIssue) => issueLine(raw, { ...i, path: ['ipam', ...i.path] } as $ZodIssue);
      throw new CniError(CNI_ERR.INVALID_CONFIG, `invalid network configuration: ${at(ir.error.issues[0]!)}`, ir.error.issues.slice(1).map(at).join('; '));
    }
    res.data.ipam = ir.data as typeof res.data.ipam;
  }
  return res.data as CniConf;
}

/**
 * Refuses a cniVersion nslab-cni does not speak (SPEC.md: error 1, "Incompatible CNI version").
 * @throws CniError 1 naming the version and the supported ones
 */
export function checkVersion(v: unknown): string {
  if (typeof v !== 'string' || !(CNI_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `cniVersion ${JSON.stringify(v)}: incompatible CNI version; expected one of ${CNI_VERSIONS.join(', ')}`);
  }
  return v;
}

/** An interface of a result. */
export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The container's netns path: set for interfaces inside the container only. */
  sandbox?: string;
}

/** An address of a result; `interface` indexes `interfaces`. */
export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export type CniDns = z.infer<typeof dns>;

/** A success result, in the 1.x form (SPEC.md "Success"). */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/**
 * Reads a result another plugin printed (an IPAM plugin, or `prevResult`) in any version nslab
 * speaks: 0.4.0's `ips[].version` is dropped (1.0.0 derives the family from the address).
 * @throws CniError 6 when it is not a result
 */
export function readResult(v: unknown, what: string): CniResult {
  if (!v || typeof v !== 'object') throw new CniError(CNI_ERR.DECODE, `${what}: expected a CNI result object`);
  const o = v as Record<string, unknown>;
  const ips = Array.isArray(o.ips) ? (o.ips as Array<Record<string, unknown>>) : [];
  for (const x of ips) if (typeof x.address !== 'string' || !IPCIDR.isValidCIDR(x.address)) throw new CniError(CNI_ERR.DECODE, `${what}: ips[].address ${JSON.stringify(x.address)}: expected ADDRESS/LENGTH`);
  return {
    cniVersion: typeof o.cniVersion === 'string' ? o.cniVersion : CNI_LATEST,
    ...(Array.isArray(o.interfaces) ? { interfaces: o.interfaces as CniInterface[] } : {}),
    ips: ips.map((x) => ({ address: x.address as string, ...(typeof x.gateway === 'string' ? { gateway: x.gateway } : {}), ...(typeof x.interface === 'number' ? { interface: x.interface } : {}) })),
    ...(Array.isArray(o.routes) ? { routes: (o.routes as CniRoute[]).map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) })) } : {}),
    ...(o.dns && typeof o.dns === 'object' && Object.keys(o.dns).length ? { dns: o.dns as CniDns } : {}),
  };
}

/**
 * A result in the form of `version` (SPEC.md; 0.4.0 "Result" has `ips[].version`, 1.0.0 dropped it).
 * Empty lists and an empty `dns` are left out, as the reference plugins print them.
 */
export function resultFor(res: CniResult, version: string): Record<string, unknown> {
  const ips = (res.ips ?? []).map((x) => (version === '0.4.0' ? { version: isIP(x.address.split('/')[0]!) === 6 ? '6' : '4', ...x } : { ...x }));
  return {
    cniVersion: version,
    ...(res.interfaces?.length ? { interfaces: res.interfaces } : {}),
    ...(ips.length ? { ips } : {}),
    ...(res.routes?.length ? { routes: res.routes } : {}),
    dns: res.dns ?? {},
  };
}

/** Where libcni (podman, containerd, CRI-O) caches results: `NETWORK-CONTAINERID-IFNAME` (libcni's cacheDir). */
export function cniCacheDir(): string {
  return process.env.NSLAB_CNI_CACHE_DIR || '/var/lib/cni/results';
}

/** The name nslab's marks and journals use for a CNI container (`cni:ID`). */
export function cniGuestRef(containerId: string): string {
  return `cni:${containerId}`;
}

/** The version a delegated plugin gets: 1.1.0 only adds GC and STATUS, so ADD/DEL/CHECK speak 1.0.0 to plugins that stop there. */
export function delegateVersion(command: CniCommand, v: string): string {
  return v === '1.1.0' && command !== 'GC' && command !== 'STATUS' ? '1.0.0' : v;
}
