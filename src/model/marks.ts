// Ownership marks: what nslab writes into link aliases (and OVS external-ids) so that detach and
// clean find what it made by looking at the kernel, not at a file.

/** Prefix of every mark. */
export const MARK = 'nslab:';

/** Fields of an attach mark, e.g. `nslab:attach guest=c1 if=eth1` or `nslab:attach host=br0 gw4=10.0.0.1@eth0`. */
export type MarkFields = Record<string, string>;

/** Builds a mark of `kind` (e.g. `attach`, `bridge`, `host-access`) with fields. Values carry no blanks. */
export function mark(kind: string, fields: MarkFields = {}): string {
  const kv = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
  return [`${MARK}${kind}`, ...kv].join(' ');
}

/** Reads a mark back: its kind and fields, or null when the alias is not nslab's. */
export function parseMark(alias: string | undefined): { kind: string; fields: MarkFields } | null {
  if (!alias?.startsWith(MARK)) return null;
  const [head, ...rest] = alias.split(' ');
  const fields: MarkFields = {};
  for (const kv of rest) {
    const i = kv.indexOf('=');
    if (i > 0) fields[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { kind: head!.slice(MARK.length), fields };
}
