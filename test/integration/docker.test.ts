// Docker containers for real (a dockerd of the test's own, in the sandbox): identity by full ID,
// lifecycle (DHCP client tied to the container, watch, persist/restore), refusals, bridge ownership.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { dhcpPidFile } from '../../src/engine/attach/attach.js';
import { readOvsPorts } from '../../src/kernel/ovs.js';
import { assertSandbox, runner } from '../helpers/kernel.js';
import { startDnsmasq, startDockerd, startOvs, type Dockerd, type Ovs } from '../helpers/daemons.js';

const LAUNCHER = join(process.cwd(), 'bin', 'nslab');
const nslab = (...args: string[]) => execa(LAUNCHER, args, { reject: false });
const sh = (...argv: string[]) => runner.run({ argv });
const shq = (...argv: string[]) => runner.run({ argv }, { check: false });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Polls `cond` every 100 ms for up to `ms`. */
async function until(cond: () => Promise<boolean> | boolean, ms = 8000): Promise<boolean> {
  for (let t = 0; t < ms; t += 100) {
    if (await cond()) return true;
    await sleep(100);
  }
  return cond();
}

let d: Dockerd;
let ovs: Ovs;
const pluginDir = mkdtempSync(join(tmpdir(), 'nslab-plugin-'));
const SOCK = join(pluginDir, 'nslab.sock');
const run = async (name: string, ...extra: string[]) => d.docker('run', '-d', '--name', name, ...extra, 'nslab-busybox:1', '/bin/sleep', '3600');
const pidOf = async (c: string) => Number(await d.docker('inspect', '-f', '{{.State.Pid}}', c));
const idOf = (c: string) => d.docker('inspect', '-f', '{{.Id}}', c);
const inC = async (c: string, ...argv: string[]) => (await runner.run({ argv, netns: `/proc/${await pidOf(c)}/ns/net` })).stdout;
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const rootLinks = async () => JSON.parse((await sh('ip', '-j', 'link', 'show')).stdout) as Array<{ ifname: string; master?: string; ifalias?: string }>;

beforeAll(async () => {
  await assertSandbox();
  d = await startDockerd({ plugins: { nslab: `unix://${SOCK}` } });
  ovs = await startOvs();
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await ovs?.stop();
  for (const br of ['br1', 'br5', 'br6']) await shq('ip', 'link', 'del', br);
  rmSync(pluginDir, { recursive: true, force: true });
}, 60_000);

afterEach(async () => {
  const ids = (await shq('docker', 'ps', '-aq')).stdout.split('\n').filter(Boolean);
  if (ids.length) await shq('docker', 'rm', '-f', ...ids);
  await nslab('clean');
});

describe('identity: a container is its full ID', () => {
  test('name, ID prefix and full ID are one owner; inspect shows the name; detach by any form, also after docker rm -f', async () => {
    await run('c2', '--net=none');
    const id = await idOf('c2');
    expect((await nslab('attach', 'c2', '--to', 'br1', '--ip', '10.6.0.2/24', '-i', 'eth1')).exitCode).toBe(0);
    expect((await nslab('pipework', 'br1', '-i', 'eth2', id.slice(0, 6), '10.6.1.2/24')).exitCode).toBe(0);
    expect((await nslab('pipework', 'ovs-br6', '-i', 'eth8', id, '10.6.8.2/24')).exitCode).toBe(0);
    const rep = JSON.parse((await nslab('inspect', '--json')).stdout) as { topologies: Array<{ name: string; container?: { name: string; id: string } }> };
    const owners = rep.topologies.map((t) => t.name).filter((n) => n.startsWith('attach '));
    // One owner for the three forms (bridges nslab made are owned by `attach`).
    expect(owners.filter((n) => n !== 'attach')).toEqual([`attach ${id}`]);
    expect(rep.topologies.find((t) => t.name === `attach ${id}`)?.container?.name).toBe('c2');
    // Host ends and pid files carry the ID, not the word typed.
    const marks = (await rootLinks()).map((l) => l.ifalias ?? '').filter((a) => a.startsWith('nslab:attach guest='));
    expect(marks.length).toBe(3);
    for (const m of marks) expect(m).toContain(`guest=${id}`);
    await d.docker('rm', '-f', 'c2');
    // The veths went with the netns; the OVS port stays until detached: by the name, which Docker forgot.
    expect((await readOvsPorts(runner)).map((p) => p.externalIds['nslab-guest'])).toContain(id);
    const det = await nslab('detach', 'c2', 'eth8');
    expect(det.stderr).toBe('');
    expect(det.exitCode).toBe(0);
    expect((await readOvsPorts(runner)).filter((p) => p.externalIds['nslab-guest'] === id)).toEqual([]);
  }, 60_000);
});

