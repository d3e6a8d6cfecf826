// A runner that runs for real and records what it changed (not what it only read): for labs, which
// show each command as it runs and print the whole lab as a plain script.
import type { BatchJob, BatchResult, BatchTool, Command, Result } from './command.js';
import type { Recorded } from './recorder.js';
import type { BatchOptions, RunOptions, Runner } from './runner.js';

const OVS_READS = new Set(['list-br', 'list-ports', 'br-exists', 'find', 'list', 'get', 'port-to-br', 'br-get-external-id', 'show']);

/** True for commands that only read state (nslab's readers: `ip -j ...`, ovs-vsctl queries, `sysctl -n`, ...). */
export function isQuery(argv: string[]): boolean {
  const [p, ...rest] = argv;
  if (p === 'ip' || p === 'tc' || p === 'bridge') return rest.includes('-j') || rest[0] === 'netns' && (rest[1] === 'list' || rest[1] === 'identify' || rest[1] === 'pids');
  if (p === 'ovs-vsctl') return rest.some((a) => OVS_READS.has(a));
  if (p === 'sysctl') return rest[0] === '-n';
  if (p === 'docker') return rest[0] === 'inspect' || rest[0] === 'version';
  if (p === 'sh' && rest[0] === '-c' && /^command -v/.test(rest[1] ?? '')) return true;
  if (p === 'sh' && /netns-batch\.sh$/.test(rest[0] ?? '') && rest[1] === 'query') return true;
  return p === 'iptables-save' || p === 'pgrep';
}

/** Runs through `inner`, recording every call that changes something; `onRecord` sees each as it happens. */
export class TeeRunner implements Runner {
  readonly calls: Recorded[] = [];
  constructor(
    private readonly inner: Runner,
    private readonly onRecord: (c: Recorded) => void = () => undefined,
  ) {}

  async run(cmd: Command, opts?: RunOptions): Promise<Result> {
    if (!isQuery(cmd.argv)) this.record({ type: 'run', cmd });
    return this.inner.run(cmd, opts);
  }

  async batch(tool: BatchTool, netns: string | null, lines: string[][], opts: BatchOptions = {}): Promise<BatchResult> {
    this.recordBatch(tool, netns, lines, opts);
    return this.inner.batch(tool, netns, lines, opts);
  }

  async batchEach(jobs: BatchJob[]): Promise<BatchResult[]> {
    for (const j of jobs) this.recordBatch('ip', j.netns, j.lines, { sysctls: j.sysctls ?? [] });
    return this.inner.batchEach(jobs);
  }

  /** A batch as a person would type it: its sysctls (`sysctl -q -w`), then its lines. */
  private recordBatch(tool: BatchTool, netns: string | null, lines: string[][], opts: BatchOptions): void {
    for (const w of opts.sysctls ?? []) this.record({ type: 'run', cmd: { argv: ['sysctl', '-q', '-w', `${w.key}=${w.value}`], netns } });
    if (lines.length) this.record({ type: 'batch', tool, netns, lines, force: opts.force ?? false });
  }

  /** Runs and records `cmd` even when it only reads (a lab shows `ip netns list` as it runs it). */
  async runShown(cmd: Command, opts?: RunOptions): Promise<Result> {
    this.record({ type: 'run', cmd });
    return this.inner.run(cmd, opts);
  }

  /** Records a call made outside the runner (a background process), so scripts show it too. */
  record(c: Recorded): void {
    this.calls.push(c);
    this.onRecord(c);
  }
}
