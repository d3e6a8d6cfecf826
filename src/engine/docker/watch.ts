// `nslab docker watch`: follows `docker events` and keeps containers' attaches in step with their life.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Runner } from '../../exec/runner.js';
import { readDockerRecord, readDockerRecords } from '../../model/docker.js';
import { cleanupContainer, containerState, goneContainers, restoreContainer, type LifecycleReport } from './lifecycle.js';

/** One event of `docker events --format '{{json .}}'` (the fields used). */
interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  id?: string;
}

/** Options of {@link watchDocker}. */
export interface WatchOptions {
  /** Called with one line per thing done (`start c1: attached c1:eth1 to br1`). */
  log(line: string): void;
  /** Resolves when the watcher is to stop (SIGINT/SIGTERM); the `docker events` child is then ended. */
  stop: Promise<void>;
  /** Called once the initial pass is done and events are being followed (tests wait for it). */
  ready?(): void;
}

/**
 * Follows Docker's container events: on `start`, applies the container's persisted attaches again
 * (a restart loses them: pipework#6); on `die`, removes what is left of its attaches (OVS ports, DHCP
 * clients, bridges nslab made that nothing uses); on `destroy`, forgets its persisted attaches too.
 * First it catches up: containers removed while nobody watched are cleaned, running ones whose
 * persisted attaches are missing get them. Events are handled one at a time, in order.
 * @param r the runner (docker, ip, ovs-vsctl run through it)
 * @returns when `o.stop` resolves or `docker events` ends (exit code of docker events, 0 on stop)
 */
export async function watchDocker(r: Runner, o: WatchOptions): Promise<number> {
  const say = (what: string, rep: LifecycleReport) => {
    for (const d of rep.done) o.log(`${what} ${rep.container.name}: ${d}`);
    for (const e of rep.errors) o.log(`${what} ${rep.container.name}: failed: ${e}`);
  };
  // Events first, so that nothing between the catch-up and the subscription is missed.
  const child = spawn('docker', ['events', '--format', '{{json .}}', '--filter', 'type=container', '--filter', 'event=start', '--filter', 'event=die', '--filter', 'event=destroy'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const ended = new Promise<number>((res) => child.once('close', (code) => res(code ?? 0)));
  let queue: Promise<void> = Promise.resolve();
  const handle = (ev: DockerEvent) => {
    const id = ev.Actor?.ID ?? ev.id;
    if (!id) return;
    queue = queue.then(async () => {
      try {
        if (ev.Action === 'start') {
          if (readDockerRecord(id, true)?.attaches.length) say('start', await restoreContainer(r, id));
        } else if (ev.Action === 'die' || ev.Action === 'destroy') {
          if (readDockerRecord(id, false) || readDockerRecord(id, true)) say(ev.Action, await cleanupContainer(r, id, { forget: ev.Action === 'destroy' }));
        }
      } catch (err) {
        o.log(`${ev.Action} ${id.slice(0, 12)}: failed: ${(err as Error).message}`);
      }
    });
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      handle(JSON.parse(line) as DockerEvent);
    } catch {
      /* not an event line */
    }
  });
  queue = queue.then(async () => {
    for (const g of await goneContainers(r)) say('gone', await cleanupContainer(r, g.id, { forget: true }));
    for (const rec of readDockerRecords(true)) {
      const c = await containerState(r, rec.id);
      if (c?.running) say('start', await restoreContainer(r, rec.id).catch((e: Error) => ({ container: c, done: [], errors: [e.message] })));
    }
    o.ready?.();
  });
  const code = await Promise.race([ended, o.stop.then(() => -1)]);
  if (code === -1) {
    child.kill('SIGTERM');
    await ended;
    await queue;
    return 0;
  }
  await queue;
  if (code !== 0) o.log(`docker events ended (exit code ${code}): ${stderr.trim().split('\n').pop() ?? ''}`);
  return code;
}
