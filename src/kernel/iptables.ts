// iptables rules, owned by comment and applied per table with `iptables-restore --noflush`.
import type { Runner } from '../exec/runner.js';
import { invalid } from '../errors.js';
import { cmdOp, type Op, type Step } from './step.js';

/** The tables nslab writes to. */
export type Table = 'filter' | 'nat';

/**
 * One rule. `spec` is the rule after the chain name as iptables(8) takes it, matches then `-j TARGET
 * [target options]`; the owner's `-m comment --comment OWNER` is put right before `-j`, so every rule
 * names who made it and teardown finds exactly those rules in `iptables-save` (moby#42029, netavark#491).
 * `insert` puts the rule at the top of its chain (`-I CHAIN 1`), as Docker does for rules in the
 * built-in chains, so a host firewall's own rules further down cannot shadow them.
 */
export interface Rule {
  table: Table;
  chain: string;
  spec: string[];
  comment: string;
  insert?: boolean;
}

/** A user-defined chain. */
export interface ChainRef {
  table: Table;
  name: string;
}

/** The rule's arguments after the chain name, with its comment before `-j`. */
export function ruleArgs(rule: Rule): string[] {
  const j = rule.spec.indexOf('-j');
  if (j < 0) throw invalid(`iptables rule ${rule.spec.join(' ')}: no -j target`);
  return [...rule.spec.slice(0, j), '-m', 'comment', '--comment', rule.comment, ...rule.spec.slice(j)];
}

/** The line of `iptables-restore` input that adds (`-A`/`-I CHAIN 1`) or deletes (`-D`) the rule. */
export function ruleLine(rule: Rule, verb: 'add' | 'del'): string {
  const args = ruleArgs(rule);
  for (const a of args) {
    // iptables-restore splits on blanks and honours double quotes; our arguments never need them.
    if (a === '' || /[\s"'\\#]/.test(a)) throw invalid(`iptables argument ${JSON.stringify(a)}: blanks, quotes, backslashes and # are not allowed`);
  }
  const head = verb === 'del' ? ['-D', rule.chain] : rule.insert ? ['-I', rule.chain, '1'] : ['-A', rule.chain];
  return [...head, ...args].join(' ');
}

/** `iptables-restore` input for one table: `*TABLE`, the lines, `COMMIT`. */
export function restoreInput(table: Table, lines: string[]): string {
  return [`*${table}`, ...lines, 'COMMIT', ''].join('\n');
}

/** `iptables-restore -w --noflush`: changes only what the input names (without it a table is flushed). */
export const RESTORE = ['iptables-restore', '-w', '--noflush'];

/**
 * Adds chains and rules, one step per table: each table's input is one nf_tables transaction, applied
 * whole or not at all (found here: a failed line aborts its table, while the tables committed before
 * it in the same input stay), which is exactly a Step's contract. Rules go in the order given
 * (`insert` rules end up in reverse order at the top of their chain). A chain is declared only when
 * new: `:CHAIN` in `--noflush` mode flushes a chain that exists (found here).
 * Undo: delete the rules in reverse order, then the new chains (`-X`, empty by then).
 * @param rules the rules, with their owner's comment
 * @param newChains user-defined chains to create first (they must not exist yet)
 * @param what a few words for the step's description ("network nw-01")
 */
export function addRules(rules: Rule[], newChains: ChainRef[], what: string): Step[] {
  const steps: Step[] = [];
  for (const table of ['filter', 'nat'] as const) {
    const rs = rules.filter((r) => r.table === table);
    const cs = newChains.filter((c) => c.table === table).map((c) => c.name);
    if (rs.length === 0 && cs.length === 0) continue;
    const add = [...cs.map((c) => `:${c} - [0:0]`), ...rs.map((r) => ruleLine(r, 'add'))];
    const del = [...[...rs].reverse().map((r) => ruleLine(r, 'del')), ...cs.map((c) => `-X ${c}`)];
    steps.push({
      describe: `add ${rs.length} ${table} rule(s)${cs.length ? ` and chain(s) ${cs.join(', ')}` : ''} for ${what}`,
      do: cmdOp(RESTORE, null, restoreInput(table, add)),
      undo: [cmdOp(RESTORE, null, restoreInput(table, del))],
    });
  }
  return steps;
}

/** A rule as `iptables-save` prints it. */
export interface SavedRule {
  table: Table;
  chain: string;
  /** The text after `-A CHAIN `, exactly as printed (re-usable in `iptables-restore` input). */
  text: string;
  /** Its `--comment`, unquoted, or null. */
  comment: string | null;
}

/** One table as `iptables-save` prints it: chains with their policy (`-` for user chains), and rules. */
export interface SavedTable {
  chains: Map<string, string>;
  rules: SavedRule[];
}

/** What `iptables-save` prints, per table (a table nobody has used yet is absent under nf_tables). */
export type Saved = Map<string, SavedTable>;

/** Parses `iptables-save` output (comments and counters ignored). */
export function parseSave(text: string): Saved {
  const out: Saved = new Map();
  let cur: SavedTable | null = null;
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      cur = { chains: new Map(), rules: [] };
      out.set(table, cur);
    } else if (!cur || line.startsWith('#') || line === 'COMMIT' || !line.trim()) {
      continue;
    } else if (line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(/\s+/) as [string, string];
      cur.chains.set(name, policy);
    } else if (line.startsWith('-A ')) {
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (!m) continue;
      const c = /--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(m[2]!);
      cur.rules.push({ table: table as Table, chain: m[1]!, text: m[2]!, comment: c ? (c[1] ?? c[2]!).replace(/\\(.)/g, '$1') : null });
    }
  }
  return out;
}

