// What of a plan's objects exists before it runs: the journal's proof that an unmarked object of the
// same name found after a crash was not nslab's (clean leaves those alone).
import { readdirSync } from 'node:fs';
import { NETNS_DIR, type Runner } from '../../exec/runner.js';
import type { Step } from '../../kernel/step.js';
import { linkKey, netnsKey } from '../../kernel/step.js';
import { tablesNow } from './recover.js';

/**
 * The `creates` keys (and, when they touch iptables here, `iptables:*` and the tables that exist) of `steps` whose object exists now: netns (a read of /run/netns, no process) and
 * links of the current netns (one `ip -j link show`, only when the steps create any, unless `hostLinks`
 * gives their names as read just before; `tables`, {@link tablesNow}'s keys likewise). Links created in
 * other netns are not read: they go with their netns, or are made from here (a veth's peer).
 * @returns keys as kernel/step.ts makes them (`netns:NAME`, `link:-:NAME`)
 */
export async function existingObjects(r: Runner, steps: Step[], o: { hostLinks?: string[]; tables?: string[] } = {}): Promise<string[]> {
  const creates = new Set(steps.flatMap((s) => (s.creates ? [s.creates] : [])));
  const out: string[] = [];
  // iptables: the first rule in a table creates it (nf_tables), and it stays, empty, when the rule
  // goes; which tables were there lets clean drop the others once pristine (`iptables:*` says "read").
  // Read at the same time as the links below, unless the caller read them a moment ago (`tables`).
  const touches = steps.some((s) => s.do.tool === 'cmd' && /^iptables(-restore)?$/.test(s.do.cmd.argv[0] ?? '') && !s.do.cmd.netns);
  const tables = !touches ? Promise.resolve([]) : o.tables ? Promise.resolve(o.tables) : tablesNow(r);
  if ([...creates].some((k) => k.startsWith('netns:'))) {
    let names: string[] = [];
    try {
      names = readdirSync(NETNS_DIR);
    } catch {
      /* no /run/netns yet: none exists */
    }
    for (const n of names) if (creates.has(netnsKey(n))) out.push(netnsKey(n));
  }
  if ([...creates].some((k) => k.startsWith('link:-:'))) {
    // The caller's own read of a moment ago (attach's), when it has one: not read again.
    const names = o.hostLinks ?? (JSON.parse((await r.run({ argv: ['ip', '-j', 'link', 'show'] }, { check: false })).stdout || '[]') as Array<{ ifname: string }>).map((l) => l.ifname);
    for (const n of names) if (creates.has(linkKey(null, n))) out.push(linkKey(null, n));
  }
  return [...(await tables), ...out];
}
