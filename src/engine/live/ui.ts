// `nslab ui`: a local web page of a running topology or lab: its graph (graphviz's SVG of `nslab graph`'s
// model), live state every second over Server-Sent Events, pingall on demand, link down/up and captures.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Runner } from '../../exec/runner.js';
import { NslabError, invalid } from '../../errors.js';
import { packageRoot } from '../../paths.js';
import type { Model } from '../../model/types.js';
import { toDot } from '../../verify/graph.js';
import { modelEnds, readLiveState, type EndState } from '../../verify/live.js';
import { capture } from './capture.js';
import { setLinkState } from './links.js';
import { resolveTarget } from './target.js';

/** A running page. */
export interface UiServer {
  /** The URL to open, with the token: `http://127.0.0.1:PORT/?token=HEX`. */
  url: string;
  port: number;
  /** Stops the server, its event streams and any capture running for it; resolves when all are gone. */
  close(): Promise<void>;
}

/** Files of the page, served from `share/ui/` of the package (no CDN: this machine has no internet). */
const ASSETS: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** A link's ends and what the page shows of it. */
interface PageLink {
  id: string;
  ends: Array<{ key: string; node: string; ifname: string; target: string; vlan: number | null }>;
}

/** The state sent every second: each end's state with its rates since the last reading. */
interface Tick {
  at: number;
  ends: Array<EndState & { rxPps: number; txPps: number; rxBps: number; txBps: number }>;
}

/**
 * Starts the page's server on 127.0.0.1 (never another address): a free port, or `port`. Every
 * request must carry the random token of the printed URL (`?token=`) and name 127.0.0.1 or localhost
 * in its Host header (a page elsewhere cannot reach it through DNS rebinding): anything else gets 403.
 * @param r the runner
 * @param m the model drawn and watched (a topology file's, or a lab's as read from the kernel)
 * @param o `port` (1..65535; default a free one), `title` shown on the page
 * @throws NslabError `INVALID_INPUT` when the port is in use or cannot be had
 */
