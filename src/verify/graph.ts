// The topology as a picture: Graphviz DOT and Mermaid text (pure), and SVG through graphviz's `dot`.
import type { Runner } from '../exec/runner.js';
import { invalid, NslabError } from '../errors.js';
import { describeRoute } from '../kernel/route.js';
import type { EndModel, Model, NodeModel } from '../model/types.js';

/** Output formats of {@link renderGraph}. */
export const GRAPH_FORMATS = ['dot', 'mermaid', 'svg'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** One vertex: a node (netns), the host, or a bridge, with the lines of its label. */
interface Vertex {
  id: string;
  kind: 'node' | 'bridge';
  lines: string[];
}

/** One veth as an edge: each end's vertex and label lines (interface name, addresses). */
interface Edge {
  from: string;
  to: string;
  fromLines: string[];
  toLines: string[];
}

function nodeLines(n: NodeModel): string[] {
  const fwd = n.sysctls.some(([k, v]) => /^net\.ipv[46]\.(ip_forward|conf\.all\.forwarding)$/.test(k) && v.trim() === '1');
  // NAT on the node that does it (read from its nat table): the rule, and where it rewrites to.
  return [n.name + (fwd ? ' (forwarding)' : ''), ...n.routes.map(describeRoute), ...(n.nat ?? []).map((x) => `NAT ${x}`)];
}

/**
 * Vertices and edges of a model, in file order; the host appears only when it has interfaces. OVS
 * bridges are bridges labelled `ovs NAME`, their ports' VLAN tags on the edges; a macvlan is an edge
 * from its node to the host, labelled with its parent.
 */
function shape(m: Model): { vertices: Vertex[]; edges: Edge[] } {
  const vid = (e: EndModel) => (e.bridge ? `bridge:${e.bridge}` : `node:${e.owner}`);
  const hostUsed = m.macvlans.length > 0 || m.veths.some((v) => [v.a, v.b].some((e) => e.netns === null && e.bridge === null));
  const vertices: Vertex[] = [
    ...(hostUsed || m.host.routes.length || m.host.nat?.length ? [{ id: `node:${m.host.name}`, kind: 'node' as const, lines: nodeLines(m.host) }] : []),
    ...m.nodes.map((n) => ({ id: `node:${n.name}`, kind: 'node' as const, lines: nodeLines(n) })),
    ...m.bridges.map((b) => ({ id: `bridge:${b.name}`, kind: 'bridge' as const, lines: [`bridge ${b.name}`, ...b.addresses] })),
    ...m.ovsBridges.map((b) => ({
      id: `bridge:${b.name}`,
      kind: 'bridge' as const,
      lines: [`ovs ${b.name}`, ...b.addresses, ...b.internal.map((p) => [p.name, ...(p.vlan !== null ? [`tag ${p.vlan}`] : []), ...p.addresses].join(' '))],
    })),
  ];
  const endLines = (e: EndModel) => [e.vlan !== null ? `${e.name} tag ${e.vlan}` : e.name, ...e.addresses];
  const edges = m.veths.map((v) => ({ from: vid(v.a), to: vid(v.b), fromLines: endLines(v.a), toLines: endLines(v.b) }));
  for (const x of m.macvlans) edges.push({ from: `node:${x.owner}`, to: `node:${m.host.name}`, fromLines: [`${x.name} (macvlan ${x.mode})`, ...x.addresses], toLines: [`on ${x.parent}`] });
  return { vertices, edges };
}

/** A DOT double-quoted string (backslash and quote escaped; lines joined with `\n`). */
function dq(lines: string[]): string {
  return `"${lines.map((l) => l.replace(/\\/g, '\\\\').replace(/"/g, '\\"')).join('\\n')}"`;
}

/**
 * The topology as a Graphviz DOT graph: nodes as boxes (with their routes), bridges as ellipses
 * (with their addresses), each veth as an edge labelled at both ends with interface and addresses.
 * @param m the resolved model
 * @param opts `ids`: give each vertex and edge an `id` that graphviz carries into its SVG (`link-K`
 *   for the K-th veth in model order, then macvlans; a vertex's own name), for `nslab ui` to colour
 * @returns DOT text, parseable by `dot`
 */
export function toDot(m: Model, opts: { ids?: boolean } = {}): string {
  const { vertices, edges } = shape(m);
  const out = [
    `graph ${dq([m.name])} {`,
    `  graph [label=${dq([`topology ${m.name}`])}, labelloc=t, fontname="Helvetica", nodesep=0.6, ranksep=1.2];`,
    '  node [fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9, labeldistance=2.5];',
    // For nslab ui: room between the edges of a bridge with many ports, so their end labels do not meet.
    ...(opts.ids ? ['  graph [nodesep=1.4, ranksep=2];', '  edge [penwidth=2, labeldistance=4, labelangle=0];'] : []),
  ];
  for (const v of vertices) {
    const style = v.kind === 'bridge' ? 'shape=ellipse, style=filled, fillcolor="#dde8f8"' : 'shape=box, style=rounded';
    out.push(`  ${dq([v.id])} [label=${dq(v.lines)}, ${style}${opts.ids ? `, id=${dq([v.id])}` : ''}];`);
  }
  edges.forEach((e, k) => out.push(`  ${dq([e.from])} -- ${dq([e.to])} [taillabel=${dq(e.fromLines)}, headlabel=${dq(e.toLines)}${opts.ids ? `, id="link-${k}"` : ''}];`));
  out.push('}');
  return out.join('\n') + '\n';
}

/** Mermaid label text: quotes as entities, lines joined with `<br/>`. */
function mq(lines: string[]): string {
  return `"${lines.map((l) => l.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;')).join('<br/>')}"`;
}

/**
 * The topology as a Mermaid flowchart (renders on code hosts, so lab READMEs can show it):
 * nodes as rectangles, bridges as stadiums, each veth as an edge labelled `IF ADDR — IF ADDR`.
 * @param m the resolved model
 * @returns Mermaid text
 */
export function toMermaid(m: Model): string {
  const { vertices, edges } = shape(m);
  // Mermaid ids are plain words: number the vertices, keep the names in the labels.
  const ids = new Map(vertices.map((v, i) => [v.id, `${v.kind === 'bridge' ? 'b' : 'n'}${i}`]));
  const out = ['flowchart LR'];
  for (const v of vertices) {
    const id = ids.get(v.id)!;
    out.push(v.kind === 'bridge' ? `  ${id}([${mq(v.lines)}])` : `  ${id}[${mq(v.lines)}]`);
  }
  for (const e of edges) out.push(`  ${ids.get(e.from)} ---|${mq([`${e.fromLines.join(' ')} — ${e.toLines.join(' ')}`])}| ${ids.get(e.to)}`);
  return out.join('\n') + '\n';
}

/**
 * Renders a topology in a format. `svg` runs graphviz (`dot -Tsvg`, the DOT on stdin) through the runner.
 * @param r the runner (used for `svg` only)
 * @param m the resolved model
 * @param format `dot`, `mermaid` or `svg`
 * @returns the text to print
 * @throws NslabError `INVALID_INPUT` for an unknown format; `MISSING_TOOL` when graphviz is not installed
 */
export async function renderGraph(r: Runner, m: Model, format: string): Promise<string> {
  switch (format) {
    case 'dot':
      return toDot(m);
    case 'mermaid':
      return toMermaid(m);
    case 'svg':
      try {
        return (await r.run({ argv: ['dot', '-Tsvg'], input: toDot(m) })).stdout;
      } catch (err) {
        if (err instanceof NslabError && err.code === 'MISSING_TOOL') {
          throw new NslabError('MISSING_TOOL', 'graph --format svg needs graphviz, which is not installed: apt-get install graphviz (or use --format dot or mermaid)', { cause: err });
        }
        throw err;
      }
    default:
      throw invalid(`--format ${JSON.stringify(format)}: expected one of ${GRAPH_FORMATS.join(', ')}`);
  }
}
