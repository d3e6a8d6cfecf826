// attach / detach: pipework's job (a guest onto a bridge, an OVS bridge or a macvlan), with
// rollback, exact detach, ownership marks and names that always fit in 15 bytes.
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIP } from '../../model/ip-family.js';
import IPCIDR from 'ip-cidr';
import type { Runner } from '../../exec/runner.js';
import { netnsBatchScript, netnsPath } from '../../exec/runner.js';
import { queryJson } from '../../exec/batch.js';
import { RecordingRunner } from '../../exec/recorder.js';
import { toShellScript } from '../../exec/shell.js';
import { NslabError, invalid } from '../../errors.js';
import { addAddr } from '../../kernel/addr.js';
import { readLinks, setAlias, setUp, type LinkInfo } from '../../kernel/link.js';
import { addMacvlan, addVlanLink } from '../../kernel/macvlan.js';
import { addOvsBridge, addOvsPort, ovsBridgeExists, ovsKernelDatapath, vsctl } from '../../kernel/ovs.js';
import { addRoute } from '../../kernel/route.js';
import { writeSysctlOp } from '../../kernel/sysctl.js';
import { cmdOp, ipOp, linkKey, type Op, type Step } from '../../kernel/step.js';
import { addVeth } from '../../kernel/veth.js';
import { listNetnsIds } from '../../kernel/netns.js';
import { addPort } from '../../kernel/bridge.js';
import { checkIfname, type AddressRequest, type AttachRequest } from '../../model/attach.js';
import { mark, parseMark } from '../../model/marks.js';
import { readDockerRecord, writeDockerRecord, findRecordedContainer, type DockerRecord } from '../../model/docker.js';
import { bridgeNameProblem, ifnameProblem, shortHash } from '../../model/names.js';
import { applySteps, mapLimit, runUndo } from '../apply.js';
import { pathGuest, resolveGuest, type Guest } from './guest.js';
import { stateDir } from '../state.js';
import { packageRoot } from '../../paths.js';
import { ovsHint, ovsRunDir, ovsRunning } from '../services.js';

/** The host side of an attach, as found in the kernel. */
export type HostSide =
  | { kind: 'bridge'; name: string; exists: boolean; mtu: number; /** Its mark, when nslab made it (`nslab:bridge [addr=…]`). */ mark?: string }
  | { kind: 'ovs'; name: string; exists: boolean; mtu: number; netdev: boolean }
  | { kind: 'phys'; name: string; mtu: number };

/** Everything `planAttach` needs, read from the kernel beforehand. */
export interface AttachContext {
  req: AttachRequest;
  guest: Guest;
  host: HostSide;
  /** Host-side interface name (veth end, or the VLAN sub-interface's name for macvlan @VLAN). */
  local: string;
  /** The guest already has `req.ifname`, attached by nslab to the same host side: add to it. */
  existing: boolean;
  /**
   * Default routes in the guest before the attach, per family: `GW@DEV`. Put back if the attach is
   * rolled back; recorded in the guest end's mark for detach unless DEV is that interface itself.
   */
  prevDefault: { 4?: string; 6?: string };
  /** The host's link names as read for this attach (the journal's "what existed before" needs no second read). */
  hostLinkNames?: string[];
  /** With `existing`: the fields of that interface's mark now (`host`, `gw4`, ...). */
  existingMark?: Record<string, string>;
  /** With `existing`: its addresses now (`ADDR/LEN`), which an attach run again does not add twice. */
  existingAddrs?: string[];
  /**
   * With `existing`: the interface is another guest's, in a netns this guest shares with it (Docker's
   * `--net=container:X`): the attach only adds addresses, recorded in the mark under `by.ID12` so that
   * detaching this guest removes those addresses, not the interface.
   */
  sharedAdd?: boolean;
  /** Host access (macvlan): the host's addresses and routes on the parent, to move to the host macvlan. */
  hostAccess?: { name: string; addrs: string[]; routes: string[][] };
  /**
   * The guest was read (its interfaces and default routes): false when planned without reading it,
   * as a guest without `req.ifname` and without default routes; the gateway is then added, not
   * replaced, so that a default route already there fails ("File exists") instead of being lost.
   */
  guestRead: boolean;
}

/** What {@link attach} did. */
export interface AttachReport {
  guest: string;
  ifname: string;
  host: string;
  hostKind: HostSide['kind'];
  local: string | null;
  steps: number;
  /** The commands run (or, with dryRun, that would run), as a shell script. */
  script?: string;
  ms: number;
  /** Things the user should know (a container sharing another's netns). */
  notes?: string[];
  /** A Docker guest: its full ID and name. */
  container?: { id: string; name: string };
}

/** Options of {@link attach}. */
export interface AttachOptions {
  /** Read the kernel, but only print the commands. */
  dryRun?: boolean;
  /** Fault injection at step K (tests). */
  faultAt?: number;
  /**
   * Read each guest before planning (default: only on a conflict, see {@link attachMany}): for
   * recorded scripts (labs, NSLAB_RECORD), which must replay as printed, without a rolled-back try.
   */
  readGuests?: boolean;

  /**
   * Refuse a static address another guest on the same Linux bridge already holds (default true;
   * reads the netns of each port's peer, see {@link addressesOnBridge}). Network modes turn it off:
   * they hand out addresses from their own state, under their lock, so two nodes never get one.
   */
  checkAddresses?: boolean;

  /**
   * Announce new IPv4 addresses by gratuitous ARP (the kernel's arp_notify, where pipework runs
   * `arping -c 1 -A`); default true. Network modes turn it off: their MACs derive from the address
   * (Docker's 02:42:…), so a neighbour's cached entry for a reused address stays right, and it saves
   * a process per node.
   */
  announce?: boolean;

  /**
   * Steps of the caller's own, applied with the attach: in its plan, journal and rollback (CNI's
   * masquerade rules). Their `phase` orders them among the attach's (1 host, 2 guest, 3 DHCP).
   */
  extraSteps?: Step[];

  /**
   * The host's links, read by the caller a moment before (nslab-cni reads them while its IPAM plugin
   * runs): one attach (not a batch) then reads neither them again nor, for its journal, their names.
   */
  hostLinks?: LinkInfo[];

  /** The iptables tables (clean/recover.ts tablesNow), read by the caller a moment before, for the journal of `extraSteps`. */
  tables?: string[];

  /**
   * Docker guests: record the attach to be applied again each time the container starts (by
   * `nslab docker watch` or `pipework --restore`), as later pipework versions' `--save` did.
   */
  persist?: boolean;
}


/**
 * Attaches a guest to a host interface, as pipework does: a veth into a Linux or OVS bridge (created
 * when missing and named br* / ovs*), or a macvlan child of any other interface. The guest end is
 * created straight in the guest's netns under its final name; MTU defaults to the host interface's;
 * the gateway becomes the default route of its family only; a second attach to the same interface
 * adds to it (pipework#124). On failure, everything done is undone.
 * @param r runner (reads always run; with `dryRun` the changes are recorded, not made)
 * @param req the parsed request (see `nslab attach --help` and the pipework grammar)
 * @throws NslabError INVALID_INPUT (nothing changed), NOT_FOUND (guest or host interface), APPLY_FAILED (rolled back)
 */
export async function attach(r: Runner, req: AttachRequest, opts: AttachOptions = {}): Promise<AttachReport> {
  return (await attachMany(r, [req], opts))[0]!;
}

/**
 * Attaches many guests in one go (`nslab attach -f FILE`): the host is read once, all plans are
 * merged by phase, so the host side is one `ip -batch` and the guests' sides one process in all
 * (Runner.batchEach), whatever the count. All or nothing: a failure undoes every attach of the batch.
 * @throws NslabError INVALID_INPUT (nothing changed: also for two requests on one guest interface), APPLY_FAILED
 */
export async function attachMany(r: Runner, reqs: AttachRequest[], opts: AttachOptions = {}): Promise<AttachReport[]> {
  const t0 = performance.now();
  const seen = new Set<string>();
  for (const q of reqs) {
    const k = `${q.guest}:${q.ifname}`;
    if (seen.has(k)) throw invalid(`${k} is attached twice in one batch`);
    seen.add(k);
  }
  checkBatchAddresses(reqs);
  // First without reading the guests (a process per guest, as much as the attach itself): planned as
  // for a guest without that interface and without a default route, which is what the kernel then
  // checks ("File exists" from the veth's or the default route's creation). Such a failure is rolled
  // back and the attach planned again from what the guests hold. A dry run and a recorded run read
  // them: they print the exact commands.
  const readGuests = opts.dryRun === true || opts.readGuests === true || Boolean(process.env.NSLAB_RECORD);
  try {
    return await attachPlanned(r, reqs, opts, readGuests, t0);
  } catch (err) {
    if (readGuests || !isConflict(err)) throw err;
    return attachPlanned(r, reqs, opts, true, t0);
  }
}

