// `nslab link down|up|set|show`: break, mend and slow one interface of a running topology or lab.
import type { Runner } from '../../exec/runner.js';
import { displayArgv } from '../../exec/command.js';
import { NslabError, invalid } from '../../errors.js';
import { readLinks } from '../../kernel/link.js';
import { readAddrs } from '../../kernel/addr.js';
import { readRoutes, type RouteInfo } from '../../kernel/route.js';
import { checkImpair, describeImpair, impairArgv, needsNetem, netemAvailable, netemMissing, readQdiscs, tbfRate, type Impair, type QdiscInfo } from '../../kernel/tc.js';
import { intentFor, netnsInode, recordIntent, type LinkIntent } from '../../model/link-intent.js';
import type { LiveTarget } from './target.js';

/** What `link set` is asked to change. */
export interface LinkSettings {
  impair: Impair;
  /** MTU in bytes. */
  mtu?: number;
  /** Remove the impairment (the kernel's default qdisc comes back). */
  clear?: boolean;
}

/** The commands a link change runs, as argv lists in their netns (what `--dry-run` prints). */
export interface LinkPlan {
  target: string;
  commands: Array<{ argv: string[]; netns: string | null }>;
}

/** The plan as the shell lines a person would type (`ip -n NS ...`, `ip netns exec NS tc ...`). */
export function planText(p: LinkPlan): string {
  return p.commands.map((c) => displayArgv(c.argv, c.netns).join(' ')).join('\n') + '\n';
}

/** The commands that take an interface down or up (`ip link set dev IF down|up`). */
export function planState(t: LiveTarget, up: boolean): LinkPlan {
  return { target: t.label, commands: [{ argv: ['ip', 'link', 'set', 'dev', t.ifname, up ? 'up' : 'down'], netns: t.netns }] };
}

/**
 * The commands that set an interface's MTU and impairment: `ip link set mtu`, then tc (kernel/tc.ts).
 * @throws NslabError `INVALID_INPUT` for a bad rate, time or loss, an MTU outside 68..65535, or nothing to do
 */
export function planSettings(t: LiveTarget, s: LinkSettings): LinkPlan {
  checkImpair(s.impair, 'flag');
  if (s.mtu !== undefined && (!Number.isInteger(s.mtu) || s.mtu < 68 || s.mtu > 65535)) throw invalid(`--mtu ${JSON.stringify(s.mtu)}: expected a whole number of bytes from 68 to 65535`);
  const commands: LinkPlan['commands'] = [];
  if (s.mtu !== undefined) commands.push({ argv: ['ip', 'link', 'set', 'dev', t.ifname, 'mtu', String(s.mtu)], netns: t.netns });
  if (s.clear) commands.push({ argv: ['tc', 'qdisc', 'del', 'dev', t.ifname, 'root'], netns: t.netns });
  for (const argv of impairArgv(t.ifname, s.impair)) commands.push({ argv, netns: t.netns });
  if (!commands.length) throw invalid('link set: nothing to set: expected --rate, --mtu, --delay, --jitter, --loss or --clear');
  return { target: t.label, commands };
}

/** Runs a plan's commands in order; a tc `del` of a qdisc that is not there is no error. */
async function runPlan(r: Runner, p: LinkPlan): Promise<void> {
  for (const c of p.commands) {
    const res = await r.run(c, { check: false });
    if (res.exitCode !== 0 && !(c.argv[0] === 'tc' && c.argv[2] === 'del' && /handle of zero|No such file/i.test(res.stderr))) {
      throw new NslabError('COMMAND_FAILED', `${displayArgv(c.argv, c.netns).join(' ')}: ${res.stderr.trim().split('\n')[0] || `exit ${res.exitCode}`}`);
    }
  }
}

function intentBase(t: LiveTarget): Omit<LinkIntent, 'down' | 'impair' | 'mtu'> {
  return { node: t.node, netns: t.netns, ifname: t.ifname, nsIno: netnsInode(t.netns) ?? 0, ifindex: t.link.ifindex };
}

/**
 * Takes an interface down or up, and records that it was done on purpose (model/link-intent.ts), so
 * that pingall expects its link's probes lost (and found again).
 * @returns the plan that ran
 */
export async function setLinkState(r: Runner, t: LiveTarget, up: boolean): Promise<LinkPlan> {
  const p = planState(t, up);
  if (up) {
    // What the kernel dropped when nslab took it down comes back after it (ip route/addr replace: a
    // route someone put back meanwhile is no error).
    const restore = intentFor(t.netns, t.ifname, t.link.ifindex)?.restore ?? [];
    p.commands.push(...restore.map((argv) => ({ argv, netns: t.netns })));
    await runPlan(r, p);
    recordIntent({ ...intentBase(t), down: false });
    return p;
  }
  const restore = await droppedOnDown(r, t);
  await runPlan(r, p);
  recordIntent({ ...intentBase(t), down: true, ...(restore.length ? { restore } : {}) });
  return p;
}

/**
 * The routes through an interface and its IPv6 addresses, as the `ip` argv that adds each back: what
 * the kernel deletes when the interface goes down (fib_sync_down_dev; addrconf_ifdown without
 * keep_addr_on_down) and does not restore when it comes up. Prefix routes of its addresses (proto
 * kernel) and link-local IPv6 come back by themselves and are left out.
 */