/** Reads every table (`iptables-save`). */
export async function readIptables(r: Runner): Promise<Saved> {
  return parseSave((await r.run({ argv: ['iptables-save'] })).stdout);
}

/**
 * Deletes the rules whose comment `owns` accepts, found in `saved` (read from the kernel just
 * before, under nslab's lock), one `iptables-restore --noflush` per table: exactly those rules,
 * whatever state a crash or an older nslab left, and never a rule of another owner.
 * @returns the number of rules deleted
 */
export async function deleteOwned(r: Runner, saved: Saved, owns: (comment: string) => boolean): Promise<number> {
  let n = 0;
  for (const table of ['nat', 'filter'] as const) {
    const rules = saved.get(table)?.rules.filter((x) => x.comment !== null && owns(x.comment)) ?? [];
    if (rules.length === 0) continue;
    await r.run({ argv: RESTORE, input: restoreInput(table, rules.map((x) => `-D ${x.chain} ${x.text}`)) });
    n += rules.length;
  }
  return n;
}

/**
 * Deletes user-defined chains (after their rules and the jumps to them are gone), one restore per table;
 * chains already gone are skipped.
 */
export async function deleteChains(r: Runner, saved: Saved, chains: ChainRef[]): Promise<void> {
  for (const table of ['nat', 'filter'] as const) {
    const names = chains.filter((c) => c.table === table && saved.get(table)?.chains.has(c.name)).map((c) => c.name);
    if (names.length === 0) continue;
    await r.run({ argv: RESTORE, input: restoreInput(table, [...names.map((c) => `-F ${c}`), ...names.map((c) => `-X ${c}`)]) });
  }
}

/**
 * `iptables -w -P CHAIN POLICY` on a built-in chain of the filter table; undo sets `previous` back.
 * (Docker sets FORWARD's policy to DROP when it turns IP forwarding on, so that enabling forwarding
 * does not open the host's other interfaces.)
 */
export function setPolicy(chain: string, policy: 'ACCEPT' | 'DROP', previous: string): Step {
  return {
    describe: `set the policy of ${chain} to ${policy}`,
    do: cmdOp(['iptables', '-w', '-P', chain, policy]),
    undo: [cmdOp(['iptables', '-w', '-P', chain, previous])],
  };
}

/**
 * True when a table holds nothing of anyone's: only built-in chains, all with policy ACCEPT, and no
 * rule. Such a table changes no packet, and is one nslab may delete if it was absent before.
 */
export function pristine(t: SavedTable | undefined, builtins: readonly string[]): boolean {
  if (!t) return true;
  if (t.rules.length > 0) return false;
  for (const [name, policy] of t.chains) if (!builtins.includes(name) || policy !== 'ACCEPT') return false;
  return true;
}

/** The built-in chains of each table. */
export const BUILTIN: Record<Table, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};

