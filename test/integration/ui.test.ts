// nslab ui in a real headless Chromium (Debian's chromium, driven by playwright-core), in the sandbox
// (and, on the same lab 09, a capture on an OVS trunk port):
// lab 09's page shows every node and port with its tag, a link taken down in the terminal turns red
// within 2 s, the page's "down" button takes a link down in the kernel, counters rise during a ping.
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { XMLParser } from 'fast-xml-parser';
import { assertSandbox, runner, snapshot } from '../helpers/kernel.js';
import { readPcap, startCapture } from '../helpers/live.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');
const nslab = (...args: string[]) => execa('node', [CLI, ...args], { reject: false });
/** Where the test leaves its screenshot (README's picture is a copy of it). */
const OUT = join(process.cwd(), 'test', 'output');
const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';

beforeAll(assertSandbox);
const dir = mkdtempSync(join(tmpdir(), 'nslab-ui-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A GET with a chosen Host header: the status code. */
function status(url: string, host?: string): Promise<number> {
  return new Promise((res, rej) => {
    const u = new URL(url);
    const req = request({ host: '127.0.0.1', port: u.port, path: `${u.pathname}${u.search}`, headers: host ? { host } : {} }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('error', rej);
    req.end();
  });
}

async function eventually(what: string, f: () => Promise<boolean>, ms: number): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 100))) if (await f()) return;
  throw new Error(`not within ${ms} ms: ${what}`);
}

const isUp = async (netns: string, dev: string) => ((JSON.parse((await runner.run({ argv: ['ip', '-j', 'link', 'show', 'dev', dev], netns })).stdout) as Array<{ flags: string[] }>)[0]!.flags.includes('UP'));

