// `nslab lab check`: a lab file read without root and without building anything; every problem at
// once, each with its FILE:LINE, its key, and a "did you mean" for a misspelt key, kind or node.
import { isIP } from './ip-family.js';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LineCounter, parseDocument, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ACTION_KINDS, CHECK_KINDS, LabRaw, type LabAction, type LabExpect, StepRaw } from './lab.js';
import { fmtPath, lineOf, SpecError } from './load.js';
import { parsePipework } from './pipework.js';
import { resolveTopology } from './resolve.js';

/** One problem of a lab file. */
export interface LintProblem {
  level: 'error' | 'warning';
  file: string;
  line: number;
  /** The key's path: `steps[2].expect[0].ping.from`. */
  key: string;
  message: string;
}

/** `FILE:LINE: error: KEY: message`, as compilers print. */
export function formatProblem(p: LintProblem): string {
  return `${p.file}:${p.line}: ${p.level}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
}

/** Edit distance (Levenshtein), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/**
 * The candidate closest to `word` when it is close enough to be a typo (at most 2 edits, and fewer
 * than half its letters), as ` (did you mean "x"?)`; else ''.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(word.toLowerCase(), c.toLowerCase());
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return best !== undefined && bestD <= Math.min(2, Math.ceil(word.length / 2)) && bestD > 0 ? ` (did you mean "${best}"?)` : '';
}

type Json = { properties?: Record<string, Json>; items?: Json; prefixItems?: Json[]; anyOf?: Json[]; additionalProperties?: Json | boolean };

/** The keys a schema allows at `path` (read from its JSON Schema), for "did you mean". */
function keysAt(schema: z.ZodType, path: Array<string | number>): string[] {
  let cur: Json | undefined = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  for (const p of path) {
    if (!cur) return [];
    const obj: Json | undefined = cur.anyOf ? (cur.anyOf.find((x) => (typeof p === 'number' ? x.items || x.prefixItems : x.properties)) ?? cur) : cur;
    if (typeof p === 'number') cur = obj.prefixItems?.[p] ?? obj.items;
    else cur = obj.properties?.[p] ?? (typeof obj.additionalProperties === 'object' ? obj.additionalProperties : undefined);
  }
  const obj = cur?.anyOf ? cur.anyOf.find((x) => x.properties) : cur;
  return Object.keys(obj?.properties ?? {});
}

/** The kind keys of a list's entries: `run`, `spawn`, ... / `ping`, `tcp`, ... */
const actionKeys = [...new Set(ACTION_KINDS.map((k) => k.kind.split(':')[0]!))];
const checkKeys = CHECK_KINDS.map((k) => k.kind);

/** What a lab knows so far while its steps are read in order: nodes and where each was made. */
interface Timeline {
  /** node -> step (1-based) that makes it */
  madeIn: Map<string, number>;
  /** node -> its interfaces declared by a topology (null: made otherwise, interfaces unknown) */
  ifaces: Map<string, Set<string> | null>;
  /** Every word of the commands of the lab, with the step it first appears in (interfaces made by hand). */
  wordsIn: Map<string, number>;
  /** Names spawned `as:` (for `${NAME}`), with their step. */
  spawned: Map<string, number>;
}

const argvOf = (c: string | string[]) => (Array.isArray(c) ? c : c.trim().split(/\s+/));

/** The nodes an action makes (named netns), and the interfaces a topology declares in each. */
function makes(a: LabAction, dir: string): Array<{ node: string; ifaces: string[] | null }> {
  const out: Array<{ node: string; ifaces: string[] | null }> = [];
  if ('topology' in a) {
    for (const [n, v] of Object.entries(a.topology.nodes ?? {})) out.push({ node: n, ifaces: Object.keys(v.interfaces ?? {}) });
    const hostIfs = [...Object.keys(a.topology.host?.interfaces ?? {}), ...Object.keys(a.topology.bridges ?? {})];
    out.push({ node: 'host', ifaces: hostIfs });
  }
  if ('run' in a) {
    const w = argvOf(a.run);
    const i = w.findIndex((x, k) => x === 'netns' && w[k + 1] === 'add');
    if (w[0] === 'ip' && i >= 0 && w[i + 2]) out.push({ node: w[i + 2]!, ifaces: null });
    // `ln -s /proc/PID/ns/net /run/netns/NAME`: a process's netns given a name (lab 02).
    for (const x of w) {
      const m = /^(?:\/var)?\/run\/netns\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(x);
      if (m && w[0] !== 'rm') out.push({ node: m[1]!, ifaces: null });
    }
  }
  if ('nslab' in a) {
    const w = argvOf(a.nslab);
    const net = w.indexOf('--net');
    if (w[0] === 'node' && w[1] === 'run' && w[2] && !(net >= 0 && w[net + 1] === 'host')) out.push({ node: w[2], ifaces: null });
    if (w[0] === 'up' && w[1]) {
      try {
        const doc = parseYaml(readFileSync(w[1].replaceAll('${dir}', dir), 'utf8')) as { nodes?: Record<string, unknown>; hosts?: Record<string, unknown> } | null;
        for (const n of [...Object.keys(doc?.nodes ?? {}), ...Object.keys(doc?.hosts ?? {})]) out.push({ node: n, ifaces: null });
      } catch {
        /* the file is checked when it is brought up */
      }
    }
  }
  if ('attach' in a) {
    try {
      const c = parsePipework(argvOf(a.attach));
      if (c.kind === 'attach') out.push({ node: c.request.guest, ifaces: null });
    } catch {
      /* refused when it runs, with pipework's own message */
    }
  }
  return out;
}

/** The nodes and interfaces a check names, with their keys. */
function names(e: LabExpect): { nodes: Array<[string, string]>; iface?: [string, string, string] } {
  const [kind, v] = Object.entries(e)[0] as [string, Record<string, unknown>];
  const nodes: Array<[string, string]> = [];
  for (const k of ['in', 'from', 'server', 'client']) if (typeof v[k] === 'string') nodes.push([k, v[k] as string]);
  if (kind === 'link') return { nodes, iface: ['name', v.in as string, v.name as string] };
  if (kind === 'addr') return { nodes, iface: ['dev', v.in as string, v.dev as string] };
  return { nodes };
}

/** A command that changes a namespace's network (rules, routes, addresses, sysctls): where it runs matters. */
function hostNetworkCommand(argv: string[]): boolean {
  const [p, ...rest] = argv;
  if (p === 'iptables' || p === 'ip6tables') return !rest.some((x) => x === '-L' || x === '-S' || x === '--list');
  if (p === 'sysctl') return rest.some((x) => x.includes('='));
  if (p === 'ip') {
    const w = rest.filter((x) => !x.startsWith('-'));
    return ['route', 'r', 'addr', 'address', 'a', 'neigh'].includes(w[0] ?? '') && ['add', 'del', 'replace', 'change', 'flush'].includes(w[1] ?? '');
  }
  return p === 'route' && (rest[0] === 'add' || rest[0] === 'del');
}

/** A gateway of another family than its destination in an `ip route add DST via GW` or `route add ... gw GW`. */
function routeFamilyProblem(argv: string[]): string | null {
  const at = argv.findIndex((x, k) => (x === 'route' || x === 'r' || x === 'ro') && argv[0] === 'ip' && ['add', 'replace', 'append', 'change'].includes(argv[k + 1] ?? ''));
  if (argv[0] === 'ip' && at >= 0) {
    const rest = argv.slice(at + 2);
    const via = rest.indexOf('via');
    if (via < 0) return null;
    let gw = rest[via + 1] ?? '';
    if (gw === 'inet' || gw === 'inet6') return null; // explicit family: RFC 5549 nexthops are allowed
    gw = gw.split('%')[0]!;
    const dst = rest.find((x) => /[./:]/.test(x) || x === 'default');
    const six = argv.includes('-6');
    const dFam = dst && dst !== 'default' ? isIP(dst.split('/')[0]!) : six ? 6 : 0;
    const gFam = isIP(gw);
    if (dFam && gFam && dFam !== gFam) return `gateway ${gw} is IPv${gFam} but the route to ${dst ?? 'default'} is IPv${dFam}: expected an IPv${dFam} gateway (ip refuses it: "inet address is expected")`;
    return null;
  }
  if (argv[0] === 'route' && argv[1] === 'add') {
    const gw = argv[argv.indexOf('gw') + 1];
    if (argv.includes('gw') && gw && isIP(gw) === 6 && !argv.includes('-A')) return `gateway ${gw} is IPv6: route(8) without -A inet6 takes an IPv4 gateway`;
  }
  return null;
}

/**
 * Checks a lab file: its shape against the schema (every problem, not the first), then what only the
 * whole lab tells: nodes and interfaces named by steps and checks exist by then (in step order),
 * `${NAME}` was spawned before, route gateways are of their destination's family, topologies resolve;
 * and warns about checks that run in the host by default in a lab that has nodes.
 * @param file the file's name as messages show it
 * @param text its content
 * @param dir the lab's folder (`${dir}` in its commands)
 * @returns problems in file order (errors and warnings); none when the lab is fine
 */
export function lintLab(file: string, text: string, dir: string): LintProblem[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const out: LintProblem[] = [];
  if (doc.errors.length) {
    for (const e of doc.errors) out.push({ level: 'error', file, line: lc.linePos(e.pos[0]).line, key: '', message: `not valid YAML: ${e.message.split('\n')[0]}` });
    return out;
  }
  const raw: unknown = doc.toJS();
  const add = (level: LintProblem['level'], path: Array<string | number>, message: string) => out.push({ level, file, line: lineOf(doc, lc, path), key: fmtPath(path), message });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    add('error', [], 'expected a lab: a mapping with title:, teaches:, steps:');
    return out;
  }
  /** Reports a zod failure's issues, each at its path under `at`, unknown keys with "did you mean". */
  const issues = (schema: z.ZodType, value: unknown, at: Array<string | number>): unknown => {
    const res = schema.safeParse(value);
    if (res.success) return res.data;
    for (const is of res.error.issues) {
      const path = is.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (is.code === 'unrecognized_keys') {
        const allowed = keysAt(schema, path);
        for (const k of is.keys) add('error', [...at, ...path, k], `unknown key "${k}"${didYouMean(k, allowed)}: expected ${allowed.map((x) => `${x}:`).join(', ')}`);
        continue;
      }
      let got: unknown = value;
      for (const p of path) got = got && typeof got === 'object' ? (got as Record<string | number, unknown>)[p] : undefined;
      const msg = is.code === 'invalid_type' && is.message.startsWith('Invalid input') ? `expected ${(is as { expected?: string }).expected}` : is.message;
      add('error', [...at, ...path], `${msg}, got ${got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 80)}`);
    }
    return undefined;
  };
  /** One entry of a do:/expect: list: its kind found by its key, then checked against that kind alone. */
  const entry = (v: unknown, at: Array<string | number>, list: 'do' | 'expect'): unknown => {
    const kinds = list === 'do' ? ACTION_KINDS : CHECK_KINDS;
    const keys = list === 'do' ? actionKeys : checkKeys;
    const what = list === 'do' ? 'step kind' : 'check kind';
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      add('error', at, `expected a ${what} such as {${keys[0]}: ...}, got ${JSON.stringify(v)}`);
      return undefined;
    }
    const own = Object.keys(v);
    const kind = own.find((k) => keys.includes(k));
    if (!kind) {
      const first = own[0] ?? '';
      add('error', own.length ? [...at, first] : at, `unknown ${what} "${first}"${didYouMean(first, keys)}: expected one of ${keys.join(', ')} (docs/labs.md)`);
      return undefined;
    }
    let schema = kinds.find((k) => k.kind === kind)?.schema;
    if (kind === 'service') {
      const svc = (v as { service?: unknown }).service;
      schema = kinds.find((k) => k.kind === `service: ${String(svc)}`)?.schema;
      if (!schema) {
        add('error', [...at, 'service'], `unknown service ${JSON.stringify(svc)}${didYouMean(String(svc), ['ovs', 'dnsmasq'])}: expected ovs or dnsmasq`);
        return undefined;
      }
    }
    const parsed = issues(schema!, v, at);
    // A topology is resolved too: what `up` refuses before building (a gateway of another family,
    // a gateway on no subnet, an interface on no link), the lint says now.
    if (parsed && 'topology' in (parsed as object)) {
      try {
        resolveTopology((parsed as { topology: Parameters<typeof resolveTopology>[0] }).topology, 'lab');
      } catch (err) {
        if (err instanceof SpecError) add('error', [...at, 'topology', ...err.path], err.message);
        else throw err;
      }
    }
    return parsed;
  };

  const top = raw as Record<string, unknown>;
  const topShape = LabRaw.omit({ steps: true, verify: true });
  issues(topShape.extend({ steps: z.unknown().optional(), verify: z.unknown().optional() }), top, []);
  const steps: Array<{ do: Array<LabAction | undefined>; expect: Array<LabExpect | undefined>; raw: Record<string, unknown> }> = [];
  if (!Array.isArray(top.steps) || top.steps.length === 0) {
    if (top.steps !== undefined) add('error', ['steps'], `expected a list of steps (- say: ..., do: [...], expect: [...]), got ${JSON.stringify(top.steps)?.slice(0, 60)}`);
  } else {
    top.steps.forEach((s: unknown, i: number) => {
      const at = ['steps', i];
      issues(StepRaw.extend({ do: z.unknown().optional(), expect: z.unknown().optional() }), s, at);
      const st = (s && typeof s === 'object' ? s : {}) as Record<string, unknown>;
      const list = (k: 'do' | 'expect') => {
        const v = st[k];
        if (v === undefined || v === null) return [];
        if (!Array.isArray(v)) {
          add('error', [...at, k], `expected a list (- ...), got ${JSON.stringify(v)?.slice(0, 60)}`);
          return [];
        }
        return v.map((x, j) => {
          const parsed = entry(x, [...at, k, j], k);
          // A topology with a problem still names its nodes: later uses of them are not errors too.
          const rawTopo = (x as { topology?: { nodes?: unknown } } | null)?.topology;
          if (!parsed && k === 'do' && rawTopo && typeof rawTopo === 'object' && rawTopo.nodes && typeof rawTopo.nodes === 'object') {
            return { topology: { nodes: Object.fromEntries(Object.entries(rawTopo.nodes).map(([n, v]) => [n, { interfaces: (v as { interfaces?: object } | null)?.interfaces ?? {} }])) }, invalid: true };
          }
          return parsed;
        });
      };
      steps.push({ do: list('do') as Array<LabAction | undefined>, expect: list('expect') as Array<LabExpect | undefined>, raw: st });
    });
  }
  const verify: Array<LabExpect | undefined> = Array.isArray(top.verify) ? top.verify.map((x, j) => entry(x, ['verify', j], 'expect') as LabExpect | undefined) : [];
  if (top.verify !== undefined && !Array.isArray(top.verify)) add('error', ['verify'], 'expected a list of checks');

  // What the steps make, in order.
  const t: Timeline = { madeIn: new Map([['host', 0]]), ifaces: new Map([['host', null]]), wordsIn: new Map(), spawned: new Map() };
  steps.forEach((s, i) => {
    for (const a of s.do) {
      if (!a) continue;
      for (const m of makes(a, dir)) {
        if (!t.madeIn.has(m.node)) t.madeIn.set(m.node, i + 1);
        const had = t.ifaces.get(m.node);
        if (m.node === 'host') continue;
        t.ifaces.set(m.node, m.ifaces === null ? null : had === null && t.ifaces.has(m.node) ? null : new Set([...(had ?? []), ...m.ifaces]));
      }
      if ('spawn' in a && !t.spawned.has(a.as)) t.spawned.set(a.as, i + 1);
      const cmd = 'run' in a ? a.run : 'nslab' in a ? a.nslab : 'spawn' in a ? a.spawn : 'attach' in a ? a.attach : null;
      for (const c of [cmd, 'undo' in a ? a.undo : undefined]) if (c) for (const w of argvOf(c)) if (!t.wordsIn.has(w)) t.wordsIn.set(w, i + 1);
    }
  });
  const nodes = [...t.madeIn.keys()].filter((n) => n !== 'host');
  /** A node named at step `step` (1-based; Infinity for verify:), in actions `order`-th of its step or in checks. */
  const node = (name: string, path: Array<string | number>, step: number, laterInStep: boolean) => {
    if (name === 'host') return;
    const made = t.madeIn.get(name);
    if (made === undefined) add('error', path, `no node "${name}" in this lab${didYouMean(name, nodes)}: its nodes are ${nodes.join(', ') || 'none (only host)'}`);
    else if (made > step) add('error', path, `node "${name}" is made in step ${made}, after this step ${step}: move the check (or the action) to step ${made} or later`);
    else if (made === step && laterInStep) add('error', path, `node "${name}" is made by a later action of this step: put the action that makes it first`);
  };
  const pidRefs = (c: string | string[] | undefined, path: Array<string | number>, step: number) => {
    if (!c) return;
    for (const w of argvOf(c)) {
      for (const m of w.matchAll(/\$\{([a-z][a-z0-9_]*)\}/g)) {
        if (m[1] === 'dir') continue;
        const at = t.spawned.get(m[1]!);
        if (at === undefined) add('error', path, `\${${m[1]}} names no process spawned by this lab${didYouMean(m[1]!, t.spawned.keys())} (spawn: ..., as: NAME)`);
        else if (at > step) add('error', path, `\${${m[1]}} is spawned in step ${at}, after this step ${step}`);
      }
    }
  };
  const madeSoFar = new Map<string, number>([['host', 0]]);
  const checkEntry = (e: LabExpect, path: Array<string | number>, step: number, rawEntry: unknown) => {
    const n = names(e);
    for (const [k, v] of n.nodes) node(v, [...path, Object.keys(e)[0]!, k], step, false);
    if (n.iface) {
      const [k, where, ifname] = n.iface;
      const declared = t.ifaces.get(where);
      const seen = t.wordsIn.get(ifname);
      if (ifname !== 'lo' && declared && !declared.has(ifname) && (seen === undefined || seen > step)) {
        add('error', [...path, Object.keys(e)[0]!, k], `node "${where}" has no interface "${ifname}"${didYouMean(ifname, declared)}: it has ${[...declared].join(', ') || 'none'}`);
      }
    }
    if ('output' in e) pidRefs(e.output.run, [...path, 'output', 'run'], step);
    const kind = Object.keys(e)[0]!;
    const rawV = ((rawEntry as Record<string, unknown>)[kind] ?? {}) as Record<string, unknown>;
    // A check without in:/from: runs in the host (the sandbox): in a lab of nodes, rarely what is meant.
    // `ip netns exec NODE ...`, `ip netns identify PID`: the command itself says where it looks.
    const namesItsNode = kind === 'output' && argvOf((e as { output: { run: string | string[] } }).output.run).slice(0, 2).join(' ') === 'ip netns';
    if (nodes.length && !namesItsNode && (kind === 'ping' || kind === 'tcp' || kind === 'http' || kind === 'output' || kind === 'link' || kind === 'addr' || kind === 'route' || kind === 'iptables') && rawV.in === undefined && rawV.from === undefined) {
      const k = ['ping', 'tcp', 'http'].includes(kind) ? 'from' : 'in';
      add('warning', [...path, kind], `no ${k}: this check runs in the host (the namespace the lab runs in), not in a node (${nodes.slice(0, 4).join(', ')}): write ${k}: host if that is meant`);
    }
    if ((kind === 'tcp' || kind === 'http') && rawV.error !== undefined && rawV.ok === true) add('error', [...path, kind, 'ok'], 'error: says how it must fail: expected ok: false (or no ok:) with it');
    if (kind === 'output' && rawV.compare !== undefined && step === Infinity) add('warning', [...path, kind, 'compare'], 'compare: has no "before" in verify: (lab verify reads one state): only match: is checked there');
  };
  steps.forEach((s, i) => {
    const step = i + 1;
    s.do.forEach((a, j) => {
      if (!a) return;
      const path = ['steps', i, 'do', j];
      const inKey = 'in' in a ? a.in : 'host';
      // Made by this very action (ip netns add NAME in host) or before it in this step: fine.
      for (const m of makes(a, dir)) if (!madeSoFar.has(m.node)) madeSoFar.set(m.node, step);
      if (inKey !== 'host') {
        if (madeSoFar.has(inKey) || t.madeIn.get(inKey) !== step) node(inKey, [...path, 'in'], step, false);
        else node(inKey, [...path, 'in'], step, true);
      }
      // A lab copied from another keeps its topology's name (`lab06` in lab 17): both would mark
      // their objects alike.
      const own = /^(\d\d)-/.exec(basename(dir))?.[1];
      const tname = 'topology' in a ? a.topology.name : undefined;
      const copied = tname ? /^lab(\d\d)$/.exec(tname)?.[1] : undefined;
      if (own && copied && copied !== own) add('warning', [...path, 'topology', 'name'], `topology name "${tname}" is lab ${copied}'s (copied?): expected lab${own}`);
      // A rule or route meant for a node that lands in the host (no `in:`) shows only when a check
      // fails: in a lab of nodes, a network command with no `in:` is worth a word.
      const rawAction = ((steps[i]!.raw.do as unknown[] | undefined)?.[j] ?? {}) as Record<string, unknown>;
      if ('run' in a && nodes.length && rawAction.in === undefined && hostNetworkCommand(argvOf(a.run))) {
        add('warning', [...path, 'run'], `no in: this command changes the host (the namespace the lab runs in), not a node (${nodes.slice(0, 4).join(', ')}): write in: host if that is meant`);
      }
      if ('run' in a) {
        pidRefs(a.run, [...path, 'run'], step);
        const p = routeFamilyProblem(argvOf(a.run));
        if (p) add('error', [...path, 'run'], p);
      }
      if ('spawn' in a) pidRefs(a.spawn, [...path, 'spawn'], step);
      if ('nslab' in a) pidRefs(a.nslab, [...path, 'nslab'], step);
    });
    s.expect.forEach((e, j) => e && checkEntry(e, ['steps', i, 'expect', j], step, (s.raw.expect as unknown[])[j]));
  });
  verify.forEach((e, j) => e && checkEntry(e, ['verify', j], Infinity, (top.verify as unknown[])[j]));
  return out.sort((a, b) => a.line - b.line);
}

/**
 * Checks a lab folder's lab.yaml (see {@link lintLab}).
 * @param dir the lab's folder
 * @param shown how the file is named in messages (default: DIR/lab.yaml)
 */
export function lintLabDir(dir: string, shown = join(dir, 'lab.yaml')): LintProblem[] {
  let text: string;
  try {
    text = readFileSync(join(dir, 'lab.yaml'), 'utf8');
  } catch (err) {
    return [{ level: 'error', file: shown, line: 1, key: '', message: `cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }];
  }
  return lintLab(shown, text, dir);
}
