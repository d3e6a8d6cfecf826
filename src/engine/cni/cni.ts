// nslab-cni's commands (CNI spec 1.1.0: ADD, DEL, CHECK, VERSION, STATUS, GC): each a thin layer over
// the attach engine (attach/attach.ts) and the IPAM of network modes or a delegated IPAM plugin.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from '../../model/ip-family.js';
import type { Runner } from '../../exec/runner.js';
import { queryJson } from '../../exec/batch.js';
import { NslabError } from '../../errors.js';
import { BUILTIN, RESTORE, addRules, dropTableOp, pristine, readIptables, restoreInput, type Rule } from '../../kernel/iptables.js';
import { readLinks, type LinkInfo } from '../../kernel/link.js';
import { vsctl } from '../../kernel/ovs.js';
import type { AttachRequest, RouteRequest } from '../../model/attach.js';
import { CNI_ERR, CNI_LATEST, CNI_VERSIONS, CniError, cniCacheDir, cniGuestRef, parseConf, parseEnv, readResult, resultFor, type CniConf, type CniEnv, type CniInterface, type CniResult, type CniRoute } from '../../model/cni.js';
import { parseMark } from '../../model/marks.js';
import { canonicalIp, routeDstKey } from '../../verify/ip.js';
import { shortHash } from '../../model/names.js';
import { attach, detach, removeBridgeIfEmpty } from '../attach/attach.js';
import { tablesNow } from '../clean/recover.js';
import { execPlugin, findPlugin, ipamAdd, ipamCheck, ipamDel, nslabRelease } from './ipam.js';

/** What a call prints and how it exits (SPEC.md: a result or an error on stdout; exit 0 or not). */
export interface CniOutcome {
  stdout: string;
  exitCode: number;
}

/**
 * Runs one CNI call: the CNI_* variables of `vars`, the network configuration `stdin`. Never throws:
 * an error becomes the spec's error object (`code`, `msg`, `details`) on stdout with exit 1.
 * @param r the runner
 * @param stdin what the runtime wrote on stdin
 * @param vars the environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH)
 * @returns what to print and the exit code
 */
export async function runCni(r: Runner, stdin: string, vars: Record<string, string | undefined>): Promise<CniOutcome> {
  let version: string = CNI_LATEST;
  try {
    const env = parseEnv(vars);
    if (env.command === 'VERSION') return { stdout: JSON.stringify({ cniVersion: CNI_LATEST, supportedVersions: [...CNI_VERSIONS] }), exitCode: 0 };
    const raw = rawConf(stdin);
    if (typeof raw.cniVersion === 'string' && (CNI_VERSIONS as readonly string[]).includes(raw.cniVersion)) version = raw.cniVersion;
    const conf = parseConf(stdin);
    if ((env.command === 'GC' || env.command === 'STATUS') && conf.cniVersion !== '1.1.0') {
      throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `${env.command} needs cniVersion 1.1.0; the configuration has ${conf.cniVersion}`);
    }
    switch (env.command) {
      case 'ADD':
        return { stdout: JSON.stringify(resultFor(await cniAdd(r, conf, raw, env), conf.cniVersion)), exitCode: 0 };
      case 'DEL':
        await cniDel(r, conf, raw, env);
        return { stdout: '', exitCode: 0 };
      case 'CHECK':
        await cniCheck(r, conf, raw, env);
        return { stdout: '', exitCode: 0 };
      case 'STATUS':
        await cniStatus(r, conf, env);
        return { stdout: '', exitCode: 0 };
      case 'GC':
        await cniGc(r, conf, raw, env);
        return { stdout: '', exitCode: 0 };
      default: {
        const never: never = env.command;
        throw new CniError(CNI_ERR.INVALID_ENV, `CNI_COMMAND ${String(never)}`);
      }
    }
  } catch (err) {
    const e = asCniError(err);
    return { stdout: JSON.stringify(e.toResult(version)), exitCode: 1 };
  }
}

