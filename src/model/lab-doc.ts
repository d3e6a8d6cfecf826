// The lab format's reference (docs/labs.md) and JSON Schemas (labs/lab.schema.json,
// labs/topology.schema.json), made from the zod schemas themselves so that they cannot drift.
import { Document, isCollection, visit } from 'yaml';
import { z } from 'zod';
import { ACTION_KINDS, CHECK_KINDS, type Kind, LabRaw, StepRaw } from './lab.js';
import { TopologyRaw } from './schema.js';

type Json = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Json[];
  items?: Json;
  prefixItems?: Json[];
  properties?: Record<string, Json>;
  required?: string[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  additionalProperties?: Json | boolean;
};

const json = (s: z.ZodType): Json => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;

/**
 * The JSON Schema (draft 2020-12) of lab.yaml, for editors (`# yaml-language-server: $schema=...`).
 * @returns the schema as an object
 */
export function labJsonSchema(): Record<string, unknown> {
  return { ...json(LabRaw), title: 'nslab lab (labs/NN-topic/lab.yaml)', description: 'A lab: narration in English and Chinese, steps that build, checks that must hold. Reference: docs/labs.md' };
}

/** The JSON Schema of a topology file (`nslab up FILE`), for editors. */
export function topologyJsonSchema(): Record<string, unknown> {
  return { ...json(TopologyRaw), title: 'nslab topology file', description: 'Nodes (netns), bridges, veth links, addresses, routes, sysctls. Reference: README, "Topology files"' };
}

/** A JSON Schema type in words: `string`, `list of string`, `` `a` \| `b` ``. */
function typeOf(j: Json): string {
  if (j.const !== undefined) return `\`${String(j.const)}\``;
  if (j.enum) return j.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (j.anyOf) return [...new Set(j.anyOf.map(typeOf))].join(' or ');
  if (j.prefixItems) return `[${j.prefixItems.map(typeOf).join(', ')}]`;
  const t = Array.isArray(j.type) ? j.type.join(' or ') : j.type;
  if (t === 'array') return `list of ${j.items ? typeOf(j.items) : 'anything'}`;
  if (t === 'object') return j.properties && Object.keys(j.properties).join(',') === 'en,zh' ? '{en, zh}' : 'mapping';
  if (t === 'integer' || t === 'number') {
    const lo = j.minimum ?? (j.exclusiveMinimum !== undefined ? `>${j.exclusiveMinimum}` : undefined);
    const hi = j.maximum !== undefined && j.maximum < 1e9 ? j.maximum : undefined;
    const range = lo !== undefined || hi !== undefined ? ` (${lo ?? ''}..${hi ?? ''})` : '';
    return `${t === 'integer' ? 'integer' : 'number'}${range}`;
  }
  if (t === 'string' && j.format === 'uri') return 'URL';
  return t ?? 'anything';
}

