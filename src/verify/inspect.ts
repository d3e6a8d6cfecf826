// inspect: everything nslab owns on this machine now, found by its marks in the kernel (no state file).
import type { Runner } from '../exec/runner.js';
import { mapLimit } from '../engine/apply.js';
import { readLinks, type LinkInfo } from '../kernel/link.js';
import { listNetns } from '../kernel/netns.js';

/** The prefix of every ownership mark (`nslab:TOPOLOGY`, see ownerMark in model/names.ts). */
const MARK_PREFIX = 'nslab:';

/** One interface as inspect lists it. */
export interface OwnedLink {
  ifname: string;
  /** `info_kind` (veth, bridge, …) or `device`. */
  kind: string;
  /** The bridge it is a port of. */
  master: string | null;
  up: boolean;
}

/** What one topology owns: its netns (with the interfaces inside) and its marked links in the current netns. */
export interface OwnedTopology {
  name: string;
  netns: Array<{ name: string; links: OwnedLink[] }>;
  links: OwnedLink[];
}

/** What {@link inspect} found. */
export interface InspectReport {
  topologies: OwnedTopology[];
}

function owned(l: LinkInfo): OwnedLink {
  return { ifname: l.ifname, kind: l.linkinfo?.info_kind ?? 'device', master: l.master ?? null, up: l.flags.includes('UP') };
}

/**
 * Finds what nslab owns by discovery: links whose alias starts with `nslab:` in the current netns,
 * and named netns whose `lo` alias does (with every interface inside them), grouped by the
 * topology named after `nslab:`. Reads only.
 * @param r the runner
 * @param concurrency how many netns are read at once
 * @returns topologies sorted by name, their netns and links in kernel order
 */
export async function inspect(r: Runner, concurrency = 8): Promise<InspectReport> {
  const byName = new Map<string, OwnedTopology>();
  const topo = (name: string) => {
    const t = byName.get(name) ?? { name, netns: [], links: [] };
    byName.set(name, t);
    return t;
  };
  for (const l of await readLinks(r, null)) {
    if (l.ifalias?.startsWith(MARK_PREFIX)) topo(l.ifalias.slice(MARK_PREFIX.length)).links.push(owned(l));
  }
  const names = await listNetns(r);
  // A netns can vanish between the listing and the reading: it then owns nothing any more.
  const inside = await mapLimit(names, concurrency, (ns) => readLinks(r, ns).catch(() => [] as LinkInfo[]));
  names.forEach((ns, i) => {
    const links = inside[i]!;
    const mark = links.find((l) => l.ifname === 'lo')?.ifalias;
    if (mark?.startsWith(MARK_PREFIX)) topo(mark.slice(MARK_PREFIX.length)).netns.push({ name: ns, links: links.filter((l) => l.ifname !== 'lo').map(owned) });
  });
  return { topologies: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

/**
 * The report as a table (cli-table3): one row per netns and per marked link, grouped by topology.
 * @returns the text to print; a single line when nslab owns nothing here
 */
export async function formatInspect(rep: InspectReport): Promise<string> {
  if (rep.topologies.length === 0) return 'nslab owns nothing here (no link or netns carries an nslab: mark)\n';
  const { default: Table } = await import('cli-table3');
  const t = new Table({ head: ['topology', 'object', 'interfaces'], style: { head: [], border: [] } });
  const desc = (l: OwnedLink) => `${l.ifname} (${[l.kind, ...(l.master ? [`port of ${l.master}`] : []), ...(l.up ? [] : ['down'])].join(', ')})`;
  for (const topo of rep.topologies) {
    for (const n of topo.netns) t.push([topo.name, `netns ${n.name}`, n.links.map(desc).join('\n') || '(only lo)']);
    if (topo.links.length) t.push([topo.name, 'links in this netns', topo.links.map(desc).join('\n')]);
  }
  const summary = rep.topologies.map((x) => `${x.name}: ${x.netns.length} netns, ${x.links.length} links`).join('; ');
  return `${t.toString()}\n${summary}\n`;
}
