// Reads a YAML file and validates it with zod, turning every problem into one line: FILE:LINE: PATH: what.
import { readFile } from 'node:fs/promises';
import { CORE_SCHEMA, load as jsYamlLoad } from 'js-yaml';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { invalid, NslabError } from '../errors.js';

/** A problem found in a parsed file, at a path of keys/indexes (mapped to a line by {@link loadYaml}). */
export class SpecError extends Error {
  constructor(
    readonly path: Array<string | number>,
    message: string,
  ) {
    super(message);
  }
}

/** A parsed, validated file, with a function that maps a path back to `FILE:LINE`. */
export interface Loaded<T> {
  value: T;
  where: (path: Array<string | number>) => string;
}

/**
 * Parses YAML `text` (named `file` in messages) and validates it against `schema`.
 * @param text the file's content
 * @param file the file's name, put before every message
 * @param schema the zod schema of the file
 * @param expected what the file should hold, for the message about an empty file (e.g. "a topology
 *   (nodes:, bridges:, links:)"); an empty file (nothing but blanks and comments) is refused, never
 *   read as an empty spec that would do nothing and exit 0
 * @returns the validated value and a path-to-`FILE:LINE` mapper
 * @throws NslabError `INVALID_INPUT` with one line `FILE:LINE: PATH: problem, got VALUE`, or
 *   `FILE: empty file: expected …`
 */
export function parseSpec<S extends z.ZodType>(text: string, file: string, schema: S, expected = 'a YAML document'): Loaded<z.output<S>> {
  // Fast path: js-yaml (YAML 1.2 core schema) reads a 4000-node file in a tenth of the time the yaml
  // package takes (45 against 450-1300 ms here), but keeps no positions. A file it reads and zod
  // accepts needs none until resolve finds a problem: `where` then parses again with the yaml package
  // for its lines. Anything else (a syntax error, a duplicate key, an empty file, a zod error) goes the
  // yaml package's way below, so every message stays as it was.
  let fast: unknown;
  try {
    fast = jsYamlLoad(text, { schema: CORE_SCHEMA });
  } catch {
    fast = undefined;
  }
  if (fast !== null && fast !== undefined && typeof fast === 'object') {
    const res = schema.safeParse(fast);
    if (res.success) {
      let slow: ((path: Array<string | number>) => string) | undefined;
      const where = (path: Array<string | number>) => (slow ??= parseWithLines(text, file, schema, expected).where)(path);
      return { value: res.data, where };
    }
  }
  return parseWithLines(text, file, schema, expected);
}

/** {@link parseSpec} with the yaml package: positions for every message (`FILE:LINE`). */
function parseWithLines<S extends z.ZodType>(text: string, file: string, schema: S, expected: string): Loaded<z.output<S>> {
  const lineCounter = new LineCounter();
  // uniqueKeys off: the yaml package compares each key with every earlier one of its map (quadratic:
  // 2.3 s of an 8000-node file's parse); duplicateKey below does the same check with a Set.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const dup = doc.errors.length === 0 ? duplicateKey(doc.contents) : null;
  if (doc.errors.length > 0 || dup !== null) {
    const [pos, message] = dup !== null ? [dup, 'Map keys must be unique'] : [doc.errors[0]!.pos[0], doc.errors[0]!.message];
    const line = lineCounter.linePos(pos).line;
    throw invalid(`${file}:${line}: not valid YAML: ${message.split('\n')[0]}`);
  }
  const where = (path: Array<string | number>) => `${file}:${lineOf(doc, lineCounter, path)}`;
  // `doc.contents` is null for an empty file, one of only comments, and a lone `---` or `~`/`null`.
  const raw: unknown = doc.toJS();
  if (doc.contents === null || raw === null || raw === undefined) throw invalid(`${file}: empty file: expected ${expected}`);
  const res = schema.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      throw invalid(`${where([...path, key])}: ${fmtPath([...path, key])}: unknown key ${JSON.stringify(key)}`, 'check its spelling against the documented keys (nslab --help, README)');
    }
    if (issue.code === 'invalid_key') {
      const key = path[path.length - 1];
      const inner = (issue as { issues?: Array<{ message: string }> }).issues?.[0]?.message ?? issue.message;
      throw invalid(`${where(path)}: ${fmtPath(path)}: bad key ${JSON.stringify(key)}: ${inner}`);
    }
    const got = valueAt(raw, path);
    const gotText = got === undefined || got === null ? 'nothing' : JSON.stringify(got);
    // zod says "Invalid input: expected object, received null": the value is named once, in our words.
    const msg = issue.code === 'invalid_type' && issue.message.startsWith('Invalid input') ? `expected ${(issue as { expected?: string }).expected === 'object' ? 'a mapping such as {} (keys indented under it)' : `a ${String((issue as { expected?: string }).expected)}`}` : issue.message;
    throw invalid(`${where(path)}: ${fmtPath(path) || '(top level)'}: ${msg}, got ${gotText}`);
  }
  return { value: res.data, where };
}

