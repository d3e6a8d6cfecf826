// Docker guests' records: which container (by full ID, with its name) has which attaches, and which
// of them are to be applied again whenever it starts (`--persist`, pipework's `--save`).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../paths.js';
import type { AttachRequest } from './attach.js';

/** One attach of a container, as `nslab attach`/`pipework` was asked for it (guest = the full ID). */
export interface DockerAttach {
  ifname: string;
  /** The host interface: a Linux bridge, an OVS bridge or a macvlan parent. */
  host: string;
  request: AttachRequest;
  /** Applied again by `nslab docker watch` (or `pipework --restore`) each time the container starts. */
  persist: boolean;
  /** ISO time of the attach. */
  at: string;
}

/** Everything nslab holds about one container. */
export interface DockerRecord {
  /** The full container ID (64 hex digits): the identity in every mark, record and pid file. */
  id: string;
  /** Its name when last seen (without Docker's leading `/`). */
  name: string;
  attaches: DockerAttach[];
}

/**
 * Where records live: the attaches of this boot under the state folder (tmpfs, as the kernel objects
 * are), the persisted ones under `$NSLAB_DATA_DIR` (default /var/lib/nslab: a container with a restart
 * policy comes back after a reboot, and so must its attaches). `nslab sandbox` points both inside it.
 */
export function dockerDir(persist: boolean): string {
  return persist ? join(process.env.NSLAB_DATA_DIR || '/var/lib/nslab', 'docker') : join(stateDir(), 'docker');
}

/** A full container ID: 64 lowercase hex digits (Docker's `Id`). */
export function isContainerId(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}

/** Reads one record, or null. */
export function readDockerRecord(id: string, persist: boolean): DockerRecord | null {
  try {
    return JSON.parse(readFileSync(join(dockerDir(persist), `${id}.json`), 'utf8')) as DockerRecord;
  } catch {
    return null;
  }
}

/** Every record of one kind (this boot's, or the persisted), unreadable files left out. */
export function readDockerRecords(persist: boolean): DockerRecord[] {
  let files: string[] = [];
  try {
    files = readdirSync(dockerDir(persist)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.flatMap((f) => {
    const r = readDockerRecord(f.slice(0, -5), persist);
    return r ? [r] : [];
  });
}

/** Writes a record atomically (write then rename); an empty record is removed. */
export function writeDockerRecord(rec: DockerRecord, persist: boolean): void {
  const dir = dockerDir(persist);
  const file = join(dir, `${rec.id}.json`);
  if (rec.attaches.length === 0) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, `${JSON.stringify(rec, null, 1)}\n`);
  renameSync(`${file}.tmp`, file);
}

/**
 * The container a user's word names among the records: a full ID, a unique ID prefix (Docker accepts
 * any unique prefix), or a name (with or without `/`), as `docker inspect` resolves them: for a
 * container Docker no longer knows (removed), whose attaches a user still detaches by the word typed.
 * @returns the full ID, or null when no record (or more than one, for a prefix) matches
 */
export function findRecordedContainer(word: string): { id: string; name: string } | null {
  const all = new Map<string, string>();
  for (const p of [false, true]) for (const r of readDockerRecords(p)) all.set(r.id, r.name);
  const w = word.replace(/^\//, '');
  if (all.has(w)) return { id: w, name: all.get(w)! };
  const byName = [...all].filter(([, n]) => n === w);
  if (byName.length === 1) return { id: byName[0]![0], name: byName[0]![1] };
  if (/^[0-9a-f]{1,63}$/.test(w)) {
    const pre = [...all].filter(([id]) => id.startsWith(w));
    if (pre.length === 1) return { id: pre[0]![0], name: pre[0]![1] };
  }
  return null;
}
