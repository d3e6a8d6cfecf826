// A lab's checks (expect:/verify:): each one read from the kernel or tried from inside a node, each
// with a deadline, each saying in one line what it looked for and, when it failed, what it found.
import { spawn } from 'node:child_process';
import type { Result } from '../../exec/command.js';
import type { Runner } from '../../exec/runner.js';
import { DEFAULT_TIMEOUT_S, type LabExpect } from '../../model/lab.js';

/** One checked expectation. */
export interface Checked {
  ok: boolean;
  text: string;
  detail?: string;
}

/** The processes a lab started (name -> PID), for `${NAME}` in commands. */
export type Pids = Record<string, number>;

const where = (w: string): string | null => (w === 'host' ? null : w);

/** A command's words: split on blanks (no shell), `${NAME}` replaced by the PID of spawned NAME. */
export function words(cmd: string | string[], pids: Pids): string[] {
  const list = Array.isArray(cmd) ? cmd : cmd.trim().split(/\s+/);
  return list.map((w) => w.replace(/\$\{([a-z][a-z0-9_]*)\}/g, (m, n: string) => (pids[n] !== undefined ? String(pids[n]) : m)));
}

/** A command as a check's label shows it: a long `sh -c` script cut, so the line stays a line. */
function label(argv: string[]): string {
  const s = argv.join(' ').replace(/\s+/g, ' ');
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * How a connection failed, from node's error code (errno names of connect(2)): ECONNREFUSED is a TCP
 * reset or an ICMP port unreachable; EHOSTUNREACH/ENETUNREACH an ICMP host/net unreachable, no route,
 * or no ARP answer (after ~3 s: 3 solicitations a second apart, ip-neighbour's defaults); no answer
 * before the deadline is a timeout. The probe prints the kind as its first word.
 */
const KINDS_JS = 'const K={ECONNREFUSED:"refused",ECONNRESET:"refused",EHOSTUNREACH:"unreachable",ENETUNREACH:"unreachable",ETIMEDOUT:"timeout"};';
/** A TCP handshake from inside the netns (busybox nc has no -z here): argv URL-less HOST PORT MS. */
const TCP_JS = `${KINDS_JS}const [h,p,t]=process.argv.slice(1);setTimeout(()=>{console.log("timeout no answer in "+t+" ms");process.exit(2)},+t);const s=require("net").connect({host:h,port:+p},()=>{console.log("connected");s.destroy();process.exit(0)});s.on("error",e=>{console.log((K[e.code]||e.code)+" "+e.code);process.exit(1)})`;
/** An HTTP GET from inside the netns with node's own client (busybox wget segfaults here): URL MS. */
const HTTP_JS = `${KINDS_JS}const [u,t]=process.argv.slice(1);setTimeout(()=>{console.log("timeout no answer in "+t+" ms");process.exit(2)},+t);require("http").get(u,r=>{let b="";r.on("data",d=>b+=d);r.on("end",()=>{process.stdout.write("answer "+r.statusCode+"\\n"+b);process.exit(0)})}).on("error",e=>{console.log((K[e.code]||e.code)+" "+e.code);process.exit(1)})`;

/** The deadline of a probe process: the check's own, plus time for node to start inside nsenter. */
const backstop = (s: number) => s * 1000 + 3000;

/** The first word a probe printed: `connected`, `answer`, `refused`, `unreachable`, `timeout`, or an errno name. */
function outcome(res: Result): string {
  if (res.timedOut) return 'timeout';
  return res.stdout.trim().split(/\s+/)[0] || (res.stderr.trim() ? `error: ${res.stderr.trim().split('\n').slice(-1)[0]}` : 'nothing');
}

/** The number an `output` check's `match:` captures (its first group, else the whole match), or undefined. */
function numberIn(text: string, match: string): number | undefined {
  const m = new RegExp(match, 'm').exec(text);
  if (!m) return undefined;
  const n = Number(m[1] ?? m[0]);
  return Number.isFinite(n) ? n : undefined;
}

/** Runs an `output` check's command with its deadline. */
async function runOutput(r: Runner, o: Extract<LabExpect, { output: unknown }>['output'], pids: Pids): Promise<{ argv: string[]; res: Result }> {
  const argv = words(o.run, pids);
  const res = await r.run({ argv, netns: where(o.in), timeoutMs: (o.timeout ?? DEFAULT_TIMEOUT_S) * 1000 }, { check: false });
  return { argv, res };
}

/**
 * Reads, before a step's actions, the number an `output` check with `compare:` compares afterwards.
 * @returns the number, or undefined when the check has no `compare:` or its `match:` finds none yet
 */
export async function captureBefore(r: Runner, e: LabExpect, pids: Pids): Promise<number | undefined> {
  if (!('output' in e) || !e.output.compare || !e.output.match) return undefined;
  const { res } = await runOutput(r, e.output, pids);
  return numberIn(`${res.stdout}${res.stderr}`, e.output.match);
}

/**
 * Checks one expectation against the kernel, within its `timeout:` (seconds; default
 * {@link DEFAULT_TIMEOUT_S}, rate 15).
 * @param before for an `output` check with `compare:`, the number read before the step ran
 * @returns ok, a one-line label, and on failure what was found instead
 */
export async function check(r: Runner, e: LabExpect, pids: Pids, before?: number): Promise<Checked> {
  if ('ping' in e) {
    const p = e.ping;
    const t = p.timeout ?? DEFAULT_TIMEOUT_S;
    const text = `ping ${p.from} -> ${p.to} ${p.ok ? 'answers' : `fails${p.error ? ` (${p.error})` : ''}`}`;
    const w = String(Math.max(1, Math.min(1, t)));
    let res = await r.run({ argv: ['ping', '-c', '1', '-W', w, p.to], netns: where(p.from), timeoutMs: backstop(t) }, { check: false });
    if (p.ok && res.exitCode !== 0 && !res.timedOut) res = await r.run({ argv: ['ping', '-c', '2', '-W', '1', '-i', '0.3', '-w', String(Math.max(1, Math.ceil(t))), p.to], netns: where(p.from), timeoutMs: backstop(t) }, { check: false });
    const out = `${res.stdout}${res.stderr}`;
    const ok = p.ok ? res.exitCode === 0 : res.exitCode !== 0 && (!p.error || out.includes(p.error));
    return { ok, text, ...(ok ? {} : { detail: res.timedOut ? `timeout after ${t} s` : out.trim().split('\n').slice(-2).join(' / ') }) };
  }
  if ('tcp' in e || 'http' in e) {
    const isTcp = 'tcp' in e;
    const c = isTcp ? e.tcp : e.http;
    const t = c.timeout ?? DEFAULT_TIMEOUT_S;
    const argv = isTcp ? [process.execPath, '-e', TCP_JS, e.tcp.to, String(e.tcp.port), String(t * 1000)] : [process.execPath, '-e', HTTP_JS, e.http.url, String(t * 1000)];
    const res = await r.run({ argv, netns: where(c.from), timeoutMs: backstop(t) }, { check: false });
    const got = outcome(res);
    // An `error:` says how it must fail, and so that it must fail.
    const wantOk = c.error ? false : c.ok;
    const answered = isTcp ? got === 'connected' : got === 'answer' && (!e.http.contains || res.stdout.includes(e.http.contains));
    const ok = wantOk ? answered : !answered && (!c.error || got === c.error);
    const what = isTcp ? `tcp ${c.from} -> ${e.tcp.to}:${e.tcp.port}` : `${c.from}: GET ${e.http.url}`;
    const how = wantOk ? (isTcp ? 'connects' : e.http.contains ? `shows "${e.http.contains}"` : 'answers') : c.error ? `fails: ${c.error}` : isTcp ? 'does not connect' : e.http.contains ? `does not show "${e.http.contains}"` : 'gets no answer';
    const found = got === 'answer' ? `answered: ${res.stdout.split('\n').slice(1).join(' ').trim().slice(0, 80) || '(empty)'}` : got;
    return { ok, text: `${what} ${how}`, ...(ok ? {} : { detail: found }) };
  }
  if ('rate' in e) return rate(r, e.rate);
  const t = (Object.values(e)[0] as { timeout?: number }).timeout ?? DEFAULT_TIMEOUT_S;
  const timeoutMs = t * 1000;
  const late = (res: Result) => (res.timedOut ? `timeout after ${t} s` : undefined);
  if ('link' in e) {
    const l = e.link;
    const res = await r.run({ argv: ['ip', '-j', '-d', 'link', 'show'], netns: where(l.in), timeoutMs }, { check: false });
    const link = (JSON.parse((!res.timedOut && res.stdout) || '[]') as Array<{ ifname: string; master?: string; flags: string[]; linkinfo?: { info_kind?: string } }>).find((x) => x.ifname === l.name);
    const text = `${l.in}: ${l.exists ? '' : 'no '}link ${l.name}${l.exists ? ' exists' : ''}${l.master ? ` on ${l.master}` : ''}${l.kind ? ` (${l.kind})` : ''}${l.up !== undefined ? (l.up ? ', up' : ', down') : ''}`;
    // A netns that is gone has no links: `exists: false` holds there, as it always did.
    if (res.timedOut) return { ok: false, text, detail: late(res)! };
    if (!l.exists) return { ok: !link, text };
    const ok = !!link && (!l.master || link.master === l.master) && (!l.kind || link.linkinfo?.info_kind === l.kind) && (l.up === undefined || link.flags.includes('UP') === l.up);
    return { ok, text, ...(ok ? {} : { detail: link ? JSON.stringify({ master: link.master, kind: link.linkinfo?.info_kind, flags: link.flags }) : 'no such link' }) };
  }
  if ('addr' in e) {
    const a = e.addr;
    const res = await r.run({ argv: ['ip', '-j', 'addr', 'show', 'dev', a.dev], netns: where(a.in), timeoutMs }, { check: false });
    const have = (JSON.parse(res.exitCode === 0 && res.stdout ? res.stdout : '[]') as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>).flatMap((x) => x.addr_info.map((i) => `${i.local}/${i.prefixlen}`));
    // No such device (or netns): it has no address, which `exists: false` expects.
    const ok = !res.timedOut && have.includes(a.address) === a.exists;
    return { ok, text: `${a.in}: ${a.dev} ${a.exists ? 'has' : 'has no'} ${a.address}`, detail: late(res) ?? (res.exitCode === 0 ? have.join(' ') : res.stderr.trim()) };
  }
  if ('route' in e) {
    const rt = e.route;
    const res = await r.run({ argv: ['ip', 'route', 'show'], netns: where(rt.in), timeoutMs }, { check: false });
    const norm = (s: string) => s.trim().replace(/\s+/g, ' ');
    const found = res.stdout.split('\n').some((l) => norm(l).startsWith(norm(rt.line)));
    return { ok: !res.timedOut && found === rt.exists, text: `${rt.in}: route "${rt.line}" ${rt.exists ? 'present' : 'absent'}`, detail: late(res) ?? (res.exitCode === 0 ? res.stdout.trim().split('\n').join(' | ') : res.stderr.trim()) };
  }
  if ('output' in e) {
    const o = e.output;
    const { argv, res } = await runOutput(r, o, pids);
    const raw = `${res.stdout}${res.stderr}`;
    const squeezed = raw.replace(/[ \t]+/g, ' ');
    const sub = (s: string) => words([s], pids)[0]!.replace(/[ \t]+/g, ' ');
    const parts: string[] = [];
    const fails: string[] = [];
    if (o.contains !== undefined) {
      const want = sub(o.contains);
      parts.push(`${o.ok ? 'shows' : 'does not show'} "${want}"`);
      if (squeezed.includes(want) !== o.ok) fails.push(o.ok ? `no "${want}"` : `"${want}" is there`);
    }
    if (o.absent !== undefined) {
      const want = sub(o.absent);
      parts.push(`does not show "${want}"`);
      if (squeezed.includes(want)) fails.push(`"${want}" is there`);
    }
    if (o.match !== undefined) {
      const n = o.compare ? numberIn(raw, o.match) : undefined;
      if (!o.compare) {
        parts.push(`matches /${o.match}/`);
        if (!new RegExp(o.match, 'm').test(raw)) fails.push(`no match of /${o.match}/`);
      } else {
        parts.push(`/${o.match}/ ${o.compare}`);
        if (n === undefined) fails.push(`no number matched by /${o.match}/`);
        else if (before === undefined) parts[parts.length - 1] += ` (now ${n}; nothing to compare with here)`;
        else {
          const held = o.compare === 'increases' ? n > before : o.compare === 'decreases' ? n < before : n === before;
          parts[parts.length - 1] += ` (${before} -> ${n})`;
          if (!held) fails.push(`${before} -> ${n}`);
        }
      }
    }
    if (res.timedOut) fails.push(`timeout after ${t} s`);
    const ok = fails.length === 0;
    return { ok, text: `${o.in}: \`${label(argv)}\` ${parts.join(', ')}`, ...(ok ? {} : { detail: `${fails.join('; ')}: ${res.stdout.trim().split('\n').slice(0, 6).join(' | ')}` }) };
  }
  if ('ovs_tag' in e) {
    const res = await r.run({ argv: ['ovs-vsctl', `--timeout=${Math.ceil(t)}`, 'get', 'port', e.ovs_tag.port, 'tag'], timeoutMs: timeoutMs + 1000 }, { check: false });
    return { ok: res.stdout.trim() === String(e.ovs_tag.tag), text: `OVS port ${e.ovs_tag.port} has VLAN tag ${e.ovs_tag.tag}`, detail: late(res) ?? (res.stdout.trim() || res.stderr.trim()) };
  }
  const i = e.iptables;
  const res = await r.run({ argv: ['iptables-save', '-t', i.table], netns: where(i.in), timeoutMs }, { check: false });
  const found = res.stdout.split('\n').some((l) => l.includes(i.rule));
  const ok = !res.timedOut && found === i.exists;
  return { ok, text: `${i.in}: iptables ${i.table} ${i.exists ? 'has' : 'lacks'} "${i.rule}"`, ...(ok ? {} : { detail: late(res) ?? (res.exitCode !== 0 ? res.stderr.trim() : res.stdout.split('\n').filter((l) => l.startsWith('-A')).slice(0, 6).join(' | ') || 'no rules') }) };
}

/** The `rate` check: iperf3 -s in the server node, -c for 2 s in the client node. */
async function rate(r: Runner, t: Extract<LabExpect, { rate: unknown }>['rate']): Promise<Checked> {
  const limit = t.timeout ?? 15;
  const srv = spawn('nsenter', [...(where(t.server) ? [`--net=/run/netns/${t.server}`] : ['--net=/proc/self/ns/net']), '--', 'iperf3', '-s', '-1'], { stdio: 'ignore' });
  srv.on('error', () => undefined); // no iperf3: the client says so
  await new Promise((res) => setTimeout(res, 300));
  const res = await r.run({ argv: ['iperf3', '-c', t.to, '-t', '2', '-J'], netns: where(t.client), timeoutMs: limit * 1000 }, { check: false });
  srv.kill();
  let mbit = NaN;
  try {
    mbit = (JSON.parse(res.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
  } catch {
    /* no result */
  }
  const ok = mbit <= t.max_mbit && mbit >= t.min_mbit;
  return { ok, text: `TCP ${t.client} -> ${t.to} at most ${t.max_mbit} Mbit/s (measured ${Number.isNaN(mbit) ? 'nothing' : mbit.toFixed(2)})`, ...(ok || !res.timedOut ? {} : { detail: `timeout after ${limit} s` }) };
}