/** Reads and validates a YAML file; see {@link parseSpec} (`expected` names what an empty file lacks). */
export async function loadYaml<S extends z.ZodType>(file: string, schema: S, expected?: string): Promise<Loaded<z.output<S>>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NslabError('INVALID_INPUT', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as NodeJS.ErrnoException).code === 'EISDIR' ? 'it is a directory; expected a topology file (YAML)' : ((err as NodeJS.ErrnoException).code ?? (err as Error).message)}`, { cause: err });
  }
  return parseSpec(text, file, schema, expected);
}

/** Converts a {@link SpecError} into the one-line `INVALID_INPUT` error, with the file position. */
export function specErrorToInvalid(err: unknown, where: (path: Array<string | number>) => string): unknown {
  if (err instanceof SpecError) return invalid(err.path.length ? `${where(err.path)}: ${fmtPath(err.path)}: ${err.message}` : `${where(err.path)}: ${err.message}`);
  return err;
}

/** `nodes.h1.interfaces.eth0.mtu`, `links[2][0]`. */
export function fmtPath(path: Array<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function valueAt(root: unknown, path: Array<string | number>): unknown {
  let cur: unknown = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/**
 * The 1-based line of the deepest node on `path` that exists: a key's own line when the path ends at
 * a key (also when its value is a block, which starts on the line below), else the value's.
 */
export function lineOf(doc: Document, lc: LineCounter, path: Array<string | number>): number {
  const last = path[path.length - 1];
  const parent = path.length === 0 ? null : path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (isMap(parent)) {
    const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === last);
    const r = pair && isScalar(pair.key) ? pair.key.range : undefined;
    if (r) return lc.linePos(r[0]).line;
  }
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n);
    const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true);
    if (n < path.length && isMap(node)) {
      const key = path[n];
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === key);
      const r = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (r) return lc.linePos(r[0]).line;
    }
    const range = (node as { range?: [number, number, number] } | null)?.range;
    if (range) return lc.linePos(range[0]).line;
  }
  return 1;
}

/**
 * The offset of the first key that repeats an earlier key of its map, anywhere under `node`, or null.
 * YAML 1.2 (§3.2.1.1) requires unique keys; scalar keys are compared by value, as the yaml package does,
 * others by their text.
 */
function duplicateKey(node: unknown): number | null {
  if (isSeq(node)) {
    for (const it of node.items) {
      const d = duplicateKey(it);
      if (d !== null) return d;
    }
  } else if (isMap(node)) {
    const seen = new Set<unknown>();
    for (const it of node.items) {
      if (!isPair(it)) continue;
      const k = isScalar(it.key) ? it.key.value : String(it.key);
      if (seen.has(k)) return (it.key as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
      seen.add(k);
      const d = duplicateKey(it.value);
      if (d !== null) return d;
    }
  }
  return null;
}
