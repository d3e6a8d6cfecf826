// nslab-cni for real: the CNI spec's commands through bin/nslab-cni (as a runtime calls it), side by
// side with Debian's reference `bridge` plugin, chained with portmap, OVS and macvlan kinds, GC,
// STATUS, inspect/clean, and podman running containers on an nslab-cni network.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { readLinks } from '../../src/kernel/link.js';
import { inspect } from '../../src/verify/inspect.js';
import { verifyAttachments } from '../../src/verify/attachments.js';
import { clean } from '../../src/engine/clean/clean.js';
import { assertSandbox, iptablesSave, ping, runner, snapshot } from '../helpers/kernel.js';
import { startOvs } from '../helpers/daemons.js';

const PLUGIN = join(process.cwd(), 'bin', 'nslab-cni');
const CNI_DIR = '/usr/lib/cni';
const sh = (...argv: string[]) => runner.run({ argv });

interface Call {
  code: number;
  out: Record<string, unknown>;
  raw: string;
  stderr: string;
}

/** Runs a plugin binary as a runtime does: the configuration on stdin, CNI_* in the environment. */
async function call(bin: string, command: string, conf: unknown, env: Record<string, string> = {}): Promise<Call> {
  const res = await execa(bin, [], { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env: { CNI_COMMAND: command, CNI_PATH: CNI_DIR, ...env }, reject: false });
  let out: Record<string, unknown> = {};
  try {
    out = res.stdout.trim() ? JSON.parse(res.stdout) : {};
  } catch {
    out = { unparsed: res.stdout };
  }
  return { code: res.exitCode ?? 1, out, raw: res.stdout, stderr: res.stderr };
}
const nslabCni = (command: string, conf: unknown, env: Record<string, string> = {}) => call(PLUGIN, command, conf, env);
const envOf = (id: string, ns: string, ifname = 'eth0') => ({ CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: ifname });

const netnsAdd = async (...names: string[]) => {
  for (const n of names) {
    await sh('ip', 'netns', 'add', n);
    await runner.run({ argv: ['ip', 'link', 'set', 'lo', 'up'], netns: n });
  }
};
const netnsDel = async (...names: string[]) => {
  for (const n of names) await runner.run({ argv: ['ip', 'netns', 'del', n] }, { check: false });
};

let ipamDir: string;
beforeAll(async () => {
  await assertSandbox();
  ipamDir = mkdtempSync(join(tmpdir(), 'nslab-cni-ipam-'));
});
afterAll(() => rmSync(ipamDir, { recursive: true, force: true }));

/** A bridge network with host-local IPAM (its lease files under the test's temp dir). */
function bridgeConf(o: Record<string, unknown> = {}, version = '1.0.0', subnet = '10.22.0.0/24'): Record<string, unknown> {
  return {
    cniVersion: version,
    name: 'n1',
    type: 'nslab-cni',
    bridge: 'cni0',
    isGateway: true,
    ipam: { type: 'host-local', dataDir: ipamDir, subnet, routes: [{ dst: '0.0.0.0/0' }] },
    ...o,
  };
}

