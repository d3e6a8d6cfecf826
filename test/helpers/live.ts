// Helpers of the live tests: a capture started through the CLI, tcpdump processes left, pcap read back.
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { runner } from './kernel.js';

const CLI = join(process.cwd(), 'dist', 'bundle', 'main.mjs');

/** Starts `nslab capture ...` and resolves once tcpdump listens (nslab's "capturing on" line). */
export async function startCapture(...args: string[]): Promise<{ proc: ResultPromise<{ reject: false; encoding: 'buffer' }>; err: () => string }> {
  const proc = execa('node', [CLI, 'capture', ...args], { reject: false, encoding: 'buffer' });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100 && !/capturing on/.test(err); i++) {
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!/capturing on/.test(err)) throw new Error(`capture did not start: ${err}`);
  return { proc, err: () => err };
}

/** tcpdump processes in this sandbox (its own PID namespace: only ours). */
export async function tcpdumps(): Promise<string[]> {
  const res = await runner.run({ argv: ['ps', '-eo', 'pid=,args='] });
  return res.stdout.split('\n').filter((l) => /\btcpdump\b/.test(l) && !/\bps\b/.test(l));
}

/** `tcpdump -r FILE -n` lines without their timestamps. */
export async function readPcap(file: string, ...extra: string[]): Promise<string[]> {
  const res = await runner.run({ argv: ['tcpdump', '-r', file, '-n', '-t', ...extra] });
  return res.stdout.trim().split('\n').filter(Boolean);
}

