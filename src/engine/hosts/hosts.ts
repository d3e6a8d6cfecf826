// Names for nodes: the /etc/netns/NODE/{hosts,hostname} files `ip netns exec` puts over /etc.
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetState, NodeRecord } from '../netmodes/netstate.js';
import { recordCall } from '../../exec/runner.js';

/** Where `ip netns exec NAME` finds the files it bind-mounts over /etc (ip-netns(8)). */
export const ETC_NETNS = '/etc/netns';

const LOCALHOST = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'ff00::0\tip6-mcastprefix', 'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters'];

/**
 * A node's /etc/hosts, as Docker writes a container's: localhost, its own address and hostname, its
 * `--link` aliases (`IP ALIAS OTHER`), and, on user-defined networks only, every other node sharing
 * one (Docker's embedded DNS answers those names; the default bridge has no name resolution, notes 003).
 */
export function renderHosts(st: NetState, n: NodeRecord, peers: NodeRecord[] = byName(st)): string {
  const lines = [...LOCALHOST];
  const primary = n.endpoints[0];
  if (primary) lines.push(`${primary.ip}\t${[...new Set([n.hostname, n.name])].join(' ')}`);
  for (const l of n.links) {
    const ip = sharedIp(st, n, l.target);
    if (ip) lines.push(`${ip}\t${[...new Set([l.alias, l.target])].join(' ')}`);
  }
  const seen = new Set([n.name, ...n.links.map((l) => l.target)]);
  for (const ep of n.endpoints) {
    if (st.networks[ep.network]?.isDefault) continue;
    for (const peer of peers) {
      if (seen.has(peer.name)) continue;
      const pe = peer.endpoints.find((e) => e.network === ep.network);
      if (!pe) continue;
      seen.add(peer.name);
      lines.push(`${pe.ip}\t${peer.name}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Every node, by name: the order of the peers in a hosts file. */
function byName(st: NetState): NodeRecord[] {
  return Object.values(st.nodes).sort((a, b) => a.name.localeCompare(b.name));
}

/** The address of node `other` on a network it shares with `n` (first of `n`'s networks), or null. */
export function sharedIp(st: NetState, n: NodeRecord, other: string): string | null {
  const o = st.nodes[other];
  if (!o) return null;
  for (const ep of n.endpoints) {
    const oe = o.endpoints.find((e) => e.network === ep.network);
    if (oe) return oe.ip;
  }
  return null;
}

/**
 * Writes every node's hosts and hostname files where they changed. In place, not by rename: a
 * process started by `ip netns exec` has the file bind-mounted by inode, and sees the update only
 * when the inode stays (as Docker updates a running container's /etc/hosts).
 */
export async function syncHosts(st: NetState): Promise<void> {
  const resolv = renderResolv(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
  // Sorted once for all the files (sorting per file made each `node run` N² log N in the nodes).
  const peers = byName(st);
  for (const n of Object.values(st.nodes)) {
    if (n.mode.kind === 'host' || n.mode.kind === 'container') continue;
    const dir = join(ETC_NETNS, n.name);
    // Written here, not by a command; recorded as the commands that write them (NSLAB_RECORD), so a
    // lab's printed script makes the same files and its nodes resolve each other's names.
    if ((await mkdir(dir, { recursive: true })) !== undefined) recordCall({ type: 'run', cmd: { argv: ['mkdir', '-p', dir] } });
    for (const [file, text] of [['hosts', renderHosts(st, n, peers)], ['hostname', `${n.hostname}\n`], ['resolv.conf', resolv]] as const) {
      const path = join(dir, file);
      if ((await readFile(path, 'utf8').catch(() => null)) !== text) {
        await writeFile(path, text);
        recordCall({ type: 'run', cmd: { argv: ['cp', '/dev/stdin', path], input: text } });
      }
    }
  }
}

/**
 * A node's resolv.conf, from the host's: its nameservers (a loopback one, such as systemd-resolved's
 * 127.0.0.53, does not answer inside the node's netns and is left out, as Docker does), its search
 * and options, then `options timeout:1 attempts:1` (resolv.conf(5); defaults 5 s and 2), so that a
 * name nobody answers for fails in about a second, not 5-10 s (issue 20). With no nameserver left,
 * the resolver asks 127.0.0.1 in the node, refused at once.
 * @param host the text of the host's /etc/resolv.conf
 */
export function renderResolv(host: string): string {
  const lines = host.split('\n').map((l) => l.trim()).filter((l) => /^(nameserver|search|domain|options)\s/.test(l));
  const kept = lines.filter((l) => !/^nameserver\s+(127\.|::1\b)/.test(l));
  return `# nslab: the host's resolv.conf, loopback nameservers left out, quick to give up\n${kept.map((l) => `${l}\n`).join('')}options timeout:1 attempts:1\n`;
}

/** Container mode: the node's /etc/netns entry is a link to the other node's, so both see one hosts file. */
export async function shareEtc(name: string, other: string): Promise<void> {
  await mkdir(ETC_NETNS, { recursive: true });
  await symlink(other, join(ETC_NETNS, name));
  recordCall({ type: 'run', cmd: { argv: ['ln', '-s', other, join(ETC_NETNS, name)] } });
}

/** Removes a node's /etc/netns entry (directory or link). */
export async function removeEtc(name: string): Promise<void> {
  const path = join(ETC_NETNS, name);
  const st = await lstat(path).catch(() => null);
  if (st) await rm(path, { recursive: !st.isSymbolicLink(), force: true });
}
