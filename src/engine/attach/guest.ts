// Guests: what `attach` can wire into — a named netns (or nslab node), a PID, a Docker container.
import { existsSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_DIR } from '../../exec/runner.js';
import { NslabError } from '../../errors.js';
import { pidNetnsInode } from '../../kernel/netns.js';

/** A resolved guest. */
export interface Guest {
  /**
   * Its identity in marks, records and pid files: a netns name, a PID, or for a Docker container its
   * full ID whatever the user typed (a name, an ID prefix), so one container is one owner.
   */
  ref: string;
  /** As the user typed it. */
  typed?: string;
  /** `path`: a netns given by its path (CNI_NETNS), see {@link pathGuest}. */
  kind: 'netns' | 'pid' | 'docker' | 'path';
  /** For the runner: a netns name, or `/proc/PID/ns/net`. */
  netns: string;
  /** For `ip link ... netns X`: a netns name or a PID. */
  ipNetns: string;
  pid?: number;
  docker?: { id: string; name: string; /** `--net=container:X`: the container whose netns this is. */ netnsOf?: { id: string; name: string } };
  /** Said to the user beside the result (a container sharing another's netns). */
  notes?: string[];
}

/**
 * Finds a guest by name, in pipework's spirit but without its Docker-only, cgroup-v1 lookups:
 * 1. a named netns (`/run/netns/NAME`, which includes nslab nodes);
 * 2. a PID (all digits): its `/proc/PID/ns/net`, which must differ from nslab's own netns (no such
 *    process: a Docker container whose ID starts with those digits, if there is one);
 * 3. a Docker container, through the real `docker inspect` (works with cgroup v1 and v2), retried
 *    while its PID is still 0 (starting), as pipework does; identified by its full ID. A container of
 *    `--net=host` is refused (it would rewrite the host's own network); one of `--net=container:X`
 *    is X's netns, said in `notes` (Docker's network modes, docs.docker.com/network/#drivers).
 * @throws NslabError NOT_FOUND with one line saying what was tried; INVALID_INPUT for a guest whose
 *   netns is nslab's own (a PID of this netns, a `--net=host` container)
 */
export async function resolveGuest(r: Runner, ref: string): Promise<Guest> {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ref) && existsSync(`${NETNS_DIR}/${ref}`)) return { ref, kind: 'netns', netns: ref, ipNetns: ref };
  if (/^\d+$/.test(ref)) {
    const pid = Number(ref);
    let inode: number;
    try {
      inode = await pidNetnsInode(pid);
    } catch {
      // All digits and no such process: a Docker ID prefix may be all digits too (6% of 6-digit ones).
      const docker = await dockerGuest(r, ref);
      if (docker) return docker;
      throw new NslabError('NOT_FOUND', `guest ${ref}: no process with PID ${pid}, and no Docker container of that name or ID`);
    }
    if (inode === (await pidNetnsInode('self'))) {
      throw new NslabError('INVALID_INPUT', `guest ${ref}: PID ${pid} is in nslab's own netns, not a separate guest`, {
        hint: 'a process started with `ip netns exec NS cmd &` enters NS a moment later: wait until /proc/PID/ns/net changes',
      });
    }
    return { ref, kind: 'pid', netns: `/proc/${pid}/ns/net`, ipNetns: String(pid), pid };
  }
  const docker = await dockerGuest(r, ref);
  if (docker) return docker;
  throw new NslabError('NOT_FOUND', `guest ${JSON.stringify(ref)}: no netns of that name (ip netns list), not a PID, and no Docker container of that name`, {
    hint: 'create it first: ip netns add NAME, nslab node run NAME, or docker run --net=none --name NAME ...',
  });
}

/**
 * A guest whose netns a container runtime names by path (CNI's `CNI_NETNS`: `/run/netns/cni-…`,
 * `/proc/PID/ns/net`): nsenter and `ip link … netns PATH` take the path as it is (ip-link(8) opens a
 * NETNSNAME containing a slash as a file).
 * @param ref the name marks use for it (`cni:CONTAINERID`)
 * @param path absolute path of the netns file
 */
export function pathGuest(ref: string, path: string): Guest {
  return { ref, kind: 'path', netns: path, ipNetns: path };
}

/** One container as `docker inspect` sees it: PID (0 when not running), full ID, name, network mode. */
export interface ContainerInfo {
  pid: number;
  id: string;
  name: string;
  mode: string;
  running: boolean;
}

/**
 * `docker inspect` of one container, the one reader of it for guests and their lifecycle.
 * @param ref a name, a full ID or a unique ID prefix
 * @returns the container; `missing` when Docker says it has no such container; `unreachable` with
 *   Docker's message when no daemon (or no docker CLI) answered, which says nothing about containers
 */
export async function inspectContainer(r: Runner, ref: string): Promise<ContainerInfo | { missing: true } | { unreachable: string }> {
  const res = await r.run({ argv: ['docker', 'inspect', '--type', 'container', '--format', '{{.State.Pid}} {{.Id}} {{.Name}} {{.State.Running}} {{.HostConfig.NetworkMode}}', ref] }, { check: false }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
  if (res.exitCode !== 0) return /No such (container|object)/i.test(res.stderr) ? { missing: true } : { unreachable: res.stderr.trim().split('\n').pop() || `exit code ${res.exitCode}` };
  const [pid, id, name, running, mode] = res.stdout.trim().split(' ') as [string, string, string, string, string];
  return { pid: Number(pid) || 0, id, name: name.replace(/^\//, ''), running: running === 'true', mode: mode ?? '' };
}

/** A container found, or null (no such container, no daemon, no docker: then not a Docker guest). */
async function foundContainer(r: Runner, ref: string): Promise<ContainerInfo | null> {
  const c = await inspectContainer(r, ref);
  return 'id' in c ? c : null;
}

async function dockerGuest(r: Runner, ref: string): Promise<Guest | null> {
  for (let tries = 0; tries < 3; tries++) {
    const c = await foundContainer(r, ref);
    if (!c) return null;
    if (c.mode === 'host') {
      throw new NslabError('INVALID_INPUT', `guest ${ref}: Docker container ${c.name} runs in network mode "host" (--net=host): it has no netns of its own, and attaching would rewrite the host's network; expected a container with its own netns (--net=none, bridge or a user network)`);
    }
    if (c.pid === 0) {
      await new Promise((res2) => setTimeout(res2, 1000));
      continue;
    }
    const g: Guest = { ref: c.id, typed: ref, kind: 'docker', netns: `/proc/${c.pid}/ns/net`, ipNetns: String(c.pid), pid: c.pid, docker: { id: c.id, name: c.name } };
    const shared = /^container:(.+)$/.exec(c.mode);
    if (shared) {
      // Docker starts it in X's netns: the interfaces live there, so say so (pipework#4-style surprises).
      const x = await foundContainer(r, shared[1]!);
      if (x) {
        g.docker!.netnsOf = { id: x.id, name: x.name };
        g.notes = [`${ref} shares the network namespace of container ${x.name} (--net=container:${shared[1]}): attaching there, as ${c.name}'s`];
      }
    }
    if ((await pidNetnsInode(c.pid).catch(() => 0)) === (await pidNetnsInode('self'))) {
      throw new NslabError('INVALID_INPUT', `guest ${ref}: Docker container ${c.name} is in nslab's own netns (network mode ${JSON.stringify(c.mode)}), not a separate guest`);
    }
    return g;
  }
  throw new NslabError('NOT_FOUND', `guest ${ref}: Docker container is not running (its PID is 0)`, { hint: `docker start ${ref}` });
}