describe('spec commands', () => {
  test('VERSION lists 0.4.0 to 1.1.0; a cniVersion it does not speak is error 1', async () => {
    const v = await nslabCni('VERSION', { cniVersion: '1.1.0' });
    expect(v.code).toBe(0);
    expect(v.out).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    const old = await nslabCni('ADD', bridgeConf({}, '0.3.1'), envOf('x', 'none'));
    expect(old.code).not.toBe(0);
    expect(old.out).toMatchObject({ code: 1, msg: expect.stringContaining('"0.3.1"') });
  });

  test('bad input: one spec error naming the field and value, no stack trace, nothing changed', async () => {
    await netnsAdd('cb');
    try {
      const before = { s: await snapshot(), ipt: await iptablesSave() };
      const cases: Array<[string, unknown, Record<string, string>, number, RegExp]> = [
        ['not JSON', '{"cniVersion": "1.0.0", ', envOf('b1', 'cb'), 6, /not JSON/],
        ['unknown type', bridgeConf({ type: 'flannel' }), envOf('b1', 'cb'), 7, /type "flannel": expected "nslab-cni"/],
        ['unknown kind', bridgeConf({ kind: 'ipvlan' }), envOf('b1', 'cb'), 7, /kind "ipvlan": expected "bridge", "ovs" or "macvlan"/],
        ['no CNI_NETNS', bridgeConf(), { CNI_CONTAINERID: 'b1', CNI_IFNAME: 'eth0' }, 4, /CNI_NETNS is missing/],
        ['long ifname', bridgeConf(), envOf('b1', 'cb', 'eth0-is-too-long'), 4, /CNI_IFNAME "eth0-is-too-long" is 16 bytes long/],
        ['VLAN out of range', { ...bridgeConf(), kind: 'ovs', bridge: 'ovs-cni0', vlan: 5000 }, envOf('b1', 'cb'), 7, /vlan 5000: expected a VLAN tag from 1 to 4094/],
        ['subnet not a CIDR', bridgeConf({ ipam: { type: 'nslab', subnet: '10.22.0.0/33' } }), envOf('b1', 'cb'), 7, /ipam.subnet "10.22.0.0\/33": expected an IPv4 CIDR/],
        ['long bridge name', bridgeConf({ bridge: 'a-bridge-name-too-long' }), envOf('b1', 'cb'), 7, /bridge "a-bridge-name-too-long": expected an interface name of at most 15 bytes/],
        // (its own host-local dataDir: host-local hands out round-robin, the next test expects .2)
        ['bridge names a non-bridge', bridgeConf({ bridge: 'lo', ipam: { type: 'host-local', dataDir: join(ipamDir, 'bad'), subnet: '10.22.0.0/24' } }), envOf('b1', 'cb'), 7, /bridge "lo" is an existing device interface, not a Linux bridge/],
        ['netns path missing', bridgeConf(), envOf('b1', 'no-such-ns'), 4, /CNI_NETNS "\/run\/netns\/no-such-ns": no such network namespace/],
      ];
      for (const [what, conf, env, code, msg] of cases) {
        const r = await nslabCni('ADD', conf, env);
        expect([what, r.code]).toEqual([what, 1]);
        expect([what, r.out.code]).toEqual([what, code]);
        expect([what, String(r.out.msg)]).toEqual([what, expect.stringMatching(msg)]);
        expect(r.raw + r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      }
      expect({ s: await snapshot(), ipt: await iptablesSave() }).toEqual(before);
    } finally {
      await netnsDel('cb');
    }
  });

  test('bridge + host-local: ADD result, ping, CHECK reads the kernel, DEL idempotent, nothing left', async () => {
    await netnsAdd('c1', 'c2');
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    try {
      const conf = bridgeConf({ ipMasq: true, hairpinMode: true, mtu: 1400 });
      const a1 = await nslabCni('ADD', conf, envOf('ctr1', 'c1'));
      expect(a1.code).toBe(0);
      const res = a1.out as { interfaces: Array<{ name: string; mac: string; sandbox?: string }>; ips: Array<{ address: string; gateway: string; interface: number }>; routes: unknown[] };
      expect(res.interfaces).toHaveLength(3);
      expect(res.interfaces[0]).toEqual({ name: 'cni0', mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/) });
      expect(res.interfaces[1]!.sandbox).toBeUndefined();
      expect(res.interfaces[2]).toEqual({ name: 'eth0', mac: expect.any(String), sandbox: '/run/netns/c1' });
      expect(res.ips).toEqual([{ address: '10.22.0.2/24', gateway: '10.22.0.1', interface: 2 }]);
      expect(res.routes).toEqual([{ dst: '0.0.0.0/0' }]);
      expect(a1.out.cniVersion).toBe('1.0.0');
      // The kernel: container end with MAC and MTU of the result, host end on cni0 with hairpin, gateway on the bridge.
      const inC1 = (await readLinks(runner, 'c1')).find((l) => l.ifname === 'eth0')!;
      expect(inC1).toMatchObject({ address: res.interfaces[2]!.mac, mtu: 1400, operstate: 'UP' });
      const host = (await readLinks(runner, null)).find((l) => l.ifname === res.interfaces[1]!.name)!;
      expect(host).toMatchObject({ master: 'cni0', mtu: 1400 });
      expect(host.ifalias).toMatch(/^nslab:attach guest=cni:ctr1 if=eth0 .*net=n1 ns=\/run\/netns\/c1/);
      const port = JSON.parse((await sh('bridge', '-j', '-d', 'link', 'show', 'dev', host.ifname)).stdout) as Array<{ hairpin?: boolean }>;
      expect(port[0]!.hairpin).toBe(true);
      expect((await sh('ip', '-j', 'addr', 'show', 'dev', 'cni0')).stdout).toContain('10.22.0.1');
      expect(await iptablesSave()).toMatch(/-A POSTROUTING -s 10\.22\.0\.2\/32 -m comment --comment "nslab:cni=n1\/ctr1\/eth0" -j NSLAB-CNI-/);
      // 0.4.0: ips carry their version
      const a2 = await nslabCni('ADD', { ...conf, cniVersion: '0.4.0' }, envOf('ctr2', 'c2'));
      expect(a2.code).toBe(0);
      expect((a2.out.ips as unknown[])[0]).toEqual({ version: '4', address: '10.22.0.3/24', gateway: '10.22.0.1', interface: 2 });
      expect(await ping('c1', '10.22.0.3', 2)).toBe(true);
      expect(await ping('c2', '10.22.0.1')).toBe(true);
      // inspect sees the attachments under their CNI names
      const owners = (await inspect(runner)).topologies.map((t) => t.name);
      expect(owners).toEqual(expect.arrayContaining(['attach cni:ctr1', 'attach cni:ctr2']));
      // verify attachments sees them as ADD made them; with libcni's cache (as podman and containerd
      // keep it: the chain's result, the config in base64) it checks that result's MAC and MTU too
      const cache = mkdtempSync(join(tmpdir(), 'nslab-cni-cache-'));
      process.env.NSLAB_CNI_CACHE_DIR = cache;
      try {
        writeFileSync(join(cache, 'n1-ctr1-eth0'), JSON.stringify({ kind: 'cniCacheV1', containerId: 'ctr1', config: Buffer.from(JSON.stringify(conf)).toString('base64'), ifName: 'eth0', networkName: 'n1', result: a1.out }));
        const va = await verifyAttachments(runner);
        expect(va.mismatches).toEqual([]);
        expect(va.attachments.map((x) => [x.guest, x.netns, x.kind, x.host, x.hostEnd, x.sources.length])).toEqual([
          ['cni:ctr1', 'c1', 'veth', 'cni0', res.interfaces[1]!.name, 2],
          ['cni:ctr2', 'c2', 'veth', 'cni0', (a2.out.interfaces as Array<{ name: string }>)[1]!.name, 1],
        ]);
        expect(va.checked).toBeGreaterThanOrEqual(2 * 8 + 2);
        // broken on purpose: a route, an MTU, a host end off its bridge; the CLI says each in a line, exit 1
        await runner.run({ argv: ['ip', 'route', 'del', 'default'], netns: 'c2' });
        await runner.run({ argv: ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1300'], netns: 'c1' });
        await sh('ip', 'link', 'set', 'dev', res.interfaces[1]!.name, 'nomaster');
        const cli = await execa(join(process.cwd(), 'bin', 'nslab'), ['verify', 'attachments'], { reject: false });
        expect([cli.exitCode, cli.stdout.split('\n')]).toEqual([1, [
          'attach cni:ctr1: eth0: host end ' + res.interfaces[1]!.name + ' is not a port of bridge cni0',
          'attach cni:ctr1: eth0: MTU 1300, expected 1400',
          'attach cni:ctr2: eth0: route 0.0.0.0/0 via 10.22.0.1 missing in c2',
        ]]);
        const one = await execa(join(process.cwd(), 'bin', 'nslab'), ['verify', 'attachments', 'ctr2', '--json'], { reject: false });
        expect(JSON.parse(one.stdout)).toMatchObject({ ok: false, attachments: [{ guest: 'cni:ctr2' }], mismatches: [{ kind: 'route-missing', guest: 'cni:ctr2', ifname: 'eth0' }] });
        await sh('ip', 'link', 'set', 'dev', res.interfaces[1]!.name, 'master', 'cni0');
        await runner.run({ argv: ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1400'], netns: 'c1' });
        await runner.run({ argv: ['ip', 'route', 'add', 'default', 'via', '10.22.0.1'], netns: 'c2' });
        expect((await verifyAttachments(runner)).ok).toBe(true);
      } finally {
        delete process.env.NSLAB_CNI_CACHE_DIR;
        rmSync(cache, { recursive: true, force: true });
      }
      // CHECK: fine, then an address gone, a route gone, the link gone: error 100 naming it
      const chk = { ...conf, prevResult: a1.out };
      expect(await nslabCni('CHECK', chk, envOf('ctr1', 'c1'))).toMatchObject({ code: 0, raw: '' });
      expect((await nslabCni('CHECK', conf, envOf('ctr1', 'c1'))).out).toMatchObject({ code: 7, msg: expect.stringContaining('prevResult') });
      await runner.run({ argv: ['ip', 'route', 'del', 'default'], netns: 'c1' });
      expect((await nslabCni('CHECK', chk, envOf('ctr1', 'c1'))).out).toMatchObject({ code: 100, msg: 'route 0.0.0.0/0 is missing in netns /run/netns/c1' });
      await runner.run({ argv: ['ip', 'addr', 'del', '10.22.0.2/24', 'dev', 'eth0'], netns: 'c1' });
      expect((await nslabCni('CHECK', chk, envOf('ctr1', 'c1'))).out).toMatchObject({ code: 100, msg: 'address 10.22.0.2/24 is missing on eth0' });
      // clean leaves an attachment alone while its netns lives (the runtime still has it)
      await clean(runner);
      expect((await readLinks(runner, 'c1')).some((l) => l.ifname === 'eth0')).toBe(true);
      // DEL, twice; DEL of c2 after its netns is gone
      expect((await nslabCni('DEL', conf, envOf('ctr1', 'c1'))).code).toBe(0);
      expect((await nslabCni('DEL', conf, envOf('ctr1', 'c1'))).code).toBe(0);
      await netnsDel('c2');
      expect((await nslabCni('DEL', conf, envOf('ctr2', 'c2'))).code).toBe(0);
      expect((await nslabCni('DEL', conf, { CNI_CONTAINERID: 'ctr2', CNI_IFNAME: 'eth0' })).code).toBe(0);
      await netnsAdd('c2');
      expect({ s: await snapshot(), ipt: await iptablesSave() }).toEqual(before);
    } finally {
      await netnsDel('c1', 'c2');
    }
  });

  test("nslab's own IPAM: addresses once under network modes' lock, released by DEL; GC removes what the runtime no longer lists", async () => {
    await netnsAdd('d1', 'd2', 'd3');
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    try {
      const conf = { cniVersion: '1.1.0', name: 'n2', type: 'nslab-cni', bridge: 'cni1', isDefaultGateway: true, ipMasq: true, ipam: { type: 'nslab', subnet: '10.33.0.0/24' } };
      const ips: string[] = [];
      for (const [id, ns] of [['g1', 'd1'], ['g2', 'd2'], ['g3', 'd3']] as const) {
        const a = await nslabCni('ADD', conf, envOf(id, ns));
        expect(a.code).toBe(0);
        ips.push((a.out.ips as Array<{ address: string }>)[0]!.address);
        expect(a.out.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.33.0.1' }]);
      }
      expect(ips).toEqual(['10.33.0.2/24', '10.33.0.3/24', '10.33.0.4/24']);
      expect(await ping('d1', '10.33.0.4')).toBe(true);
      const stateFile = join(process.env.NSLAB_STATE_DIR || '/run/nslab', 'net', 'state.json');
      expect(Object.keys((JSON.parse((await sh('cat', stateFile)).stdout) as { cni: object }).cni)).toEqual(['n2/g1/eth0', 'n2/g2/eth0', 'n2/g3/eth0']);
      // STATUS: ready
      expect((await nslabCni('STATUS', conf)).code).toBe(0);
      // GC: g2 only is still valid; g1 and g3 go (links, masquerade chains, leases)
      const gc = await nslabCni('GC', { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'g2', ifname: 'eth0' }] });
      expect(gc).toMatchObject({ code: 0 });
      expect((await readLinks(runner, 'd1')).some((l) => l.ifname === 'eth0')).toBe(false);
      expect((await readLinks(runner, 'd2')).some((l) => l.ifname === 'eth0')).toBe(true);
      const ipt = await iptablesSave();
      expect(ipt).not.toContain('n2/g1/');
      expect(ipt).toContain('n2/g2/');
      expect(Object.keys((JSON.parse((await sh('cat', stateFile)).stdout) as { cni: object }).cni)).toEqual(['n2/g2/eth0']);
      expect((await nslabCni('DEL', conf, envOf('g2', 'd2'))).code).toBe(0);
      expect({ s: await snapshot(), ipt: await iptablesSave() }).toEqual(before);
    } finally {
      await netnsDel('d1', 'd2', 'd3');
    }
  });
});

/** A sandbox's state as the side-by-side compares it: names of host ends and chains left out. */
async function observe(bridge: string, guests: string[]) {
  const guest = async (ns: string) => {
    const links = (await readLinks(runner, ns)).filter((l) => l.ifname !== 'lo').map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind, mtu: l.mtu, up: l.flags.includes('UP') }));
    const addrs = (JSON.parse((await runner.run({ argv: ['ip', '-j', 'addr', 'show'], netns: ns })).stdout) as Array<{ ifname: string; addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>).flatMap((l) => l.addr_info.filter((a) => a.scope === 'global').map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`));
    const routes = (JSON.parse((await runner.run({ argv: ['ip', '-j', 'route', 'show'], netns: ns })).stdout) as Array<{ dst: string; gateway?: string; dev: string }>).map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.dev}`).sort();
    return { links, addrs, routes };
  };
  const links = await readLinks(runner, null);
  const br = links.find((l) => l.ifname === bridge);
  const ports = await Promise.all(
    links
      .filter((l) => l.master === bridge)
      .map(async (p) => ({ mtu: p.mtu, up: p.flags.includes('UP'), hairpin: (JSON.parse((await sh('bridge', '-j', '-d', 'link', 'show', 'dev', p.ifname)).stdout) as Array<{ hairpin?: boolean }>)[0]?.hairpin ?? false })),
  );
  const brAddrs = JSON.parse((await sh('ip', '-j', 'addr', 'show', 'dev', bridge)).stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>;
  const nat = (await iptablesSave())
    .split('\n')
    .filter((l) => l.startsWith('-A ') || l.startsWith(':'))
    .map((l) => l.replace(/ -m comment --comment ("(?:[^"\\]|\\.)*"|\S+)/g, '').replace(/\bNSLAB-CNI-[0-9a-f]{12}\b|\bCNI-[0-9a-f]{24}\b/g, 'CHAIN'))
    .sort();
  return {
    guests: Object.fromEntries(await Promise.all(guests.map(async (g) => [g, await guest(g)] as const))),
    bridge: { kind: br?.linkinfo?.info_kind, mtu: br?.mtu, addrs: brAddrs.flatMap((l) => l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`)) },
    ports: ports.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ipForward: (await sh('sysctl', '-n', 'net.ipv4.ip_forward')).stdout.trim(),
    iptables: nat,
  };
}

/** Fetches http://HOST:PORT/ from the sandbox's root netns (curl: busybox wget segfaults here). */
async function fetchOnce(url: string): Promise<string> {
  const res = await execa('curl', ['-s', '--max-time', '3', url], { reject: false });
  return res.stdout;
}

describe('chaining', () => {
  test("Debian's tuning and bandwidth read nslab-cni's prevResult: a sysctl in the container, a tbf on its host end; DEL of the chain leaves nothing", async () => {
    await netnsAdd('t1');
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    try {
      const conf = bridgeConf({}, '1.0.0', '10.88.0.0/24');
      const first = await nslabCni('ADD', conf, envOf('tc1', 't1'));
      expect(first.code).toBe(0);
      const tuning = { cniVersion: '1.0.0', name: 'n1', type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.forwarding': '1' } };
      const bw = { cniVersion: '1.0.0', name: 'n1', type: 'bandwidth', ingressRate: 8_000_000, ingressBurst: 64_000 };
      const t = await call(join(CNI_DIR, 'tuning'), 'ADD', { ...tuning, prevResult: first.out }, envOf('tc1', 't1'));
      expect([t.code, t.out.msg]).toEqual([0, undefined]);
      const b = await call(join(CNI_DIR, 'bandwidth'), 'ADD', { ...bw, prevResult: t.out }, envOf('tc1', 't1'));
      expect([b.code, b.out.msg]).toEqual([0, undefined]);
      expect((await runner.run({ argv: ['sysctl', '-n', 'net.ipv4.conf.eth0.forwarding'], netns: 't1' })).stdout.trim()).toBe('1');
      const hostEnd = (first.out.interfaces as Array<{ name: string }>)[1]!.name;
      expect((await sh('tc', 'qdisc', 'show', 'dev', hostEnd)).stdout).toMatch(/qdisc tbf .*rate 8Mbit/);
      for (const [p, c] of [[join(CNI_DIR, 'bandwidth'), { ...bw, prevResult: b.out }], [join(CNI_DIR, 'tuning'), { ...tuning, prevResult: t.out }], [PLUGIN, conf]] as const) {
        expect((await call(p, 'DEL', c, envOf('tc1', 't1'))).code).toBe(0);
      }
      expect({ s: await snapshot(), ipt: await iptablesSave() }).toEqual(before);
    } finally {
      await netnsDel('t1');
    }
  });
});

describe('races and leftovers', () => {
  test('four ADDs at once onto a bridge none has made yet (one bridge, four addresses); clean removes what a vanished runtime left', async () => {
    const names = ['r1', 'r2', 'r3', 'r4'];
    await netnsAdd(...names);
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    try {
      const conf = { cniVersion: '1.0.0', name: 'n5', type: 'nslab-cni', bridge: 'cni5', isGateway: true, ipMasq: true, ipam: { type: 'nslab', subnet: '10.77.0.0/24' } };
      const adds = await Promise.all(names.map((n) => nslabCni('ADD', conf, envOf(`k${n}`, n))));
      expect(adds.map((a) => [a.code, a.out.msg])).toEqual(names.map(() => [0, undefined]));
      expect(adds.map((a) => (a.out.ips as Array<{ address: string }>)[0]!.address).sort()).toEqual(['10.77.0.2/24', '10.77.0.3/24', '10.77.0.4/24', '10.77.0.5/24']);
      expect((await readLinks(runner, null)).filter((l) => l.master === 'cni5')).toHaveLength(4);
      expect(await ping('r1', '10.77.0.5')).toBe(true);
      // The runtime vanishes: its netns go, no DEL comes. clean removes the rest (bridge, NAT, leases).
      await netnsDel(...names);
      const { waitLinksGone } = await import('../helpers/kernel.js');
      await waitLinksGone((n) => n.startsWith('nv'));
      const rep = await clean(runner);
      expect(rep.errors).toEqual([]);
      await netnsAdd(...names);
      expect({ s: await snapshot(), ipt: await iptablesSave() }).toEqual(before);
      expect(await sh('ls', join(process.env.NSLAB_STATE_DIR || '/run/nslab'))).toMatchObject({ stdout: '' });
    } finally {
      await netnsDel(...names);
    }
  });
});

describe('side by side with the reference bridge plugin (containernetworking-plugins)', () => {
  /**
   * Runs the chain `plugins` (the first one the bridge plugin under test, then e.g. portmap) for two
   * containers as libcni does (name and cniVersion carried, prevResult passed along), observes, checks
   * reachability, then DELs in reverse order and removes what the reference leaves by design (its bridge).
   */
  async function side(first: { bin: string; type: string }, conf: Record<string, unknown>, chained: Array<Record<string, unknown>>, check: (results: Call[]) => Promise<void>) {
    const dataDir = mkdtempSync(join(tmpdir(), 'nslab-cni-side-'));
    const base = { ...conf, type: first.type, ipam: { ...(conf.ipam as object), dataDir } };
    const ctrs = [['s1', 'sc1'], ['s2', 'sc2']] as const;
    try {
      const results: Call[] = [];
      for (const [id, ns] of ctrs) {
        let prev = await call(first.bin, 'ADD', base, envOf(id, ns));
        expect([first.type, prev.code, prev.out.msg]).toEqual([first.type, 0, undefined]);
        for (const p of chained) {
          const next = await call(join(CNI_DIR, String(p.type)), 'ADD', { cniVersion: conf.cniVersion, name: conf.name, ...p, prevResult: prev.out }, envOf(id, ns));
          expect([p.type, next.code, next.out.msg]).toEqual([p.type, 0, undefined]);
          prev = next;
        }
        results.push(prev);
      }
      const seen = await observe(String(conf.bridge), ctrs.map(([, ns]) => ns));
      await check(results);
      for (const [k, [id, ns]] of ctrs.entries()) {
        for (const p of [...chained].reverse()) expect((await call(join(CNI_DIR, String(p.type)), 'DEL', { cniVersion: conf.cniVersion, name: conf.name, ...p, prevResult: results[k]!.out }, envOf(id, ns))).code).toBe(0);
        expect((await call(first.bin, 'DEL', base, envOf(id, ns))).code).toBe(0);
      }
      return seen;
    } finally {
      await runner.run({ argv: ['ip', 'link', 'del', String(conf.bridge)] }, { check: false });
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  const reference = { bin: join(CNI_DIR, 'bridge'), type: 'bridge' };
  const ours = { bin: PLUGIN, type: 'nslab-cni' };
  const cases: Array<[string, Record<string, unknown>, Array<Record<string, unknown>>]> = [
    ['bridge (isGateway, hairpinMode, mtu 1400)', bridgeConf({ hairpinMode: true, mtu: 1400 }, '1.0.0', '10.44.0.0/24'), []],
    ['bridge + ipMasq', bridgeConf({ ipMasq: true }, '1.0.0', '10.45.0.0/24'), []],
    ['bridge + ipMasq, then portmap (8080 -> 80)', bridgeConf({ ipMasq: true, hairpinMode: true }, '1.0.0', '10.46.0.0/24'), [{ type: 'portmap', capabilities: { portMappings: true }, snat: true, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } }]],
  ];
  test.each(cases)('%s: the same guest and host state, pings, published port', async (_, conf, chained) => {
    await netnsAdd('sc1', 'sc2');
    const www = mkdtempSync(join(tmpdir(), 'nslab-cni-www-'));
    await sh('sh', '-c', `echo hello-from-sc1 > ${www}/index.html`);
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    try {
      const gw = String((conf.ipam as { subnet: string }).subnet).replace(/0\/24$/, '1');
      const reach = async (results: Call[]) => {
        const ip2 = String((results[1]!.out.ips as Array<{ address: string }>)[0]!.address).split('/')[0]!;
        expect(await ping('sc1', ip2, 2)).toBe(true);
        expect(await ping('sc2', gw)).toBe(true);
        if (chained.length) {
          // busybox httpd in sc1 on port 80; the host's own address on the bridge, port 8080 (DNAT in OUTPUT).
          const srv = execa('nsenter', ['--net=/run/netns/sc1', '--', 'busybox', 'httpd', '-f', '-p', '80', '-h', www], { reject: false });
          try {
            let body = '';
            for (let i = 0; i < 20 && !body; i++) {
              body = await fetchOnce(`http://${gw}:8080/`);
              if (!body) await new Promise((r) => setTimeout(r, 100));
            }
            expect(body.trim()).toBe('hello-from-sc1');
          } finally {
            srv.kill();
            await srv;
          }
        }
      };
      const ref = await side(reference, conf, chained, reach);
      const mine = await side(ours, conf, chained, reach);
      expect(mine).toEqual(ref);
      expect(mine.guests.sc1!.addrs.length).toBe(1);
      // Nothing of either plugin is left but what the reference plugins keep by design: the bridge
      // (removed by side()), the nat table, and portmap's shared CNI-HOSTPORT-* chains.
      const norm = (t: string) => t.split('\n').filter((l) => !/CNI-HOSTPORT|CNI portfwd/.test(l)).join('\n').replace(/^\*nat\n(:\S+ ACCEPT\n)*COMMIT\n/m, '');
      expect({ s: await snapshot(), ipt: norm(await iptablesSave()) }).toEqual({ ...before, ipt: norm(before.ipt) });
    } finally {
      await netnsDel('sc1', 'sc2');
      rmSync(www, { recursive: true, force: true });
    }
  });
});

