// A runner that records instead of running: for unit tests, `nslab plan` and `--dry-run`.
import { displayArgv, type BatchJob, type BatchResult, type BatchTool, type Command, type Result } from './command.js';
import type { BatchOptions, RunOptions, Runner } from './runner.js';
import { commandError } from './runner.js';

/** One recorded call: a single command, or a batch of lines for one tool in one netns. */
export type Recorded =
  | { type: 'run'; cmd: Command }
  | { type: 'batch'; tool: BatchTool; netns: string | null; lines: string[][]; force: boolean };

/**
 * Answers a recorded call: return stdout for a `run`, or an error message to make it fail.
 * For a batch, it is asked once per line (`argv` = [tool, ...line]).
 */
export type Responder = (argv: string[], netns: string | null) => { stdout?: string; error?: string } | undefined;

/** Records every call in order; by default every command succeeds with empty output. */
export class RecordingRunner implements Runner {
  readonly calls: Recorded[] = [];
  constructor(private readonly respond: Responder = () => undefined) {}

  async run(cmd: Command, opts: RunOptions = {}): Promise<Result> {
    this.calls.push({ type: 'run', cmd });
    const r = this.respond(cmd.argv, cmd.netns ?? null);
    if (r?.error !== undefined) {
      if (opts.check === false) return { stdout: '', stderr: r.error, exitCode: 1 };
      throw commandError(cmd, 1, r.error);
    }
    return { stdout: r?.stdout ?? '', stderr: '', exitCode: 0 };
  }

  async batch(tool: BatchTool, netns: string | null, lines: string[][], opts: BatchOptions = {}): Promise<BatchResult> {
    // Sysctls written by the batch's own process show as the `sysctl -w` a person would type.
    for (const w of opts.sysctls ?? []) {
      const argv = ['sysctl', '-q', '-w', `${w.key}=${w.value}`];
      this.calls.push({ type: 'run', cmd: { argv, netns } });
      const r = this.respond(argv, netns);
      if (r?.error !== undefined) return { failed: [], stderr: r.error, sysctlFailed: { key: w.key, message: r.error } };
    }
    if (lines.length === 0) return { failed: [], stderr: '' };
    this.calls.push({ type: 'batch', tool, netns, lines, force: opts.force ?? false });
    const failed = [];
    for (const [index, line] of lines.entries()) {
      const r = this.respond([tool, ...line], netns);
      if (r?.error !== undefined) {
        failed.push({ index, message: r.error });
        if (!opts.force) break;
      }
    }
    return { failed, stderr: failed.map((f) => `${f.message}\nCommand failed -:${f.index + 1}`).join('\n') };
  }

  async batchEach(jobs: BatchJob[]): Promise<BatchResult[]> {
    const out: BatchResult[] = [];
    for (const j of jobs) out.push(await this.batch('ip', j.netns, j.lines, { sysctls: j.sysctls ?? [] }));
    return out;
  }

  /** Every recorded command flattened to plain argv lists (batch lines expanded), as the shell printer shows them. */
  argvs(): string[][] {
    return this.calls.flatMap((c) =>
      c.type === 'run'
        ? [displayArgv(c.cmd.argv, c.cmd.netns)]
        : c.lines.map((l) => displayArgv([c.tool, ...l], c.netns)),
    );
  }
}