describe('lab 09 up (OVS, VLAN tags 10 and 20)', () => {
  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    before = await snapshot();
    expect((await nslab('lab', 'up', '09', '--no-check')).exitCode).toBe(0);
  });
  afterAll(async () => {
    expect((await nslab('lab', 'down', '09')).exitCode).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  test('capture: an OVS trunk port (a port without a tag) shows the 802.1Q tag 10 of g1\'s frames; a lab node by its lab\'s name; lab verify --junit', async () => {
    const { useLabOvs } = await import('../../src/engine/labs/lab.js');
    useLabOvs();
    // A veth whose one end is an untagged (trunk) port of ovs-br0: frames leave OVS there with their tags.
    await runner.run({ argv: ['ip', 'link', 'add', 'trunk0', 'type', 'veth', 'peer', 'name', 'trunk0p'] });
    await runner.run({ argv: ['ip', 'link', 'set', 'trunk0', 'up'] });
    await runner.run({ argv: ['ip', 'link', 'set', 'trunk0p', 'up'] });
    try {
      await runner.run({ argv: ['ovs-vsctl', '--timeout=10', 'add-port', 'ovs-br0', 'trunk0'] });
      const file = join(dir, 'trunk.pcap');
      const cap = await startCapture('ovs-br0:trunk0', '-w', file, '-c', '2', '--filter', 'vlan 10 and arp');
      // Nobody has 10.10.0.99: g1's ARP requests for it are flooded to every port of VLAN 10, the trunk too.
      const ping = runner.run({ argv: ['ping', '-c', '3', '-i', '0.5', '-W', '1', '10.10.0.99'], netns: 'g1' }, { check: false });
      expect((await cap.proc).exitCode).toBe(0);
      await ping;
      const lines = await readPcap(file, '-e');
      expect(lines).toHaveLength(2);
      for (const l of lines) expect(l).toMatch(/ethertype 802\.1Q \(0x8100\), length \d+: vlan 10, p 0, ethertype ARP.*Request who-has 10\.10\.0\.99 tell 10\.10\.0\.1/);
      // A lab's node by its lab's name for it: g1's own end, untagged (the tag is OVS's business).
      const own = await startCapture('lab', '09', 'g1:eth1', '-c', '1', '--filter', 'icmp');
      await runner.run({ argv: ['ping', '-c', '1', '10.10.0.2'], netns: 'g1' });
      const got = await own.proc;
      expect(got.exitCode).toBe(0);
      expect(Buffer.from(got.stdout as Uint8Array).toString()).toMatch(/ethertype IPv4 \(0x0800\), length 98: 10\.10\.0\.1 > 10\.10\.0\.2: ICMP echo request/);
      expect(own.err()).toMatch(/^1 packet captured on g1:eth1$/m);
    } finally {
      await runner.run({ argv: ['ovs-vsctl', '--timeout=10', '--if-exists', 'del-port', 'ovs-br0', 'trunk0'] });
      await runner.run({ argv: ['ip', 'link', 'del', 'trunk0'] });
    }

    // lab verify --junit: one case per expectation of the lab's verify list, all passing.
    const junit = join(dir, 'lab09.xml');
    expect((await nslab('lab', 'verify', '09', '--junit', junit)).exitCode).toBe(0);
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(readFileSync(junit, 'utf8'));
    expect(xml.testsuites).toMatchObject({ name: 'nslab lab verify 09', tests: '5', failures: '0', testsuite: { name: 'lab 09 verify' } });
    expect((xml.testsuites.testsuite.testcase as Array<{ name: string }>).map((c) => c.name)).toContain('OVS port g3-eth1 has VLAN tag 20');
  });

  test('the page: nodes, ports and tags; terminal link down turns red within 2 s; the down button acts on the kernel; counters rise; nothing left running', async () => {
    let ui: ChildProcess | null = null;
    let browser: Browser | null = null;
    try {
      ui = spawn('node', [CLI, 'ui', 'lab', '09'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      ui.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      ui.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await eventually('the URL printed', async () => /http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}/.test(out), 15000);
      const url = /http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}/.exec(out)![0];

      // Without the token, with another one, or named by another host: 403.
      expect(await status(url)).toBe(200);
      expect(await status(url.replace(/\?token=.*/, ''))).toBe(403);
      expect(await status(url.replace(/token=./, 'token=x'))).toBe(403);
      expect(await status(url, 'evil.example:80')).toBe(403);

      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
      const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
      await page.goto(url);
      await page.waitForSelector('#graph svg');
      await page.waitForFunction(() => [...document.querySelectorAll('#ifaces .state')].some((x) => x.textContent === 'up'));

      // Every node and OVS port with its tag, in graphviz's drawing and in the interface table.
      const svgText = await page.$eval('#graph svg', (s) => [...s.querySelectorAll('text')].map((t) => t.textContent ?? ''));
      for (const t of ['ovs ovs-br0', 'g1-eth1 tag 10', 'g2-eth1 tag 10', 'g3-eth1 tag 20']) expect(svgText).toContain(t);
      // A node's label says "(forwarding)" when its netns forwards: a new netns inherits the host's
      // net.ipv4.conf.all.forwarding (devconf_inherit_init_net=0), so that depends on the machine.
      for (const g of ['g1', 'g2', 'g3']) expect(svgText.filter((x) => x === g || x === `${g} (forwarding)`)).toHaveLength(1);
      const rows = async () => page.$$eval('#ifaces tbody tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.children[0]!.textContent, { state: tr.children[1]!.textContent, tag: tr.children[2]!.textContent, addrs: tr.children[3]!.textContent, txPackets: Number(tr.querySelector('.txPackets')!.textContent), txPps: tr.querySelector('.txPps')!.textContent }])));
      const first = await rows();
      expect(first).toMatchObject({
        'g1:eth1': { state: 'up', addrs: '10.10.0.1/24' },
        'ovs-br0:g1-eth1': { state: 'up', tag: '10' },
        'ovs-br0:g2-eth1': { tag: '10' },
        'ovs-br0:g3-eth1': { tag: '20' },
      });

      // Counters rise while a ping runs.
      const ping = runner.run({ argv: ['ping', '-c', '10', '-i', '0.2', '10.10.0.2'], netns: 'g1' });
      await eventually('g1:eth1 tx packets rise', async () => {
        const r = (await rows())['g1:eth1']!;
        return r.txPackets >= first['g1:eth1']!.txPackets + 5 && r.txPps !== '0';
      }, 4000);
      await ping;

      const linkOf = (key: string) => page.evaluate(async (k) => {
        const tok = new URLSearchParams(location.search).get('token')!;
        const m = (await (await fetch(`/api/model?token=${tok}`)).json()) as { links: Array<{ id: string; ends: Array<{ key: string }> }> };
        return m.links.find((l) => l.ends.some((e) => e.key === k))!.id;
      }, key);

      // pingall on demand: a coloured grid (g1 and g2 share VLAN 10; g3 is alone on 20).
      await page.click('#pingall');
      await page.waitForSelector('#matrix-table', { timeout: 20000 });
      expect(await page.$$eval('#matrix-table td', (tds) => tds.map((t) => t.className))).toEqual(['', 'ok', 'no', 'ok', '', 'no', 'no', 'no', '']);

      // From the terminal: red on the page within 2 s.
      const g2 = await linkOf('g2:eth1');
      expect(await page.$eval(`#${g2}`, (g) => g.classList.contains('link-up'))).toBe(true);
      expect((await nslab('link', 'down', 'lab', '09', 'g2:eth1')).exitCode).toBe(0);
      await page.waitForFunction((id) => document.getElementById(id)!.classList.contains('link-down'), g2, { timeout: 2000 });
      expect(await page.$eval(`#${g2} path`, (p) => getComputedStyle(p).stroke)).toBe('rgb(211, 47, 47)');
      // The picture README shows: one link down (red), the grid from before.
      mkdirSync(OUT, { recursive: true });
      await page.screenshot({ path: join(OUT, 'ui-lab09.png'), fullPage: true });

      // From the page: the kernel takes g1's end down.
      const g1 = await linkOf('g1:eth1');
      expect(await isUp('g1', 'eth1')).toBe(true);
      await page.click(`#row-${g1} .down-btn`);
      await eventually('g1:eth1 down in the kernel', async () => !(await isUp('g1', 'eth1')), 3000);
      await page.waitForFunction((id) => document.getElementById(id)!.classList.contains('link-down'), g1, { timeout: 3000 });

      // A capture download: pcap bytes from g3:eth1 (1 s here; the page's button asks for 10).
      const pcap = await page.evaluate(async () => {
        const tok = new URLSearchParams(location.search).get('token')!;
        const r = await fetch(`/api/capture?token=${tok}&end=g3:eth1&seconds=1`);
        const b = new Uint8Array(await r.arrayBuffer());
        return { type: r.headers.get('content-type'), magic: [...b.slice(0, 4)] };
      });
      expect(pcap).toEqual({ type: 'application/vnd.tcpdump.pcap', magic: [0xd4, 0xc3, 0xb2, 0xa1] });

      await page.click(`#row-${g1} .up-btn`);
      await eventually('g1:eth1 up again', async () => isUp('g1', 'eth1'), 3000);
      await browser.close();
      browser = null;
      // SIGTERM: the server stops, and with it everything it started.
      const exited = new Promise<number | null>((res) => ui!.once('exit', (c) => res(c)));
      ui.kill('SIGTERM');
      expect(await exited).toBe(0);
      ui = null;
      const left = (await runner.run({ argv: ['ps', '-eo', 'args='] })).stdout.split('\n').filter((l) => /tcpdump|chromium|main\.mjs ui/.test(l) && !/^ps /.test(l));
      expect(left).toEqual([]);
    } finally {
      await browser?.close();
      ui?.kill('SIGKILL');
      await nslab('link', 'up', 'lab', '09', 'g2:eth1');
    }
  });
});

test('bad input: a port in use, a port of "fast", an unknown lab: one line, exit 2; a file\'s page ends on Ctrl-C', async () => {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  try {
    for (const [args, re] of [
      [['ui', 'lab', '99'], /^nslab: no lab "99": expected one of 01/],
      [['ui', 'examples/star.yaml', '--port', 'fast'], /^nslab: --port "fast": expected a TCP port/],
      [['ui', 'examples/star.yaml', '--port', '70000'], /^nslab: --port "70000": expected a TCP port/],
    ] as Array<[string[], RegExp]>) {
      const res = await nslab(...args);
      expect({ args, code: res.exitCode, lines: res.stderr.trim().split('\n').length }).toEqual({ args, code: 2, lines: 1 });
      expect(res.stderr.trim()).toMatch(re);
    }
    expect((await nslab('up', 'examples/star.yaml')).exitCode).toBe(0);
    const busy = await nslab('ui', 'examples/star.yaml', '--port', String(port));
    expect({ code: busy.exitCode, err: busy.stderr.trim() }).toEqual({ code: 2, err: `nslab: --port ${port}: already in use: expected a free port, or leave --port out for any free one` });
    // A topology file's page, ended by Ctrl-C (SIGINT): exit 0, its port free again.
    const ui = spawn('node', [CLI, 'ui', 'examples/star.yaml'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    ui.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    ui.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await eventually('the URL printed', async () => /token=/.test(out), 15000);
    const url = /http:\S+/.exec(out)![0];
    expect(await status(url.replace('/?', '/api/model?'))).toBe(200);
    const exited = new Promise<number | null>((res) => ui.once('exit', (c) => res(c)));
    ui.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('nslab ui: stopped');
    await expect(status(url)).rejects.toThrow(/ECONNREFUSED/);
  } finally {
    srv.close();
    await nslab('down', 'examples/star.yaml');
  }
});
