// `nslab capture`: Debian's tcpdump on one interface, inside that interface's netns, ended cleanly.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { netnsArgv } from '../../exec/runner.js';
import { NslabError, invalid } from '../../errors.js';
import type { LiveTarget } from './target.js';

/** What to capture and where it goes. */
export interface CaptureOptions {
  /** pcap file to write (`-` = standard output); absent: one readable line per packet. */
  write?: string;
  /** Stop after this many packets (tcpdump -c). */
  count?: number;
  /** A pcap-filter(7) expression (`icmp`, `arp or port 53`). */
  filter?: string;
  /** Stop after this many seconds. */
  duration?: number;
}

/** How a capture ended. */
export interface CaptureResult {
  /** Packets tcpdump captured (its own count, "N packets captured"). */
  packets: number;
  /** tcpdump's exit code. */
  exitCode: number;
}

/**
 * The tcpdump(8) command: `-n` (no name lookups: a lab has no DNS), `--immediate-mode`, `-Z root` (Debian's tcpdump
 * otherwise drops to user tcpdump before opening the file, which then cannot be written in root's
 * folders), readable lines with link-level headers (`-e -l`: MACs and 802.1Q tags, line-buffered),
 * or a pcap file written packet by packet (`-U -w FILE`: a `wireshark -k -i -` pipe shows each at once).
 */
export function tcpdumpArgv(ifname: string, o: CaptureOptions): string[] {
  return [
    'tcpdump',
    '-i',
    ifname,
    '-n',
    // Each packet handed over at once, not in 1 s blocks (TPACKET_V3): a Ctrl-C right after a ping
    // would otherwise end the capture before its block came, and count it as never captured.
    '--immediate-mode',
    '-Z',
    'root',
    ...(o.write !== undefined ? ['-U', '-w', o.write] : ['-e', '-l']),
    ...(o.count !== undefined ? ['-c', String(o.count)] : []),
    ...(o.filter ? [o.filter] : []),
  ];
}

/**
 * Checks the options before anything starts (the CLI's flag names).
 * @throws NslabError `INVALID_INPUT`
 */
export function checkCaptureOptions(o: CaptureOptions): void {
  if (o.count !== undefined && (!Number.isInteger(o.count) || o.count < 1)) throw invalid(`-c ${JSON.stringify(o.count)}: expected a whole number of packets, at least 1`);
  if (o.duration !== undefined && !(Number.isFinite(o.duration) && o.duration > 0 && o.duration <= 86400)) throw invalid(`--duration ${JSON.stringify(o.duration)}: expected seconds, more than 0 and at most 86400`);
  if (o.write === '') throw invalid('-w "": expected a file name, or - for standard output');
}

/**
 * Runs tcpdump on the target until it has `count` packets, `duration` passes, `signal` aborts it, or
 * this process gets SIGINT/SIGTERM (Ctrl-C reaches tcpdump too, as one process group): tcpdump then
 * ends itself cleanly (the pcap file complete) and its count is returned. tcpdump runs under
 * `setpriv --pdeathsig TERM`, so even a SIGKILL of nslab leaves no tcpdump behind.
 * @param out where tcpdump's standard output goes (readable lines, or pcap for `-w -`)
 * @param onStart called once tcpdump listens (its "listening on" line)
 * @throws NslabError `INVALID_INPUT` when tcpdump refuses the filter; `MISSING_TOOL` without tcpdump;
 *   `COMMAND_FAILED` when it fails otherwise
 */
export async function capture(t: LiveTarget, o: CaptureOptions, out: Writable | 'inherit', opts: { signal?: AbortSignal; onStart?: () => void } = {}): Promise<CaptureResult> {
  checkCaptureOptions(o);
  const argv = ['setpriv', '--pdeathsig', 'TERM', '--', ...netnsArgv({ argv: tcpdumpArgv(t.ifname, o), netns: t.netns })];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', out === 'inherit' ? 'inherit' : 'pipe', 'pipe'] });
  let err = '';
  let started = false;
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  // A reader gone (a download cancelled) ends the capture; its error must not end this process.
  const gone = () => stop();
  if (out !== 'inherit') {
    child.stdout!.pipe(out, { end: false });
    out.on('error', gone);
  }
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (!started && /listening on/.test(err)) {
      started = true;
      opts.onStart?.();
    }
  });
  const timer = o.duration !== undefined ? setTimeout(stop, o.duration * 1000) : null;
  opts.signal?.addEventListener('abort', stop);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const code = await new Promise<number>((res, rej) => {
      child.once('error', rej);
      child.once('close', (c, sig) => res(c ?? (sig ? 128 : 1)));
    });
    const packets = Number(/(\d+) packets? captured/.exec(err)?.[1] ?? 0);
    if (code !== 0) {
      const line = err.split('\n').map((l) => l.trim()).filter((l) => l && !/^tcpdump: verbose output suppressed|^listening on/.test(l)).find((l) => /tcpdump:|error|No such|not found/i.test(l)) ?? `exit ${code}`;
      if (/syntax error|can't parse filter|illegal|unknown host|expression rejects all packets/i.test(err)) throw invalid(`--filter ${JSON.stringify(o.filter ?? '')}: tcpdump refused it (${line.replace(/^tcpdump: /, '')}): expected a pcap-filter(7) expression such as "icmp" or "arp or port 53"`);
      if (/setpriv: failed to execute tcpdump|No such file or directory.*tcpdump|tcpdump: not found/i.test(err)) throw new NslabError('MISSING_TOOL', 'capture needs tcpdump, which is not installed: apt-get install tcpdump');
      throw new NslabError('COMMAND_FAILED', `tcpdump on ${t.label}: ${line}`);
    }
    return { packets, exitCode: code };
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', stop);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (out !== 'inherit') out.off('error', gone);
  }
}
