// Guests: what `attach` can wire into — a named netns (or nslab node), a PID, a Docker container.
import { existsSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_DIR } from '../../exec/runner.js';
import { NslabError } from '../../errors.js';
import { pidNetnsInode } from '../../kernel/netns.js';

/** A resolved guest. */
export interface Guest {
  /** As the user named it (netns name, PID, container name or ID). */
  ref: string;
  /** `path`: a netns given by its path (CNI_NETNS), see {@link pathGuest}. */
  kind: 'netns' | 'pid' | 'docker' | 'path';
  /** For the runner: a netns name, or `/proc/PID/ns/net`. */
  netns: string;
  /** For `ip link ... netns X`: a netns name or a PID. */
  ipNetns: string;
  pid?: number;
  docker?: { id: string; name: string };
}

/**
 * Finds a guest by name, in pipework's spirit but without its Docker-only, cgroup-v1 lookups:
 * 1. a named netns (`/run/netns/NAME`, which includes nslab nodes);
 * 2. a PID (all digits): its `/proc/PID/ns/net`, which must differ from nslab's own netns;
 * 3. a Docker container, through the real `docker inspect` (works with cgroup v1 and v2), retried
 *    while its PID is still 0 (starting), as pipework does.
 * @throws NslabError NOT_FOUND with one line saying what was tried
 */
export async function resolveGuest(r: Runner, ref: string): Promise<Guest> {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ref) && existsSync(`${NETNS_DIR}/${ref}`)) return { ref, kind: 'netns', netns: ref, ipNetns: ref };
  if (/^\d+$/.test(ref)) {
    const pid = Number(ref);
    let inode: number;
    try {
      inode = await pidNetnsInode(pid);
    } catch {
      throw new NslabError('NOT_FOUND', `guest ${ref}: no process with PID ${pid}`);
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

async function dockerGuest(r: Runner, ref: string): Promise<Guest | null> {
  for (let tries = 0; tries < 3; tries++) {
    const res = await r.run({ argv: ['docker', 'inspect', '--format', '{{.State.Pid}} {{.Id}} {{.Name}}', ref] }, { check: false }).catch(() => null);
    if (!res || res.exitCode !== 0) return null; // no docker, no daemon, or no such container
    const [pid, id, name] = res.stdout.trim().split(' ') as [string, string, string];
    if (pid !== '0') return { ref, kind: 'docker', netns: `/proc/${pid}/ns/net`, ipNetns: pid, pid: Number(pid), docker: { id, name: name.replace(/^\//, '') } };
    await new Promise((res2) => setTimeout(res2, 1000));
  }
  throw new NslabError('NOT_FOUND', `guest ${ref}: Docker container is not running (its PID is 0)`, { hint: `docker start ${ref}` });
}
