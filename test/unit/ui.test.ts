// nslab ui's server without root or a kernel (a recording runner answers): the token and Host checks,
// the page and its assets, the model it draws, the state stream.
import { request } from 'node:http';
import { RecordingRunner } from '../../src/exec/recorder.js';
import { startUi, type UiServer } from '../../src/engine/live/ui.js';
import { loadTopology } from '../../src/engine/topology.js';
import { example } from '../helpers/topo.js';

/** A request with a chosen method and Host header: status, headers and body. */
function get(url: string, o: { host?: string; method?: string; maxMs?: number } = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((res, rej) => {
    const u = new URL(url);
    const req = request({ host: '127.0.0.1', port: u.port, path: `${u.pathname}${u.search}`, method: o.method ?? 'GET', headers: o.host ? { host: o.host } : {} }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => {
        body += d.toString();
        // An event stream never ends: the first event is enough.
        if (o.maxMs !== undefined && body.includes('\n\n')) req.destroy();
      });
      const done = () => res({ status: r.statusCode ?? 0, type: String(r.headers['content-type'] ?? ''), body });
      r.on('end', done);
      r.on('close', done);
    });
    req.on('error', (e) => (o.maxMs !== undefined ? undefined : rej(e)));
    req.end();
  });
}

let ui: UiServer;
const ipJson = JSON.stringify([{ ifname: 'eth0', flags: ['UP', 'LOWER_UP'], operstate: 'UP', addr_info: [{ family: 'inet', local: '10.0.0.1', prefixlen: 24, scope: 'global' }], stats64: { rx: { bytes: 10, packets: 1 }, tx: { bytes: 20, packets: 2 } } }]);

beforeAll(async () => {
  const r = new RecordingRunner((argv) => (argv[0] === 'dot' ? { stdout: '<svg><g id="link-0" class="edge"></g></svg>' } : argv.includes('-s') ? { stdout: ipJson } : undefined));
  ui = await startUi(r, await loadTopology(example('star')), { title: 'topology star' });
});
afterAll(() => ui.close());

test('the URL is 127.0.0.1 with a 128-bit token; without it, with another, or by another host name: 403', async () => {
  expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}$/);
  const bare = ui.url.replace(/\?.*/, '');
  expect((await get(bare)).status).toBe(403);
  expect((await get(`${bare}api/model?token=${'0'.repeat(32)}`)).status).toBe(403);
  expect((await get(ui.url, { host: 'attacker.example' })).status).toBe(403);
  expect((await get(ui.url, { host: `localhost:${ui.port}` })).status).toBe(200);
});

test('the page names its assets with the token; they and the graph come from the package and graphviz', async () => {
  const page = await get(ui.url);
  expect(page.type).toMatch(/^text\/html/);
  const token = new URL(ui.url).searchParams.get('token')!;
  expect(page.body).toContain(`app.js?token=${token}`);
  expect(page.body).not.toMatch(/https?:\/\//); // nothing from outside
  const js = await get(ui.url.replace('/?', '/app.js?'));
  expect(js.type).toMatch(/javascript/);
  expect(js.body).toContain('EventSource');
  expect((await get(ui.url.replace('/?', '/graph.svg?'))).body).toContain('id="link-0"');
});

test('the model: each link with its ends; an unknown end is refused; events carry the state read', async () => {
  const m = JSON.parse((await get(ui.url.replace('/?', '/api/model?'))).body) as { title: string; links: Array<{ id: string; ends: Array<{ key: string; node: string }> }> };
  expect(m.title).toBe('topology star');
  expect(m.links.map((l) => l.id)).toEqual(['link-0', 'link-1', 'link-2']);
  expect(m.links[0]!.ends[0]).toMatchObject({ key: 'h1:eth0', node: 'h1' });
  const bad = await get(ui.url.replace('/?', '/api/link?') + '&end=zz:eth0&action=down', { method: 'POST' });
  expect(bad.status).toBe(400);
  const ev = await get(ui.url.replace('/?', '/api/events?'), { maxMs: 3000 });
  const tick = JSON.parse(/^data: (.*)$/m.exec(ev.body)![1]!) as { ends: Array<{ key: string; up: boolean; addresses: string[]; txPackets: number }> };
  expect(tick.ends.find((e) => e.key === 'h1:eth0')).toMatchObject({ up: true, addresses: ['10.0.0.1/24'], txPackets: 2 });
});
