// The lab format (labs/NN-topic/lab.yaml): zod schemas, one per step kind and check kind, each with its
// description and example, from which docs/labs.md, `nslab lab schema` and `nslab lab check` are made.
import { readdir, readFile, stat } from 'node:fs/promises';
import { parse } from 'yaml';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NslabError } from '../errors.js';
import { loadYaml } from './load.js';
import { TopologyRaw } from './schema.js';

/** Text in both languages of the course: English and Chinese. */
export const Text = z.strictObject({ en: z.string().min(1), zh: z.string().min(1) }).describe('text in English and Chinese: `{en: ..., zh: ...}`');
/** A command line: words split on blanks (no shell), or an argv list. `${NAME}` is a spawned process's PID. */
const Cmd = z
  .union([z.string().min(1), z.array(z.string()).min(1)])
  .describe('a command: words split on blanks (no shell, no quotes), or an argv list `[sh, -c, "a | b"]`; `${NAME}` is the PID of the process spawned `as: NAME`, `${dir}` the lab\'s folder');
const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const Where = (what: string) => z.string().regex(NODE_RE, { message: 'expected a node (netns) name or "host"' }).default('host').describe(what);
const IN = 'the node (netns) it runs in; `host` is the namespace the lab runs in (its sandbox)';
const FROM = 'the node (netns) it is tried from; `host` is the namespace the lab runs in (its sandbox)';
/** Seconds a check may take. */
export const DEFAULT_TIMEOUT_S = 5;
const Timeout = z.number().positive().max(600).optional().describe(`seconds the check may take; past it the check fails as "timeout" (default ${DEFAULT_TIMEOUT_S}; rate: 15)`);
/** How a TCP connection or an HTTP request fails, as the kernel tells it apart. */
export const NetError = z
  .enum(['refused', 'unreachable', 'timeout'])
  .optional()
  .describe('how it must fail (implies `ok: false`): `refused` (a TCP reset or ICMP port unreachable: nothing listens, or REJECT), `unreachable` (no route, or ICMP host/net unreachable, or no ARP answer), `timeout` (no answer at all: a DROP rule)');

/** One kind of step action or check: its key, schema, what it does, and an example (checked by a test). */
export interface Kind {
  /** The key that names the kind (`run`, `ping`, ...); for `service`, its value too (`service: ovs`). */
  kind: string;
  schema: z.ZodType;
  about: string;
  example: unknown;
}

