// Topology generators for scale tests (`nslab gen star|chain|tree`), as Mininet's --topo and
// containerlab's `generate` make theirs: a topology file's text, pure.
import { z } from 'zod';
import { invalid } from '../errors.js';

/**
 * Ports a Linux bridge holds: BR_MAX_PORTS is 1024 (net/bridge/br_private.h) and port number 0 is
 * reserved (br_if.c find_portno), so 1023. Adding one more fails with "Exchange full" (EXFULL).
 */
export const BRIDGE_MAX_PORTS = 1023;

/** The generators' shapes. */
export const GEN_KINDS = ['star', 'chain', 'tree'] as const;
export type GenKind = (typeof GEN_KINDS)[number];

/** Most nodes a generated topology has: the addressing plan's room (250 a /24 in one /16, star and tree). */
export const GEN_MAX_NODES = 60_000;

/** Options of {@link genTopology}, as the CLI gives them. */
export const GenOptions = z
  .object({
    kind: z.enum(GEN_KINDS),
    nodes: z.number().int().min(1).max(GEN_MAX_NODES),
    /** tree: nodes per leaf bridge (each leaf also holds its uplink to the core). */
    fanout: z.number().int().min(1).max(BRIDGE_MAX_PORTS - 1).optional(),
    /** The topology's name (default KIND-N). */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  })
  .strict();
export type GenOptions = z.infer<typeof GenOptions>;

/** Default nodes per leaf of a tree: 1000, as the scale tests use (a leaf holds at most 1022 and its uplink). */
export const DEFAULT_FANOUT = 1000;

/** Node i's (0-based) address in a star or tree: 10.0.0.1 upwards, 250 to a /24, all in 10.0.0.0/16. */
function lanAddress(i: number): string {
  return `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

/** Link k's (0-based) /30 in a chain, from 10.0.0.0: its two ends are .1 and .2 of it. */
function p2p(k: number, end: 1 | 2): string {
  const v = 10 * 2 ** 24 + k * 4 + end;
  return `${Math.floor(v / 2 ** 24) % 256}.${Math.floor(v / 2 ** 16) % 256}.${Math.floor(v / 2 ** 8) % 256}.${v % 256}/30`;
}

/**
 * A topology file (YAML, one line per node) of one of three shapes, nodes named n1..nN:
 * - `star`: every node's eth0 on one bridge `br0` (10.0.255.254/16), addresses 10.0.0.1/16 upwards;
 *   at most {@link BRIDGE_MAX_PORTS} nodes (one bridge's ports).
 * - `tree`: one L2 segment for any N: a core bridge `core` (10.0.255.254/16) and leaf bridges
 *   `leaf1..` of `fanout` nodes each (default 1000), each leaf joined to the core by a veth; addresses
 *   as the star's, so every node reaches every other through at most three bridges.
 * - `chain`: n1 - n2 - ... - nN, node i's eth1 joined to node i+1's eth0, each link a /30 of its own
 *   from 10.0.0.0 (no routes: each node reaches its neighbours, which is what pingall then expects).
 * @param o kind, nodes (1 to 60 000), fanout (tree; 1 to 1022), name (default KIND-N)
 * @returns the file's text
 * @throws NslabError `INVALID_INPUT`: a star of more nodes than a bridge holds, or a tree whose leaves
 *   would be more than the core bridge holds
 */
export function genTopology(o: GenOptions): string {
  const { kind, nodes: n } = o;
  const name = o.name ?? `${kind}-${n}`;
  const out = [`# nslab gen ${kind} --nodes ${n}${kind === 'tree' ? ` --fanout ${o.fanout ?? DEFAULT_FANOUT}` : ''}`, `name: ${name}`];
  if (kind === 'star') {
    if (n > BRIDGE_MAX_PORTS) throw invalid(`--nodes ${n}: a star is one Linux bridge, which holds at most ${BRIDGE_MAX_PORTS} ports: expected at most ${BRIDGE_MAX_PORTS}, or \`nslab gen tree\``);
    out.push('bridges:', '  br0: { addresses: [10.0.255.254/16] }', 'nodes:');
    for (let i = 0; i < n; i++) out.push(`  n${i + 1}: { interfaces: { eth0: { addresses: [${lanAddress(i)}/16] } } }`);
    out.push('links:');
    for (let i = 0; i < n; i++) out.push(`  - [n${i + 1}:eth0, br0]`);
  } else if (kind === 'tree') {
    const f = o.fanout ?? DEFAULT_FANOUT;
    const leaves = Math.ceil(n / f);
    if (leaves > BRIDGE_MAX_PORTS) throw invalid(`--fanout ${f}: ${n} nodes need ${leaves} leaves, more than the ${BRIDGE_MAX_PORTS} ports of the core bridge: expected --fanout of at least ${Math.ceil(n / BRIDGE_MAX_PORTS)}`);
    out.push('bridges:', '  core: { addresses: [10.0.255.254/16] }');
    for (let l = 0; l < leaves; l++) out.push(`  leaf${l + 1}: {}`);
    out.push('nodes:');
    for (let i = 0; i < n; i++) out.push(`  n${i + 1}: { interfaces: { eth0: { addresses: [${lanAddress(i)}/16] } } }`);
    out.push('links:');
    for (let l = 0; l < leaves; l++) out.push(`  - [leaf${l + 1}, core]`);
    for (let i = 0; i < n; i++) out.push(`  - [n${i + 1}:eth0, leaf${Math.floor(i / f) + 1}]`);
  } else {
    out.push('nodes:');
    for (let i = 0; i < n; i++) {
      const ifs = [...(i > 0 ? [`eth0: { addresses: [${p2p(i - 1, 2)}] }`] : []), ...(i < n - 1 ? [`eth1: { addresses: [${p2p(i, 1)}] }`] : [])];
      out.push(`  n${i + 1}: { interfaces: { ${ifs.join(', ')} } }`);
    }
    out.push(n > 1 ? 'links:' : 'links: []');
    for (let i = 0; i < n - 1; i++) out.push(`  - [n${i + 1}:eth1, n${i + 2}:eth0]`);
  }
  return out.join('\n') + '\n';
}