/** A table row per key of an object schema: key, type, default (or required), meaning. */
function keysTable(j: Json): string[] {
  const rows = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  for (const [k, v] of Object.entries(j.properties ?? {})) {
    const def = j.required?.includes(k) ? '*required*' : v.default !== undefined ? `\`${JSON.stringify(v.default)}\`` : '—';
    rows.push(`| \`${k}\` | ${typeOf(v)} | ${def} | ${(v.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
  }
  return rows;
}

/**
 * YAML as the shipped labs write it: block style outside, a collection short enough for one line
 * (under 70 characters as JSON) in flow style: `- ping: { from: pc1, to: 10.0.0.1 }`.
 */
function yamlOf(v: unknown): string {
  const doc = new Document(v);
  visit(doc, (_key, node, path) => {
    if (isCollection(node) && path.length > 2 && JSON.stringify(node.toJSON()).length < 70) node.flow = true;
    return undefined;
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: true });
}

/** One kind's section: what it does, its keys, an example. */
function kindSection(k: Kind, list: 'do' | 'expect'): string[] {
  const j = json(k.schema);
  const key = k.kind.split(':')[0]!;
  // A check's keys are under its kind key ({ping: {from, to}}); an action's sit beside it.
  const inner = list === 'expect' ? j.properties?.[key] : j;
  const out = [`### \`${k.kind}\``, '', k.about, ''];
  out.push(...keysTable(inner ?? {}), '');
  out.push('```yaml', `${list}:`, yamlOf([k.example]).trimEnd().replace(/^/gm, '  '), '```', '');
  return out;
}

/** The keys of a `topology:` step (the topology file's), table by table, from TopologyRaw. */
function topologySection(): string[] {
  const t = json(TopologyRaw);
  const rec = (j: Json | undefined): Json => (j && typeof j.additionalProperties === 'object' ? j.additionalProperties : {});
  const node = rec(t.properties?.nodes);
  const iface = rec(node.properties?.interfaces);
  const route = node.properties?.routes?.items ?? {};
  const bridge = rec(t.properties?.bridges);
  const part = (title: string, j: Json) => [`#### ${title}`, '', ...keysTable(j), ''];
  return [
    '## Topology keys (`topology:` step, and topology files)',
    '',
    'A `topology:` step takes what a topology file holds (`nslab up FILE`; the README\'s "Topology files"',
    'has a commented example). Links are veth pairs: `[a:eth0, b:eth0]` (node to node), `[a:eth0, br0]`',
    '(node to bridge). Editors complete it from `labs/topology.schema.json` (`nslab lab schema --topology`).',
    '',
    ...part('The topology', t),
    ...part('A node (`nodes: {NAME: ...}`, and `host:`)', node),
    ...part('An interface (`interfaces: {IFNAME: ...}`)', iface),
    ...part('A route (`routes: [...]`)', route),
    'A gateway must be of its destination\'s family (an IPv6 `via:` on an IPv4 route is refused before',
    'anything is built); a link-local gateway (`fe80::1`) needs `dev:` unless the node has one interface.',
    '',
    ...part('A bridge (`bridges: {NAME: ...}`)', bridge),
  ];
}

/**
 * docs/labs.md: every key of a lab file, every step kind and check kind with its keys, types,
 * defaults and an example, read from the zod schemas.
 * @returns the Markdown text
 */
export function labReference(): string {
  const lab = json(LabRaw);
  const step = json(StepRaw);
  return [
    '<!-- generated from src/model/lab.ts by `npm run lab-docs`; test/unit/lab-format.test.ts fails when it differs: do not edit -->',
    '# Writing a lab: the lab.yaml reference',
    '',
    'A lab is a folder `labs/NN-topic/` with `lab.yaml` (its steps, narration in English and Chinese, and what',
    'must hold after each step) and `README.md` (what it teaches, which course note it reproduces, its diagram).',
    '',
    '- `nslab lab new 16-nat-router` makes a folder with a lab that passes `lab check`, to edit.',
    '- `nslab lab check 16` (or `nslab lab check ./labs/16-nat-router`) reads the lab without root and builds',
    '  nothing: every problem at once, as `FILE:LINE: error: KEY: message`, with "did you mean" for a typo, nodes',
    '  used before the step that makes them, gateways of the wrong address family, and a warning for a check',
    '  or a network command (iptables, ip route/addr, sysctl -w) that runs in the host because it says no',
    '  `in:`/`from:` (write `in: host` when that is meant). `lab run` and `lab script` run it first.',
    '- `nslab lab run 16` builds it in a private sandbox, step by step (commands shown, checks ✓/✗), then takes',
    '  it down; `nslab lab up 16 --until 3` leaves it as step 3 left it (then `graph lab 16 --live`,',
    '  `verify`, `pingall lab 16`, `lab down 16`); `nslab lab script 16` prints it as a plain shell script.',
    '- `nslab lab schema` prints the JSON Schema of lab.yaml (`--topology`: of a topology file). Every shipped lab',
    '  starts with `# yaml-language-server: $schema=../lab.schema.json`, which gives completion and checking in',
    '  editors with the YAML language server (VS Code\'s YAML extension, Neovim, ...).',
    '',
    'Each step runs its `do:` actions in order, then its `expect:` checks. Everything an action makes is',
    'taken down at the end, in reverse order (a `run` by its `undo:`). Commands are argv lists: no shell,',
    'no quotes, no pipes (write `[sh, -c, "a | b"]` when a pipe is what you mean). A node is a named',
    'network namespace; `host` is the namespace the lab runs in (its sandbox): actions and checks without',
    '`in:`/`from:` run there.',
    '',
    '## The file',
    '',
    ...keysTable(lab),
    '',
    '## A step',
    '',
    ...keysTable(step),
    '',
    '## Step kinds (`do:`)',
    '',
    ...ACTION_KINDS.flatMap((k) => kindSection(k, 'do')),
    '## Check kinds (`expect:` and `verify:`)',
    '',
    'Every check takes `timeout:` (seconds, default 5; `rate` 15): past it, it fails as "timeout".',
    '',
    ...CHECK_KINDS.flatMap((k) => kindSection(k, 'expect')),
    ...topologySection(),
    '## A whole lab',
    '',
    'The scaffold `nslab lab new` writes (it passes `lab check` and `lab run` as it is):',
    '',
    '```yaml',
    '# yaml-language-server: $schema=../lab.schema.json',
    yamlOf(
      {
        title: { en: 'Two nodes and a veth pair', zh: '两个节点与一对 veth' },
        teaches: { en: 'A veth pair joins two network namespaces.', zh: '一对 veth 连接两个 network namespace。' },
        note: { en: 'notes 000, "network namespace"', zh: '笔记 000，"network namespace"' },
        steps: [
          {
            say: { en: 'Two nodes a and b joined by a veth pair.', zh: '两个节点 a、b 通过一对 veth 相连。' },
            do: [{ topology: { name: '99-example', nodes: { a: { interfaces: { eth0: { addresses: ['10.99.0.1/24'] } } }, b: { interfaces: { eth0: { addresses: ['10.99.0.2/24'] } } } }, links: [['a:eth0', 'b:eth0']] } }, { run: 'ip -br addr', in: 'a' }],
            expect: [{ ping: { from: 'a', to: '10.99.0.2' } }],
          },
        ],
      },
    ).trimEnd(),
    '```',
    '',
  ].join('\n');
}