/** The step actions (`do:` list), in the order the reference lists them. */
export const ACTION_KINDS: Kind[] = [
  {
    kind: 'run',
    schema: z.strictObject({
      run: Cmd,
      in: Where(IN),
      undo: Cmd.optional().describe('the command that takes it back at teardown (run in the same node)'),
      show: z.boolean().default(true).describe('print its output under the command'),
      ok: z.boolean().default(true).describe('`false`: the command must fail (exit non-zero); students watch it fail and the lab goes on. A command that succeeds then fails the step'),
    }),
    about: 'Runs a command (shown as `$ ...`, and as a line of `lab script`). A command that fails stops the lab unless `ok: false`.',
    example: { run: 'iptables -t nat -A POSTROUTING -s 192.168.1.0/24 -o eth1 -j MASQUERADE', in: 'r1', undo: 'iptables -t nat -D POSTROUTING -s 192.168.1.0/24 -o eth1 -j MASQUERADE' },
  },
  {
    kind: 'spawn',
    schema: z.strictObject({
      spawn: Cmd,
      in: Where(IN),
      as: z.string().regex(/^[a-z][a-z0-9_]*$/).describe('its name: `${NAME}` in later commands is its PID; stopped at teardown'),
    }),
    about: 'Starts a long-running process in the background (a server, a process whose netns is looked at).',
    example: { spawn: 'busybox httpd -f -p 80 -h /usr/share/doc/busybox-static', in: 'srv', as: 'web' },
  },
  {
    kind: 'topology',
    schema: z.strictObject({ topology: TopologyRaw.describe('a topology as in a topology file (README, "Topology files"): nodes, bridges, links, routes, sysctls') }),
    about: 'Builds a whole topology at once (nodes, bridges, veths, addresses, routes, sysctls); its commands are shown. Taken down at teardown.',
    example: { topology: { name: 'lab99', nodes: { a: { interfaces: { eth0: { addresses: ['10.0.0.1/24'] } } }, b: { interfaces: { eth0: { addresses: ['10.0.0.2/24'] } } } }, links: [['a:eth0', 'b:eth0']] } },
  },
  {
    kind: 'attach',
    schema: z.strictObject({ attach: z.string().min(1).describe("pipework's arguments: `[HOSTIF] [-i IFNAME] GUEST IP/LEN[@GW] [MAC]`") }),
    about: 'Attaches a guest (netns, PID, container) to a host interface, as pipework does.',
    example: { attach: 'br1 -i eth1 ns1 192.168.1.1/24' },
  },
  {
    kind: 'nslab',
    schema: z.strictObject({
      nslab: Cmd,
      undo: Cmd.optional().describe('the nslab command that takes it back at teardown'),
      in: Where('the node (netns) nslab runs in (a lab\'s "VM"); `host` is the namespace the lab runs in'),
    }),
    about: "Runs nslab's own command (network create, node run, up FILE, ...); the plain commands it ran are shown.",
    example: { nslab: 'node run web --net nw-01', undo: 'node rm web' },
  },
  {
    kind: 'service: ovs',
    schema: z.strictObject({ service: z.literal('ovs').describe('`ovs`') }),
    about: 'Starts a private Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath) for the lab; stopped at teardown.',
    example: { service: 'ovs' },
  },
  {
    kind: 'service: dnsmasq',
    schema: z.strictObject({
      service: z.literal('dnsmasq').describe('`dnsmasq`'),
      iface: z.string().describe('the interface it serves DHCP on'),
      range: z.tuple([z.string(), z.string()]).describe('first and last address it leases (/24)'),
      in: Where(IN),
    }),
    about: 'Starts a DHCP server (dnsmasq, no DNS) on one interface; stopped at teardown.',
    example: { service: 'dnsmasq', iface: 'br1', range: ['192.168.1.100', '192.168.1.200'] },
  },
];

