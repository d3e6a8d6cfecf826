// What of a plan's objects exists before it runs: the journal's proof that an unmarked object of the
// same name found after a crash was not nslab's (clean leaves those alone).
import { readdirSync } from 'node:fs';
import { NETNS_DIR, type Runner } from '../../exec/runner.js';
import type { Step } from '../../kernel/step.js';
import { linkKey, netnsKey } from '../../kernel/step.js';
import { tablesNow } from './recover.js';

/**
 * The `creates` keys (and, when they touch iptables here, `iptables:*` and the tables that exist) of `steps` whose object exists now: netns (a read of /run/netns, no process) and
 * links of the current netns (one `ip -j link show`, only when the steps create any). Links created in
 * other netns are not read: they go with their netns, or are made from here (a veth's peer).
 * @returns keys as kernel/step.ts makes them (`netns:NAME`, `link:-:NAME`)
 */
export async function existingObjects(r: Runner, steps: Step[]): Promise<string[]> {
  const creates = new Set(steps.flatMap((s) => (s.creates ? [s.creates] : [])));
  const out: string[] = [];
  // iptables: the first rule in a table creates it (nf_tables), and it stays, empty, when the rule
  // goes; which tables were there lets clean drop the others once pristine (`iptables:*` says "read").
  if (steps.some((s) => s.do.tool === 'cmd' && /^iptables(-restore)?$/.test(s.do.cmd.argv[0] ?? '') && !s.do.cmd.netns)) {
    out.push(...(await tablesNow(r)));
  }
  if (creates.size === 0) return out;
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
    const res = await r.run({ argv: ['ip', '-j', 'link', 'show'] }, { check: false });
    for (const l of JSON.parse(res.stdout || '[]') as Array<{ ifname: string }>) if (creates.has(linkKey(null, l.ifname))) out.push(linkKey(null, l.ifname));
  }
  return out;
}
