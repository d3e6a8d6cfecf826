// The little state nslab keeps on disk: only what the kernel cannot tell afterwards (a sysctl's value
// before nslab changed it). Ownership is never read from here: it is discovered from marks.
import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { stateDir } from '../paths.js';

export { stateDir };

/** Topology state: the previous values of sysctls nslab set in the current namespace. */
export interface TopologyState {
  hostSysctls: Record<string, string>;
}

function file(name: string): string {
  return join(stateDir(), 'topologies', `${name}.json`);
}

/** Reads a topology's state, or null when none was saved. */
export async function readState(name: string): Promise<TopologyState | null> {
  try {
    return JSON.parse(await readFile(file(name), 'utf8')) as TopologyState;
  } catch {
    return null;
  }
}

/** Saves a topology's state (write to a temporary file, then rename). */
export async function writeState(name: string, st: TopologyState): Promise<void> {
  await mkdir(join(stateDir(), 'topologies'), { recursive: true });
  const tmp = `${file(name)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(st, null, 2));
  await rename(tmp, file(name));
}

/** Removes a topology's state. */
export async function removeState(name: string): Promise<void> {
  await rm(file(name), { force: true });
  await rmdir(join(stateDir(), 'topologies')).catch(() => undefined); // the last one: the folder goes too
}