describe('under a real container runtime', () => {
  test("podman 4.3 (CNI backend) runs the README's network: containers ping each other, a published port answers, nothing left after rm", async () => {
    // The README's configuration, exactly as written there.
    const readme = (await sh('cat', join(process.cwd(), 'README.md'))).stdout;
    const section = readme.slice(readme.indexOf('## Running under containerd / Kubernetes'));
    const conflist = /```json\n([\s\S]*?)```/.exec(section)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'nslab-cni-podman-'));
    const file = join(dir, '10-nslab.conflist');
    await execa('sh', ['-c', 'cat > "$1"', 'sh', file], { input: conflist });
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    try {
      const res = await execa('unshare', ['--mount', '--propagation', 'private', '--', 'bash', join(process.cwd(), 'test', 'helpers', 'podman-cni.sh'), join(dir, 'state'), file, process.cwd()], { reject: false, timeout: 180_000 });
      const out = Object.fromEntries(res.stdout.split('\n').map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]));
      expect([out.FAIL, res.stderr.slice(-2000)]).toEqual([undefined, expect.anything()]);
      expect(out).toMatchObject({ NETWORK: 'nslab', BACKEND: 'cni', GW: '10.89.0.1', PING12: 'ok', PING21: 'ok', PUBLISHED: 'hello-from-np1', INSPECT: '2', HOSTENDS: '2' });
      // verify attachments: podman's libcni cache read for both; a route taken away is named
      expect(out).toMatchObject({ VERIFY: 'true 2 2', VERIFY_BROKEN: '1 attach cni:ID2: eth0: route 0.0.0.0/0 via 10.89.0.1 missing in NS2' });
      expect(out.IP1).toMatch(/^10\.89\.0\.\d+$/);
      expect(out).toMatchObject({ AFTER_RM_LINKS: '0', AFTER_RM_NAT: '0', AFTER_RM_STATE: '0', AFTER_RM_IPAM: '0', DONE: expect.anything() });
      // The sandbox as before but for what portmap keeps by design (its shared CNI-HOSTPORT-* chains).
      const norm = (t: string) => t.split('\n').filter((l) => !/CNI-HOSTPORT|CNI portfwd/.test(l)).join('\n').replace(/^\*nat\n(:\S+ ACCEPT\n)*COMMIT\n/m, '');
      expect({ s: await snapshot(), ipt: norm(await iptablesSave()) }).toEqual({ ...before, ipt: norm(before.ipt) });
    } finally {
      await execa('sh', ['-c', 'for m in $(awk -v d="$1" \'index($5, d) == 1 {print $5}\' /proc/self/mountinfo | sort -r); do umount -l "$m"; done; rm -rf "$1"', 'sh', dir], { reject: false });
    }
  });
});