/** The checks (`expect:` and `verify:` lists), in the order the reference lists them. */
export const CHECK_KINDS: Kind[] = [
  {
    kind: 'ping',
    schema: z.strictObject({
      ping: z.strictObject({
        from: Where(FROM),
        to: z.string().describe('address (or name) pinged'),
        ok: z.boolean().default(true).describe('`false`: it must not answer'),
        error: z.string().optional().describe('with `ok: false`: text ping must print, such as "No route to host"'),
        timeout: Timeout,
      }),
    }),
    about: 'One ICMP echo (retried twice when it should answer).',
    example: { ping: { from: 'pc1', to: '203.0.113.1' } },
  },
  {
    kind: 'tcp',
    schema: z.strictObject({
      tcp: z.strictObject({
        from: Where(FROM),
        to: z.string().describe('address connected to'),
        port: z.number().int().min(1).max(65535).describe('TCP port'),
        ok: z.boolean().default(true).describe('`false`: it must not connect'),
        error: NetError,
        timeout: Timeout,
      }),
    }),
    about: 'A TCP handshake (connect, then close).',
    example: { tcp: { from: 'pc1', to: '203.0.113.1', port: 80, error: 'timeout' } },
  },
  {
    kind: 'http',
    schema: z.strictObject({
      http: z.strictObject({
        from: Where(FROM),
        url: z.url().describe('the URL fetched (http://...)'),
        contains: z.string().optional().describe('text the answer (status line and body) must hold (default: any answer)'),
        ok: z.boolean().default(true).describe('`false`: it must not answer (or not with `contains`)'),
        error: NetError,
        timeout: Timeout,
      }),
    }),
    about: 'An HTTP GET.',
    example: { http: { from: 'pc1', url: 'http://203.0.113.1/', contains: 'BusyBox' } },
  },
  {
    kind: 'output',
    schema: z.strictObject({
      output: z
        .strictObject({
          run: Cmd,
          in: Where(IN),
          contains: z.string().optional().describe('text its output (stdout and stderr, blanks squeezed) must hold'),
          match: z.string().optional().describe('a regular expression (JavaScript, multiline) its output must match; with `compare:`, its first group `( )` is the number compared'),
          absent: z.string().optional().describe('text its output must not hold'),
          compare: z.enum(['increases', 'decreases', 'unchanged']).optional().describe('the number `match:` captures, read before the step\'s `do:` and after it, must rise, fall or stay (counters: `iptables -nvxL`, `ip -s link`)'),
          ok: z.boolean().default(true).describe('`false`: `contains:` must not be there (old spelling of `absent:`)'),
          timeout: Timeout,
        })
        .refine((o) => o.contains !== undefined || o.match !== undefined || o.absent !== undefined, { message: 'expected contains:, match: or absent: (what the output must show)' })
        .refine((o) => o.compare === undefined || o.match !== undefined, { message: 'compare: needs match: with a group ( ) around the number' }),
    }),
    about: "Runs a command (not shown, not scripted) and looks at what it prints. The command's exit code does not count.",
    example: { output: { run: 'iptables -t nat -nvxL POSTROUTING', in: 'r1', match: '^\\s*(\\d+)\\s+\\d+\\s+MASQUERADE', compare: 'increases' } },
  },
  {
    kind: 'link',
    schema: z.strictObject({
      link: z.strictObject({
        in: Where(IN),
        name: z.string().describe('interface name'),
        exists: z.boolean().default(true).describe('`false`: there must be no such interface'),
        master: z.string().optional().describe('the bridge it is a port of'),
        kind: z.string().optional().describe('its kind (veth, bridge, macvlan, vxlan, ...)'),
        up: z.boolean().optional().describe('administratively up (true) or down (false)'),
        timeout: Timeout,
      }),
    }),
    about: 'An interface, as `ip -d link` reports it.',
    example: { link: { in: 'host', name: 'pc1-eth0', master: 'lan1', kind: 'veth', up: true } },
  },
  {
    kind: 'addr',
    schema: z.strictObject({
      addr: z.strictObject({
        in: Where(IN),
        dev: z.string().describe('interface name'),
        address: z.string().describe('address with its prefix length, as `ip addr` prints it: 10.0.0.1/24'),
        exists: z.boolean().default(true).describe('`false`: the interface must not have it'),
        timeout: Timeout,
      }),
    }),
    about: 'An address on an interface.',
    example: { addr: { in: 'pc1', dev: 'eth0', address: '192.168.1.10/24' } },
  },
  {
    kind: 'route',
    schema: z.strictObject({
      route: z.strictObject({
        in: Where(IN),
        line: z.string().describe('the start of a line of `ip route show` (blanks squeezed): `default via 192.168.1.1 dev eth0`'),
        exists: z.boolean().default(true).describe('`false`: no line may start so'),
        timeout: Timeout,
      }),
    }),
    about: 'A route of the main table (IPv4).',
    example: { route: { in: 'pc1', line: 'default via 192.168.1.1' } },
  },
  {
    kind: 'iptables',
    schema: z.strictObject({
      iptables: z.strictObject({
        in: Where(IN),
        table: z.enum(['filter', 'nat', 'mangle', 'raw', 'security']).default('filter').describe('the table'),
        rule: z.string().describe('text a line of `iptables-save -t TABLE` must hold'),
        exists: z.boolean().default(true).describe('`false`: no line may hold it'),
        timeout: Timeout,
      }),
    }),
    about: 'A rule, as `iptables-save` prints it.',
    example: { iptables: { in: 'r1', table: 'nat', rule: '-A POSTROUTING -s 192.168.1.0/24 -o eth1 -j MASQUERADE' } },
  },
  {
    kind: 'ovs_tag',
    schema: z.strictObject({
      ovs_tag: z.strictObject({ port: z.string().describe('OVS port name'), tag: z.number().int().min(0).max(4095).describe('its VLAN tag'), timeout: Timeout }),
    }),
    about: "An Open vSwitch port's VLAN tag (the lab's own OVS, `service: ovs`).",
    example: { ovs_tag: { port: 'veth1', tag: 100 } },
  },
  {
    kind: 'rate',
    schema: z.strictObject({
      rate: z.strictObject({
        server: Where('the node iperf3 -s runs in'),
        client: Where('the node iperf3 -c runs in'),
        to: z.string().describe("the server's address"),
        max_mbit: z.number().positive().describe('at most this many Mbit/s'),
        min_mbit: z.number().nonnegative().default(0).describe('at least this many Mbit/s'),
        timeout: Timeout,
      }),
    }),
    about: 'TCP throughput measured by iperf3 for 2 s (a tc rate limit).',
    example: { rate: { server: 'b', client: 'a', to: '10.0.0.2', max_mbit: 1.2 } },
  },
];

