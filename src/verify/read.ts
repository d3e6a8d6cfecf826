// Reads the kernel for verify: in every netns a topology uses, exactly what its expectations need.
import type { Runner } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';
import { readAddrs } from '../kernel/addr.js';
import { readLinks } from '../kernel/link.js';
import { listNetnsIds } from '../kernel/netns.js';
import { readRoutes } from '../kernel/route.js';
import { readSysctl } from '../kernel/sysctl.js';
import { readQdiscs } from '../kernel/tc.js';
import type { KernelView, NetnsReading } from './diff.js';
import type { Reading } from './expect.js';

/**
 * Reads what `needs` asks for (`ip -j -d link`, `ip -j addr`, `ip -j [-6] route`, `sysctl -n`), each
 * netns through the runner's `netns` (nsenter). A named netns that does not exist is left out of
 * `readings` (verify reports it missing); nothing is changed.
 * @param r the runner
 * @param needs readings per netns (`''` = the namespace nslab runs in), from {@link readingsFor}
 * @param concurrency how many netns are read at once
 * @throws NslabError `COMMAND_FAILED` when a reading fails in a netns that exists
 */
export async function readKernel(r: Runner, needs: Map<string, Set<Reading>>, concurrency = 8): Promise<KernelView> {
  const netns = await listNetnsIds(r);
  const readings = new Map<string, NetnsReading>();
  const todo = [...needs].filter(([k]) => k === '' || netns.has(k));
  await mapLimit(todo, concurrency, async ([k, what]) => {
    const ns = k === '' ? null : k;
    const rd: NetnsReading = { links: [], addrs: [], routes4: [], routes6: [], sysctls: {} };
    if (what.has('links')) rd.links = await readLinks(r, ns);
    if (what.has('addrs')) rd.addrs = await readAddrs(r, ns);
    if (what.has('routes4')) rd.routes4 = await readRoutes(r, ns, 4);
    if (what.has('routes6')) rd.routes6 = await readRoutes(r, ns, 6);
    for (const w of what) {
      if (!w.startsWith('sysctl:')) continue;
      const key = w.slice('sysctl:'.length);
      rd.sysctls[key] = await readSysctl(r, ns, key).catch(() => null);
    }
    for (const w of what) {
      if (!w.startsWith('qdisc:')) continue;
      const dev = w.slice('qdisc:'.length);
      // An interface that is not there is reported by its link check; its qdiscs are not read.
      if (!rd.links.some((l) => l.ifname === dev)) continue;
      (rd.qdiscs ??= {})[dev] = await readQdiscs(r, ns, dev).catch(() => null);
    }
    readings.set(k, rd);
  });
  return { netns, readings };
}
