// Traffic control on an interface: a rate (tbf) and, where the kernel has sch_netem, delay/jitter/loss.
import type { Runner } from '../exec/runner.js';
import { invalid } from '../errors.js';
import { cmdOp, linkKey, type Op, type Step } from './step.js';
import { where } from './link.js';

/**
 * What a link is made to suffer: a rate for tbf, delay/jitter/loss for netem. Each field is kept
 * as the text tc(8) takes (`10mbit`, `20ms`, `1%`), checked by {@link checkImpair}.
 */
export interface Impair {
  rate?: string;
  delay?: string;
  jitter?: string;
  loss?: string;
}

/** Rate units of tc(8) ("RATES"), with their bits per second; `bps` there means bytes per second. */
const RATE_UNITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  kibit: 1024,
  mibit: 1024 ** 2,
  gibit: 1024 ** 3,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
};

/**
 * A tc rate in bits per second.
 * @param text a rate as tc(8) writes it: a number and a unit (`10mbit`, `512kbit`, `1gbit`, `125kbps`)
 * @returns bits per second, or null when the text is no such rate (`fast`, `10`, `-1mbit`)
 */
export function parseRate(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([a-z]+)$/i.exec(text.trim());
  if (!m) return null;
  const unit = RATE_UNITS[m[2]!.toLowerCase()];
  const n = Number(m[1]);
  if (unit === undefined || !(n > 0)) return null;
  return n * unit;
}

/** A tc time (`20ms`, `1.5s`, `500us`) in microseconds, or null (tc(8) "TIMES"). */
export function parseTime(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(s|sec|secs|ms|msec|msecs|us|usec|usecs)$/i.exec(text.trim());
  if (!m) return null;
  const u = m[2]!.toLowerCase();
  const mult = u.startsWith('s') ? 1e6 : u.startsWith('m') ? 1e3 : 1;
  return Number(m[1]) * mult;
}

/** A loss percentage (`1%`, `0.5%`, `1`), 0 to 100, or null. */
export function parseLoss(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return n >= 0 && n <= 100 ? n : null;
}

/**
 * What is wrong with an impairment, naming the field and what was expected, or null when it is good.
 * @param label how fields are named: `flag` (`--rate`, the CLI) or `key` (`rate`, a topology's `impair:`)
 */
export function impairProblem(i: Impair, label: 'flag' | 'key' = 'key'): string | null {
  const name = (f: string) => (label === 'flag' ? `--${f}` : f);
  if (i.rate !== undefined && parseRate(i.rate) === null) return `${name('rate')} ${JSON.stringify(i.rate)}: expected a rate such as 10mbit, 512kbit or 1gbit (tc(8) units)`;
  if (i.delay !== undefined && parseTime(i.delay) === null) return `${name('delay')} ${JSON.stringify(i.delay)}: expected a time such as 20ms or 1s`;
  if (i.jitter !== undefined && parseTime(i.jitter) === null) return `${name('jitter')} ${JSON.stringify(i.jitter)}: expected a time such as 5ms`;
  if (i.jitter !== undefined && i.delay === undefined) return `${name('jitter')} ${i.jitter} without ${name('delay')}: netem varies a delay, so give one (e.g. ${name('delay')} 20ms)`;
  if (i.loss !== undefined && parseLoss(i.loss) === null) return `${name('loss')} ${JSON.stringify(i.loss)}: expected a percentage from 0% to 100% such as 1%`;
  return null;
}

/**
 * Refuses a bad impairment in one line (see {@link impairProblem}).
 * @throws NslabError `INVALID_INPUT`
 */
export function checkImpair(i: Impair, label: 'flag' | 'key' = 'flag'): void {
  const p = impairProblem(i, label);
  if (p) throw invalid(p);
}

/** True when the impairment needs sch_netem (delay, jitter or loss). */
export function needsNetem(i: Impair): boolean {
  return i.delay !== undefined || i.jitter !== undefined || i.loss !== undefined;
}

/**
 * tbf's bucket for a rate: 10 ms worth of bytes, at least 16 KiB (a veth hands tbf GSO packets of up to
 * 64 KiB, which tbf splits when bigger than its burst; a too-small bucket costs throughput, tc-tbf(8)).
 */
export function tbfBurst(bitsPerSecond: number): number {
  return Math.max(16384, Math.ceil(bitsPerSecond / 8 / 100));
}