describe('stale attaches', () => {
  test('a container removed without a watcher: inspect marks its attaches stale, clean removes them and forgets its persisted attaches', async () => {
    await run('c3', '--net=none');
    const id = await idOf('c3');
    expect((await nslab('attach', 'c3', '--to', 'ovs-br6', '--ip', '10.6.3.2/24', '--persist')).exitCode).toBe(0);
    await d.docker('rm', '-f', 'c3');
    const rep = JSON.parse((await nslab('inspect', '--json')).stdout) as { topologies: Array<{ name: string; ovsPorts: string[]; container?: { name: string; state: string; persisted: string[] } }> };
    const t = rep.topologies.find((x) => x.name === `attach ${id}`);
    expect(t?.container).toEqual({ id, name: 'c3', state: 'gone', persisted: ['eth1 to ovs-br6'] });
    expect(t?.ovsPorts.length).toBe(1);
    expect((await nslab('inspect')).stdout).toMatch(/container c3 \(\w{12}\)[\s\S]*removed: what is left is stale/);
    const c = await nslab('clean');
    expect(c.exitCode).toBe(0);
    expect((await readOvsPorts(runner)).filter((p) => p.externalIds['nslab-guest'] === id)).toEqual([]);
    const after = JSON.parse((await nslab('inspect', '--json')).stdout) as { topologies: Array<{ name: string }> };
    expect(after.topologies.map((x) => x.name)).not.toContain(`attach ${id}`);
  }, 60_000);
});

