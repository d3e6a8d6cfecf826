// The little state nslab keeps on disk: what the kernel cannot tell afterwards (a sysctl's value
// before nslab changed it), and which netns `up` made, by identity. Ownership comes from marks; the
// identities only spare `down` entering each netns to read its mark (see engine/topology.ts down).
import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { stateDir } from '../paths.js';

export { stateDir };

/** Topology state: the previous values of sysctls nslab set in the current namespace. */
export interface TopologyState {
  hostSysctls: Record<string, string>;
  /**
   * The netns `up` made and marked, name -> identity (kernel/netns.ts netnsIdentity: nsfs inode and
   * its change time in ns). Absent in files of older versions.
   */
  netns?: Record<string, string>;
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
  await writeFile(tmp, JSON.stringify(st));
  await rename(tmp, file(name));
}

/** Removes a topology's state. */
export async function removeState(name: string): Promise<void> {
  await rm(file(name), { force: true });
  await rmdir(join(stateDir(), 'topologies')).catch(() => undefined); // the last one: the folder goes too
}