describe('other kinds', () => {
  test('ovs with a VLAN tag (STATUS 50 while OVS is down), macvlan on a master; DEL leaves nothing', async () => {
    await netnsAdd('o1', 'o2', 'm1', 'm2');
    const before = { s: await snapshot(), ipt: await iptablesSave() };
    const ovsConf = { cniVersion: '1.1.0', name: 'n3', type: 'nslab-cni', kind: 'ovs', bridge: 'ovs-cni0', vlan: 10, ipam: { type: 'nslab', subnet: '10.55.0.0/24' } };
    const down = await nslabCni('STATUS', ovsConf);
    expect(down.out).toMatchObject({ code: 50, msg: expect.stringContaining('Open vSwitch is not running') });
    expect((await nslabCni('ADD', ovsConf, envOf('v1', 'o1'))).out).toMatchObject({ code: 50 });
    const ovs = await startOvs();
    try {
      expect((await nslabCni('STATUS', ovsConf)).code).toBe(0);
      const a1 = await nslabCni('ADD', ovsConf, envOf('v1', 'o1'));
      expect(a1.code).toBe(0);
      expect(await nslabCni('ADD', { ...ovsConf, vlan: 20 }, envOf('v2', 'o2'))).toMatchObject({ code: 0 });
      const port = (a1.out.interfaces as Array<{ name: string }>)[1]!.name;
      expect((await sh('ovs-vsctl', 'get', 'port', port, 'tag')).stdout.trim()).toBe('10');
      expect((await sh('ovs-vsctl', 'get', 'interface', port, 'external-ids:nslab-guest')).stdout.trim()).toBe('"cni:v1"');
      // VLAN 10 and VLAN 20 are isolated: o1 does not reach o2
      expect(await ping('o1', '10.55.0.3')).toBe(false);
      // verify attachments reads the ports' tags back from OVS: a tag changed by hand is named
      expect((await verifyAttachments(runner)).mismatches).toEqual([]);
      await sh('ovs-vsctl', 'set', 'port', port, 'tag=30');
      expect((await verifyAttachments(runner, 'cni:v1')).mismatches.map((m) => m.message)).toEqual([`attach cni:v1: eth0: host end ${port}: VLAN tag 30, expected 10`]);
      for (const [id, ns, vlan] of [['v1', 'o1', 10], ['v2', 'o2', 20]] as const) expect((await nslabCni('DEL', { ...ovsConf, vlan }, envOf(id, ns))).code).toBe(0);
      // The ports are gone, and the OVS bridge nslab-cni made went with its last port.
      expect((await runner.run({ argv: ['ovs-vsctl', 'br-exists', 'ovs-cni0'] }, { check: false })).exitCode).toBe(2);
    } finally {
      await ovs.stop();
    }
    // macvlan: two containers on master mv0 (a veth here), bridge mode: they reach each other
    await sh('ip', 'link', 'add', 'mv0', 'type', 'veth', 'peer', 'name', 'mv0p');
    await sh('ip', 'link', 'set', 'mv0', 'up');
    await sh('ip', 'link', 'set', 'mv0p', 'up');
    try {
      const mv = { cniVersion: '0.4.0', name: 'n4', type: 'nslab-cni', kind: 'macvlan', master: 'mv0', ipam: { type: 'static', addresses: [{ address: '10.66.0.11/24' }] } };
      const a = await nslabCni('ADD', mv, envOf('m1', 'm1'));
      expect(a.code).toBe(0);
      expect(a.out).toMatchObject({ cniVersion: '0.4.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/m1' }], ips: [{ version: '4', address: '10.66.0.11/24', interface: 0 }] });
      expect((await nslabCni('ADD', { ...mv, ipam: { type: 'static', addresses: [{ address: '10.66.0.12/24' }] } }, envOf('m2', 'm2'))).code).toBe(0);
      expect((await readLinks(runner, 'm1')).find((l) => l.ifname === 'eth0')?.linkinfo?.info_kind).toBe('macvlan');
      expect(await ping('m1', '10.66.0.12')).toBe(true);
      expect((await nslabCni('CHECK', { ...mv, prevResult: a.out }, envOf('m1', 'm1'))).code).toBe(0);
      // a macvlan has no host end: verify attachments finds it by its guest end's mark, parent and address
      const va = await verifyAttachments(runner);
      expect([va.ok, va.attachments.map((x) => [x.guest, x.kind, x.host])]).toEqual([true, [['cni:m1', 'macvlan', 'mv0'], ['cni:m2', 'macvlan', 'mv0']]]);
      await runner.run({ argv: ['ip', 'addr', 'flush', 'dev', 'eth0'], netns: 'm2' });
      expect((await verifyAttachments(runner)).mismatches.map((m) => m.message)).toEqual(['attach cni:m2: eth0: address 10.66.0.12/24 missing']);
      expect((await nslabCni('DEL', mv, envOf('m1', 'm1'))).code).toBe(0);
      expect((await nslabCni('DEL', mv, envOf('m2', 'm2'))).code).toBe(0);
      expect((await readLinks(runner, 'm1')).some((l) => l.ifname === 'eth0')).toBe(false);
    } finally {
      await sh('ip', 'link', 'del', 'mv0').catch(() => undefined);
    }
    expect({ s: await snapshot(), ipt: await iptablesSave() }).toEqual(before);
    await netnsDel('o1', 'o2', 'm1', 'm2');
  });
});