/** An attach failed on something that exists already and was rolled back cleanly: worth a second plan. */
function isConflict(err: unknown): boolean {
  if (!(err instanceof NslabError) || err.code !== 'APPLY_FAILED') return false;
  const rb = (err.details as { rollbackErrors?: string[] } | undefined)?.rollbackErrors ?? [];
  return /File exists/.test(err.message) && rb.length === 0;
}

async function attachPlanned(r: Runner, reqs: AttachRequest[], opts: AttachOptions, readGuest: boolean, t0: number): Promise<AttachReport[]> {
  const ctxs: AttachContext[] = [];
  if (reqs.length === 1) {
    // One attach (a pipework call): its host and guest reads run at once inside resolveAttach.
    const shared = opts.hostLinks && !readGuest ? { rootLinks: opts.hostLinks, taken: new Set(opts.hostLinks.map((l) => l.ifname)) } : undefined;
    ctxs.push(await resolveAttach(r, reqs[0]!, shared, { readGuest }));
  } else {
    const rootLinks = await readLinks(r, null);
    const taken = new Set(rootLinks.map((l) => l.ifname));
    // Reads run at once; each picks its host-side name synchronously after them, so names stay unique.
    ctxs.push(...(await mapLimit(reqs, 8, (q) => resolveAttach(r, q, { rootLinks, taken }, { readGuest }))));
  }
  if (opts.checkAddresses !== false) await checkTakenAddresses(r, ctxs);
  const plans = ctxs.map((c) => planAttach(c, { announce: opts.announce !== false }));
  const steps = [...plans.flat(), ...(opts.extraSteps ?? [])].sort((a, b) => (a.phase ?? 0) - (b.phase ?? 0));
  const w: Runner = opts.dryRun ? new RecordingRunner() : r;
  if (!opts.dryRun && reqs.some((q) => q.addresses.some((a) => a.kind === 'dhcp'))) mkdirSync(join(stateDir(), 'dhcp'), { recursive: true });
  const created: Array<Extract<HostSide, { kind: 'bridge' | 'ovs' }>> = [];
  const toCreate = new Map<string, Extract<HostSide, { kind: 'bridge' | 'ovs' }>>();
  for (const c of ctxs) if (!c.existing && (c.host.kind === 'bridge' || c.host.kind === 'ovs') && !c.host.exists) toCreate.set(c.host.name, c.host);
  try {
    for (const h of toCreate.values()) if (await ensureBridge(w, h)) created.push(h);
    // The host's links as read above (no bridge made since): the journal learns from them which of
    // the planned links existed before, instead of reading them again (a process less per attach).
    const hostLinks = created.length === 0 ? (opts.hostLinks && !readGuest ? opts.hostLinks.map((l) => l.ifname) : ctxs.length === 1 ? ctxs[0]!.hostLinkNames : undefined) : undefined;
    await applySteps(w, steps, { faultAt: opts.faultAt, ...(hostLinks ? { hostLinks } : {}), ...(opts.tables ? { tables: opts.tables } : {}) });
  } catch (err) {
    for (const h of created) await removeBridgeIfEmpty(w, h);
    // A DHCP client that failed left its log (read for the error) and no client: remove the log.
    if (!opts.dryRun) for (const c of ctxs) if (c.req.addresses.some((x) => x.kind === 'dhcp')) removeDhcpFiles(c.guest.ref, c.req.ifname, { onlyLog: true });
    throw err;
  }
  const script = w instanceof RecordingRunner ? toShellScript(w.calls) : undefined;
  if (!opts.dryRun) for (const c of ctxs) if (c.guest.docker && !c.sharedAdd) recordDockerAttach(c, opts.persist === true);
  const ms = performance.now() - t0;
  return ctxs.map((c, i) => ({
    guest: c.req.guest,
    ifname: c.req.ifname,
    host: c.host.name,
    hostKind: c.host.kind,
    local: c.host.kind === 'phys' ? null : c.local,
    steps: plans[i]!.length,
    ...(script !== undefined ? { script } : {}),
    ms,
    ...(c.guest.notes?.length ? { notes: c.guest.notes } : {}),
    ...(c.guest.docker ? { container: { id: c.guest.docker.id, name: c.guest.docker.name } } : {}),
  }));
}

/**
 * Records a Docker guest's attach under its full ID (model/docker.ts): for `inspect` (name, stale),
 * `detach` by any form after the container is gone, and with `persist` for `nslab docker watch`.
 */
function recordDockerAttach(c: AttachContext, persist: boolean): void {
  const d = c.guest.docker!;
  const entry = { ifname: c.req.ifname, host: c.host.name, request: { ...c.req, guest: d.id }, persist, at: new Date().toISOString() };
  for (const p of persist ? [false, true] : [false]) {
    const rec: DockerRecord = readDockerRecord(d.id, p) ?? { id: d.id, name: d.name, attaches: [] };
    rec.name = d.name;
    rec.attaches = [...rec.attaches.filter((x) => x.ifname !== c.req.ifname), entry];
    writeDockerRecord(rec, p);
  }
}

/** Forgets a container's attach of IFNAME (or all of them): this boot's record, and with `persisted` the saved one. */
export function forgetDockerAttach(id: string, ifname: string | null, persisted: boolean): void {
  for (const p of persisted ? [false, true] : [false]) {
    const rec = readDockerRecord(id, p);
    if (!rec) continue;
    rec.attaches = ifname === null ? [] : rec.attaches.filter((x) => x.ifname !== ifname);
    writeDockerRecord(rec, p);
  }
}

/** An address without its length, in one spelling (`fd00:0::1` and `fd00::1` are one). */
function hostPart(cidr: string): string {
  const ip = cidr.split('/')[0]!;
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname.slice(1, -1) : ip;
}

/** `FILE:LINE: [N]: ` before a message when the request came from a file. */
const at = (q: AttachRequest) => (q.origin ? `${q.origin}: ` : '');

/**
 * Refuses one static address asked twice onto one host interface in one call (`attach -f`, or
 * `--ip A --ip A`): both guests would answer ARP for it on that segment (IPv4 has no duplicate
 * address detection, ip-address(8)). Pure: runs before anything is read or changed.
 * @throws NslabError INVALID_INPUT naming the address and both requests
 */
export function checkBatchAddresses(reqs: AttachRequest[]): void {
  const seen = new Map<string, string>();
  for (const q of reqs) {
    for (const a of q.addresses) {
      if (a.kind !== 'static') continue;
      const k = `${q.hostIf} ${hostPart(a.cidr)}`;
      const prev = seen.get(k);
      if (prev) throw invalid(`${at(q)}--ip ${a.cidr} for ${q.guest}:${q.ifname}: ${hostPart(a.cidr)} is already asked for ${prev} on ${q.hostIf} in this call: expected one address per guest on a segment`);
      seen.set(k, `${q.guest}:${q.ifname}`);
    }
  }
}

/**
 * The addresses already on a Linux bridge's segment: the bridge's own, and those of every veth peer
 * of its ports: from the port's attach mark (`ip=`) when nslab attached it, else read in the peer's
 * named netns (all such read by one process). Peers in unnamed
 * namespaces (a PID or Docker guest) are not seen.
 * @param skip guest interfaces to leave out (`NETNS IFNAME` or `GUEST IFNAME`: the one an attach run
 *   again adds to)
 * @returns address (without length) -> who holds it (`bridge br0`, `g1:eth1`)
 */
export async function addressesOnBridge(r: Runner, bridge: string, skip: Set<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const [[own, ports], ids] = await Promise.all([
    queryJson(r, null, [['addr', 'show', 'dev', bridge], ['link', 'show', 'master', bridge]]),
    listNetnsIds(r),
  ]);
  for (const l of own as Array<{ addr_info?: Array<{ local: string; scope?: string }> }>) for (const a of l.addr_info ?? []) if (a.scope !== 'link') out.set(hostPart(a.local), `bridge ${bridge}`);
  const byId = new Map<number, string>();
  for (const [name, id] of ids) if (id !== undefined) byId.set(id, name);
  const want = new Map<string, Set<number>>();
  for (const p of ports as LinkInfo[]) {
    const ns = p.link_netnsid !== undefined ? byId.get(p.link_netnsid) : undefined;
    // A port nslab attached names its guest's static addresses in its mark: no need to enter the guest.
    const m = parseMark(p.ifalias);
    if (m?.kind === 'attach' && m.fields.ip !== undefined) {
      if (!skip.has(`${m.fields.guest} ${m.fields.if}`)) for (const a of m.fields.ip.split(',')) out.set(hostPart(a), `${m.fields.guest}:${m.fields.if}`);
      continue;
    }
    if (ns && p.link_index !== undefined) want.set(ns, (want.get(ns) ?? new Set()).add(p.link_index));
  }
  if (want.size === 0) return out;
  // One process reads them all (share/netns-batch.sh addrs): one per peer made 50 attaches O(n²).
  const peers = [...want];
  const res = await r.run({ argv: ['sh', netnsBatchScript(), 'addrs', ...peers.map(([ns]) => netnsPath(ns))] }, { check: false });
  const parts = res.stdout.split(/^nslab-job-end$/m);
  peers.forEach(([ns, idx], k) => {
    let links: Array<{ ifindex: number; ifname: string; addr_info?: Array<{ local: string; scope?: string }> }> = [];
    try {
      links = JSON.parse(parts[k]?.trim() || '[]');
    } catch {
      /* unreadable: that netns went meanwhile */
    }
    for (const l of links) {
      if (!idx.has(l.ifindex) || skip.has(`${ns} ${l.ifname}`)) continue;
      for (const a of l.addr_info ?? []) if (a.scope !== 'link') out.set(hostPart(a.local), `${ns}:${l.ifname}`);
    }
  });
  return out;
}

