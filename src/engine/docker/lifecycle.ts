// Docker containers through their life: attaches applied again when a container starts, and all of
// a container's removed when it dies or is removed (pipework#6: "interfaces gone after restart").
import type { Runner } from '../../exec/runner.js';
import { NslabError } from '../../errors.js';
import { readLinks } from '../../kernel/link.js';
import { readDockerRecord, readDockerRecords, writeDockerRecord, findRecordedContainer, type DockerRecord } from '../../model/docker.js';
import { attach, detach, removeBridgeIfUnused } from '../attach/attach.js';

/** A container as `docker inspect` sees it now, or null when Docker does not know it (removed). */
export interface ContainerState {
  id: string;
  name: string;
  running: boolean;
  /** Its init's PID (0 when not running). */
  pid: number;
}

/**
 * Reads one container's state.
 * @param ref a name, an ID or a unique ID prefix
 * @returns null when Docker does not know it
 * @throws NslabError MISSING_TOOL when no daemon answers (or no docker CLI)
 */
export async function containerState(r: Runner, ref: string): Promise<ContainerState | null> {
  const res = await r.run({ argv: ['docker', 'inspect', '--type', 'container', '--format', '{{.Id}} {{.Name}} {{.State.Running}} {{.State.Pid}}', ref] }, { check: false });
  if (res.exitCode !== 0) {
    // Only Docker's own "no such container" means gone: a daemon that does not answer says nothing
    // about its containers (a watcher that took it for "all removed" would tear every attach down).
    if (/No such (container|object)/i.test(res.stderr)) return null;
    throw new NslabError('MISSING_TOOL', `docker inspect ${ref}: ${res.stderr.trim().split('\n').pop() ?? `exit code ${res.exitCode}`}`, { hint: 'start dockerd, or point DOCKER_HOST at yours' });
  }
  const [id, name, running, pid] = res.stdout.trim().split(' ') as [string, string, string, string];
  return { id, name: name.replace(/^\//, ''), running: running === 'true', pid: Number(pid) || 0 };
}

/** What {@link restoreContainer} or {@link cleanupContainer} did, one line each. */
export interface LifecycleReport {
  container: { id: string; name: string };
  done: string[];
  errors: string[];
}

/**
 * Applies a container's persisted attaches again (`nslab attach --persist`, `pipework --save`): what
 * `nslab docker watch` does on its `start` event and `pipework --restore` does by hand. An attach
 * still in place is left as it is.
 * @param ref a name, an ID or a unique prefix of a running container
 * @throws NslabError NOT_FOUND when Docker does not know the container or nothing is persisted for it
 */
export async function restoreContainer(r: Runner, ref: string): Promise<LifecycleReport> {
  const c = await containerState(r, ref);
  if (!c) throw new NslabError('NOT_FOUND', `container ${JSON.stringify(ref)}: Docker knows no such container`);
  const rec = readDockerRecord(c.id, true);
  if (!rec?.attaches.length) throw new NslabError('NOT_FOUND', `container ${c.name}: no attach of it is persisted (nslab attach ... --persist, or pipework --save ...)`);
  const rep: LifecycleReport = { container: { id: c.id, name: c.name }, done: [], errors: [] };
  const have = c.pid ? new Set((await readLinks(r, `/proc/${c.pid}/ns/net`).catch(() => [])).map((l) => l.ifname)) : new Set<string>();
  for (const a of rec.attaches) {
    if (have.has(a.ifname)) continue; // still in place (a watcher started again): its DHCP client runs on
    try {
      await attach(r, { ...a.request, guest: c.id }, { persist: true });
      rep.done.push(`attached ${c.name}:${a.ifname} to ${a.host}`);
    } catch (err) {
      rep.errors.push(`${c.name}:${a.ifname} to ${a.host}: ${(err as Error).message}`);
    }
  }
  return rep;
}

/**
 * Removes everything of a container's attaches that is left once it died: OVS ports (their
 * interfaces went with the netns), DHCP clients and pid files, host ends, bridges nslab made that
 * nothing uses any more, and this boot's record. With `forget` (the container was removed), its
 * persisted attaches too.
 * @param id the full container ID (or a name/prefix nslab recorded)
 */
export async function cleanupContainer(r: Runner, id: string, o: { forget: boolean }): Promise<LifecycleReport> {
  const known = findRecordedContainer(id);
  const full = known?.id ?? id;
  const recs = [readDockerRecord(full, false), readDockerRecord(full, true)].filter((x): x is DockerRecord => x !== null);
  const rep: LifecycleReport = { container: { id: full, name: known?.name ?? full.slice(0, 12) }, done: [], errors: [] };
  const persisted = readDockerRecord(full, true);
  const ifnames = new Set(recs.flatMap((x) => x.attaches.map((a) => a.ifname)));
  const hosts = new Set(recs.flatMap((x) => x.attaches.map((a) => a.host)));
  for (const i of ifnames) {
    try {
      const d = await detach(r, full, i);
      rep.done.push(...d.removed);
    } catch (err) {
      if (!(err instanceof NslabError && err.code === 'NOT_FOUND')) rep.errors.push((err as Error).message);
    }
  }
  for (const h of hosts) if (await removeBridgeIfUnused(r, h).catch(() => false)) rep.done.push(`bridge ${h}`);
  // detach forgot each attach; the persisted ones come back unless the container is gone for good.
  if (persisted && !o.forget) {
    writeDockerRecord(persisted, true);
  } else if (persisted) {
    writeDockerRecord({ ...persisted, attaches: [] }, true);
    rep.done.push(`forgot ${persisted.attaches.length} persisted attach(es)`);
  }
  return rep;
}

/**
 * Containers nslab has records of that Docker no longer knows (removed while nobody watched): their
 * attaches are stale; `nslab clean` and `nslab docker watch` at its start remove them.
 * @returns full IDs with their recorded names
 */
export async function goneContainers(r: Runner): Promise<Array<{ id: string; name: string }>> {
  const all = new Map<string, string>();
  for (const p of [false, true]) for (const rec of readDockerRecords(p)) all.set(rec.id, rec.name);
  const out: Array<{ id: string; name: string }> = [];
  for (const [id, name] of all) if (!(await containerState(r, id))) out.push({ id, name });
  return out;
}
