// The shape of one external command: an argv array, never a shell string, optionally inside a netns.

/** One external command. `argv[0]` is the program; `netns` runs it inside that named netns. */
export interface Command {
  argv: string[];
  /** Name of a netns under the netns directory (`/run/netns`), or null/undefined for the current one. */
  netns?: string | null;
  /** Text fed to the command's standard input. */
  input?: string;
  /**
   * Send stdout and stderr to this file instead of capturing them: for commands that leave a daemon
   * behind holding their output open (busybox udhcpc), which would keep a capture waiting.
   */
  logFile?: string;
  /** Only for printing: a long-running process started in the background (`... >/dev/null 2>&1 &`). */
  background?: boolean;
  /** Milliseconds it may run; past them it is killed (SIGKILL) and its result says `timedOut`. */
  timeoutMs?: number;
}

/** What a finished command returned. */
export interface Result {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** It ran past its {@link Command.timeoutMs} and was killed. */
  timedOut?: boolean;
}

/** Tools that read commands from stdin with `-batch -`, one command per line. */
export type BatchTool = 'ip' | 'tc' | 'bridge';

/** One failed line of a batch: its 0-based index (-1: the batch did not start) and the tool's message for it. */
export interface BatchLineError {
  index: number;
  message: string;
}

/**
 * A sysctl written inside a batch's netns just before its lines, by the same process: KEY in slash
 * form (`net/ipv4/conf/eth1/arp_notify`, which sysctl(8) accepts too and which keeps an interface name
 * with a dot whole), VALUE as written to /proc/sys/KEY.
 */
export interface SysctlWrite {
  key: string;
  value: string;
}

/** Outcome of a batch: the lines that failed (with `-force`, possibly several; without it, at most one). */
export interface BatchResult {
  failed: BatchLineError[];
  stderr: string;
  /** A sysctl of the batch could not be written: then no line ran. */
  sysctlFailed?: { key: string; message: string };
}

/** One `ip -batch` of {@link Runner.batchEach}: its netns (name or path), lines, and sysctls first. */
export interface BatchJob {
  netns: string;
  lines: string[][];
  sysctls?: SysctlWrite[];
}

/**
 * How a person would type `argv` run inside `netns`: `ip -n NS ...` for ip, `ip netns exec NS ...`
 * for anything else, `nsenter --net=PATH ...` when the netns is a path (a PID's `/proc/PID/ns/net`).
 */
export function displayArgv(argv: string[], netns: string | null | undefined): string[] {
  if (!netns) return argv;
  if (netns.startsWith('/')) return ['nsenter', `--net=${netns}`, '--', ...argv];
  if (argv[0] === 'ip') return ['ip', '-n', netns, ...argv.slice(1)];
  return ['ip', 'netns', 'exec', netns, ...argv];
}
