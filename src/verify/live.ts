// What a running topology looks like now, for `nslab ui`: each veth end up or down, its addresses,
// packet and byte counters, and its OVS VLAN tag, read from the kernel in one `ip` call per netns.
import type { Runner } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';
import { vsctl } from '../kernel/ovs.js';
import type { Model } from '../model/types.js';

/** One interface of the model as the kernel reports it now. */
export interface EndState {
  /** `NETNS:IFNAME` (`-` for the current netns), as pingall's endKey. */
  key: string;
  /** Administratively up (the UP flag) and with carrier (operstate not DOWN/LOWERLAYERDOWN). */
  up: boolean;
  adminUp: boolean;
  operstate: string;
  addresses: string[];
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
  /** Its OVS port's VLAN tag, when it is one and tagged. */
  tag: number | null;
  /** False when the interface is not there. */
  present: boolean;
}

interface IpAddrStats {
  ifname: string;
  flags: string[];
  operstate: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope: string }>;
  stats64?: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } };
}

/** The veth ends of a model (both ends of every veth, and macvlans), with their keys. */
export function modelEnds(m: Model): Array<{ key: string; node: string; netns: string | null; ifname: string; vlan: number | null; link: number }> {
  const out = m.veths.flatMap((v, k) => [v.a, v.b].map((e) => ({ key: `${e.netns ?? '-'}:${e.name}`, node: e.netns ?? (e.bridge ?? m.host.name), netns: e.netns, ifname: e.name, vlan: e.vlan, link: k })));
  m.macvlans.forEach((x, j) => out.push({ key: `${x.netns ?? '-'}:${x.name}`, node: x.owner, netns: x.netns, ifname: x.name, vlan: null, link: m.veths.length + j }));
  return out;
}

/**
 * Reads every end of the model: `ip -j -s addr show` in each netns (flags, operstate, addresses,
 * 64-bit counters) and, when the model has OVS bridges, the ports' tags in one
 * `ovs-vsctl --format=json list Port`. Link-local IPv6 addresses are left out (every veth has one).
 */
export async function readLiveState(r: Runner, m: Model): Promise<EndState[]> {
  const ends = modelEnds(m);
  const byNs = new Map<string, IpAddrStats[]>();
  const spaces = [...new Set(ends.map((e) => e.netns ?? ''))];
  await mapLimit(spaces, 8, async (ns) => {
    const res = await r.run({ argv: ['ip', '-j', '-s', 'addr', 'show'], netns: ns || null }, { check: false });
    byNs.set(ns, res.exitCode === 0 ? (JSON.parse(res.stdout || '[]') as IpAddrStats[]) : []);
  });
  const tags = new Map<string, number>();
  if (m.ovsBridges.length) {
    const res = await r.run({ argv: vsctl('--format=json', '--columns=name,tag', 'list', 'Port') }, { check: false }).catch(() => null);
    if (res?.exitCode === 0) for (const row of (JSON.parse(res.stdout) as { data: unknown[][] }).data) if (typeof row[1] === 'number') tags.set(String(row[0]), row[1]);
  }
  return ends.map((e) => {
    const l = byNs.get(e.netns ?? '')?.find((x) => x.ifname === e.ifname);
    const adminUp = !!l?.flags.includes('UP');
    const operstate = l?.operstate ?? 'ABSENT';
    return {
      key: e.key,
      present: !!l,
      adminUp,
      operstate,
      up: adminUp && operstate !== 'DOWN' && operstate !== 'LOWERLAYERDOWN',
      addresses: (l?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
      rxBytes: l?.stats64?.rx.bytes ?? 0,
      txBytes: l?.stats64?.tx.bytes ?? 0,
      rxPackets: l?.stats64?.rx.packets ?? 0,
      txPackets: l?.stats64?.tx.packets ?? 0,
      tag: e.netns === null ? (tags.get(e.ifname) ?? e.vlan) : null,
    };
  });
}
