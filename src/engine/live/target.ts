// Which interface a live command means: `NODE:IF`, `host:IF`, a plain host interface (veth end,
// bridge, OVS port), `BRIDGE:PORT`, or a lab's `NODE:IF` (`lab 07 c1:eth1`), checked against the kernel.
import type { Runner } from '../../exec/runner.js';
import { invalid } from '../../errors.js';
import { readLinks, type LinkInfo } from '../../kernel/link.js';
import { listNetns } from '../../kernel/netns.js';
import { vsctl } from '../../kernel/ovs.js';
import { ifnameProblem } from '../../model/names.js';
import { NAME_RE } from '../../model/schema.js';

/** An interface found in the kernel. */
export interface LiveTarget {
  /** How to name it back to the user: `g1:eth1`, `host:g1-eth1`. */
  label: string;
  /** The node (`host` for the current namespace). */
  node: string;
  netns: string | null;
  ifname: string;
  link: LinkInfo;
}

/**
 * Resolves a target written on the command line to an interface that exists now.
 * - `NODE:IF`: IF in the named netns NODE (`host:IF`: in the current namespace);
 * - `BRIDGE:PORT`: PORT, a port of the Linux or Open vSwitch bridge BRIDGE (current namespace);
 * - `IF`: an interface of the current namespace (a host-side veth end, a bridge, an OVS port).
 * @param spec the target text
 * @param lab with a lab: its node names (labNetns); NODE must be one of them or `host`
 * @throws NslabError `INVALID_INPUT` (exit 2) naming an unknown node, bridge or interface and what there is
 */
export async function resolveTarget(r: Runner, spec: string, lab?: { id: string; nodes: string[] }): Promise<LiveTarget> {
  const m = /^([^:\s]+):([^:\s]+)$/.exec(spec) ?? /^()([^:\s]+)$/.exec(spec);
  if (!m) throw invalid(`target ${JSON.stringify(spec)}: expected NODE:IF (e.g. h1:eth0), host:IF, BRIDGE:PORT or a host interface name`);
  const head = m[1]!;
  const ifname = m[2]!;
  const p = ifnameProblem(ifname);
  if (p) throw invalid(`interface name ${JSON.stringify(ifname)} ${p}`);
  if (head && !NAME_RE.test(head)) throw invalid(`node ${JSON.stringify(head)} in ${spec}: expected a node (netns) name, host or a bridge`);
  if (lab && head && head !== 'host' && !lab.nodes.includes(head)) throw invalid(`node ${JSON.stringify(head)}: lab ${lab.id} has no such node: expected one of host, ${lab.nodes.join(', ')}`);
  let netns: string | null = null;
  let bridge: string | null = null;
  if (head && head !== 'host') {
    const here = await listNetns(r);
    if (here.includes(head)) netns = head;
    else bridge = head;
  }
  const links = await readLinks(r, netns).catch(() => null);
  if (!links) throw invalid(`node ${JSON.stringify(head)}: its netns cannot be read`);
  if (bridge !== null) {
    const br = links.find((l) => l.ifname === bridge);
    const ovsBr = br ? null : await ovsBridgeOf(r, ifname);
    if (!br && ovsBr !== bridge) {
      const here = await listNetns(r);
      throw invalid(`unknown node ${JSON.stringify(bridge)} in ${spec}: expected host, a netns here (${here.join(', ') || 'none'}) or a bridge`);
    }
  }
  const link = links.find((l) => l.ifname === ifname);
  const where = head || 'host';
  if (!link) {
    const names = links.map((l) => l.ifname).filter((n) => n !== 'lo' || netns !== null);
    throw invalid(`no interface ${JSON.stringify(ifname)} in ${where}: expected one of ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''}`);
  }
  if (bridge !== null && link.master !== bridge && (await ovsBridgeOf(r, ifname)) !== bridge) throw invalid(`${ifname} is not a port of bridge ${bridge}`);
  return { label: `${netns ?? (bridge ?? 'host')}:${ifname}`, node: netns ?? 'host', netns, ifname, link };
}

/** The OVS bridge that has PORT (`ovs-vsctl port-to-br`), or null (no such port, or no OVS here). */
export async function ovsBridgeOf(r: Runner, port: string): Promise<string | null> {
  const res = await r.run({ argv: vsctl('port-to-br', port) }, { check: false }).catch(() => null);
  return res && res.exitCode === 0 ? res.stdout.trim() || null : null;
}