/** Any error as a spec error: nslab's bad input is a configuration error (7), a failed step 101. */
function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof NslabError) {
    const code = err.code === 'INVALID_INPUT' ? CNI_ERR.INVALID_CONFIG : err.code === 'APPLY_FAILED' ? CNI_ERR.APPLY_FAILED : err.code === 'NOT_FOUND' ? CNI_ERR.INVALID_CONFIG : CNI_ERR.INTERNAL;
    return new CniError(code, err.message, err.hint ?? '');
  }
  return new CniError(CNI_ERR.INTERNAL, err instanceof Error ? err.message : String(err));
}

function rawConf(stdin: string): Record<string, unknown> {
  try {
    const v = JSON.parse(stdin) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * The MACs of links of this netns: from sysfs (no process) when the /sys mounted here is this netns's
 * (its interface list is the one /proc/self/net/dev gives: sysfs shows the netns that mounted it),
 * else from `ip -j link show`. Read after the attach: a Linux bridge's MAC follows its ports.
 * @returns name -> MAC for those found
 */
async function hostMacs(r: Runner, names: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  try {
    const proc = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    const sys = readdirSync('/sys/class/net').sort();
    if (proc.join(' ') === sys.join(' ')) {
      for (const n of names) out.set(n, readFileSync(`/sys/class/net/${n}/address`, 'utf8').trim());
      return out;
    }
  } catch {
    out.clear(); // a link went meanwhile, or no sysfs: ask ip
  }
  for (const l of await readLinks(r, null)) if (names.includes(l.ifname) && l.address) out.set(l.ifname, l.address);
  return out;
}

/** The comment of an attachment's masquerade rules (inspect: owner `attach cni:ID`). */
export function masqOwner(net: string, containerId: string, ifname: string): string {
  return `nslab:cni=${net}/${containerId}/${ifname}`;
}

/** Its chain: per attachment, so DEL removes exactly its own (the reference's CNI-HASH chains). */
function masqChain(net: string, containerId: string, ifname: string): string {
  return `NSLAB-CNI-${shortHash([net, containerId, ifname], 12)}`;
}

/**
 * The ipMasq rules of one IPv4 address, in the reference bridge plugin's shape (pkg/ip/ipmasq_linux.go):
 * `POSTROUTING -s IP/32 -j CHAIN`, and in CHAIN `-d SUBNET -j ACCEPT`, `! -d 224.0.0.0/4 -j MASQUERADE`.
 */
export function masqRules(net: string, containerId: string, ifname: string, cidr: string): { rules: Rule[]; chain: string } {
  const chain = masqChain(net, containerId, ifname);
  const comment = masqOwner(net, containerId, ifname);
  const [ip, len] = cidr.split('/') as [string, string];
  const subnet = `${networkOf(ip, Number(len))}/${len}`;
  return {
    chain,
    rules: [
      { table: 'nat', chain, spec: ['-d', subnet, '-j', 'ACCEPT'], comment },
      { table: 'nat', chain, spec: ['!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE'], comment },
      { table: 'nat', chain: 'POSTROUTING', spec: ['-s', `${ip}/32`, '-j', chain], comment },
    ],
  };
}

function networkOf(ip: string, len: number): string {
  const n = ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const net = (n & mask) >>> 0;
  return [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.');
}

/** A locally administered unicast MAC (first byte 02): set by nslab, so the result needs no read of the container. */
function randomMac(): string {
  const b = randomBytes(5);
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The container's routes (SPEC.md; libcni's ipam.ConfigureIface): each IPAM route, via its `gw` or
 * the gateway of its family; with `isDefaultGateway`, a default route via the gateway.
 */
export function routesOf(conf: CniConf, ipam: CniResult | null): { kernel: RouteRequest[]; result: CniRoute[] } {
  const ips = ipam?.ips ?? [];
  const gwOf = (fam: number) => ips.find((x) => x.gateway && isIP(x.gateway) === fam)?.gateway;
  const result: CniRoute[] = [...(ipam?.routes ?? [])];
  if ((conf.kind ?? 'bridge') === 'bridge' && (conf as { isDefaultGateway?: boolean }).isDefaultGateway) {
    for (const fam of [4, 6]) {
      const gw = gwOf(fam);
      if (gw) result.push({ dst: fam === 4 ? '0.0.0.0/0' : '::/0', gw });
    }
  }
  const kernel = result.map((rt) => {
    const fam = isIP(rt.dst.split('/')[0]!);
    const via = rt.gw ?? gwOf(fam);
    return { to: rt.dst, ...(via ? { via } : {}) };
  });
  return { kernel, result };
}

/**
 * ADD: IPAM first, then the attach engine wires the container (bridge port or OVS access port with
 * its tag, or a macvlan on `master`), then the bridge's gateway address, IP forwarding and ipMasq
 * (bridge kind). A failure after IPAM releases the address and undoes the attach.
 * @returns the result: interfaces (bridge, host end, container end with `sandbox`), ips, routes, dns
 * @throws CniError
 */
export async function cniAdd(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv): Promise<CniResult> {
  if (!existsSync(env.netns)) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS ${JSON.stringify(env.netns)}: no such network namespace`);
  const kind = conf.kind ?? 'bridge';
  if (kind === 'ovs') await needOvs();
  const ref = cniGuestRef(env.containerId);
  // The host's links (and, for ipMasq, its iptables tables, for the journal) are read while the IPAM
  // plugin runs: the attach uses these reads.
  const masqWanted = kind === 'bridge' && (conf as { ipMasq?: boolean }).ipMasq === true;
  const [ipam, hostLinks, tables] = await Promise.all([ipamAdd(r, conf, raw, env), readLinks(r, null), masqWanted ? tablesNow(r) : Promise.resolve(undefined)]);
  const hostIf = kind === 'macvlan' ? (conf as { master: string }).master : (conf as { bridge: string }).bridge;
  const wrong = hostKindProblem(kind, hostIf, hostLinks);
  if (wrong) {
    await ipamDel(r, conf, raw, env).catch(() => undefined);
    throw new CniError(CNI_ERR.INVALID_CONFIG, wrong);
  }
  let attached = false;
  const masqOwned = (c: string) => c === masqOwner(conf.name, env.containerId, env.ifname);
  try {
    const mac = randomMac();
    const routes = routesOf(conf, ipam);
    const req: AttachRequest = {
      guest: ref,
      netnsPath: env.netns,
      hostIf,
      ifname: env.ifname,
      addresses: (ipam?.ips ?? []).map((x) => ({ kind: 'static' as const, cidr: x.address })),
      mac,
      ...(conf.mtu !== undefined ? { mtu: conf.mtu } : {}),
      ...(kind === 'ovs' && (conf as { vlan?: number }).vlan !== undefined ? { vlan: (conf as { vlan: number }).vlan } : {}),
      routes: routes.kernel,
      hostAccess: false,
      direct: false,
      ...(kind === 'bridge' && (conf as { hairpinMode?: boolean }).hairpinMode ? { hairpin: true } : {}),
      markFields: { net: conf.name, ns: env.netns },
      ...(kind === 'macvlan' ? {} : { createAs: kind }),
    };
    const ips = ipam?.ips ?? [];
    const b = kind === 'bridge' ? (conf as { isGateway: boolean; isDefaultGateway: boolean; ipMasq: boolean }) : null;
    if (b && (b.isGateway || b.isDefaultGateway)) {
      req.bridgeAddrs = ips.flatMap((x) => (x.gateway ? [`${x.gateway}/${x.address.split('/')[1]}`] : []));
      req.ipForward = [...new Set(ips.map((x) => isIP(x.address.split('/')[0]!) as 4 | 6))].sort();
    }
    // ipMasq: the attachment's own chain, applied with the attach (one plan, one rollback), in the
    // guest's phase so that it runs beside the guest's batch.
    const masq = b?.ipMasq ? ips.filter((x) => isIP(x.address.split('/')[0]!) === 4).flatMap((x) => {
      const m = masqRules(conf.name, env.containerId, env.ifname, x.address);
      return addRules(m.rules, [{ table: 'nat', name: m.chain }], `CNI attachment ${env.containerId}/${env.ifname}`);
    }).map((s) => ({ ...s, phase: 2 })) : [];
    // IPAM owns uniqueness (host-local's files, nslab's lock): no reading of the bridge's other guests.
    const rep = await attach(r, req, { checkAddresses: false, extraSteps: masq, hostLinks, ...(tables ? { tables } : {}) });
    attached = true;
    const macs = kind === 'macvlan' ? new Map<string, string>() : await hostMacs(r, [hostIf, rep.local!]);
    const macOf = (n: string) => macs.get(n);
    const container: CniInterface = { name: env.ifname, mac, sandbox: env.netns };
    const interfaces: CniInterface[] = kind === 'macvlan' ? [container] : [{ name: hostIf, mac: macOf(hostIf) }, { name: rep.local!, mac: macOf(rep.local!) }, container];
    const at = interfaces.length - 1;
    return {
      cniVersion: conf.cniVersion,
      interfaces,
      ips: (ipam?.ips ?? []).map((x) => ({ ...x, interface: at })),
      routes: routes.result,
      ...(ipam?.dns ? { dns: ipam.dns } : conf.dns ? { dns: conf.dns } : {}),
    };
  } catch (err) {
    if (attached) await detach(r, ref, env.ifname, { netnsPath: env.netns }).catch(() => undefined);
    if (attached && kind === 'bridge') await unmasq(r, masqOwned).catch(() => undefined);
    await ipamDel(r, conf, raw, env).catch(() => undefined);
    throw err;
  }
}

/**
 * Why the host interface cannot serve `kind`, or null: the attach engine picks veth or macvlan by what
 * the interface is, so a `bridge` naming an existing non-bridge (eth0) would otherwise get a macvlan,
 * and a macvlan `master` that is a bridge a veth.
 */
export function hostKindProblem(kind: 'bridge' | 'ovs' | 'macvlan', name: string, links: LinkInfo[]): string | null {
  const l = links.find((x) => x.ifname === name);
  const k = l?.linkinfo?.info_kind ?? (l ? 'device' : null);
  if (kind === 'macvlan') {
    if (!l) return `master ${JSON.stringify(name)}: no such interface here`;
    if (k === 'bridge' || k === 'openvswitch') return `master ${JSON.stringify(name)} is a ${k === 'bridge' ? 'Linux' : 'Open vSwitch'} bridge: expected the interface macvlans hang off (or "kind": "${k === 'bridge' ? 'bridge' : 'ovs'}")`;
    return null;
  }
  if (kind === 'bridge' && l && k !== 'bridge') return `bridge ${JSON.stringify(name)} is an existing ${k} interface, not a Linux bridge: expected a bridge's name (made when missing)`;
  // ovs: the database says what is a bridge (its userspace datapath shows one as a tap device here).
  return null;
}

/** Removes the masquerade rules and chains of the attachments whose owner comment `owns` accepts. */
async function unmasq(r: Runner, owns: (comment: string) => boolean): Promise<void> {
  const saved = await readIptables(r);
  const nat = saved.get('nat');
  const rules = nat?.rules.filter((x) => x.comment !== null && owns(x.comment)) ?? [];
  if (!nat || rules.length === 0) return;
  const chains = [...new Set(rules.map((x) => x.chain).filter((c) => c.startsWith('NSLAB-CNI-')))];
  // One transaction: the rules, then their chains (empty by then; the jumps to them went first).
  await r.run({ argv: RESTORE, input: restoreInput('nat', [...rules.map((x) => `-D ${x.chain} ${x.text}`), ...chains.map((c) => `-X ${c}`)]) });
  // The nat table holding nothing of anyone's any more (nf_tables made it for these rules): dropped,
  // so the namespace reads as before the ADD. A table with any rule, chain or policy of another stays.
  const rest = { rules: nat.rules.filter((x) => !rules.includes(x)), chains: new Map([...nat.chains].filter(([c]) => !chains.includes(c))) };
  const drop = dropTableOp('nat');
  if (pristine(rest, BUILTIN.nat) && drop.tool === 'cmd') await r.run(drop.cmd, { check: false });
}

/**
 * DEL: idempotent (SPEC.md "DEL"): the IPAM release, then detach (the container end if its netns is
 * still there, the host end and OVS port found by their marks), then the masquerade chain. A missing
 * netns, a missing interface, a second DEL: success, nothing left.
 */
export async function cniDel(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv): Promise<void> {
  const kind = conf.kind ?? 'bridge';
  // The three are independent (the reference releases the address first; here they run at once).
  const links = async () => {
    const gone = await detach(r, cniGuestRef(env.containerId), env.ifname, { netnsPath: env.netns || null }).then(
      () => false,
      (err: unknown) => {
        if (!(err instanceof NslabError && err.code === 'NOT_FOUND')) throw err;
        return true;
      },
    );
    // Nothing left to detach (the netns went first and took the veth): the bridge nslab made may be empty now.
    if (gone && kind !== 'macvlan') await removeBridgeIfEmpty(r, { kind, name: (conf as { bridge: string }).bridge }).catch(() => false);
  };
  const nat = async () => {
    if (kind === 'bridge' && (conf as { ipMasq?: boolean }).ipMasq) {
      const owner = masqOwner(conf.name, env.containerId, env.ifname);
      await unmasq(r, (c) => c === owner);
    }
  };
  const res = await Promise.allSettled([ipamDel(r, conf, raw, env), links(), nat()]);
  const bad = res.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (bad) throw bad.reason;
}

/**
 * CHECK: reads the kernel (SPEC.md "CHECK"): the container interface (its nslab mark, MAC, MTU), each
 * address and route of `prevResult`, and the host end on its bridge; the IPAM plugin's own CHECK.
 * @throws CniError 7 without prevResult; 100 naming what is missing or different
 */
export async function cniCheck(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv): Promise<void> {
  if (conf.prevResult === undefined) throw new CniError(CNI_ERR.INVALID_CONFIG, 'prevResult is missing: CHECK needs the result of ADD');
  const prev = readResult(conf.prevResult, 'prevResult');
  await ipamCheck(r, conf, raw, env, prev);
  const fail = (msg: string) => new CniError(CNI_ERR.CHECK_FAILED, msg);
  if (!existsSync(env.netns)) throw fail(`netns ${env.netns} does not exist`);
  type R = { dst: string; gateway?: string; dev?: string };
  // One process reads links, addresses and IPv4 routes; IPv6 routes only when the result has some.
  const [[l4, r4], r6] = await Promise.all([
    queryJson(r, env.netns, [['addr', 'show'], ['route', 'show']], ['-d']),
    (prev.routes ?? []).some((x) => x.dst.includes(':')) ? queryJson(r, env.netns, [['route', 'show']], ['-6']) : Promise.resolve([[]]),
  ]);
  const links = l4 as Array<LinkInfo & { addr_info?: Array<{ local: string; prefixlen: number }> }>;
  const rts = [...(r4 as R[]), ...((r6[0] ?? []) as R[])];
  const c = links.find((l) => l.ifname === env.ifname);
  if (!c) throw fail(`interface ${env.ifname} is missing in netns ${env.netns}`);
  if (parseMark(c.ifalias)?.kind !== 'attach') throw fail(`interface ${env.ifname} in ${env.netns} was not made by nslab (no nslab:attach mark)`);
  const idx = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && i.sandbox);
  const want = idx >= 0 ? prev.interfaces![idx]! : undefined;
  if (want?.mac && c.address?.toLowerCase() !== want.mac.toLowerCase()) throw fail(`interface ${env.ifname}: MAC ${c.address}, expected ${want.mac} (prevResult)`);
  if (conf.mtu !== undefined && c.mtu !== conf.mtu) throw fail(`interface ${env.ifname}: MTU ${c.mtu}, expected ${conf.mtu}`);
  if (!c.flags.includes('UP')) throw fail(`interface ${env.ifname} is down`);
  const have = new Set((c.addr_info ?? []).map((a) => `${canonicalIp(a.local)}/${a.prefixlen}`));
  for (const x of prev.ips ?? []) {
    if (x.interface !== undefined && x.interface !== idx) continue;
    const [a, len] = x.address.split('/') as [string, string];
    if (!have.has(`${canonicalIp(a)}/${len}`)) throw fail(`address ${x.address} is missing on ${env.ifname}`);
  }
  for (const rt of prev.routes ?? []) {
    const ok = rts.some((k) => routeDstKey(k.dst) === routeDstKey(rt.dst) && (!rt.gw || (k.gateway !== undefined && canonicalIp(k.gateway) === canonicalIp(rt.gw))));
    if (!ok) throw fail(`route ${rt.dst}${rt.gw ? ` via ${rt.gw}` : ''} is missing in netns ${env.netns}`);
  }
  if ((conf.kind ?? 'bridge') === 'macvlan') return;
  const bridge = (conf as { bridge: string }).bridge;
  const host = (await readLinks(r, null)).find((l) => {
    const m = parseMark(l.ifalias);
    return m?.kind === 'attach' && m.fields.guest === cniGuestRef(env.containerId) && m.fields.if === env.ifname;
  });
  if (!host) throw fail(`the host end of ${env.ifname} (marked guest=${cniGuestRef(env.containerId)}) is missing`);
  if ((conf.kind ?? 'bridge') === 'bridge' && host.master !== bridge) throw fail(`host end ${host.ifname} is not a port of bridge ${bridge}${host.master ? ` (it is on ${host.master})` : ''}`);
}


/** Open vSwitch answers (its database socket and `ovs-vsctl show`), else CniError 50. */
async function needOvs(r?: Runner): Promise<void> {
  const sock = join(process.env.OVS_RUNDIR || '/var/run/openvswitch', 'db.sock');
  if (!existsSync(sock)) throw new CniError(CNI_ERR.NOT_AVAILABLE, `Open vSwitch is not running: no database socket ${sock}`, 'start ovsdb-server and ovs-vswitchd, or set OVS_RUNDIR');
  if (r) {
    const res = await r.run({ argv: vsctl('--timeout=2', 'show') }, { check: false }).catch(() => null);
    if (!res || res.exitCode !== 0) throw new CniError(CNI_ERR.NOT_AVAILABLE, `Open vSwitch is not answering at ${sock}: ${res?.stderr.trim() ?? 'ovs-vsctl could not run'}`);
  }
}

/**
 * STATUS (SPEC.md 1.1.0): ready when what an ADD needs is there: for `ovs`, a running Open vSwitch; for
 * `macvlan`, its master; a delegated IPAM plugin on CNI_PATH (and for `dhcp`, its daemon's socket).
 * @throws CniError 50 naming what is missing
 */
export async function cniStatus(r: Runner, conf: CniConf, env: CniEnv): Promise<void> {
  const kind = conf.kind ?? 'bridge';
  if (kind === 'ovs') await needOvs(r);
  if (kind === 'macvlan') {
    const master = (conf as { master: string }).master;
    if (!(await readLinks(r, null)).some((l) => l.ifname === master)) throw new CniError(CNI_ERR.NOT_AVAILABLE, `master ${master} does not exist`);
  }
  const t = conf.ipam?.type;
  if (t && t !== 'nslab') {
    if (!findPlugin(t, env.path)) throw new CniError(CNI_ERR.NOT_AVAILABLE, `ipam.type ${JSON.stringify(t)}: no such plugin in CNI_PATH`);
    if (t === 'dhcp' && !existsSync('/run/cni/dhcp.sock')) throw new CniError(CNI_ERR.NOT_AVAILABLE, 'ipam dhcp: its daemon is not running (no /run/cni/dhcp.sock; start `dhcp daemon`)');
  }
}

/**
 * GC (SPEC.md 1.1.0): removes this network's attachments that `cni.dev/valid-attachments` does not
 * list: found by the host ends' marks (`net=NAME`), masquerade comments and nslab's leases; each is
 * detached, its chain removed, and its address released (nslab's IPAM, or the IPAM plugin's DEL).
 */
export async function cniGc(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv): Promise<void> {
  const list = conf['cni.dev/valid-attachments'];
  // Without the list every attachment would look stale: refused, not taken as "none is valid".
  if (!list) throw new CniError(CNI_ERR.INVALID_CONFIG, 'cni.dev/valid-attachments is missing: GC needs the runtime\'s list of live attachments (an empty list removes them all)');
  const valid = new Set(list.map((a) => `${a.containerID}/${a.ifname}`));
  const stale = new Map<string, { id: string; ifname: string; ns: string | null }>();
  for (const l of await readLinks(r, null)) {
    const m = parseMark(l.ifalias);
    if (m?.kind !== 'attach' || m.fields.net !== conf.name || !m.fields.guest?.startsWith('cni:') || !m.fields.if) continue;
    const id = m.fields.guest.slice(4);
    if (!valid.has(`${id}/${m.fields.if}`)) stale.set(`${id}/${m.fields.if}`, { id, ifname: m.fields.if, ns: m.fields.ns ?? null });
  }
  const prefix = `nslab:cni=${conf.name}/`;
  const saved = await readIptables(r);
  for (const rule of saved.get('nat')?.rules ?? []) {
    if (!rule.comment?.startsWith(prefix)) continue;
    const [id, ifname] = rule.comment.slice(prefix.length).split('/') as [string, string];
    if (!valid.has(`${id}/${ifname}`) && !stale.has(`${id}/${ifname}`)) stale.set(`${id}/${ifname}`, { id, ifname, ns: null });
  }
  const errors: string[] = [];
  for (const a of stale.values()) {
    await detach(r, cniGuestRef(a.id), a.ifname, { netnsPath: a.ns }).catch((err: unknown) => {
      if (!(err instanceof NslabError && err.code === 'NOT_FOUND')) errors.push((err as Error).message);
    });
    if (conf.ipam && conf.ipam.type !== 'nslab') {
      await execPlugin(r, conf.ipam.type, 'DEL', { ...raw, cniVersion: '1.0.0' }, env, { CNI_CONTAINERID: a.id, CNI_IFNAME: a.ifname, CNI_NETNS: '' }).catch((err: unknown) => errors.push((err as Error).message));
    }
  }
  const owners = new Set([...stale.values()].map((a) => masqOwner(conf.name, a.id, a.ifname)));
  if (owners.size) await unmasq(r, (c) => owners.has(c)).catch((err: Error) => errors.push(err.message));
  if (conf.ipam?.type === 'nslab') await nslabRelease((_, l) => l.network === conf.name && !valid.has(`${l.containerId}/${l.ifname}`));
  if (errors.length) throw new CniError(CNI_ERR.INTERNAL, `GC: ${errors[0]}`, errors.slice(1).join('; '));
}


/** One CNI attachment as its host end's mark names it. */
export interface CniAttachment {
  ifname: string;
  /** The CNI network (`net=`), when known. */
  network: string | null;
  /** Its netns path (`ns=`), when known. */
  ns: string | null;
}

/** The attachments of container `id` that the host ends in `links` name (mark `guest=cni:ID`). */
export function cniAttachments(links: LinkInfo[], id: string): CniAttachment[] {
  const out: CniAttachment[] = [];
  for (const l of links) {
    const m = parseMark(l.ifalias);
    if (m?.kind === 'attach' && m.fields.guest === cniGuestRef(id) && m.fields.if) out.push({ ifname: m.fields.if, network: m.fields.net ?? null, ns: m.fields.ns ?? null });
  }
  return out;
}

/**
 * True while a runtime may still hold the attachment: its netns exists, or libcni's cache has its
 * result. `nslab clean` never removes such one (the runtime's DEL or GC does).
 */
export function cniLive(id: string, a: CniAttachment): boolean {
  if (a.ns && existsSync(a.ns)) return true;
  return a.network !== null && a.ifname !== '' && existsSync(join(cniCacheDir(), `${a.network}-${id}-${a.ifname}`));
}

/**
 * Removes what is left of a CNI attachment whose container is gone (clean): its links and OVS port
 * (detach), its masquerade rules, its nslab lease (any network). With `ifname` null: all of the container's.
 * @returns problems, one line each
 */
export async function removeCniAttachment(r: Runner, id: string, ifname: string | null): Promise<string[]> {
  const errors: string[] = [];
  if (ifname) {
    await detach(r, cniGuestRef(id), ifname, { netnsPath: null }).catch((err: unknown) => {
      if (!(err instanceof NslabError && err.code === 'NOT_FOUND')) errors.push((err as Error).message);
    });
  }
  const re = /^nslab:cni=[^/]+\/([^/]+)\/([^/]+)$/;
  await unmasq(r, (c) => {
    const m = re.exec(c);
    return m !== null && m[1] === id && (ifname === null || m[2] === ifname);
  }).catch((err: Error) => errors.push(err.message));
  await nslabRelease((_, l) => l.containerId === id && (ifname === null || l.ifname === ifname)).catch((err: Error) => errors.push(err.message));
  return errors;
}
