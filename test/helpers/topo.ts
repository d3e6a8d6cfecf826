// Test helpers for topology files: write YAML to a temp file and load it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTopology } from '../../src/engine/topology.js';
import type { Model } from '../../src/model/types.js';

const made: string[] = [];
// The temp folders go when the test file ends (afterAll here is the importing file's own).
if (typeof afterAll === 'function') afterAll(() => made.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Writes `yaml` to a fresh temp file named NAME.yaml and returns its path (removed after the test file). */
export function topoFile(name: string, yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-test-'));
  made.push(dir);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/** Loads a topology from YAML text. */
export async function model(name: string, yaml: string): Promise<Model> {
  return loadTopology(topoFile(name, yaml));
}

/** Repo path of an example. */
export function example(name: string): string {
  return join(process.cwd(), 'examples', `${name}.yaml`);
}
