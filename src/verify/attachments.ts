// `nslab verify attachments`: what `attach`, `pipework`, network modes' nodes and nslab-cni wired
// (found by their marks, as inspect and clean find them) read back from the kernel and compared with
// what each was asked for. The reading is here; the comparison is pure ({@link compareAttachments}).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../exec/runner.js';
import { queryJsonEach } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';
import { queryJson } from '../exec/batch.js';
import type { LinkInfo } from '../kernel/link.js';
import { listNetns } from '../kernel/netns.js';
import { readOvsPorts, type OvsPort } from '../kernel/ovs.js';
import { readRoutes, type RouteInfo } from '../kernel/route.js';
import { cniCacheDir, readResult } from '../model/cni.js';
import { isContainerId, readDockerRecords } from '../model/docker.js';
import { netnsInode, readIntents } from '../model/link-intent.js';
import { parseMark } from '../model/marks.js';
import { canonicalCidr, canonicalIp, inNet, parseCidr, parseIp, routeDstKey } from './ip.js';

/** A route an attachment expects in its guest: `to` a CIDR or `default`, `via` a gateway when one was asked for. */
export interface ExpectedRoute {
  to: string;
  via?: string;
}

/**
 * What an attachment was asked for beyond its marks: from a Docker record (the attach request) or
 * from libcni's cache (the result the runtime keeps, `/var/lib/cni/results/NET-ID-IF`).
 */
export interface AttachExtra {
  /** The host interface (bridge, OVS bridge, macvlan parent). */
  host?: string;
  addresses: string[];
  routes: ExpectedRoute[];
  mtu?: number;
  mac?: string;
  /** OVS access port tag. */
  vlan?: number;
  /** Where these come from: `Docker record`, `CNI cache FILE`. */
  source: string;
}

/** One netns as read: links (`ip -j -d link`), addresses per interface, IPv4 (and when asked IPv6) routes. */
export interface GuestSpace {
  /** How the netns is named: its name under /run/netns, or a path (`/proc/PID/ns/net`). */
  label: string;
  links: LinkInfo[];
  /** Global and link-scope addresses per interface, `ADDR/LEN`. */
  addrs: Map<string, string[]>;
  routes: RouteInfo[];
}

/** Everything {@link compareAttachments} needs, as {@link readAttachments} read it. */
export interface AttachmentsReading {
  /** The links of the namespace nslab runs in (the host). */
  root: LinkInfo[];
  /** Open vSwitch ports; null when no ovsdb answers. */
  ovs: OvsPort[] | null;
  /** Each guest (by its ref in marks) with its netns read, or why it could not be: `{ gone }`. */
  guests: Map<string, GuestSpace | { gone: string }>;
  /** Guest ends found in the guests' netns, by `GUEST/IFNAME` (a macvlan has no host end to find it by). */
  guestEnds: Map<string, { guest: string; ifname: string }>;
  /** What more is known of an attachment, by `GUEST/IFNAME`. */
  extra: Map<string, AttachExtra>;
  /** Interfaces taken down on purpose (`nslab link down`), as `NETNS-LABEL:IFNAME`. */
  downOnPurpose: Set<string>;
  /** How guests are shown: a Docker container's name. */
  names: Map<string, string>;
}

/** Kinds of finding; a subset of verify's with `guest-gone` and `parent` for what only attachments have. */
export type AttachMismatchKind = 'guest-gone' | 'link-missing' | 'link-down' | 'peer' | 'master' | 'vlan' | 'parent' | 'mode' | 'mtu' | 'mac' | 'address-missing' | 'route-missing' | 'route-wrong';

/** One difference. */
export interface AttachMismatch {
  kind: AttachMismatchKind;
  /** The guest's ref (netns name, PID, full container ID, `cni:ID`). */
  guest: string;
  ifname: string;
  expected: string | null;
  actual: string | null;
  /** Another finding this one follows from (`eth1 is down`, `address 10.0.0.5/24 is missing`). */
  because?: string;
  /** What is wrong, without whose it is: `address 10.0.0.5/24 missing`. */
  text: string;
  /** `attach c1: eth1: address 10.0.0.5/24 missing`. */
  message: string;
}