/**
 * Refuses a static address that the bridge, or another guest on that Linux bridge, already holds
 * (as `--ip` of `docker network connect` does on a user network: "Address already in use"). Only
 * existing Linux bridges are read; an OVS bridge or a macvlan parent is not.
 * @throws NslabError INVALID_INPUT naming the address, the holder and the bridge
 */
async function checkTakenAddresses(r: Runner, ctxs: AttachContext[]): Promise<void> {
  const byBridge = new Map<string, AttachContext[]>();
  for (const c of ctxs) {
    if (c.host.kind !== 'bridge' || !c.host.exists || !c.req.addresses.some((a) => a.kind === 'static')) continue;
    byBridge.set(c.host.name, [...(byBridge.get(c.host.name) ?? []), c]);
  }
  for (const [bridge, cs] of byBridge) {
    // The requesting guest's own interface is not "another guest": an attach run again adds to it (and
    // its first plan has not read the guest, so `existing` may not be known yet).
    const skip = new Set(cs.flatMap((c) => [`${c.guest.netns} ${c.req.ifname}`, `${c.guest.ref} ${c.req.ifname}`]));
    const taken = await addressesOnBridge(r, bridge, skip);
    for (const c of cs) {
      for (const a of c.req.addresses) {
        const who = a.kind === 'static' ? taken.get(hostPart(a.cidr)) : undefined;
        if (a.kind === 'static' && who) throw invalid(`${at(c.req)}--ip ${a.cidr}: ${hostPart(a.cidr)} is already held by ${who} on bridge ${bridge}: expected an address no other guest on ${bridge} has`);
      }
    }
  }
}

/**
 * Reads what the plan depends on: the guest, the host interface, names in use, current defaults.
 * @param shared the host's links and the names taken so far, when many attaches are resolved at once
 * @param o.readGuest read the guest's interfaces and default routes (default true)
 * @throws NslabError INVALID_INPUT, one line, after the request's origin (`FILE:LINE: [N]`) when it has
 *   one: also for a guest or host interface that does not exist (bad input, nothing changed)
 */
export async function resolveAttach(r: Runner, req: AttachRequest, shared?: { rootLinks: LinkInfo[]; taken: Set<string> }, o: { readGuest?: boolean } = {}): Promise<AttachContext> {
  try {
    return await readAttach(r, req, shared, o);
  } catch (err) {
    if (err instanceof NslabError && (err.code === 'INVALID_INPUT' || err.code === 'NOT_FOUND')) throw invalid(req.origin ? `${req.origin}: ${err.message}` : err.message);
    throw err;
  }
}