const Action = z.union(ACTION_KINDS.map((k) => k.schema) as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]);
const Expect = z.union(CHECK_KINDS.map((k) => k.schema) as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]);

/** A step: narration, then what it does, then what must hold. */
export const StepRaw = z.strictObject({
  say: Text.describe('what the step shows, in both languages (printed before its commands)'),
  do: z.array(Action).default([]).describe('the actions, in order (step kinds below)'),
  expect: z.array(Expect).default([]).describe('what must hold after them (check kinds below)'),
});

/** A lab file. */
export const LabRaw = z.strictObject({
  title: Text.describe('the lab\'s title'),
  teaches: Text.describe('one or two sentences: what a student learns'),
  note: z.union([z.string().min(1), Text]).optional().describe('which course note it reproduces (a line, or `{en, zh}`)'),
  steps: z.array(StepRaw).min(1).describe('the steps, in order'),
  verify: z.array(Expect).optional().describe('what holds once the lab is complete (`lab verify`); default: the last step\'s `expect:`'),
});

/** A lab action of one kind; `service` actions are told apart by their value. */
export type LabAction =
  | { run: string | string[]; in: string; undo?: string | string[]; show: boolean; ok: boolean }
  | { spawn: string | string[]; in: string; as: string }
  | { topology: TopologyDoc }
  | { attach: string }
  | { nslab: string | string[]; undo?: string | string[]; in: string }
  | { service: 'ovs' }
  | { service: 'dnsmasq'; iface: string; range: [string, string]; in: string };
type NetErrorKind = 'refused' | 'unreachable' | 'timeout';
/** A check. */
export type LabExpect =
  | { ping: { from: string; to: string; ok: boolean; error?: string; timeout?: number } }
  | { tcp: { from: string; to: string; port: number; ok: boolean; error?: NetErrorKind; timeout?: number } }
  | { http: { from: string; url: string; contains?: string; ok: boolean; error?: NetErrorKind; timeout?: number } }
  | { output: { run: string | string[]; in: string; contains?: string; match?: string; absent?: string; compare?: 'increases' | 'decreases' | 'unchanged'; ok: boolean; timeout?: number } }
  | { link: { in: string; name: string; exists: boolean; master?: string; kind?: string; up?: boolean; timeout?: number } }
  | { addr: { in: string; dev: string; address: string; exists: boolean; timeout?: number } }
  | { route: { in: string; line: string; exists: boolean; timeout?: number } }
  | { iptables: { in: string; table: string; rule: string; exists: boolean; timeout?: number } }
  | { ovs_tag: { port: string; tag: number; timeout?: number } }
  | { rate: { server: string; client: string; to: string; max_mbit: number; min_mbit: number; timeout?: number } };
type TopologyDoc = z.output<typeof TopologyRaw>;
type Note = string | { en: string; zh: string };
/** A loaded lab: its file, validated, with its id and folder. */
export interface Lab {
  title: { en: string; zh: string };
  teaches: { en: string; zh: string };
  note?: Note;
  steps: Array<{ say: { en: string; zh: string }; do: LabAction[]; expect: LabExpect[] }>;
  verify?: LabExpect[];
  id: string;
  dir: string;
}