/** One attachment as found and checked. */
export interface AttachmentState {
  guest: string;
  /** Shown as: the guest ref, or a container's name. */
  name: string;
  ifname: string;
  /** The guest's netns (name or path); null when gone. */
  netns: string | null;
  kind: 'veth' | 'macvlan' | 'unknown';
  /** The bridge, OVS bridge or macvlan parent it hangs on, when known. */
  host: string | null;
  /** The host end of a veth, when found. */
  hostEnd: string | null;
  /** What expectations were checked beyond the marks. */
  sources: string[];
  ok: boolean;
}

/** What {@link verifyAttachments} found. */
export interface AttachmentsReport {
  ok: boolean;
  attachments: AttachmentState[];
  /** How many facts were checked. */
  checked: number;
  mismatches: AttachMismatch[];
  /**
   * Interfaces taken down on purpose (`nslab link down`), as `GUEST:IFNAME` or a host end's name: not
   * faults, and neither is what the kernel drops with them (IPv6 addresses, routes), which is not checked.
   */
  downOnPurpose: string[];
}

const key = (guest: string, ifname: string) => `${guest}/${ifname}`;
const isGone = (g: GuestSpace | { gone: string } | undefined): g is { gone: string } => g !== undefined && 'gone' in g;

/** A guest's ref as its guest end's mark names it: `guest=` (CNI's netns by path) or the netns' own name. */
function guestOfEnd(l: LinkInfo, netns: string): string | null {
  const m = parseMark(l.ifalias);
  if (m?.kind !== 'attach' || !m.fields.host) return null;
  return m.fields.guest ?? netns;
}

/**
 * Reads what attachments nslab made (marks `nslab:attach` on host and guest ends, OVS `nslab-guest`
 * ids) and what each was asked for: the host's links, every named netns (links, addresses, routes;
 * `netns-batch.sh query`, one process per core), the netns of guests that are not named ones (a CNI
 * netns path from the host end's `ns=`, a Docker container's PID by one `docker inspect`, a PID),
 * Docker records and libcni's cache. Reads only.
 * @param r the runner
 * @param concurrency how many netns are read at once by the extra processes (IPv6 routes, paths)
 */