async function readAttach(r: Runner, req: AttachRequest, shared: { rootLinks: LinkInfo[]; taken: Set<string> } | undefined, o: { readGuest?: boolean }): Promise<AttachContext> {
  // A DHCP lease brings a default route: the one it replaces is read, so that detach puts it back.
  const readGuest = o.readGuest !== false || req.addresses.some((a) => a.kind === 'dhcp');
  // The host's links and the guest (found, then read by one process in its netns) are read at once.
  const found = req.netnsPath !== undefined ? Promise.resolve(pathGuest(req.guest, req.netnsPath)) : resolveGuest(r, req.guest);
  const guestRead = found.then(async (guest) => ({ guest, read: readGuest ? await queryJson(r, guest.netns, [['addr', 'show'], ['route', 'show', 'default']], ['-d']) : [[], []] }));
  const [rootRes, guestRes] = await Promise.allSettled([shared?.rootLinks ?? readLinks(r, null), guestRead]);
  if (rootRes.status === 'rejected') throw rootRes.reason;
  const rootLinks = rootRes.value;
  let hostName = req.hostIf;
  if (hostName.startsWith('mac:')) {
    const mac = hostName.slice(4).toLowerCase();
    const found = rootLinks.find((l) => l.address?.toLowerCase() === mac);
    if (!found) throw new NslabError('NOT_FOUND', `host interface mac:${mac}: no interface here has that MAC address`);
    hostName = found.ifname;
  }
  if (guestRes.status === 'rejected') throw guestRes.reason;
  const { guest, read: [gl, gr] } = guestRes.value;
  const host = await classifyHost(r, hostName, rootLinks, req.createAs);

  if (req.vlan !== undefined && host.kind === 'bridge') throw invalid(`VLAN ${req.vlan} on Linux bridge ${host.name}: a plain Linux bridge does not carry VLANs here; use an Open vSwitch bridge (a name starting with ovs) or a macvlan parent`);
  if (req.hostAccess && host.kind !== 'phys') throw invalid(`--host-access is for macvlan guests; ${host.name} is a ${host.kind === 'ovs' ? 'Open vSwitch' : 'Linux'} bridge, which the host reaches already`);
  if (req.mtu !== undefined && host.kind === 'phys' && req.mtu > host.mtu) throw invalid(`MTU ${req.mtu} is above the MTU of ${host.name} (${host.mtu}): a macvlan cannot exceed its parent's MTU`);
  for (const a of req.addresses) if (a.kind === 'dhcp') await checkDhcpClient(r, a.client);

  // `ip -j -d addr show`: each link as `link show -d` gives it, with its addresses.
  const guestLinks = gl as Array<LinkInfo & { addr_info?: Array<{ local: string; prefixlen: number }> }>;
  const have = guestLinks.find((l) => l.ifname === req.ifname);
  let existing = false;
  let existingMark: Record<string, string> | undefined;
  let existingAddrs: string[] | undefined;
  let sharedAdd = false;
  if (have) {
    const m = parseMark(have.ifalias);
    if (m?.kind === 'attach' && m.fields.host === host.name) {
      existing = true;
      sharedAdd = guest.docker?.netnsOf !== undefined && !markedHostEnd(rootLinks, guest.ref, req.ifname);
      existingMark = m.fields;
      existingAddrs = (have.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
    }
    else throw invalid(`guest ${req.guest} already has an interface ${req.ifname}${m ? ` (attached to ${m.fields.host})` : ''}: choose another name with -i/--ifname`);
  }

  const taken = shared?.taken ?? new Set(rootLinks.map((l) => l.ifname));
  let local = req.localIfname ?? '';
  if (host.kind === 'phys') local = req.vlan !== undefined ? vlanIfName(host.name, req.vlan) : host.name;
  else if (!local) local = (existing ? markedHostEnd(rootLinks, guest.ref, req.ifname)?.ifname : undefined) ?? hostEndName(guest, req.ifname, taken);
  else if (taken.has(local) && !existing) throw invalid(`host interface name ${local} (-l) is already in use`);
  if (host.kind !== 'phys') taken.add(local);

  const prevDefault: AttachContext['prevDefault'] = {};
  for (const fam of readGuest ? ([4, 6] as const) : []) {
    if (!req.addresses.some((a) => (a.kind === 'static' && a.gateway && isIP(a.gateway) === fam) || (a.kind === 'dhcp' && fam === 4))) continue;
    const routes = fam === 4 ? gr : JSON.parse((await r.run({ argv: ['ip', '-j', '-6', 'route', 'show', 'default'], netns: guest.netns })).stdout || '[]');
    const d = (routes as Array<{ gateway?: string; dev?: string }>)[0];
    if (d?.gateway && d.dev) prevDefault[fam] = `${d.gateway}@${d.dev}`;
  }

  let hostAccess: AttachContext['hostAccess'];
  if (req.hostAccess && host.kind === 'phys') {
    const name = `${host.name}m`.length <= 15 && !taken.has(`${host.name}m`) ? `${host.name}m` : `nh${shortHash([host.name], 10)}`;
    const addrs = (JSON.parse((await r.run({ argv: ['ip', '-j', 'addr', 'show', 'dev', host.name] })).stdout || '[]') as Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>)
      .flatMap((x) => x.addr_info)
      .filter((a) => a.scope === 'global')
      .map((a) => `${a.local}/${a.prefixlen}`);
    const routes = (JSON.parse((await r.run({ argv: ['ip', '-j', 'route', 'show', 'dev', host.name] })).stdout || '[]') as Array<{ dst: string; gateway?: string; protocol?: string; metric?: number }>)
      .filter((x) => x.protocol !== 'kernel')
      .map((x) => [x.dst, ...(x.gateway ? ['via', x.gateway] : []), ...(x.metric !== undefined ? ['metric', String(x.metric)] : [])]);
    if (rootLinks.some((l) => parseMark(l.ifalias)?.kind === 'host-access' && parseMark(l.ifalias)?.fields.parent === host.name)) {
      hostAccess = undefined; // another attach gave the host access already
    } else {
      hostAccess = { name, addrs, routes };
    }
  }
  return { req, guest, host, local, existing, prevDefault, guestRead: readGuest, hostLinkNames: rootLinks.map((l) => l.ifname), ...(sharedAdd ? { sharedAdd } : {}), ...(existingMark ? { existingMark, existingAddrs: existingAddrs ?? [] } : {}), ...(hostAccess ? { hostAccess } : {}) };
}

/**
 * Plans an attach (pure). Marks: the host end `nslab:attach guest=REF if=IFNAME`, the guest end
 * `nslab:attach host=HOSTIF [gw4=GW@DEV] [ha=NAME]`, OVS ports `external-ids:nslab-guest/-ifname`.
 */
export function planAttach(c: AttachContext, o: { announce?: boolean } = {}): Step[] {
  const { req, guest, host } = c;
  const steps: Step[] = [];
  const mtu = req.mtu ?? host.mtu;
  const g = guest.netns;
  if (!c.existing) {
    if (host.kind === 'phys') {
      let parent = host.name;
      if (req.vlan !== undefined) {
        steps.push(addVlanLink(host.name, c.local, req.vlan), setAlias(null, c.local, mark('vlan', { parent: host.name })), setUp(null, c.local));
        parent = c.local;
      }
      if (c.hostAccess) steps.push(...planHostAccess(parent, c.hostAccess));
      steps.push(addMacvlan(parent, req.ifname, guest.ipNetns, { mtu, ...(req.mac ? { mac: req.mac } : {}) }));
    } else {
      // Forwarding first: apply.ts folds sysctls into the ip batch after them, one process for the host side.
      if (host.kind === 'bridge') steps.push(...forwardSteps(req));
      steps.push(addVeth({ name: c.local, netns: null, mtu }, { name: req.ifname, netns: guest.ipNetns, mtu, ...(req.mac ? { mac: req.mac } : {}) }));
      // Its static addresses ride in the mark: the next attach's duplicate check reads them from the
      // bridge's ports, not from every guest (a process each).
      const ips = req.addresses.flatMap((a) => (a.kind === 'static' ? [a.cidr] : []));
      steps.push(setAlias(null, c.local, mark('attach', { guest: guest.ref, if: req.ifname, ...(ips.length ? { ip: ips.join(',') } : {}), ...req.markFields })));
      if (host.kind === 'bridge') {
        steps.push(addPort(host.name, c.local, 'iproute2'));
        if (req.hairpin) steps.push(hairpinStep(c.local));
        steps.push(...bridgeAddrSteps(host, req));
      } else steps.push(addOvsPort(host.name, c.local, req.vlan, { 'nslab-guest': guest.ref, 'nslab-ifname': req.ifname }));
      steps.push(setUp(null, c.local));
    }
    // A netns by path (CNI) has no name of its own: its end names its guest, for inspect and clean.
    const fields: Record<string, string> = { host: host.name, ...(guest.kind === 'path' ? { guest: guest.ref } : {}), ...defaultsToRestore(c) };
    if (c.hostAccess) fields.ha = c.hostAccess.name;
    if (req.vlan !== undefined && host.kind === 'phys') fields.vlan = c.local;
    Object.assign(fields, askedFields(req, host.kind, mark('attach', fields).length));
    // Gratuitous ARP on link up, by the kernel (ip-sysctl.txt arp_notify=1), where pipework runs
    // `arping -c 1 -A`, which waits a second before it exits. First, so the guest's lane is one
    // ip -batch whose process writes the sysctl first (apply.ts folds it in).
    if (o.announce !== false) steps.push({ describe: `announce ${req.ifname}'s addresses by gratuitous ARP when it comes up`, do: writeSysctlOp(g, `net/ipv4/conf/${req.ifname}/arp_notify`, '1'), undo: [], parent: linkKey(g, req.ifname) });
    steps.push(setAlias(g, req.ifname, mark('attach', fields)));
    if (host.kind === 'ovs' && host.netdev) {
      // The userspace datapath drops TCP/UDP from veth guests with offloaded checksums (seen here): compute them in the guest.
      steps.push({ describe: `compute checksums in software on ${req.ifname} (OVS userspace datapath)`, do: cmdOp(['ethtool', '-K', req.ifname, 'tx', 'off'], g), undo: [], parent: linkKey(g, req.ifname) });
    }
  }
  if (c.existing && c.existingMark && c.sharedAdd) {
    // Another guest's interface (a shared netns): the addresses this guest adds are recorded in its mark.
    const before = mark('attach', c.existingMark);
    const mine = req.addresses.flatMap((a) => (a.kind === 'static' && !hasAddress(c.existingAddrs, a.cidr) ? [a.cidr] : []));
    const after = mark('attach', { ...c.existingMark, [sharedKey(guest.ref)]: mine.join(',') });
    steps.push({ describe: `mark ${req.ifname} in ${g} as ${after}`, do: ipOp(g, ['link', 'set', 'dev', req.ifname, 'alias', after]), undo: [ipOp(g, ['link', 'set', 'dev', req.ifname, 'alias', before])], parent: linkKey(g, req.ifname) });
  } else if (c.existing && c.existingMark) {
    // A re-attach that replaces a default route of another family (pipework#124: IPv6 after IPv4)
    // records it beside the first one's, so that detach puts both back.
    const before = mark('attach', c.existingMark);
    const added = Object.entries(defaultsToRestore(c)).filter(([k]) => !(k in c.existingMark!));
    // Its gateways and routes join the first one's (what verify attachments checks).
    const asked = askedFields(req, host.kind, 0);
    const union = (k: string) => [...new Set([...(c.existingMark![k]?.split(',') ?? []), ...(asked[k]?.split(',') ?? [])])].filter(Boolean).join(',');
    for (const k of ['ip', 'gw', 'rt']) if (union(k)) added.push([k, union(k)]);
    let after = mark('attach', { ...c.existingMark, ...Object.fromEntries(added) });
    if (after.length > 255) after = mark('attach', { ...c.existingMark, ...Object.fromEntries(added.filter(([k]) => !['ip', 'gw', 'rt'].includes(k))) });
    if (after !== before) {
      steps.push({ describe: `mark ${req.ifname} in ${g} as ${after}`, do: ipOp(g, ['link', 'set', 'dev', req.ifname, 'alias', after]), undo: [ipOp(g, ['link', 'set', 'dev', req.ifname, 'alias', before])], parent: linkKey(g, req.ifname) });
    }
  }
  for (const a of req.addresses) if (a.kind === 'static' && !hasAddress(c.existingAddrs, a.cidr)) steps.push(addAddr(g, req.ifname, a.cidr));
  if (!c.existing) steps.push(setUp(g, req.ifname));
  for (const a of req.addresses) if (a.kind === 'static' && a.gateway) steps.push(gatewayStep(g, req.ifname, a, c.prevDefault, c.guestRead));
  // A route's gateway outside the interface's subnets is on the link, as the default gateway is.
  const subnets = [...req.addresses.flatMap((a) => (a.kind === 'static' ? [a.cidr] : [])), ...(c.existingAddrs ?? [])];
  for (const rt of req.routes) steps.push(addRoute(g, { to: rt.to, dev: req.ifname, type: 'unicast', ...(rt.via ? { via: rt.via, ...(offLink(rt.via, subnets) ? { onlink: true } : {}) } : {}) }));
  for (const a of req.addresses) {
    if (a.kind !== 'dhcp') continue;
    // The pid file's folder, made by a step so a printed script (a lab's) makes it too.
    const pid = dhcpPidFile(guest.ref, req.ifname);
    steps.push({ describe: 'make the folder for DHCP client pid files', do: cmdOp(['mkdir', '-p', dirname(pid)]), undo: [] });
    // A client an earlier attach left (its container restarted) must not run beside the new one.
    if (a.foreground && (a.client === 'dhcp' || a.client === 'udhcpc')) steps.push({ describe: `stop a DHCP client still named in ${pid}`, do: cmdOp(['sh', join(packageRoot(), 'share', 'dhcp-pid.sh'), 'stop', pid]), undo: [], phase: 2 });
    steps.push(dhcpStep(guest, req.ifname, a));
    if (guest.kind === 'docker' && a.foreground && (a.client === 'dhcp' || a.client === 'udhcpc')) {
      steps.push({ describe: `record the host's PID of ${req.ifname}'s DHCP client`, do: cmdOp(['sh', join(packageRoot(), 'share', 'dhcp-pid.sh'), 'host', pid, String(guest.pid)]), undo: [], phase: 4 });
    }
  }
  // Phases: the current netns first (links, ports), then the guest (addresses, routes), then DHCP;
  // within a phase the engine runs different netns at once, so a guest step must never share one
  // with the host-side step that creates its interface.
  return steps.map((s) => ({ ...s, phase: s.phase ?? phaseOf(s, g) }));
}

/** True for an IPv4 gateway in none of `subnets` (`ADDR/LEN`): the kernel reaches it only `onlink`. IPv6 gateways are link-local or on-link by RA: left as given. */
function offLink(gw: string, subnets: string[]): boolean {
  if (isIP(gw) !== 4) return false;
  return !subnets.some((c) => isIP(c.split('/')[0]!) === 4 && new IPCIDR(c).contains(gw));
}

/** True when `cidr` is among `addrs` (`ADDR/LEN`, IPv6 compared in canonical form). */
function hasAddress(addrs: string[] | undefined, cidr: string): boolean {
  if (!addrs?.length) return false;
  const canon = (x: string) => {
    const [ip, len] = x.split('/') as [string, string];
    return `${isIP(ip) === 6 ? new IPCIDR(`${ip}/128`).start() : ip}/${len}`;
  };
  return addrs.map(canon).includes(canon(cidr));
}

/** The `gw4`/`gw6` mark fields: default routes the attach replaces that detach must put back (not those on the attached interface itself). */
function defaultsToRestore(c: AttachContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const fam of [4, 6] as const) {
    const d = c.prevDefault[fam];
    if (d && d.split('@')[1] !== c.req.ifname) out[`gw${fam}`] = d;
  }
  return out;
}