async function droppedOnDown(r: Runner, t: LiveTarget): Promise<string[][]> {
  const [v4, v6, addrs] = await Promise.all([readRoutes(r, t.netns, 4), readRoutes(r, t.netns, 6), readAddrs(r, t.netns)]);
  const route = (x: RouteInfo, six: boolean): string[] => [
    'ip', ...(six ? ['-6'] : []), 'route', 'replace', ...(x.type && x.type !== 'unicast' ? [x.type] : []), x.dst,
    ...(x.gateway ? ['via', x.gateway] : []), 'dev', t.ifname,
    ...(x.metric !== undefined && !(six && x.metric === 1024) ? ['metric', String(x.metric)] : []),
    ...(x.prefsrc ? ['src', x.prefsrc] : []), ...(x.flags.includes('onlink') ? ['onlink'] : []),
    ...(x.protocol && !['boot', 'kernel'].includes(x.protocol) ? ['proto', x.protocol] : []),
  ];
  const mine = (x: RouteInfo) => x.dev === t.ifname && x.protocol !== 'kernel' && !x.dst.startsWith('fe80:');
  const six = (addrs.find((a) => a.ifname === t.ifname)?.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope !== 'link');
  return [
    ...six.map((a) => ['ip', '-6', 'addr', 'replace', `${a.local}/${a.prefixlen}`, 'dev', t.ifname, 'nodad']),
    ...v4.filter(mine).map((x) => route(x, false)),
    ...v6.filter(mine).map((x) => route(x, true)),
  ];
}

/**
 * Sets an interface's MTU and impairment. delay/jitter/loss need sch_netem: where it is missing,
 * refused before anything runs, in one line naming the module.
 * @throws NslabError `INVALID_INPUT` (bad values), `MISSING_TOOL` (no netem), `COMMAND_FAILED`
 */
export async function setLink(r: Runner, t: LiveTarget, s: LinkSettings): Promise<LinkPlan> {
  const p = planSettings(t, s);
  if (needsNetem(s.impair)) {
    const probe = await netemAvailable(r);
    const asked = [s.impair.delay && `--delay ${s.impair.delay}`, s.impair.jitter && `--jitter ${s.impair.jitter}`, s.impair.loss && `--loss ${s.impair.loss}`].filter(Boolean).join(' ');
    if (!probe.ok) throw new NslabError('MISSING_TOOL', netemMissing(asked));
  }
  await runPlan(r, p);
  const prev = intentFor(t.netns, t.ifname, t.link.ifindex);
  recordIntent({ ...intentBase(t), ...(s.clear ? { impair: {} } : Object.keys(s.impair).length ? { impair: { ...(prev?.impair ?? {}), ...s.impair } } : {}), ...(s.mtu !== undefined ? { mtu: s.mtu } : {}) });
  return p;
}

/** What `link show` reports of one interface. */
export interface LinkReport {
  target: string;
  node: string;
  ifname: string;
  /** Administratively up (the UP flag). */
  up: boolean;
  /** The kernel's operstate (UP, DOWN, LOWERLAYERDOWN, UNKNOWN). */
  operstate: string;
  mtu: number;
  master: string | null;
  qdiscs: QdiscInfo[];
  /** A root tbf's rate in bits per second, or null. */
  rate: number | null;
  /** What `nslab link` did to it, if anything. */
  intent: { down: boolean; impair: string | null; mtu: number | null };
}

/** Reads an interface's state, qdiscs and what nslab was asked to do to it. */
export async function showLink(r: Runner, t: LiveTarget): Promise<LinkReport> {
  const link = (await readLinks(r, t.netns)).find((l) => l.ifname === t.ifname) ?? t.link;
  const qdiscs = await readQdiscs(r, t.netns, t.ifname).catch(() => []);
  const intent = intentFor(t.netns, t.ifname, link.ifindex);
  return {
    target: t.label,
    node: t.node,
    ifname: t.ifname,
    up: link.flags.includes('UP'),
    operstate: link.operstate,
    mtu: link.mtu,
    master: link.master ?? null,
    qdiscs,
    rate: tbfRate(qdiscs),
    intent: { down: !!intent?.down, impair: intent?.impair ? describeImpair(intent.impair) : null, mtu: intent?.mtu ?? null },
  };
}

/** `link show` as a few lines. */
export function formatLink(x: LinkReport): string {
  const q = x.qdiscs.map((y) => `${y.kind}${y.kind === 'tbf' && y.options?.rate ? ` rate ${+((y.options.rate * 8) / 1e6).toFixed(3)}mbit` : ''}`).join(', ') || 'none';
  const by = [x.intent.down ? 'taken down' : '', x.intent.impair ?? '', x.intent.mtu !== null ? `mtu ${x.intent.mtu}` : ''].filter(Boolean).join(', ');
  return [`${x.target}: ${x.up ? 'up' : 'DOWN'} (operstate ${x.operstate}), mtu ${x.mtu}${x.master ? `, port of ${x.master}` : ''}`, `  qdisc: ${q}`, ...(by ? [`  set by nslab link: ${by}`] : [])].join('\n') + '\n';
}