export async function readAttachments(r: Runner, concurrency = 8): Promise<AttachmentsReading> {
  const root = (await queryJson(r, null, [['link', 'show']], ['-d']))[0] as LinkInfo[];
  const ovsUp = existsSync(join(process.env.OVS_RUNDIR || '/var/run/openvswitch', 'db.sock'));
  const ovs = ovsUp ? await readOvsPorts(r).catch(() => null) : null;
  const guests = new Map<string, GuestSpace | { gone: string }>();
  const guestEnds = new Map<string, { guest: string; ifname: string }>();
  const spaces = new Map<string, GuestSpace>(); // named netns, read
  const toSpace = (label: string, got: unknown[][]): GuestSpace => {
    const [links = [], addrs = [], routes = []] = got as [LinkInfo[], Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number; scope?: string }> }>, RouteInfo[]];
    const byIf = new Map(addrs.map((a) => [a.ifname, (a.addr_info ?? []).filter((x) => x.scope !== 'host').map((x) => `${x.local}/${x.prefixlen}`)]));
    return { label, links, addrs: byIf, routes };
  };
  const queries = [['link', 'show'], ['addr', 'show'], ['route', 'show']];
  const named = await listNetns(r);
  const each = await queryJsonEach(r, named, queries, ['-d']);
  for (const ns of named) {
    const got = each.get(ns);
    if (!got || got instanceof Error) continue;
    const sp = toSpace(ns, got);
    spaces.set(ns, sp);
    for (const l of sp.links) {
      const g = guestOfEnd(l, ns);
      if (!g) continue;
      if (!guests.has(g)) guests.set(g, sp);
      guestEnds.set(key(g, l.ifname), { guest: g, ifname: l.ifname });
    }
  }
  // Host ends whose guest is not a named netns read above.
  const pending = new Map<string, string | null>(); // guest → a netns path to read (CNI's ns=), or null
  for (const l of root) {
    const m = parseMark(l.ifalias);
    if (m?.kind !== 'attach' || !m.fields.guest || !m.fields.if || guests.has(m.fields.guest)) continue;
    pending.set(m.fields.guest, m.fields.ns ?? pending.get(m.fields.guest) ?? null);
  }
  const names = new Map<string, string>();
  const records = [...readDockerRecords(false), ...readDockerRecords(true)];
  for (const rec of records) names.set(rec.id, rec.name);
  // Containers only their records name (a macvlan has no host end): read when running, else left out
  // (a stopped container's attaches come back with it: a lifecycle state, not a fault).
  const optional = new Set(records.map((rec) => rec.id).filter((id) => !guests.has(id) && !pending.has(id)));
  const containers = [...new Set([...pending.keys(), ...optional])].filter(isContainerId);
  const pids = new Map<string, number>();
  let dockerSays = '';
  if (containers.length) {
    const res = await r.run({ argv: ['docker', 'inspect', '--type', 'container', '--format', '{{.Id}} {{.State.Pid}} {{.Name}}', ...containers] }, { check: false }).catch((e: Error) => ({ stdout: '', stderr: e.message, exitCode: -1 }));
    for (const line of res.stdout.split('\n')) {
      const [id, pid, name] = line.trim().split(' ');
      if (!id) continue;
      if (Number(pid) > 0) pids.set(id, Number(pid));
      if (name) names.set(id, name.replace(/^\//, ''));
    }
    dockerSays = res.stderr.trim().split('\n').pop() ?? '';
  }
  const paths = new Map<string, string>(); // guest → netns path to read
  for (const id of optional) {
    const pid = pids.get(id);
    if (pid) paths.set(id, `/proc/${pid}/ns/net`);
  }
  for (const [g, ns] of pending) {
    if (g.startsWith('cni:')) {
      const named = ns?.startsWith('/run/netns/') ? spaces.get(ns.slice('/run/netns/'.length)) : undefined;
      if (named) guests.set(g, named);
      else if (ns && existsSync(ns)) paths.set(g, ns);
      else guests.set(g, { gone: ns ? `its netns ${ns} is gone` : 'its netns is not known (no ns= in the mark) and no named netns holds it' });
    } else if (isContainerId(g)) {
      const pid = pids.get(g);
      if (pid) paths.set(g, `/proc/${pid}/ns/net`);
      else guests.set(g, { gone: names.has(g) && !/No such (container|object)/i.test(dockerSays) && dockerSays ? `Docker does not tell where it is (${dockerSays})` : 'the container is not running or was removed' });
    } else if (/^\d+$/.test(g)) {
      if (existsSync(`/proc/${g}/ns/net`)) paths.set(g, `/proc/${g}/ns/net`);
      else guests.set(g, { gone: `no process with PID ${g}` });
    } else guests.set(g, spaces.get(g) ?? { gone: `no netns named ${g}` });
  }
  if (paths.size) {
    const got = await queryJsonEach(r, [...new Set(paths.values())], queries, ['-d']);
    for (const [g, p] of paths) {
      const x = got.get(p);
      if (!x || x instanceof Error) {
        if (!optional.has(g)) guests.set(g, { gone: `its netns ${p} could not be read${x instanceof Error ? `: ${x.message}` : ''}` });
        continue;
      }
      const sp = toSpace(p, x);
      guests.set(g, sp);
      for (const l of sp.links) {
        const owner = guestOfEnd(l, g);
        if (owner === g) guestEnds.set(key(g, l.ifname), { guest: g, ifname: l.ifname });
      }
    }
  }
  const extra = new Map<string, AttachExtra>();
  for (const rec of records) {
    for (const a of rec.attaches) {
      const req = a.request;
      const routes: ExpectedRoute[] = [
        ...req.addresses.flatMap((x) => (x.kind === 'static' && x.gateway ? [{ to: 'default', via: x.gateway }] : [])),
        ...req.routes.map((x) => ({ to: x.to, ...(x.via ? { via: x.via } : {}) })),
      ];
      extra.set(key(rec.id, a.ifname), {
        host: a.host,
        addresses: req.addresses.flatMap((x) => (x.kind === 'static' ? [x.cidr] : [])),
        routes,
        ...(req.mtu !== undefined ? { mtu: req.mtu } : {}),
        ...(req.mac ? { mac: req.mac } : {}),
        ...(req.vlan !== undefined ? { vlan: req.vlan } : {}),
        source: 'Docker record',
      });
    }
  }
  for (const l of root) {
    const m = parseMark(l.ifalias);
    if (m?.kind !== 'attach' || !m.fields.guest?.startsWith('cni:') || !m.fields.if || !m.fields.net) continue;
    const x = cniCacheExtra(m.fields.net, m.fields.guest.slice(4), m.fields.if);
    if (x) extra.set(key(m.fields.guest, m.fields.if), x);
  }
  // IPv6 routes where an expectation needs them (`ip -6` is refused in a batch line).
  const six = [...extra].filter(([, x]) => x.routes.some((rt) => (rt.via ?? rt.to).includes(':'))).map(([k]) => k.slice(0, k.lastIndexOf('/')));
  for (const [g, sp] of guests) {
    if (isGone(sp)) continue;
    const m = sp.links.map((l) => parseMark(l.ifalias)).filter((x) => x?.kind === 'attach' && x.fields.host);
    if (m.some((x) => `${x!.fields.gw ?? ''}${x!.fields.rt ?? ''}`.includes(':'))) six.push(g);
  }
  await mapLimit([...new Set(six)], concurrency, async (g) => {
    const sp = guests.get(g);
    if (sp && !isGone(sp) && !sp.routes.some((x) => x.dst.includes(':'))) sp.routes = [...sp.routes, ...(await readRoutes(r, sp.label, 6).catch(() => []))];
  });
  const downOnPurpose = new Set<string>();
  for (const x of readIntents()) if (x.down && netnsInode(x.netns) === x.nsIno) downOnPurpose.add(`${x.netns ?? ''}:${x.ifname}`);
  return { root, ovs, guests, guestEnds, extra, downOnPurpose, names };
}

/**
 * An attachment's expectations from libcni's cache (`cacheDir/NETWORK-CONTAINERID-IFNAME`, libcni
 * api.go cachedInfo: `result` is the chain's last result, `config` the network's bytes in base64):
 * the addresses and routes of the result for the interface in the sandbox, its MAC, the config's MTU.
 * @returns null when the runtime keeps no such file (nslab-cni run by hand, a runtime without cache)
 */
export function cniCacheExtra(network: string, containerId: string, ifname: string): AttachExtra | null {
  const file = join(cniCacheDir(), `${network}-${containerId}-${ifname}`);
  let cached: { result?: unknown; config?: string };
  try {
    cached = JSON.parse(readFileSync(file, 'utf8')) as typeof cached;
  } catch {
    return null;
  }
  let res;
  try {
    res = readResult(cached.result, file);
  } catch {
    return null;
  }
  const idx = (res.interfaces ?? []).findIndex((i) => i.name === ifname && i.sandbox);
  let mtu: number | undefined;
  try {
    const conf = cached.config ? (JSON.parse(Buffer.from(cached.config, 'base64').toString('utf8')) as { mtu?: unknown; plugins?: Array<{ type?: string; mtu?: unknown }> }) : {};
    const own = conf.plugins?.find((p) => p.type === 'nslab-cni') ?? conf;
    if (typeof own.mtu === 'number') mtu = own.mtu;
  } catch {
    // a config that is not JSON says nothing of the MTU
  }
  const mac = idx >= 0 ? res.interfaces![idx]!.mac : undefined;
  return {
    addresses: (res.ips ?? []).filter((x) => x.interface === undefined || x.interface === idx).map((x) => x.address),
    routes: (res.routes ?? []).map((x) => ({ to: x.dst, ...(x.gw ? { via: x.gw } : {}) })),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(mac ? { mac } : {}),
    source: `CNI cache ${file}`,
  };
}



/**
 * Compares attachments with the kernel (pure). Each attachment is a host end marked
 * `nslab:attach guest=G if=IF` or a guest end marked `nslab:attach host=H`; for it: the guest's netns
 * is there, its interface is there and up (unless `nslab link down` took it down), a veth's two ends
 * are each other's peers and the host end is up on its bridge (an OVS port of it, with the tag asked
 * for), a macvlan's parent is its host interface, and the addresses, routes, MTU and MAC asked for
 * (marks' `ip=`, `gw=`, `rt=`, `tag=`; a Docker record; libcni's cache) are in the guest.
 * @param rd what {@link readAttachments} read
 * @param only a guest's ref or name: only its attachments
 */
export function compareAttachments(rd: AttachmentsReading, only?: string): AttachmentsReport {
  type Found = { guest: string; ifname: string; hostEnd?: LinkInfo; ips: string[] };
  const found = new Map<string, Found>();
  for (const l of rd.root) {
    const m = parseMark(l.ifalias);
    if (m?.kind !== 'attach' || !m.fields.guest || !m.fields.if || l.linkinfo?.info_kind !== 'veth') continue;
    found.set(key(m.fields.guest, m.fields.if), { guest: m.fields.guest, ifname: m.fields.if, hostEnd: l, ips: m.fields.ip ? m.fields.ip.split(',') : [] });
  }
  for (const [k, e] of rd.guestEnds) if (!found.has(k)) found.set(k, { guest: e.guest, ifname: e.ifname, ips: [] });
  const nameOf = (g: string) => rd.names.get(g) ?? g;
  const wanted = [...found.values()].filter((f) => !only || f.guest === only || nameOf(f.guest) === only || (f.guest.startsWith('cni:') && f.guest.slice(4) === only));
  wanted.sort((a, b) => nameOf(a.guest).localeCompare(nameOf(b.guest)) || a.ifname.localeCompare(b.ifname));
  const ovsPort = new Map((rd.ovs ?? []).map((p) => [p.name, p]));
  const mismatches: AttachMismatch[] = [];
  const attachments: AttachmentState[] = [];
  const onPurpose: string[] = [];
  let checked = 0;
  for (const f of wanted) {
    const before = mismatches.length;
    const who = `attach ${nameOf(f.guest)}`;
    const miss = (kind: AttachMismatchKind, text: string, expected: string | null, actual: string | null, because?: string) =>
      mismatches.push({ kind, guest: f.guest, ifname: f.ifname, expected, actual, ...(because ? { because } : {}), text, message: `${who}: ${f.ifname}: ${text}${because ? ` (${because})` : ''}` });
    const fact = (ok: boolean, kind: AttachMismatchKind, text: string, expected: string | null, actual: string | null, because?: string) => {
      checked++;
      if (!ok) miss(kind, text, expected, actual, because);
      return ok;
    };
    const x = rd.extra.get(key(f.guest, f.ifname));
    const state: AttachmentState = { guest: f.guest, name: nameOf(f.guest), ifname: f.ifname, netns: null, kind: 'unknown', host: x?.host ?? null, hostEnd: f.hostEnd?.ifname ?? null, sources: ['marks', ...(x ? [x.source] : [])], ok: true };
    attachments.push(state);
    const sp = rd.guests.get(f.guest);
    if (!sp || isGone(sp)) {
      fact(false, 'guest-gone', `guest gone (${sp ? sp.gone : 'its netns was not found'})${f.hostEnd ? `: host end ${f.hostEnd.ifname} is left over (nslab clean removes it)` : ''}`, 'the guest\'s netns', null);
      state.ok = false;
      continue;
    }
    state.netns = sp.label;
    const g = sp.links.find((l) => l.ifname === f.ifname);
    if (!fact(g !== undefined, 'link-missing', `missing in ${sp.label}${f.hostEnd ? ` (its host end ${f.hostEnd.ifname} is there)` : ''}`, f.ifname, null)) {
      state.ok = false;
      continue;
    }
    const gm = parseMark(g!.ifalias);
    state.host = gm?.fields.host ?? state.host;
    // What the guest end's mark recorded of the request (engine/attach askedFields): macvlan addresses, gateways, routes.
    const asked: ExpectedRoute[] = [
      ...(gm?.fields.gw ? gm.fields.gw.split(',').map((via) => ({ to: 'default', via })) : []),
      ...(gm?.fields.rt ? gm.fields.rt.split(',').map((x) => (x.includes('@') ? { to: x.slice(0, x.indexOf('@')), via: x.slice(x.indexOf('@') + 1) } : { to: x })) : []),
    ];
    if (gm?.fields.ip) f.ips.push(...gm.fields.ip.split(','));
    const tag = x?.vlan ?? (gm?.fields.tag ? Number(gm.fields.tag) : undefined);
    const down = rd.downOnPurpose.has(`${sp.label}:${f.ifname}`) && !g!.flags.includes('UP');
    if (down) onPurpose.push(`${nameOf(f.guest)}:${f.ifname}`);
    const guestUp = down || fact(g!.flags.includes('UP'), 'link-down', 'is down', 'UP', g!.operstate);
    const mtu = x?.mtu ?? (gm?.fields.mtu ? Number(gm.fields.mtu) : undefined);
    const mac = x?.mac ?? gm?.fields.mac;
    const kind = g!.linkinfo?.info_kind;
    if (kind === 'macvlan') {
      state.kind = 'macvlan';
      const parent = state.host ? rd.root.find((l) => l.ifname === state.host) : undefined;
      if (fact(parent !== undefined, 'parent', `its parent ${state.host ?? '(unknown)'} is missing`, state.host, null)) {
        fact(g!.link_netnsid !== undefined && g!.link_index === parent!.ifindex, 'parent', `macvlan parent is not ${state.host}`, state.host, null);
        if (!rd.downOnPurpose.has(`:${parent!.ifname}`)) fact(parent!.flags.includes('UP'), 'link-down', `its parent ${parent!.ifname} is down`, 'UP', parent!.operstate);
      }
      // nslab's macvlans are in bridge mode (pipework's), so guests on one parent reach each other.
      const mode = String((g!.linkinfo?.info_data as { mode?: string } | undefined)?.mode ?? 'bridge');
      fact(mode === 'bridge', 'mode', `macvlan mode ${mode}, expected bridge`, 'bridge', mode);
    } else if (kind === 'veth') {
      state.kind = 'veth';
      const h = f.hostEnd ?? rd.root.find((l) => l.linkinfo?.info_kind === 'veth' && l.ifindex === g!.link_index && g!.link_netnsid !== undefined);
      if (fact(h !== undefined, 'link-missing', `its host end is missing${state.host ? ` (it was a port of ${state.host})` : ''}`, 'a host end', null)) {
        state.hostEnd = h!.ifname;
        fact(h!.link_index === g!.ifindex && g!.link_index === h!.ifindex, 'peer', `host end ${h!.ifname} is not its veth peer`, h!.ifname, null);
        if (!rd.downOnPurpose.has(`:${h!.ifname}`)) fact(h!.flags.includes('UP'), 'link-down', `host end ${h!.ifname} is down`, 'UP', h!.operstate);
        const port = ovsPort.get(h!.ifname);
        // The host interface is a Linux bridge when the kernel says so; an OVS bridge when OVS has a
        // port of it (or of this end); unknown only while OVS does not answer.
        const br = rd.root.find((l) => l.ifname === state.host);
        const linux = br?.linkinfo?.info_kind === 'bridge';
        const ovs = !linux && (port !== undefined || gm?.fields.kind === 'ovs' || (rd.ovs ?? []).some((p) => p.bridge === state.host));
        if (ovs && rd.ovs === null) {
          fact(false, 'master', `host end ${h!.ifname}: Open vSwitch is not running here, so OVS bridge ${state.host} and its ports are gone (nslab service ovs start)`, state.host, null);
        } else if (ovs) {
          if (fact(port !== undefined && (!state.host || port.bridge === state.host), 'master', `host end ${h!.ifname} is not a port of OVS bridge ${state.host}${port ? ` (it is on ${port.bridge})` : ''}`, state.host, port?.bridge ?? null) && tag !== undefined) {
            fact(port!.tag === tag, 'vlan', `host end ${h!.ifname}: VLAN tag ${port!.tag ?? 'none'}, expected ${tag}`, String(tag), port!.tag === null ? null : String(port!.tag));
          }
        } else if (state.host && !br) {
          fact(false, 'master', `bridge ${state.host} is missing${rd.ovs === null ? ' (or it was an OVS bridge and Open vSwitch is not running here)' : ''}`, state.host, null);
        } else if (state.host) {
          if (fact(h!.master === state.host, 'master', `host end ${h!.ifname} is not a port of bridge ${state.host}${h!.master ? ` (it is on ${h!.master})` : ''}`, state.host, h!.master ?? null) && !rd.downOnPurpose.has(`:${br!.ifname}`)) {
            fact(br!.flags.includes('UP'), 'link-down', `bridge ${state.host} is down`, 'UP', br!.operstate);
          }
        }
      }
    }
    if (mtu !== undefined) fact(g!.mtu === mtu, 'mtu', `MTU ${g!.mtu}, expected ${mtu}`, String(mtu), String(g!.mtu));
    if (mac) fact(g!.address?.toLowerCase() === mac.toLowerCase(), 'mac', `MAC ${g!.address ?? 'none'}, expected ${mac.toLowerCase()}`, mac.toLowerCase(), g!.address ?? null);
    const isDown = guestUp ? undefined : `${f.ifname} is down`;
    const have = new Set((sp.addrs.get(f.ifname) ?? []).map(canonicalCidr));
    const missing: string[] = [];
    for (const a of new Set([...f.ips, ...(x?.addresses ?? [])].map(canonicalCidr))) {
      // Down on purpose: the kernel dropped its IPv6 addresses (without keep_addr_on_down); not checked.
      if (down && a.includes(':')) continue;
      if (!fact(have.has(a), 'address-missing', `address ${a} missing`, a, null, isDown)) missing.push(a);
    }
    const routes = new Map([...asked, ...(x?.routes ?? [])].map((rt) => [`${routeDstKey(rt.to)} ${rt.via ? canonicalIp(rt.via) : ''}`, rt]));
    // The same destination with a gateway says more than without one (a CNI result's route without gw).
    for (const [k, rt] of routes) if (!rt.via && [...routes.values()].some((o) => o.via && routeDstKey(o.to) === routeDstKey(rt.to))) routes.delete(k);
    for (const rt of routes.values()) {
      if (down) continue; // the kernel dropped the routes through it; `nslab link up` puts them back
      const want = `${rt.to}${rt.via ? ` via ${rt.via}` : ''}`;
      if (sp.routes.some((k) => routeDstKey(k.dst) === routeDstKey(rt.to) && (!rt.via || (k.gateway !== undefined && canonicalIp(k.gateway) === canonicalIp(rt.via))))) {
        checked++;
        continue;
      }
      // What holds that destination instead, if anything: a route replaced is not a route deleted.
      const other = sp.routes.find((k) => routeDstKey(k.dst) === routeDstKey(rt.to) && (k.gateway ?? k.dst).includes(':') === (rt.via ?? rt.to).includes(':'));
      const otherText = other ? `${other.dst}${other.gateway ? ` via ${other.gateway}` : ''}${other.dev ? ` dev ${other.dev}` : ''}` : null;
      const gwNet = rt.via ? missing.find((a) => { try { return inNet(parseCidr(a), parseIp(rt.via!)!); } catch { return false; } }) : undefined;
      const because = isDown ?? (gwNet ? `address ${gwNet} is missing` : undefined);
      if (other) fact(false, 'route-wrong', `route ${want} expected in ${sp.label}, it is ${otherText}`, want, otherText, because);
      else fact(false, 'route-missing', `route ${want} missing in ${sp.label}`, want, null, because);
    }
    state.ok = mismatches.length === before;
  }
  return { ok: mismatches.length === 0, attachments, checked, mismatches, downOnPurpose: onPurpose };
}

/**
 * Reads and compares (see {@link readAttachments}, {@link compareAttachments}).
 * @param r the runner
 * @param only a guest's ref or name: only its attachments
 */
export async function verifyAttachments(r: Runner, only?: string): Promise<AttachmentsReport> {
  return compareAttachments(await readAttachments(r), only);
}
