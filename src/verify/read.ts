// Reads the kernel for verify: in every netns a topology uses, exactly what its expectations need.
import type { Runner } from '../exec/runner.js';
import { mapLimit } from '../exec/limit.js';
import { existsSync } from 'node:fs';
import { queryJson } from '../exec/batch.js';
import { commandError, netnsPath, queryJsonEach } from '../exec/runner.js';
import { listNetnsIds } from '../kernel/netns.js';
import { readRoutes } from '../kernel/route.js';
import { readSysctl } from '../kernel/sysctl.js';
import { readQdiscs } from '../kernel/tc.js';
import type { KernelView, NetnsReading } from './diff.js';
import type { Reading } from './expect.js';

/**
 * Reads what `needs` asks for, each named netns in one `ip -j -d -batch` (links, addresses, IPv4
 * routes, as needed) run by `netns-batch.sh query` (exec/runner.ts queryJsonEach: one process per
 * core walks them all); IPv6 routes (`ip -6` is refused in a batch line) and sysctls, when asked for,
 * one process each. A named netns that does not exist is left out of `readings` (verify reports it
 * missing); nothing is changed.
 * @param r the runner
 * @param needs readings per netns (`''` = the namespace nslab runs in), from {@link readingsFor}
 * @param concurrency how many netns are read at once by the extra processes (IPv6 routes, sysctls, qdiscs)
 * @throws NslabError `COMMAND_FAILED` when a reading fails in a netns that exists
 */
export async function readKernel(r: Runner, needs: Map<string, Set<Reading>>, concurrency = 8): Promise<KernelView> {
  const netns = await listNetnsIds(r);
  const readings = new Map<string, NetnsReading>();
  const todo = [...needs].filter(([k]) => k === '' || netns.has(k));
  // The batch's lines: links and addresses always (a netns is read for one of them), IPv4 routes when
  // any netns needs them (one more line is cheaper than a second kind of job).
  const queries: string[][] = [['link', 'show'], ['addr', 'show'], ...(todo.some(([, w]) => w.has('routes4')) ? [['route', 'show']] : [])];
  const named = todo.filter(([k]) => k !== '').map(([k]) => k);
  const [each, host] = await Promise.all([
    queryJsonEach(r, named, queries, ['-d']),
    todo.some(([k]) => k === '') ? queryJson(r, null, queries, ['-d']) : Promise.resolve(null),
  ]);
  for (const [k, what] of todo) {
    const got = k === '' ? host! : each.get(k)!;
    if (got instanceof Error) {
      // Gone meanwhile: as if it had not been listed; any other failure is the kernel unreadable.
      if (existsSync(netnsPath(k))) throw commandError({ argv: ['ip', '-j', '-d', '-batch', '-'], netns: k }, 1, got.message);
      continue;
    }
    const [links = [], addrs = [], routes4 = []] = got;
    readings.set(k, {
      links: what.has('links') ? (links as NetnsReading['links']) : [],
      addrs: what.has('addrs') ? (addrs as NetnsReading['addrs']) : [],
      routes4: what.has('routes4') ? (routes4 as NetnsReading['routes4']) : [],
      routes6: [],
      sysctls: {},
    });
  }
  const extra = [...readings].filter(([k]) => [...needs.get(k)!].some((w) => w === 'routes6' || w.startsWith('sysctl:') || w.startsWith('qdisc:')));
  await mapLimit(extra, concurrency, async ([k, rd]) => {
    const ns = k === '' ? null : k;
    const what = needs.get(k)!;
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
  });
  return { netns, readings };
}