/** A lab's note in one language (a plain note is the same in both). */
export function noteText(note: Note | undefined, lang: 'en' | 'zh'): string {
  return note === undefined ? '' : typeof note === 'string' ? note : note[lang];
}

/** The labs directory of this installation (`labs/` beside `dist/`). */
export function labsDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, d = dirname(d)) if (existsSync(join(d, 'labs'))) return join(d, 'labs');
  return join(process.cwd(), 'labs');
}

/** Lab ids and folders, sorted: `01` -> `labs/01-netns-veth`. */
export async function listLabs(): Promise<Array<{ id: string; dir: string }>> {
  const dir = labsDir();
  const names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && /^\d\d-/.test(e.name)).map((e) => e.name).sort();
  return names.map((n) => ({ id: n.slice(0, 2), dir: join(dir, n) }));
}

/**
 * Finds a lab's folder: a shipped lab by id (`01`, `1` or the folder name), or any folder holding a
 * lab.yaml (a teacher's lab being written: `./labs/16-nat-router`, `.`).
 * @returns its id (the folder's two leading digits, or its name) and folder
 * @throws NslabError INVALID_INPUT naming the ids there are
 */
export async function findLab(id: string): Promise<{ id: string; dir: string }> {
  if (id.includes('/') || id === '.' || id === '..') {
    const dir = resolve(id);
    const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
    if (!isDir || !existsSync(join(dir, 'lab.yaml'))) throw new NslabError('INVALID_INPUT', `no lab in ${JSON.stringify(id)}: expected a folder holding a lab.yaml`);
    const name = basename(dir);
    return { id: /^\d\d-/.test(name) ? name.slice(0, 2) : name, dir };
  }
  const all = await listLabs();
  const want = /^\d$/.test(id) ? `0${id}` : id;
  const found = all.find((l) => l.id === want || l.dir.endsWith(`/${want}`));
  if (!found) throw new NslabError('INVALID_INPUT', `no lab ${JSON.stringify(id)}: expected one of ${all.map((l) => l.id).join(', ')}, or a folder holding a lab.yaml (./labs/16-nat-router)`);
  return found;
}

/**
 * Loads a lab by id or folder (see {@link findLab}); `${dir}` in its commands becomes its folder.
 * @throws NslabError NOT_FOUND (with the ids there are), INVALID_INPUT (FILE:LINE: path: problem)
 */
export async function loadLab(id: string): Promise<Lab> {
  const found = await findLab(id);
  const { value } = await loadYaml(join(found.dir, 'lab.yaml'), LabRaw, 'a lab with title:, teaches: and steps:');
  // `${dir}` in a command is the lab's folder (its topology file, for one): wherever nslab is installed.
  const withDir = JSON.parse(JSON.stringify(value).replaceAll('${dir}', JSON.stringify(found.dir).slice(1, -1))) as Omit<Lab, 'id' | 'dir'>;
  return { ...withDir, id: found.id, dir: found.dir };
}

/**
 * Every lab's id, title and note for `lab ls`, read from the head of its lab.yaml (the lines before
 * `steps:`), so that listing 15 labs does not parse and validate all their steps (40 KB of YAML:
 * most of `lab ls`'s time). A lab whose head does not read falls back to the full {@link loadLab},
 * which names the problem.
 */
export async function labHeads(): Promise<Array<{ id: string; title: { en: string; zh: string }; note: Lab['note'] }>> {
  const Head = LabRaw.pick({ title: true, teaches: true, note: true });
  return Promise.all(
    (await listLabs()).map(async (l) => {
      const text = await readFile(join(l.dir, 'lab.yaml'), 'utf8');
      const cut = text.search(/^steps:/m);
      const head = Head.safeParse(cut > 0 ? (parse(text.slice(0, cut)) as unknown) : null);
      if (head.success) return { id: l.id, title: head.data.title, note: head.data.note };
      const full = await loadLab(l.id);
      return { id: full.id, title: full.title, note: full.note };
    }),
  );
}
