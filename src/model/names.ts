// The one place interface and object names are derived: deterministic, at most 15 bytes (IFNAMSIZ).
import { createHash } from 'node:crypto';

/** Linux's IFNAMSIZ is 16 including the NUL: an interface name has at most 15 bytes (netdevice(7)). */
export const IFNAMSIZ_MAX = 15;

/** Why `name` is not a valid interface name, or null when it is (rules of the kernel's dev_valid_name()). */
export function ifnameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'is empty';
  if (bytes > IFNAMSIZ_MAX) return `is ${bytes} bytes long; an interface name has at most ${IFNAMSIZ_MAX} (IFNAMSIZ)`;
  if (name === '.' || name === '..') return 'is reserved';
  if (/[\s/:"#\\]/.test(name)) return 'contains a blank, "/", ":", "#", quote or backslash';
  return null;
}

/**
 * Why `name` is not a name nslab gives a bridge it makes, or null when it is: a valid interface name
 * of letters, digits, "_", "." and "-" starting with a letter or digit. The kernel would take
 * `br;ls`, but a topology file's endpoints (`BRIDGE:PORT`) and every printed script could not carry
 * it, so `attach --to` and topology files refuse it alike (issue 20).
 */
export function bridgeNameProblem(name: string): string | null {
  const p = ifnameProblem(name);
  if (p) return p;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) return 'has a character other than letters, digits, "_", "." and "-" (or does not start with a letter or digit)';
  return null;
}

/** A short stable hash of the parts (hex), for names that would be too long or collide. */
export function shortHash(parts: string[], len = 8): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, len);
}

/**
 * The name of the bridge-side end of a node's veth: `NODE-IFNAME` when that fits in 15 bytes and is
 * a valid name, else `nl` + a 10-hex hash of (topology, node, ifname). `taken` holds the names
 * already used in the same netns; a collision also falls back to the hash.
 */
export function bridgePortName(topology: string, node: string, ifname: string, taken: { has(name: string): boolean }): string {
  const readable = `${node}-${ifname}`;
  if (ifnameProblem(readable) === null && !taken.has(readable)) return readable;
  return `nl${shortHash([topology, node, ifname], 10)}`;
}

/** The ownership mark nslab puts on what it creates for a topology (link alias, lo alias of a netns). */
export function ownerMark(topology: string): string {
  return `nslab:${topology}`;
}