/**
 * Deletes a table nslab's rules created, once it is pristine again, so that `iptables-save` prints
 * what it printed before nslab came. Under nf_tables, `iptables-restore` without `--noflush` of an
 * empty `*TABLE`/`COMMIT` deletes the table (found here; there is no iptables command for it). Under the
 * legacy backend it only flushes an empty table, which is harmless.
 */
export function dropTableOp(table: Table): Op {
  return cmdOp(['iptables-restore', '-w'], null, restoreInput(table, []));
}

/** The save text without what changes by itself: `#` lines (dates) and `[packets:bytes]` counters. */
export function normalizeSave(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''))
    .join('\n');
}

/**
 * The source NAT rules of a parsed `iptables-save` (nat table, any chain): `-j MASQUERADE` and
 * `-j SNAT --to-source A` with their `[!] -s`, `[!] -d`, `[!] -o` matches. A rule limited to a
 * protocol other than ICMP (`-p tcp`) or with matches this reading does not follow (`-m` other than
 * comment, `-i`) is left out: it says nothing about a ping.
 * @returns rules in order (iptables-extensions(8) MASQUERADE, SNAT)
 */
export function snatRules(saved: Saved): import('../model/types.js').SnatRule[] {
  const out: import('../model/types.js').SnatRule[] = [];
  for (const rule of saved.get('nat')?.rules ?? []) {
    const w: string[] = rule.text.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    const j = w[w.indexOf('-j') + 1];
    if (!w.includes('-j') || (j !== 'MASQUERADE' && j !== 'SNAT')) continue;
    const r: import('../model/types.js').SnatRule = { source: null, dest: null, out: null, toSource: null };
    let ok = true;
    for (let i = 0; i < w.length; i++) {
      const not = w[i] === '!';
      const opt = not ? w[++i] : w[i];
      const val = w[i + 1] ?? '';
      if (opt === '-s') r.source = { cidr: val, not };
      else if (opt === '-d') r.dest = { cidr: val, not };
      else if (opt === '-o') r.out = { name: val, not };
      else if (opt === '--to-source') r.toSource = val.split(':')[0]!.split('-')[0]!;
      else if (opt === '-p') ok &&= /^(icmp|ipv6-icmp|all|1)$/.test(val) && !not;
      else if (opt === '-m') ok &&= val === 'comment';
      else if (opt === '-i') ok = false;
      else continue;
      i++;
    }
    if (ok) out.push(r);
  }
  return out;
}

/** Targets of the nat table that rewrite an address or port (iptables-extensions(8)). */
const NAT_TARGETS = new Set(['MASQUERADE', 'SNAT', 'DNAT', 'REDIRECT', 'NETMAP']);

/**
 * The nat table's address-rewriting rules, one short line each for a picture (graph): the target,
 * its matches without `-A CHAIN`, `-m comment ...` and `-m tcp|udp`, and where it rewrites to:
 * `MASQUERADE -s 192.168.16.0/24 -o eth1`, `DNAT ! -i docker0 -p tcp --dport 8080 → 172.17.0.2:80`.
 * @param saved `iptables-save -t nat` parsed by {@link parseSave}
 * @returns lines in rule order
 */
export function natSummary(saved: Saved): string[] {
  const out: string[] = [];
  for (const rule of saved.get('nat')?.rules ?? []) {
    const w: string[] = rule.text.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    const j = w.indexOf('-j');
    const target = w[j + 1];
    if (j < 0 || !target || !NAT_TARGETS.has(target)) continue;
    const keep: string[] = [];
    let to = '';
    for (let i = 0; i < w.length; i++) {
      const x = w[i]!;
      if (x === '-A') i++;
      else if (x === '-j') i++;
      else if (x === '-m' && (w[i + 1] === 'comment' || w[i + 1] === 'tcp' || w[i + 1] === 'udp')) i++;
      else if (x === '--comment') i++;
      else if (x === '--to-destination' || x === '--to-source' || x === '--to-ports' || x === '--to') to = w[++i] ?? '';
      else if (i > j) continue; // the target's own flags (--random, ...)
      else keep.push(x);
    }
    out.push([target, ...keep, ...(to ? ['→', to] : [])].join(' '));
  }
  return out;
}