describe('DHCP guests', () => {
  test('detach puts back the default route the lease replaced (Docker\'s own)', async () => {
    await run('c4', '--net=none');
    const ns = `/proc/${await pidOf('c4')}/ns/net`;
    // The container's own network, as Docker's bridge mode gives it: eth0 172.17.0.2/16, default via .1.
    await runner.run({ argv: ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'own1'], netns: ns });
    await runner.run({ argv: ['ip', 'addr', 'add', '172.17.0.2/16', 'dev', 'eth0'], netns: ns });
    await runner.run({ argv: ['ip', 'link', 'set', 'eth0', 'up'], netns: ns });
    await runner.run({ argv: ['ip', 'route', 'add', 'default', 'via', '172.17.0.1'], netns: ns });
    await sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
    await sh('ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'br1');
    await sh('ip', 'link', 'set', 'br1', 'up');
    const srv = await startDnsmasq('br1', '10.9.0.100', '10.9.0.150');
    try {
      const a = await nslab('attach', 'c4', '--to', 'br1', '--dhcp');
      expect(a.stderr).toBe('');
      expect(await inC('c4', 'ip', 'route', 'show', 'default')).toMatch(/default via 10\.9\.0\.1 dev eth1/);
      expect((await nslab('detach', 'c4', 'eth1')).exitCode).toBe(0);
      expect((await inC('c4', 'ip', 'route', 'show', 'default')).trim()).toMatch(/^default via 172\.17\.0\.1 dev eth0\b/);
    } finally {
      await srv.stop();
      await shq('ip', 'link', 'del', 'br1');
    }
  }, 60_000);

  test('the DHCP client ends with its container (docker rm -f): no netns kept alive, no veth on the bridge, nothing for detach', async () => {
    await run('c6', '--net=none');
    const id = await idOf('c6');
    await sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
    await sh('ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'br1');
    await sh('ip', 'link', 'set', 'br1', 'up');
    const srv = await startDnsmasq('br1', '10.9.0.100', '10.9.0.150');
    try {
      expect((await nslab('attach', 'c6', '--to', 'br1', '--dhcp')).exitCode).toBe(0);
      const pidFile = dhcpPidFile(id, 'eth1');
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      // The file names the client as this /proc sees it (it runs in the container's PID namespace).
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('udhcpc');
      const addr = (await inC('c6', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth1')).match(/inet (\S+)\//)![1]!;
      // Attached again (as after a restart without watcher): still one client.
      expect((await nslab('attach', 'c6', '--to', 'br1', '--dhcp')).exitCode).toBe(0);
      const clients = (await shq('pgrep', '-f', `udhcpc .*-p ${pidFile}`)).stdout.split('\n').filter(Boolean);
      expect(clients.length).toBe(1);
      await d.docker('rm', '-f', 'c6');
      expect(await until(() => !alive(Number(clients[0])))).toBe(true);
      expect(await until(async () => !(await rootLinks()).some((l) => l.master === 'br1'))).toBe(true);
      expect((await shq('ping', '-c', '1', '-W', '1', addr)).exitCode).not.toBe(0);
      const det = await nslab('detach', 'c6', 'eth1');
      expect(det.exitCode).toBe(1);
      expect(det.stderr).toMatch(/nothing attached by nslab as c6:eth1/);
      const rep = JSON.parse((await nslab('inspect', '--json')).stdout) as { topologies: Array<{ name: string; processes: unknown[] }> };
      expect(rep.topologies.flatMap((t) => t.processes)).toEqual([]);
    } finally {
      await srv.stop();
      await shq('ip', 'link', 'del', 'br1');
    }
  }, 60_000);
});

describe('refusals and care', () => {
  test('a --net=host container is refused in one line (exit 2) naming the mode; the host is untouched', async () => {
    await run('h1', '--net=host');
    const before = (await sh('ip', '-j', 'route', 'show')).stdout;
    const res = await nslab('pipework', 'br1', 'h1', '192.168.1.99/24@192.168.1.1');
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim().split('\n').length).toBe(1);
    expect(res.stderr).toMatch(/network mode "host"/);
    expect((await shq('ip', 'link', 'show', 'eth1')).exitCode).not.toBe(0);
    expect((await shq('ip', 'link', 'show', 'br1')).exitCode).not.toBe(0);
    expect((await sh('ip', '-j', 'route', 'show')).stdout).toBe(before);
  }, 60_000);

  test('--net=container:c1: said so, goes into c1\'s netns, and its detach removes only the address it added', async () => {
    await run('c1', '--net=none');
    await run('c7', '--net=container:c1');
    expect((await nslab('pipework', 'br1', 'c1', '10.7.0.1/24')).exitCode).toBe(0);
    const a = await nslab('pipework', 'br1', 'c7', '10.7.0.7/24');
    expect(a.exitCode).toBe(0);
    expect(a.stderr).toMatch(/c7 shares the network namespace of container c1/);
    expect(await inC('c1', 'ip', '-o', 'addr', 'show', 'dev', 'eth1')).toMatch(/10\.7\.0\.7\/24/);
    const det = await nslab('detach', 'c7', 'eth1');
    expect(det.exitCode).toBe(0);
    const left = await inC('c1', 'ip', '-o', 'addr', 'show', 'dev', 'eth1');
    expect(left).toMatch(/10\.7\.0\.1\/24/);
    expect(left).not.toMatch(/10\.7\.0\.7/);
    expect((await nslab('detach', 'c1', 'eth1')).exitCode).toBe(0);
    expect(await inC('c1', 'ip', '-o', 'link')).not.toContain('eth1');
  }, 60_000);

  test('a bridge nslab made stays when its last guest leaves while someone gave it an address', async () => {
    await run('c1', '--net=none');
    expect((await nslab('pipework', 'br5', 'c1', '10.5.0.2/24')).exitCode).toBe(0);
    await sh('ip', 'addr', 'add', '10.5.0.1/24', 'dev', 'br5');
    expect((await nslab('detach', 'c1', 'eth1')).exitCode).toBe(0);
    expect((await shq('ip', 'link', 'show', 'br5')).exitCode).toBe(0);
    await sh('ip', 'link', 'del', 'br5');
  }, 60_000);
});

describe('lifecycle: persist, watch, restore', () => {
  test('docker restart: the watcher applies persisted attaches again (one OVS port, one DHCP client); rm -f removes everything', async () => {
    await run('c1', '--net=none');
    const id = await idOf('c1');
    await sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
    await sh('ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'br1');
    await sh('ip', 'link', 'set', 'br1', 'up');
    const srv = await startDnsmasq('br1', '10.9.0.100', '10.9.0.150');
    let watcher: ChildProcess | undefined;
    try {
      expect((await nslab('attach', 'c1', '--to', 'ovs-br6', '--ip', '10.6.0.11/24', '--vlan', '10', '-i', 'eth1', '--persist')).exitCode).toBe(0);
      expect((await nslab('pipework', '--save', 'br1', '-i', 'eth2', 'c1', 'dhcp')).exitCode).toBe(0);
      // Without a watcher, a restart loses both; inspect says the OVS port's container is stopped.
      await d.docker('stop', '-t', '0', 'c1');
      const stale = JSON.parse((await nslab('inspect', '--json')).stdout) as { topologies: Array<{ name: string; container?: { state: string } }> };
      expect(stale.topologies.find((t) => t.name === `attach ${id}`)?.container?.state).toBe('stopped');
      await d.docker('start', 'c1');
      expect(await inC('c1', 'ip', '-o', 'link')).not.toContain('eth1');
      // pipework --restore brings them back by hand.
      const rs = await nslab('pipework', '--restore', 'c1');
      expect(rs.stderr).toBe('');
      expect(await inC('c1', 'ip', '-o', 'addr')).toMatch(/eth1\s+inet 10\.6\.0\.11\/24/);
      // From now on the watcher does it.
      // Jest's process.env is its own copy: the child gets DOCKER_HOST and OVS_RUNDIR only when passed.
      watcher = spawn(LAUNCHER, ['docker', 'watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
      let out = '';
      watcher.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      watcher.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      expect(await until(() => out.includes('watching docker events'), 15_000)).toBe(true);
      await d.docker('restart', '-t', '0', 'c1');
      const back = await until(async () => /eth1\s+inet 10\.6\.0\.11\/24/.test(await inC('c1', 'ip', '-o', 'addr').catch(() => '')) && /eth2\s+inet 10\.9\.0\./.test(await inC('c1', 'ip', '-o', 'addr').catch(() => '')), 20_000);
      if (!back) console.log(`watcher said:\n${out}\nc1 has:\n${await inC('c1', 'ip', '-o', 'addr').catch((e) => String(e))}`);
      expect(back).toBe(true);
      const ports = (await readOvsPorts(runner)).filter((p) => p.externalIds['nslab-guest'] === id);
      expect(ports.map((p) => p.tag)).toEqual([10]);
      expect((await shq('pgrep', '-f', `udhcpc .*-p ${dhcpPidFile(id, 'eth2')}`)).stdout.split('\n').filter(Boolean).length).toBe(1);
      await d.docker('rm', '-f', 'c1');
      expect(await until(async () => (await readOvsPorts(runner)).every((p) => p.externalIds['nslab-guest'] !== id) && (await shq('pgrep', '-f', 'udhcpc')).exitCode !== 0, 15_000)).toBe(true);
      expect(await until(() => /destroy c1: forgot 2 persisted attach/.test(out), 10_000)).toBe(true);
      const after = JSON.parse((await nslab('inspect', '--json')).stdout) as { topologies: Array<{ name: string }> };
      expect(after.topologies.map((t) => t.name).filter((n) => n.startsWith('attach '))).toEqual([]);
    } finally {
      if (watcher && watcher.exitCode === null) {
        const gone = new Promise((r) => watcher!.once('exit', r));
        watcher.kill('SIGTERM');
        await gone;
      }
      await srv.stop();
      await shq('ip', 'link', 'del', 'br1');
    }
  }, 120_000);
});

describe('Docker network plugin (nslab docker plugin)', () => {
  test('compose-style: network create -d nslab, two containers ping by name, connect to an OVS VLAN network, remove: nothing left', async () => {
    const plugin = spawn(LAUNCHER, ['docker', 'plugin', '--socket', SOCK], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    let log = '';
    plugin.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    plugin.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    try {
      expect(await until(() => log.includes('listening'), 10_000)).toBe(true);
      await d.docker('network', 'create', '-d', 'nslab', '--ipam-driver', 'nslab', '--subnet', '10.20.0.0/24', '-o', 'nslab.bridge=br20', 'lan');
      // The gateway on the bridge nslab made, as Docker's bridge driver does.
      expect((await sh('ip', '-o', 'addr', 'show', 'dev', 'br20')).stdout).toMatch(/inet 10\.20\.0\.1\/24/);
      await d.docker('run', '-d', '--name', 'w1', '--network', 'lan', 'nslab-busybox:1', '/bin/sleep', '3600');
      await d.docker('run', '-d', '--name', 'w2', '--network', 'lan', 'nslab-busybox:1', '/bin/sleep', '3600');
      expect(await d.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', 'w1')).toBe('10.20.0.2');
      expect(await d.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', 'w2')).toBe('10.20.0.3');
      const ports = (JSON.parse((await sh('ip', '-j', 'link', 'show', 'master', 'br20')).stdout) as Array<{ ifalias?: string }>).map((l) => l.ifalias ?? '');
      expect(ports.length).toBe(2);
      for (const a of ports) expect(a).toMatch(/^nslab:attach guest=docker-ep:/);
      expect(await d.docker('exec', 'w1', 'ping', '-c', '1', '-W', '2', 'w2')).toMatch(/1 packets received/);
      // connect / disconnect: an OVS access port with VLAN tag 10.
      await d.docker('network', 'create', '-d', 'nslab', '--ipam-driver', 'nslab', '--subnet', '10.30.0.0/24', '-o', 'nslab.bridge=ovs-br9', '-o', 'nslab.vlan=10', 'v10');
      await d.docker('network', 'connect', 'v10', 'w1');
      expect((await readOvsPorts(runner)).filter((p) => p.bridge === 'ovs-br9').map((p) => p.tag)).toEqual([10]);
      expect(await inC('w1', 'ip', '-o', 'addr')).toMatch(/inet 10\.30\.0\.2\/24/);
      await d.docker('network', 'disconnect', 'v10', 'w1');
      expect((await readOvsPorts(runner)).filter((p) => p.bridge === 'ovs-br9')).toEqual([]);
      await d.docker('rm', '-f', 'w1', 'w2');
      await d.docker('network', 'rm', 'lan', 'v10');
      const left = (await rootLinks()).filter((l) => /^(nsh|nsc)/.test(l.ifname) || l.ifname === 'br20');
      expect(left).toEqual([]);
      expect((await shq('ovs-vsctl', 'br-exists', 'ovs-br9')).exitCode).toBe(2);
      expect(log).not.toMatch(/failed/);
    } finally {
      await shq('docker', 'rm', '-f', 'w1', 'w2');
      await shq('docker', 'network', 'rm', 'lan', 'v10');
      const gone = new Promise((r) => plugin.once('exit', r));
      plugin.kill('SIGTERM');
      await gone;
      if (log.includes('failed')) console.log(log);
    }
  }, 120_000);
});