test("ipam.network: addresses from an nslab network's pool, skipping its nodes' (network modes' own book)", async () => {
  const nslab = (...args: string[]) => execa(join(process.cwd(), 'bin', 'nslab'), args, { reject: false });
  await netnsAdd('w1');
  const before = { s: await snapshot(), ipt: await iptablesSave(), fwd: (await sh('sysctl', '-n', 'net.ipv4.ip_forward')).stdout };
  try {
    expect((await nslab('network', 'create', '--subnet', '10.99.0.0/24', 'netw')).exitCode).toBe(0);
    expect((await nslab('node', 'run', 'wn1', '--net', 'netw')).stdout).toBe('wn1: eth0 10.99.0.2/24 on netw');
    const conf = { cniVersion: '1.0.0', name: 'n6', type: 'nslab-cni', bridge: 'cni6', ipam: { type: 'nslab', network: 'netw' } };
    const a = await nslabCni('ADD', conf, envOf('w1', 'w1'));
    expect(a.out.ips).toEqual([{ address: '10.99.0.3/24', gateway: '10.99.0.1', interface: 2 }]);
    expect((await nslabCni('ADD', { ...conf, ipam: { type: 'nslab', network: 'nope' } }, envOf('w2', 'w1', 'eth1'))).out).toMatchObject({ code: 7, msg: 'ipam.network "nope": no such nslab network (nslab network ls lists them)' });
    expect((await nslabCni('DEL', conf, envOf('w1', 'w1'))).code).toBe(0);
  } finally {
    // The network and its node, and the default network and host setup (FORWARD policy, forwarding)
    // that network modes made with them: clean takes it all back.
    await nslab('node', 'rm', '-f', 'wn1');
    await nslab('network', 'rm', 'netw');
    await clean(runner);
    await netnsDel('w1');
  }
  await netnsAdd('w1');
  expect({ s: await snapshot(), ipt: await iptablesSave(), fwd: (await sh('sysctl', '-n', 'net.ipv4.ip_forward')).stdout }).toEqual(before);
  await netnsDel('w1');
});