/** The `tc` commands that put an impairment on DEV (root qdisc replaced, so running it twice is harmless). */
export function impairArgv(dev: string, i: Impair): string[][] {
  const out: string[][] = [];
  const netem = [...(i.delay ? ['delay', i.delay, ...(i.jitter ? [i.jitter] : [])] : []), ...(i.loss ? ['loss', i.loss.endsWith('%') ? i.loss : `${i.loss}%`] : [])];
  if (i.rate) {
    const bits = parseRate(i.rate)!;
    out.push(['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', i.rate, 'burst', String(tbfBurst(bits)), 'latency', '50ms']);
    // tbf is classful with one class (1:1): netem below it delays what tbf lets through.
    if (netem.length) out.push(['tc', 'qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'netem', ...netem]);
  } else if (netem.length) {
    out.push(['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'netem', ...netem]);
  }
  return out;
}

/**
 * Puts an impairment on DEV's egress (tc shapes what leaves an interface): tbf for a rate, netem
 * (under it) for delay, jitter and loss. Undo: `tc qdisc del dev DEV root` (the kernel's default
 * qdisc comes back). Parent: the link (deleting it removes its qdiscs).
 * @param netns the interface's netns, or null for the current one
 */
export function addImpair(netns: string | null, dev: string, i: Impair): Step[] {
  const cmds = impairArgv(dev, i);
  const undo: Op[] = [cmdOp(['tc', 'qdisc', 'del', 'dev', dev, 'root'], netns)];
  return cmds.map((argv, k) => ({
    describe: k === 0 ? `shape ${where(netns, dev)}: ${describeImpair(i)}` : `add netem under the rate of ${where(netns, dev)}`,
    do: cmdOp(argv, netns),
    undo: k === 0 ? undo : [],
    parent: linkKey(netns, dev),
  }));
}

/** `rate 10mbit, delay 20ms ± 5ms, loss 1%`. */
export function describeImpair(i: Impair): string {
  const parts = [
    ...(i.rate ? [`rate ${i.rate}`] : []),
    ...(i.delay ? [`delay ${i.delay}${i.jitter ? ` ± ${i.jitter}` : ''}`] : []),
    ...(i.loss ? [`loss ${i.loss.endsWith('%') ? i.loss : `${i.loss}%`}`] : []),
  ];
  return parts.join(', ') || 'nothing';
}

/** One qdisc as `tc -j qdisc show` reports it (the fields nslab reads). */
export interface QdiscInfo {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  /** tbf: `rate` in bytes per second, `burst` in bytes, `lat` in microseconds. */
  options?: { rate?: number; burst?: number; lat?: number; [k: string]: unknown };
}

/** Reads DEV's qdiscs (`tc -j qdisc show dev DEV`). */
export async function readQdiscs(r: Runner, netns: string | null, dev: string): Promise<QdiscInfo[]> {
  const res = await r.run({ argv: ['tc', '-j', 'qdisc', 'show', 'dev', dev], netns });
  return JSON.parse(res.stdout || '[]') as QdiscInfo[];
}

/** The rate (bits per second) a root tbf puts on DEV, or null when it has none. */
export function tbfRate(qdiscs: QdiscInfo[]): number | null {
  const t = qdiscs.find((q) => q.kind === 'tbf' && q.root);
  return t?.options?.rate !== undefined ? t.options.rate * 8 : null;
}

/**
 * Whether this kernel has the netem qdisc (sch_netem): tried on `lo` of a throwaway netns
 * (`unshare --net`), so nothing here changes. Its absence shows as tc's "Specified qdisc kind is unknown".
 */
export async function netemAvailable(r: Runner): Promise<{ ok: boolean; detail: string }> {
  const res = await r.run({ argv: ['unshare', '--net', '--', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'] }, { check: false }).catch(() => null);
  if (!res) return { ok: false, detail: 'could not probe (unshare or tc missing)' };
  if (res.exitCode === 0) return { ok: true, detail: 'netem qdisc works (delay, jitter, loss)' };
  return { ok: false, detail: `absent: ${res.stderr.trim().split('\n')[0] || 'tc refused netem'} (the kernel module sch_netem is missing)` };
}

/** The one line that refuses delay/jitter/loss where sch_netem is missing. */
export function netemMissing(what: string): string {
  return `${what} needs the kernel module sch_netem (the netem qdisc), which this kernel lacks: only a rate (tc tbf) works here (--dry-run prints the plan)`;
}