/**
 * IP forwarding an attach asks for (CNI isGateway). Not undone: the reference bridge plugin leaves it on,
 * and other ports of the bridge need it.
 */
function forwardSteps(req: AttachRequest): Step[] {
  return (req.ipForward ?? []).map((f): Step => ({
    describe: `turn IPv${f} forwarding on`,
    do: writeSysctlOp(null, f === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding', '1'),
    undo: [],
  }));
}

/**
 * The bridge's own addresses an attach asks for (CNI isGateway), `ip addr replace` in the host's batch.
 * Not undone: they are every port's gateway, and go with the bridge.
 */
function bridgeAddrSteps(host: Extract<HostSide, { kind: 'bridge' }>, req: AttachRequest): Step[] {
  const bridge = host.name;
  const want = req.bridgeAddrs ?? [];
  const steps = want.map((a): Step => ({
    describe: `give bridge ${bridge} its gateway address ${a}`,
    do: ipOp(null, ['addr', 'replace', a, 'dev', bridge]),
    undo: [],
    parent: linkKey(null, bridge),
  }));
  // A bridge nslab made (or makes now) names these addresses in its mark: they are its own, so that
  // the detach of its last port still removes it (an address of anyone else's keeps it, bridgeInUse).
  const ours = !host.exists || host.mark !== undefined;
  const had = (parseMark(host.mark)?.fields.addr ?? '').split(',').filter(Boolean);
  const all = [...new Set([...had, ...want])];
  if (ours && want.length && all.length !== had.length) {
    steps.push({ describe: `mark bridge ${bridge}'s own addresses`, do: ipOp(null, ['link', 'set', 'dev', bridge, 'alias', mark('bridge', { addr: all.join(',') })]), undo: [], parent: linkKey(null, bridge) });
  }
  return steps;
}

/**
 * Hairpin mode on a bridge port (`ip link set dev PORT type bridge_slave hairpin on`): the bridge may
 * send a frame back out of the port it came in by, which a guest reaching its own published port
 * through the host's address needs once DNAT has turned the frame around (moby's userland-proxy=false).
 * It goes with the port.
 */
function hairpinStep(port: string): Step {
  return {
    describe: `turn hairpin mode on for bridge port ${port}`,
    do: ipOp(null, ['link', 'set', 'dev', port, 'type', 'bridge_slave', 'hairpin', 'on']),
    undo: [],
    parent: linkKey(null, port),
  };
}

function phaseOf(s: Step, guestNetns: string): number {
  const netns = s.do.tool === 'ip' ? s.do.netns : (s.do.cmd.netns ?? null);
  if (netns !== guestNetns) return 1;
  return s.do.tool === 'cmd' && s.do.cmd.argv.includes('udhcpc') ? 3 : 2;
}

/**
 * `ip route replace default via GW dev IF [onlink]` (pipework replaces the default route); undo removes
 * it and puts the previous default back. Planned without reading the guest: `ip route add`, which the
 * kernel refuses when a default route exists (then the attach is planned again, reading it).
 */
function gatewayStep(netns: string, ifname: string, a: Extract<AddressRequest, { kind: 'static' }>, prev: AttachContext['prevDefault'], guestRead: boolean): Step {
  const gw = a.gateway!;
  const fam = isIP(gw) as 4 | 6;
  // A gateway outside the subnet is reachable on the link (pipework adds GW/32 dev IF for it): onlink.
  const onlink = fam === 4 && offLink(gw, [a.cidr]);
  const before = prev[fam];
  return {
    describe: `set default route via ${gw} on ${ifname}`,
    do: ipOp(netns, ['route', guestRead ? 'replace' : 'add', 'default', 'via', gw, 'dev', ifname, ...(onlink ? ['onlink'] : [])]),
    undo: [ipOp(netns, ['route', 'del', 'default', 'via', gw, 'dev', ifname]), ...(before ? [restoreDefault(netns, fam, before)] : [])],
    parent: linkKey(netns, ifname),
  };
}

function restoreDefault(netns: string, fam: 4 | 6, spec: string): Op {
  const [gw, dev] = spec.split('@') as [string, string];
  void fam; // the gateway's family selects the table; -4/-6 are refused inside ip -batch
  return ipOp(netns, ['route', 'replace', 'default', 'via', gw, 'dev', dev]);
}

/** True when the pid file names a running DHCP client that uses this very file. */
function dhcpClientAlive(pidFile: string): boolean {
  try {
    const pid = readFileSync(pidFile, 'utf8').trim();
    return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(pidFile);
  } catch {
    return false;
  }
}

/** The file where the DHCP client of (guest, ifname) keeps its PID. */
export function dhcpPidFile(guestRef: string, ifname: string): string {
  return join(stateDir(), 'dhcp', `${guestRef.replace(/[^A-Za-z0-9_.-]/g, '_')}-${ifname}.pid`);
}

/**
 * Removes a DHCP client's log (with `onlyLog`, when no client runs: no pid file) and the pid folder
 * once it is empty, so that nothing of a finished attach stays in the state folder.
 */
function removeDhcpFiles(guestRef: string, ifname: string, o: { onlyLog: boolean; stale?: boolean }): void {
  const pid = dhcpPidFile(guestRef, ifname);
  if (o.onlyLog && existsSync(pid)) return;
  if (o.stale) rmSync(pid, { force: true });
  rmSync(`${pid}.log`, { force: true });
  try {
    rmdirSync(dirname(pid));
  } catch {
    // not empty (another guest's client) or already gone
  }
}

/**
 * A Docker guest's DHCP client runs in the container's PID namespace too: when the container's init
 * exits, the kernel kills every process of that namespace (pid_namespaces(7)), so the client ends
 * with its container even when nobody watches (it otherwise kept the netns, its veth and its address
 * alive after `docker rm -f`).
 */
function pidnsOf(guest: Guest): string[] {
  return guest.kind === 'docker' ? ['nsenter', `--pid=/proc/${guest.pid}/ns/pid`, '--'] : []; // nsenter forks into a PID namespace by itself
}

/** The hostname a DHCP client sends: a container's name (a full ID is longer than a DNS label's 63 bytes). */
function hostnameOf(guest: Guest): string {
  return guest.docker?.name ?? guest.ref;
}

/** The mark key under which a guest sharing another's netns records the addresses it added. */
/**
 * What the guest end's mark records of the request, for `nslab verify attachments`: the gateways
 * (`gw=`), the routes (`rt=NET@GW,…`), an MTU and MAC given (`mtu=`, `mac=`), an OVS port's kind and
 * tag (`kind=ovs tag=`) and, for a macvlan (no host end to carry `ip=`), its static addresses. Dropped (routes first) where the alias would pass the
 * kernel's 255 bytes (IFALIASZ): verify then checks less, the attach itself is unchanged.
 * @param kind the host interface's kind (`phys`: a macvlan parent)
 * @param used the length of the mark without them
 */
export function askedFields(req: AttachRequest, kind: 'bridge' | 'ovs' | 'phys', used: number): Record<string, string> {
  const out: Record<string, string> = {};
  const ips = req.addresses.flatMap((a) => (a.kind === 'static' ? [a.cidr] : []));
  const gws = req.addresses.flatMap((a) => (a.kind === 'static' && a.gateway ? [a.gateway] : []));
  if (kind === 'phys' && ips.length) out.ip = ips.join(',');
  if (kind === 'ovs') out.kind = 'ovs'; // its bridge vanishes with ovs-vswitchd: verify then says so
  if (kind === 'ovs' && req.vlan !== undefined) out.tag = String(req.vlan);
  if (req.mtu !== undefined) out.mtu = String(req.mtu);
  if (req.mac) out.mac = req.mac;
  if (gws.length) out.gw = gws.join(',');
  if (req.routes.length) out.rt = req.routes.map((r) => (r.via ? `${r.to}@${r.via}` : r.to)).join(',');
  const len = (o: Record<string, string>) => used + Object.entries(o).reduce((n, [k, v]) => n + k.length + v.length + 2, 0);
  for (const k of ['rt', 'mac', 'mtu', 'gw', 'ip']) if (len(out) > 255) delete out[k];
  return out;
}

function sharedKey(ref: string): string {
  return `by.${ref.slice(0, 12)}`;
}

/**
 * Runs a DHCP client in the guest's netns (pipework's methods): `dhcp` and `udhcpc-f` keep busybox
 * udhcpc running to renew the lease (killed by detach: a client must not outlive its interface,
 * pipework#181); `udhcpc` quits once it has a lease (-q). Our hook script applies lease, router, DNS.
 * Three discovers a second apart (`-t 3 -T 1`), then `-n` fails: a server on the segment answers the
 * first (dnsmasq --no-ping in ~0.1 s), and none answering fails in ~3 s, not 6-7 (issue 20).
 */
function dhcpStep(guest: Guest, ifname: string, a: Extract<AddressRequest, { kind: 'dhcp' }>): Step {
  const pid = dhcpPidFile(guest.ref, ifname);
  const keep = a.foreground;
  if (a.client === 'dhcp' || a.client === 'udhcpc') {
    return {
      describe: `get an address for ${ifname} by DHCP (busybox udhcpc${keep ? ', kept running to renew' : ''})`,
      do: { tool: 'cmd', cmd: { argv: [...pidnsOf(guest), 'busybox', 'udhcpc', '-i', ifname, '-s', join(packageRoot(), 'share', 'udhcpc.sh'), '-p', pid, '-x', `hostname:${hostnameOf(guest)}`, '-t', '3', '-T', '1', '-n', ...(keep ? [] : ['-q']), ...a.options], netns: guest.netns, logFile: `${pid}.log` } },
      // The log goes too: a client killed with its command, or one that quit (-q), leaves it otherwise.
      // So does the pid file of one that quits: udhcpc -q removes it when it exits by itself, not when
      // it is killed with its command (a fault-suite kill of `lab up 14` left /run/nslab/dhcp/d30-eth1.pid).
      // Stopped through dhcp-pid.sh: only if the file names that very client (not a recycled PID), and
      // a client killed with its command (a file naming a dead process) is no error (a fault-suite kill
      // of lab up 14 at 409 ms made pkill -F fail silently, and clean exit 1).
      undo: keep ? [cmdOp(['sh', join(packageRoot(), 'share', 'dhcp-pid.sh'), 'stop', pid]), cmdOp(['rm', '-f', pid, `${pid}.log`])] : [cmdOp(['rm', '-f', pid, `${pid}.log`])],
      parent: linkKey(guest.netns, ifname),
    };
  }
  if (a.client === 'dhclient') {
    return {
      describe: `get an address for ${ifname} by DHCP (dhclient)`,
      do: cmdOp([...pidnsOf(guest), 'dhclient', '-1', '-pf', pid, ...(keep ? [] : []), ...a.options, ifname], guest.netns),
      undo: [cmdOp(['dhclient', '-r', '-pf', pid, ifname], guest.netns)],
      parent: linkKey(guest.netns, ifname),
    };
  }
  return {
    describe: `get an address for ${ifname} by DHCP (dhcpcd)`,
    do: cmdOp([...pidnsOf(guest), 'dhcpcd', '-q', '-h', hostnameOf(guest), ...a.options, ifname], guest.netns),
    undo: [cmdOp(['dhcpcd', '-k', ifname], guest.netns)],
    parent: linkKey(guest.netns, ifname),
  };
}

/**
 * The host's own macvlan child on the parent, carrying the host's addresses and routes, so that the
 * host reaches its macvlan guests (the notes' fix: `ip link add link ens33 dev eth0m type macvlan
 * mode bridge`, address moved onto it). Routes are re-created on the child so the host keeps its LAN
 * and gateway (pipework#4, #130); every step is undone exactly.
 */
function planHostAccess(parent: string, ha: NonNullable<AttachContext['hostAccess']>): Step[] {
  const steps: Step[] = [addMacvlan(parent, ha.name, null), setAlias(null, ha.name, mark('host-access', { parent })), setUp(null, ha.name)];
  for (const a of ha.addrs) steps.push(addAddr(null, ha.name, a));
  for (const a of ha.addrs) {
    steps.push({
      describe: `move address ${a} from ${parent} to ${ha.name}`,
      do: ipOp(null, ['addr', 'del', a, 'dev', parent]),
      undo: [ipOp(null, ['addr', 'add', a, 'dev', parent])],
    });
  }
  for (const rt of ha.routes) {
    steps.push({
      describe: `route ${rt.join(' ')} over ${ha.name}`,
      do: ipOp(null, ['route', 'replace', ...rt, 'dev', ha.name]),
      undo: [ipOp(null, ['route', 'replace', ...rt, 'dev', parent])],
    });
  }
  return steps;
}

/** The host end nslab made for (guest, ifname), found by its mark `nslab:attach guest=REF if=IFNAME`. */
function markedHostEnd(links: LinkInfo[], guestRef: string, ifname: string): LinkInfo | undefined {
  return links.find((l) => {
    const m = parseMark(l.ifalias);
    return m?.kind === 'attach' && m.fields.guest === guestRef && m.fields.if === ifname;
  });
}

/**
 * The host end of a guest's veth: `GUEST-IFNAME` when it fits in 15 bytes and is free, else `nv` +
 * 10 hex of a hash of (guest, ifname). pipework's `v${IF}pl${PID}` overflowed IFNAMSIZ (pipework#58).
 */
export function hostEndName(guest: Guest, ifname: string, taken: ReadonlySet<string>): string {
  // A container's is named from its ID, stable across restarts (its PID is not): an OVS port left by
  // a container that died is then taken over, not doubled, when it starts again. A netns by path (CNI)
  // has no short readable name: always the hashed one.
  const readable = guest.kind === 'path' ? '' : `${guest.kind === 'netns' ? guest.ref : guest.kind === 'docker' ? `d${guest.ref.slice(0, 8)}` : `p${guest.pid}`}-${ifname}`;
  if (readable && ifnameProblem(readable) === null && !taken.has(readable)) return readable;
  for (let salt = 0; ; salt++) {
    const n = `nv${shortHash([guest.ref, ifname, String(salt)], 10)}`;
    if (!taken.has(n)) return n;
  }
}

/** `PARENT.VLAN` when it fits, else a hashed name. */
function vlanIfName(parent: string, vlan: number): string {
  const n = `${parent}.${vlan}`;
  return ifnameProblem(n) === null ? n : `nq${shortHash([parent, String(vlan)], 10)}`;
}

/**
 * What the host interface is: a Linux bridge (kernel link kind), an OVS bridge (ovs-vsctl br-exists,
 * asked only when an OVS database socket exists), or any other interface (macvlan parent). A missing
 * name starting with `br` / `ovs` is a bridge to create, as in pipework.
 */
export async function classifyHost(r: Runner, name: string, rootLinks: LinkInfo[], createAs?: 'bridge' | 'ovs'): Promise<HostSide> {
  const l = rootLinks.find((x) => x.ifname === name);
  const ovsUp = ovsRunning();
  if (ovsUp && (await ovsBridgeExists(r, name))) return { kind: 'ovs', name, exists: true, mtu: l?.mtu ?? 1500, netdev: !ovsKernelDatapath().available };
  if (l) {
    if (l.linkinfo?.info_kind === 'bridge') return { kind: 'bridge', name, exists: true, mtu: l.mtu, ...(parseMark(l.ifalias)?.kind === 'bridge' ? { mark: l.ifalias! } : {}) };
    return { kind: 'phys', name, mtu: l.mtu };
  }
  // A bridge nslab makes gets a name a topology file could also name (model/names.ts).
  const bad = (createAs !== undefined || name.startsWith('br') || name.startsWith('ovs')) && bridgeNameProblem(name);
  if (bad) throw invalid(`--to ${JSON.stringify(name)}: bridge name ${JSON.stringify(name)} ${bad}`);
  if (createAs === 'bridge' || (createAs === undefined && name.startsWith('br'))) return { kind: 'bridge', name, exists: false, mtu: 1500 };
  if (createAs === 'ovs' || name.startsWith('ovs')) {
    if (!ovsUp) throw new NslabError('MISSING_TOOL', `${name}: creating an Open vSwitch bridge needs ovsdb-server and ovs-vswitchd running (no database socket in ${ovsRunDir()})`, { hint: ovsHint() });
    return { kind: 'ovs', name, exists: false, mtu: 1500, netdev: !ovsKernelDatapath().available };
  }
  throw new NslabError('NOT_FOUND', `host interface ${JSON.stringify(name)} does not exist; a name starting with br creates a Linux bridge, ovs an Open vSwitch bridge`);
}

/** Creates the bridge, race-safe: losing a race to another creator ("File exists") is fine. */
async function ensureBridge(r: Runner, host: Extract<HostSide, { kind: 'bridge' | 'ovs' }>): Promise<boolean> {
  if (host.kind === 'ovs') {
    const s = addOvsBridge(host.name, host.netdev);
    if (s.do.tool === 'cmd') await r.run(s.do.cmd);
    return true;
  }
  // One process: add, mark, up. A batch stops at its first failed line, so losing the race to create
  // it stops at the add, leaving the other creator's bridge alone.
  const res = await r.batch('ip', null, [['link', 'add', 'name', host.name, 'type', 'bridge'], ['link', 'set', 'dev', host.name, 'alias', mark('bridge')], ['link', 'set', 'dev', host.name, 'up']]);
  const bad = res.failed[0];
  if (bad?.index === 0) {
    const kind = (await readLinks(r, null)).find((l) => l.ifname === host.name)?.linkinfo?.info_kind;
    if (/File exists/.test(bad.message) && kind === 'bridge') return false;
    throw new NslabError('COMMAND_FAILED', `ip link add name ${host.name} type bridge: ${bad.message}`);
  }
  if (bad) {
    await runUndo(r, [ipOp(null, ['link', 'del', 'dev', host.name])]);
    throw new NslabError('COMMAND_FAILED', `bridge ${host.name}: ${bad.message}`);
  }
  return true;
}

/**
 * Deletes a bridge nslab created once nothing uses it (no port, no address, no bound socket), as a
 * detach of its last guest does: for a container that went without a detach (`docker rm -f`).
 * @param o.ownAddresses its addresses are the caller's own (a lab's teardown gave it them): not a use
 * @returns true when it was deleted
 */
export async function removeBridgeIfUnused(r: Runner, name: string, o: { ownAddresses?: boolean } = {}): Promise<boolean> {
  const ovsUp = ovsRunning();
  const isOvs = ovsUp && (await ovsBridgeExists(r, name));
  return removeBridgeIfEmpty(r, { kind: isOvs ? 'ovs' : 'bridge', name }, o);
}

/**
 * Deletes a bridge nslab created (mark `nslab:bridge`, or OVS `external-ids:nslab=created`) once it has
 * no ports left (a CNI DEL whose container's netns took the veth with it calls it too).
 * @returns true when it was deleted
 */
export async function removeBridgeIfEmpty(r: Runner, host: { kind: 'bridge' | 'ovs'; name: string }, o: { ownAddresses?: boolean } = {}): Promise<boolean> {
  if (host.kind === 'ovs') {
    const ports = await r.run({ argv: vsctl('list-ports', host.name) }, { check: false });
    const created = await r.run({ argv: vsctl('br-get-external-id', host.name, 'nslab') }, { check: false });
    if (ports.exitCode !== 0 || ports.stdout.trim() || created.stdout.trim() !== 'created') return false;
    await r.run({ argv: vsctl('--if-exists', 'del-br', host.name) }, { check: false });
    return true;
  }
  const links = await readLinks(r, null);
  const br = links.find((l) => l.ifname === host.name);
  if (parseMark(br?.ifalias)?.kind !== 'bridge' || links.some((l) => l.master === host.name)) return false;
  if (await bridgeInUse(r, host.name, o.ownAddresses === true, (parseMark(br?.ifalias)?.fields.addr ?? '').split(',').filter(Boolean))) return false;
  await runUndo(r, [ipOp(null, ['link', 'del', 'dev', host.name])]);
  return true;
}

/**
 * Someone else uses a bridge nslab made: it has an address (given since, not one of `own`), or a socket is bound to it
 * (a dnsmasq serving DHCP on it, a tcpdump): `ss` shows those as `ADDR%BRIDGE:PORT`, packet sockets
 * with the interface's name. Such a bridge stays when its last guest leaves (Docker keeps a network's
 * bridge while anything uses it).
 */
async function bridgeInUse(r: Runner, name: string, ownAddresses = false, own: string[] = []): Promise<boolean> {
  const [addrs, socks] = await Promise.all([
    r.run({ argv: ['ip', '-j', 'addr', 'show', 'dev', name] }, { check: false }),
    r.run({ argv: ['ss', '-H', '-a', '-n', '-u', '-t', '-w', '-0'] }, { check: false }).catch(() => ({ stdout: '', exitCode: 1, stderr: '' })),
  ]);
  const info = (JSON.parse(addrs.stdout || '[]') as Array<{ addr_info?: Array<{ scope?: string; local?: string; prefixlen?: number }> }>).flatMap((l) => l.addr_info ?? []);
  // `own`: the gateway addresses attaches gave it (its mark's addr=), which go with it.
  if (!ownAddresses && info.some((a) => a.scope !== 'link' && !own.includes(`${a.local}/${a.prefixlen}`))) return true;
  return socks.stdout.split('\n').some((l) => l.includes(`%${name}:`) || new RegExp(`\\s${name.replace(/[.]/g, '\\.')}\\s`).test(` ${l} `));
}

/** DHCP clients found installed, so that 50 DHCP guests ask once. */
const dhcpClientsFound = new Set<string>();

async function checkDhcpClient(r: Runner, client: string): Promise<void> {
  const bin = client === 'dhcp' || client === 'udhcpc' ? 'busybox' : client;
  if (dhcpClientsFound.has(bin)) return;
  const pkg = { busybox: 'busybox-static', dhclient: 'isc-dhcp-client', dhcpcd: 'dhcpcd5' }[bin] ?? bin;
  const res = await r.run({ argv: ['sh', '-c', 'command -v "$1"', 'sh', bin] }, { check: false }).catch(() => null);
  if (!res || res.exitCode !== 0) throw new NslabError('MISSING_TOOL', `DHCP client ${client} needs ${bin}, which is not installed`, { hint: `apt-get install ${pkg}` });
  dhcpClientsFound.add(bin);
}

/** What {@link detach} did. */
export interface DetachReport {
  guest: string;
  ifname: string;
  removed: string[];
}

/**
 * Undoes one attach exactly: the guest interface and its host end (veth or macvlan), the OVS port,
 * the DHCP client, the host-access macvlan (addresses and routes back on the parent), the default
 * route the attach replaced, and the bridge when nslab created it and it is now empty. Works when the
 * guest is already gone: its OVS port and host end are found by their marks (pipework#143).
 * @throws NslabError NOT_FOUND when nothing of that attach exists; INVALID_INPUT when the interface is not nslab's or IFNAME is no interface name (ifnameProblem)
 */
export async function detach(r: Runner, guestRef: string, ifname: string, o: { netnsPath?: string | null } = {}): Promise<DetachReport> {
  // A name no interface can have is bad input (exit 2), not "nothing attached" (exit 1).
  checkIfname('IFNAME', ifname);
  const removed: string[] = [];
  const typed = guestRef;
  const rootLinks = await readLinks(r, null);
  let guest: Guest | null = null;
  if (o.netnsPath !== undefined) {
    // A netns by path (CNI_NETNS), or none (a CNI DEL after the runtime removed it): not looked up.
    // With its veth's host end found, the guest is not read either: deleting that end takes the guest's
    // (a guest by path never has a default route or DHCP client of nslab's to put back).
    const viaHostEnd = markedHostEnd(rootLinks, guestRef, ifname)?.linkinfo?.info_kind === 'veth';
    guest = !viaHostEnd && o.netnsPath && existsSync(o.netnsPath) ? pathGuest(guestRef, o.netnsPath) : null;
  } else {
    try {
      guest = await resolveGuest(r, guestRef);
    } catch (err) {
      if (!(err instanceof NslabError) || err.code !== 'NOT_FOUND') throw err;
    }
  }
  // A container is known by its full ID: the word typed may be a name or prefix of one Docker no
  // longer knows (removed), found in nslab's records.
  guestRef = guest?.ref ?? findRecordedContainer(guestRef)?.id ?? guestRef;
  const hostEnd = markedHostEnd(rootLinks, guestRef, ifname);
  const pidFile = dhcpPidFile(guestRef, ifname);
  const stopDhcp = [cmdOp(['sh', join(packageRoot(), 'share', 'dhcp-pid.sh'), 'stop', pidFile]), cmdOp(['rm', '-f', `${pidFile}.log`])];
  const ops: Op[] = [];
  let hostName: string | undefined = hostEnd?.master;
  let fields: Record<string, string> = {};
  if (guest) {
    // A netns path that is no netns any more (the runtime unmounted it, the file stays): as gone.
    const gl = (await readLinks(r, guest.netns).catch((e: unknown) => (guest!.kind === 'path' ? [] : Promise.reject(e)))).find((l) => l.ifname === ifname);
    if (gl) {
      const m = parseMark(gl.ifalias);
      if (m?.kind !== 'attach') throw invalid(`${typed}: ${ifname} was not attached by nslab (no nslab:attach mark); not touching it`);
      const mine = m.fields[sharedKey(guestRef)];
      if (guest.kind === 'docker' && !hostEnd && mine !== undefined) return detachSharedAdd(r, guest, typed, ifname, m.fields, mine);
      const owner = gl.link_index !== undefined && !hostEnd ? parseMark(rootLinks.find((l) => l.ifindex === gl.link_index)?.ifalias)?.fields.guest : undefined;
      if (guest.kind === 'docker' && owner && owner !== guestRef) {
        throw invalid(`${typed}: ${ifname} in the netns it shares (${guest.docker?.netnsOf ? `with container ${guest.docker.netnsOf.name}` : 'with another guest'}) was attached for ${owner.slice(0, 12)}, not for ${typed}; detach it as that guest`);
      }
      fields = m.fields;
      hostName = m.fields.host;
      if (existsSync(pidFile)) ops.push(...stopDhcp);
      else removeDhcpFiles(guestRef, ifname, { onlyLog: true });
      ops.push(ipOp(guest.netns, ['link', 'del', 'dev', ifname]));
      removed.push(`${guestRef}:${ifname}`);
      for (const fam of [4, 6] as const) {
        const prev = fields[`gw${fam}`];
        if (prev) ops.push(restoreDefault(guest.netns, fam, prev));
      }
    }
  }
  if (hostEnd) {
    ops.push(ipOp(null, ['link', 'del', 'dev', hostEnd.ifname]));
    removed.push(hostEnd.ifname);
  }
  if (!guest && existsSync(pidFile)) {
    // The guest is gone but its DHCP client may not be (it kept the netns alive: pipework#181); a
    // container's ended with it (its PID namespace), leaving only the file.
    if (dhcpClientAlive(pidFile)) {
      ops.push(...stopDhcp);
      removed.push(`DHCP client of ${typed}:${ifname}`);
    } else removeDhcpFiles(guestRef, ifname, { onlyLog: false, stale: true });
  }
  // OVS port: by name of the host end, or by the external-ids that name the guest (guest gone). The
  // values are quoted: ovs-vsctl's find refuses a bare `:` in one (a CNI guest is `cni:ID`).
  const ovsUp = ovsRunning();
  if (ovsUp) {
    const found = await r.run({ argv: vsctl('--format=json', '--columns=name', 'find', 'Interface', `external-ids:nslab-guest=${JSON.stringify(guestRef)}`, `external-ids:nslab-ifname=${JSON.stringify(ifname)}`) }, { check: false });
    const names = found.exitCode === 0 ? ((JSON.parse(found.stdout) as { data: string[][] }).data.map((d) => d[0]!) ?? []) : [];
    for (const p of names) {
      const br = (await r.run({ argv: vsctl('port-to-br', p) }, { check: false })).stdout.trim();
      ops.push(cmdOp(vsctl('--if-exists', 'del-port', p)));
      removed.push(`ovs port ${p}`);
      if (br) hostName = br;
    }
  }
  if (fields.ha) {
    // Host access: put the addresses and routes back on the parent, then remove the host macvlan.
    const ha = fields.ha;
    const parent = fields.vlan ?? hostName!;
    const addrs = (JSON.parse((await r.run({ argv: ['ip', '-j', 'addr', 'show', 'dev', ha] }, { check: false })).stdout || '[]') as Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>)
      .flatMap((x) => x.addr_info)
      .filter((a) => a.scope === 'global');
    const routes = (JSON.parse((await r.run({ argv: ['ip', '-j', 'route', 'show', 'dev', ha] }, { check: false })).stdout || '[]') as Array<{ dst: string; gateway?: string; protocol?: string; metric?: number }>).filter((x) => x.protocol !== 'kernel');
    for (const a of addrs) ops.push(ipOp(null, ['addr', 'add', `${a.local}/${a.prefixlen}`, 'dev', parent]));
    for (const rt of routes) ops.push(ipOp(null, ['route', 'replace', rt.dst, ...(rt.gateway ? ['via', rt.gateway] : []), ...(rt.metric !== undefined ? ['metric', String(rt.metric)] : []), 'dev', parent]));
    ops.push(ipOp(null, ['link', 'del', 'dev', ha]));
    removed.push(ha);
  }
  if (fields.vlan) {
    ops.push(ipOp(null, ['link', 'del', 'dev', fields.vlan]));
    removed.push(fields.vlan);
  }
  if (ops.length === 0 || removed.length === 0) {
    // The guest's netns gone took both veth ends with it: a bridge nslab made may be left empty.
    const empty = rootLinks.filter((l) => parseMark(l.ifalias)?.kind === 'bridge' && !rootLinks.some((p) => p.master === l.ifname)).map((l) => l.ifname);
    forgetDockerAttach(guestRef, ifname, true);
    throw new NslabError('NOT_FOUND', `nothing attached by nslab as ${typed}:${ifname} (no marked interface, host end or OVS port)`, empty.length ? { hint: `bridges nslab made that have no port left: ${empty.join(', ')} (ip link del dev NAME removes one)` } : {});
  }
  const errors = await runUndo(r, ops);
  if (errors.length) throw new NslabError('COMMAND_FAILED', `detach ${typed} ${ifname}: ${errors[0]}`, { details: { errors } });
  removeDhcpFiles(guestRef, ifname, { onlyLog: false });
  forgetDockerAttach(guestRef, ifname, true);
  // A Linux bridge that had other ports when read stays (no second read of the links for it).
  const othersOnBridge = rootLinks.some((l) => l.ifname === hostName && l.linkinfo?.info_kind === 'bridge') && rootLinks.some((l) => l.master === hostName && l.ifname !== hostEnd?.ifname);
  if (hostName && !othersOnBridge) {
    const isOvs = ovsUp && (await ovsBridgeExists(r, hostName));
    if (await removeBridgeIfEmpty(r, { kind: isOvs ? 'ovs' : 'bridge', name: hostName })) removed.push(`bridge ${hostName}`);
  }
  return { guest: typed, ifname, removed };
}

/**
 * Detaches what a guest sharing another's netns added to that one's interface: its addresses only
 * (recorded under `by.ID12` in the interface's mark), never the interface.
 */
async function detachSharedAdd(r: Runner, guest: Guest, typed: string, ifname: string, fields: Record<string, string>, mine: string): Promise<DetachReport> {
  const ops: Op[] = mine ? mine.split(',').map((a) => ipOp(guest.netns, ['addr', 'del', a, 'dev', ifname])) : [];
  const rest = { ...fields };
  delete rest[sharedKey(guest.ref)];
  ops.push(ipOp(guest.netns, ['link', 'set', 'dev', ifname, 'alias', mark('attach', rest)]));
  const errors = await runUndo(r, ops);
  if (errors.length) throw new NslabError('COMMAND_FAILED', `detach ${typed} ${ifname}: ${errors[0]}`, { details: { errors } });
  return { guest: typed, ifname, removed: mine ? mine.split(',').map((a) => `address ${a} on ${ifname}`) : [`${typed}'s share of ${ifname}`] };
}
