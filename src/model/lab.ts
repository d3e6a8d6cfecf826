// The lab format (labs/NN-topic/lab.yaml): zod-validated, unknown keys refused with their line.
import { readdir } from 'node:fs/promises';
import { parse } from 'yaml';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NslabError } from '../errors.js';
import { loadYaml } from './load.js';
import { TopologyRaw } from './schema.js';

const Text = z.strictObject({ en: z.string(), zh: z.string() });
/** A command line: words split on blanks (no shell), or an argv list. `${NAME}` is a spawned process's PID. */
const Cmd = z.union([z.string().min(1), z.array(z.string()).min(1)]);
const Where = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { message: 'expected a node (netns) name or "host"' }).default('host');

const Action = z.union([
  z.strictObject({ run: Cmd, in: Where, undo: Cmd.optional(), show: z.boolean().default(true) }),
  z.strictObject({ spawn: Cmd, in: Where, as: z.string().regex(/^[a-z][a-z0-9_]*$/) }),
  z.strictObject({ topology: TopologyRaw }),
  z.strictObject({ attach: z.string().min(1) }),
  /** nslab's own command (network create, node run, ...), run as a child; its commands are shown. */
  z.strictObject({ nslab: Cmd, undo: Cmd.optional(), in: Where }),
  z.strictObject({ service: z.literal('ovs') }),
  z.strictObject({ service: z.literal('dnsmasq'), iface: z.string(), range: z.tuple([z.string(), z.string()]), in: Where }),
]);

const Ping = z.strictObject({ from: Where, to: z.string(), ok: z.boolean().default(true), error: z.string().optional() });
const Expect = z.union([
  z.strictObject({ ping: Ping }),
  z.strictObject({ http: z.strictObject({ from: Where, url: z.string().url(), contains: z.string(), ok: z.boolean().default(true) }) }),
  z.strictObject({ tcp: z.strictObject({ from: Where, to: z.string(), port: z.number().int(), ok: z.boolean().default(true) }) }),
  z.strictObject({ link: z.strictObject({ in: Where, name: z.string(), exists: z.boolean().default(true), master: z.string().optional(), kind: z.string().optional(), up: z.boolean().optional() }) }),
  z.strictObject({ addr: z.strictObject({ in: Where, dev: z.string(), address: z.string(), exists: z.boolean().default(true) }) }),
  z.strictObject({ route: z.strictObject({ in: Where, line: z.string(), exists: z.boolean().default(true) }) }),
  z.strictObject({ output: z.strictObject({ run: Cmd, in: Where, contains: z.string(), ok: z.boolean().default(true) }) }),
  z.strictObject({ ovs_tag: z.strictObject({ port: z.string(), tag: z.number().int() }) }),
  z.strictObject({ iptables: z.strictObject({ in: Where, table: z.string().default('filter'), rule: z.string(), exists: z.boolean().default(true) }) }),
  z.strictObject({ rate: z.strictObject({ server: Where, client: Where, to: z.string(), max_mbit: z.number().positive(), min_mbit: z.number().nonnegative().default(0) }) }),
]);

const Step = z.strictObject({ say: Text, do: z.array(Action).default([]), expect: z.array(Expect).default([]) });

/** A lab file. */
export const LabRaw = z.strictObject({
  title: Text,
  teaches: Text,
  note: z.string(),
  steps: z.array(Step).min(1),
  /** What holds once the lab is complete (`lab verify`); default: the last step's expectations. */
  verify: z.array(Expect).optional(),
});

export type Lab = z.output<typeof LabRaw> & { id: string; dir: string };
export type LabAction = z.output<typeof Action>;
export type LabExpect = z.output<typeof Expect>;

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
 * Loads a lab by id (`01`, `1` or the folder name); `${dir}` in its commands becomes its folder.
 * @throws NslabError NOT_FOUND (with the ids there are), INVALID_INPUT (FILE:LINE: path: problem)
 */
export async function loadLab(id: string): Promise<Lab> {
  const all = await listLabs();
  const want = /^\d$/.test(id) ? `0${id}` : id;
  const found = all.find((l) => l.id === want || l.dir.endsWith(`/${want}`));
  if (!found) throw new NslabError('INVALID_INPUT', `no lab ${JSON.stringify(id)}: expected one of ${all.map((l) => l.id).join(', ')}`);
  const { value } = await loadYaml(join(found.dir, 'lab.yaml'), LabRaw, 'a lab with title:, teaches:, note: and steps:');
  // `${dir}` in a command is the lab's folder (its topology file, for one): wherever nslab is installed.
  const withDir = JSON.parse(JSON.stringify(value).replaceAll('${dir}', JSON.stringify(found.dir).slice(1, -1))) as typeof value;
  return { ...withDir, id: found.id, dir: found.dir };
}

/**
 * Every lab's id, title and note for `lab ls`, read from the head of its lab.yaml (the lines before
 * `steps:`), so that listing 15 labs does not parse and validate all their steps (40 KB of YAML:
 * most of `lab ls`'s time). A lab whose head does not read falls back to the full {@link loadLab},
 * which names the problem.
 */
export async function labHeads(): Promise<Array<{ id: string; title: { en: string; zh: string }; note: string }>> {
  const { readFile } = await import('node:fs/promises');
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