export async function startUi(r: Runner, m: Model, o: { port?: number; title: string }): Promise<UiServer> {
  const token = randomBytes(16).toString('hex');
  const ends = modelEnds(m);
  const links: PageLink[] = [...m.veths.map((v) => [v.a, v.b]), ...m.macvlans.map((x) => [{ netns: x.netns, name: x.name, owner: x.owner, vlan: null, bridge: null }])].map((pair, k) => ({
    id: `link-${k}`,
    ends: pair.map((e) => ({ key: `${e.netns ?? '-'}:${e.name}`, node: e.netns ?? (e.bridge ?? m.host.name), ifname: e.name, target: `${e.netns ?? 'host'}:${e.name}`, vlan: e.vlan })),
  }));
  // graphviz lays the graph out (no layout of nslab's own); the ids let the page colour each link.
  const dotSvg = await r
    .run({ argv: ['dot', '-Tsvg'], input: toDot(m, { ids: true }) })
    .then((x) => x.stdout)
    .catch(() => null);
  const streams = new Set<ServerResponse>();
  const aborts = new Set<AbortController>();
  let last: Tick | null = null;
  let reading: Promise<void> | null = null;

  const tick = async () => {
    const now = Date.now();
    const st = await readLiveState(r, m);
    const prev = last;
    const dt = prev ? (now - prev.at) / 1000 : 0;
    const rate = (k: string, f: 'rxBytes' | 'txBytes' | 'rxPackets' | 'txPackets', v: number) => {
      const p = prev?.ends.find((x) => x.key === k);
      return p && dt > 0 ? Math.max(0, (v - p[f]) / dt) : 0;
    };
    last = { at: now, ends: st.map((e) => ({ ...e, rxPps: rate(e.key, 'rxPackets', e.rxPackets), txPps: rate(e.key, 'txPackets', e.txPackets), rxBps: rate(e.key, 'rxBytes', e.rxBytes), txBps: rate(e.key, 'txBytes', e.txBytes) })) };
    const msg = `data: ${JSON.stringify(last)}\n\n`;
    for (const s of streams) s.write(msg);
  };
  // One reading a second, shared by every open page; a slow reading is not stacked on.
  const timer = setInterval(() => {
    if (!reading && streams.size) reading = tick().catch(() => {}).finally(() => (reading = null));
  }, 1000);

  const ok = (req: IncomingMessage, url: URL): boolean => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (host !== '127.0.0.1' && host !== 'localhost') return false;
    const t = Buffer.from(url.searchParams.get('token') ?? '');
    const want = Buffer.from(token);
    return t.length === want.length && timingSafeEqual(t, want);
  };
  const send = (res: ServerResponse, code: number, type: string, body: string | Buffer) => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  };
  const json = (res: ServerResponse, code: number, v: unknown) => send(res, code, 'application/json', JSON.stringify(v));
  const endOf = (key: string | null) => ends.find((e) => e.key === key);

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!ok(req, url)) return send(res, 403, 'text/plain', 'forbidden: open the URL nslab ui printed (it carries the token)\n');
    void (async () => {
      try {
        const asset = ASSETS[url.pathname];
        if (req.method === 'GET' && asset) {
          const body = readFileSync(join(packageRoot(), 'share', 'ui', asset), 'utf8');
          // The page names its script and style with the token (they are requests like any other).
          return send(res, 200, TYPES[asset.split('.').pop()!]!, asset === 'index.html' ? body.replaceAll('__TOKEN__', token) : body);
        }
        if (req.method === 'GET' && url.pathname === '/graph.svg') return dotSvg === null ? send(res, 500, 'text/plain', 'graphviz (dot) is not installed: apt-get install graphviz\n') : send(res, 200, 'image/svg+xml', dotSvg);
        if (req.method === 'GET' && url.pathname === '/api/model') return json(res, 200, { title: o.title, links, ends });
        if (req.method === 'GET' && url.pathname === '/api/events') {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
          streams.add(res);
          res.on('close', () => streams.delete(res));
          if (last) res.write(`data: ${JSON.stringify(last)}\n\n`);
          else reading ??= tick().catch(() => {}).finally(() => (reading = null));
          return;
        }
        if (req.method === 'POST' && url.pathname === '/api/link') {
          const e = endOf(url.searchParams.get('end'));
          const action = url.searchParams.get('action');
          if (!e || (action !== 'down' && action !== 'up')) return json(res, 400, { error: 'expected end=NETNS:IF of the topology and action=down|up' });
          const t = await resolveTarget(r, `${e.netns ?? 'host'}:${e.ifname}`);
          await setLinkState(r, t, action === 'up');
          return json(res, 200, { ok: true, target: t.label, action });
        }
        if (req.method === 'POST' && url.pathname === '/api/pingall') {
          const { pingall } = await import('../../verify/pingall.js');
          const rep = await pingall(r, m);
          return json(res, 200, { sources: rep.sources, targets: rep.targets, results: rep.results, ok: rep.ok, ms: rep.ms });
        }
        if (req.method === 'GET' && url.pathname === '/api/capture') {
          const e = endOf(url.searchParams.get('end'));
          const seconds = Number(url.searchParams.get('seconds') ?? '10');
          if (!e || !(seconds > 0 && seconds <= 60)) return json(res, 400, { error: 'expected end=NETNS:IF of the topology and seconds from 1 to 60' });
          const t = await resolveTarget(r, `${e.netns ?? 'host'}:${e.ifname}`);
          const ac = new AbortController();
          aborts.add(ac);
          res.on('close', () => ac.abort()); // the download was cancelled (or the page closed)
          res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap', 'content-disposition': `attachment; filename="${t.label.replace(/[^A-Za-z0-9_.-]/g, '-')}.pcap"`, 'cache-control': 'no-store' });
          try {
            await capture(t, { write: '-', duration: seconds }, res, { signal: ac.signal });
          } finally {
            aborts.delete(ac);
            res.end();
          }
          return;
        }
        send(res, 404, 'text/plain', 'not found\n');
      } catch (err) {
        if (!res.headersSent) json(res, err instanceof NslabError && err.code === 'INVALID_INPUT' ? 400 : 500, { error: err instanceof Error ? err.message : String(err) });
        else res.end();
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      clearInterval(timer);
      if (err.code === 'EADDRINUSE') reject(invalid(`--port ${o.port}: already in use: expected a free port, or leave --port out for any free one`));
      else if (err.code === 'EACCES') reject(invalid(`--port ${o.port}: not allowed here (${err.code}): expected another port`));
      else reject(err);
    });
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    async close() {
      clearInterval(timer);
      for (const a of aborts) a.abort();
      for (const s of streams) s.end();
      streams.clear();
      await reading;
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

/**
 * Checks a `--port` value: a whole number from 1 to 65535.
 * @param text the value as typed, for the message (default: the number)
 * @throws NslabError `INVALID_INPUT`
 */
export function checkPort(p: number | undefined, text?: string): void {
  if (p !== undefined && !(Number.isInteger(p) && p >= 1 && p <= 65535)) throw invalid(`--port ${JSON.stringify(text ?? String(p))}: expected a TCP port, a whole number from 1 to 65535`);
}
