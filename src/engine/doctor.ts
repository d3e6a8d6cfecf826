// doctor: which tools and kernel features this machine has, each with what to install when missing.
import type { Runner } from '../exec/runner.js';
import { parseBatchErrors } from '../exec/batch.js';
import { existsSync } from 'node:fs';
import { ovsKernelDatapath } from '../kernel/ovs.js';
import { netemAvailable } from '../kernel/tc.js';

const NETFILTER_PROBE = [
  '*nat',
  '-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment nslab-probe -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.0.0.1:2',
  '-A POSTROUTING -s 10.0.0.0/8 ! -o lo -j MASQUERADE',
  'COMMIT',
  '*filter',
  '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  'COMMIT',
  '',
].join('\n');

/** One line of the doctor's report. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when not ok. */
  fix?: string;
  /** Needed by the core (up/down/plan) rather than by one feature. */
  required: boolean;
}

const TOOLS: Array<{ name: string; argv: string[]; pkg: string; required: boolean; parse?: (out: string) => string }> = [
  { name: 'iproute2 (ip)', argv: ['ip', '-V'], pkg: 'iproute2', required: true },
  { name: 'nsenter / unshare', argv: ['nsenter', '--version'], pkg: 'util-linux', required: true },
  { name: 'sysctl', argv: ['sysctl', '--version'], pkg: 'procps', required: true },
  { name: 'bridge-utils (brctl)', argv: ['brctl', '--version'], pkg: 'bridge-utils', required: false },
  { name: 'iptables', argv: ['iptables', '--version'], pkg: 'iptables', required: false },
  { name: 'ping', argv: ['ping', '-V'], pkg: 'iputils-ping', required: false },
  { name: 'fping (fast pingall)', argv: ['fping', '-v'], pkg: 'fping', required: false },
  { name: 'graphviz (graph --format svg)', argv: ['dot', '-V'], pkg: 'graphviz', required: false },
  { name: 'Open vSwitch (ovs-vsctl)', argv: ['ovs-vsctl', '--version'], pkg: 'openvswitch-switch', required: false },
  { name: 'dnsmasq', argv: ['dnsmasq', '--version'], pkg: 'dnsmasq-base', required: false },
  { name: 'busybox (udhcpc, httpd; faster attach -f and up)', argv: ['busybox'], pkg: 'busybox-static', required: false },
  { name: 'docker', argv: ['docker', '--version'], pkg: 'docker.io', required: false },
  { name: 'tc', argv: ['tc', '-V'], pkg: 'iproute2', required: false },
  { name: 'tcpdump (capture)', argv: ['tcpdump', '--version'], pkg: 'tcpdump', required: false },
];

/** Link types probed in a throwaway netns, with the `ip -batch` line that makes one. */
const LINK_PROBES: Array<[string, string]> = [
  ['veth', 'link add nlp-veth type veth peer name nlp-veth2'],
  ['bridge', 'link add nlp-br type bridge'],
  ['macvlan (on a veth parent)', 'link add nlp-mv link nlp-veth type macvlan mode bridge'],
  ['802.1q vlan', 'link add nlp-vlan link nlp-veth type vlan id 10'],
  ['vxlan', 'link add nlp-vx type vxlan id 42 dstport 4789'],
  ['tap', 'tuntap add dev nlp-tap mode tap'],
  ['dummy', 'link add nlp-dummy type dummy'],
  ['ipvlan', 'link add nlp-ipvl link nlp-veth type ipvlan mode l2'],
];

/**
 * Checks tools (by running each with its version flag) and kernel features (by creating each link
 * type in a throwaway `unshare --net` netns, so the host is untouched).
 * @returns one {@link Check} per tool and feature
 */
export async function doctor(r: Runner): Promise<Check[]> {
  const out: Check[] = [];
  out.push({ name: 'root', ok: process.geteuid?.() === 0, detail: process.geteuid?.() === 0 ? 'running as root' : 'not root', fix: 'run nslab as root (it needs CAP_NET_ADMIN)', required: true });
  await Promise.all(
    TOOLS.map(async (t) => {
      const res = await r.run({ argv: t.argv }, { check: false }).catch(() => null);
      const text = res ? `${res.stdout}${res.stderr}`.split('\n').find((l) => l.trim()) ?? '' : '';
      const ok = res !== null && (res.exitCode === 0 || (t.argv[0] === 'busybox' && /BusyBox/.test(text)));
      let detail = ok ? text.trim().slice(0, 80) : 'not found';
      if (ok && t.argv[0] === 'iptables') detail += /nf_tables/.test(text) ? ' (nf_tables backend)' : /legacy/.test(text) ? ' (legacy backend)' : '';
      out.push({ name: t.name, ok, detail, fix: `apt-get install ${t.pkg}`, required: t.required });
    }),
  );
  out.sort((a, b) => Number(b.required) - Number(a.required));

  const lines = LINK_PROBES.map(([, l]) => l);
  const probe = await r.run({ argv: ['unshare', '--net', '--', 'ip', '-force', '-batch', '-'], input: lines.join('\n') + '\n' }, { check: false }).catch(() => null);
  const failed = probe ? parseBatchErrors(probe.stderr) : [];
  LINK_PROBES.forEach(([name], i) => {
    const f = failed.find((x) => x.index === i);
    const ok = probe !== null && !f;
    out.push({ name: `kernel: ${name}`, ok, detail: ok ? 'works' : (f?.message ?? 'could not probe (unshare failed)'), fix: 'a kernel with this link type (module or built in)', required: name === 'veth' || name === 'bridge' });
  });
  // Network modes: every match and target of their rules, in one throwaway netns (a missing module
  // shows as the rule iptables-restore refuses).
  const nf = await r
    .run({ argv: ['unshare', '--net', '--', 'iptables-restore', '-w', '--noflush'], input: NETFILTER_PROBE }, { check: false })
    .catch(() => null);
  const nfOk = nf !== null && nf.exitCode === 0;
  out.push({ name: 'kernel: netfilter for network modes', ok: nfOk, detail: nfOk ? 'nat, MASQUERADE, DNAT, conntrack, addrtype, comment work' : (nf?.stderr.trim().split('\n')[0] ?? 'could not probe (iptables-restore or unshare missing)'), fix: 'apt-get install iptables, and a kernel with nf_nat, nf_conntrack and the xt_ matches', required: false });
  const brnf = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables');
  out.push({ name: 'kernel: br_netfilter', ok: brnf, detail: brnf ? 'bridged frames can meet iptables (--icc=false, hairpin to a neighbour)' : 'absent: --icc=false and hairpin between nodes of one bridge do not work', fix: 'modprobe br_netfilter', required: false });
  // link set --delay/--jitter/--loss and impair: with them need netem; a rate (tbf) does not.
  const netem = await netemAvailable(r);
  out.push({ name: 'kernel: sch_netem (link delay, jitter, loss)', ok: netem.ok, detail: netem.detail, fix: 'a kernel with sch_netem (modprobe sch_netem); rates (tc tbf) work without it', required: false });
  const ovs = ovsKernelDatapath();
  out.push({ name: 'kernel: Open vSwitch datapath', ok: ovs.available, detail: ovs.detail, fix: 'nslab uses datapath_type=netdev (userspace) by itself', required: false });
  return out;
}
