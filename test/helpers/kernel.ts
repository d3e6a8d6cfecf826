// Test helpers that read the kernel: a normalised snapshot of every netns, pings, a sandbox guard.
import { spawnSync } from 'node:child_process';
import { ExecRunner } from '../../src/exec/runner.js';
import { inSandbox } from '../../src/exec/sandbox.js';
import { readAddrs } from '../../src/kernel/addr.js';
import { readLinks } from '../../src/kernel/link.js';
import { listNetns } from '../../src/kernel/netns.js';
import { readRoutes } from '../../src/kernel/route.js';

export const runner = new ExecRunner();

/** Throws unless the tests run inside `nslab sandbox` (never touch the host's network). */
export async function assertSandbox(): Promise<void> {
  if (!(await inSandbox())) throw new Error('integration tests must run inside the sandbox: npm run test:integration');
}

/** What one netns holds, without ifindexes and counters, for before/after comparison. */
export async function nsState(netns: string | null) {
  const links = (await readLinks(runner, netns)).map((l) => ({
    name: l.ifname,
    kind: l.linkinfo?.info_kind ?? null,
    master: l.master ?? null,
    mtu: l.mtu,
    up: l.flags.includes('UP'),
    alias: l.ifalias ?? null,
  }));
  // IPv6 link-local addresses derive from random MACs: not part of what a topology configures.
  const addrs = (await readAddrs(runner, netns))
    .flatMap((l) => l.addr_info.filter((a) => a.scope !== 'link' || a.family !== 'inet6').map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`))
    .sort();
  const routes = [...(await readRoutes(runner, netns, 4)), ...(await readRoutes(runner, netns, 6))].map((r) => `${r.type ?? ''} ${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`.trim()).sort();
  // Permanent neighbour entries: pingall seeds them for its probes and must leave none behind.
  const neigh = (JSON.parse((await runner.run({ argv: ['ip', '-j', 'neigh', 'show', 'nud', 'permanent'], netns })).stdout || '[]') as Array<{ dst: string; dev?: string; lladdr?: string }>)
    .map((e) => `${e.dev ?? ''} ${e.dst} ${e.lladdr ?? ''}`)
    .sort();
  return { links, addrs, routes, neigh };
}

/** The sandbox's whole state: its netns list and the state of the current netns and each named one. */
export async function snapshot() {
  const names = await listNetns(runner);
  const per: Record<string, unknown> = { '(current)': await nsState(null) };
  for (const n of names) per[n] = await nsState(n);
  return { netns: names, per };
}

/**
 * Waits (up to `ms`) until no link of the current netns matches `gone`: deleting a netns removes the
 * veth ends it held a moment later (the kernel's cleanup runs asynchronously), so a snapshot taken
 * at once may still list their peers here.
 */
export async function waitLinksGone(gone: (name: string) => boolean, ms = 5000): Promise<void> {
  const { readLinks } = await import('../../src/kernel/link.js');
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 20))) {
    if (!(await readLinks(runner, null)).some((l) => gone(l.ifname))) return;
  }
}

/** One ping from a netns; true when a reply came back. */
export async function ping(netns: string, dst: string, count = 1): Promise<boolean> {
  const res = await runner.run({ argv: ['ping', '-c', String(count), '-W', '1', '-i', '0.2', dst], netns }, { check: false });
  return res.exitCode === 0;
}

/** The output of a ping that is expected to fail (its error text). */
export async function pingError(netns: string, dst: string): Promise<string> {
  const res = await runner.run({ argv: ['ping', '-c', '1', '-W', '1', dst], netns }, { check: false });
  return `${res.stdout}${res.stderr}`;
}

/** `iptables-save` without its date lines and counters (empty when no table exists yet under nf_tables). */
export async function iptablesSave(): Promise<string> {
  const { normalizeSave } = await import('../../src/kernel/iptables.js');
  return normalizeSave((await runner.run({ argv: ['iptables-save'] })).stdout);
}

/**
 * Everything network modes may touch: the sandbox snapshot, iptables, the sysctls nslab sets, the
 * /etc/netns entries and nslab's network state file.
 */
export async function netSnapshot() {
  const { readdir } = await import('node:fs/promises');
  const sysctls: Record<string, string> = {};
  for (const k of ['net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.bridge.bridge-nf-call-iptables']) {
    sysctls[k] = (await runner.run({ argv: ['sysctl', '-n', k] }, { check: false })).stdout.trim();
  }
  const stateDir = process.env.NSLAB_STATE_DIR || '/run/nslab';
  return {
    ...(await snapshot()),
    iptables: await iptablesSave(),
    sysctls,
    etcNetns: (await readdir('/etc/netns').catch(() => [])).sort(),
    state: (await readdir(`${stateDir}/net`).catch(() => [])).filter((f) => f !== 'nodes' && f !== 'lock').sort(),
  };
}

/**
 * IPv4 forwarding of a netns made now and left as made: the kernel copies it from the host's initial
 * netns (net.core.devconf_inherit_init_net = 0), so it is 1 on a machine that forwards (a Docker host)
 * and 0 on a fresh Debian. Tests that read a node's forwarding compare with this, not with a constant.
 */
export function inheritedForwarding(): string {
  const res = spawnSync('unshare', ['--net', 'cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`unshare --net cat /proc/sys/net/ipv4/ip_forward: ${res.stderr}`);
  return res.stdout.trim();
}
