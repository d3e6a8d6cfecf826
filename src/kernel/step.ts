// A Step is one kernel change with its exact undo (STYLE.md §3); an Op is one command of it.
import { displayArgv, type Command } from '../exec/command.js';

/**
 * One command. `ip` ops are lines of `ip -batch -` run in `netns` (null: the namespace nslab runs
 * in); only ops with the same `netns` and `batchKey` share a batch. `cmd` ops are single processes.
 */
export type Op =
  | { tool: 'ip'; netns: string | null; args: string[]; batchKey?: string }
  | { tool: 'cmd'; cmd: Command };

/** Reads state before a step runs, so that its undo restores exactly what was there. */
export interface Capture {
  read: Command;
  /** Builds the undo from the read command's stdout. */
  undo: (stdout: string) => Op[];
}

/**
 * One mutating kernel operation. `do` is a single command (the kernel applies it whole or not at
 * all), so a failed step needs no undo and the steps before it are undone in reverse order.
 */
export interface Step {
  /** One line for people: "add veth h1-eth0 <-> h1:eth0". */
  describe: string;
  do: Op;
  /** Exact inverse; undoing something already gone is not an error. Empty: nothing to undo. */
  undo: Op[];
  /** Key of the object this step creates (`netns:NAME`, `link:NETNS:NAME`, `-` for the current netns). */
  creates?: string;
  /** Key of an object whose deletion also removes this step's effect (lets teardown skip the undo). */
  parent?: string;
  capture?: Capture;
  /** Order group: the engine runs phases in order; steps of one phase in different netns may run at once. */
  phase?: number;
}

/** An `ip` op (a line of `ip -batch`). */
export function ipOp(netns: string | null, args: string[], batchKey?: string): Op {
  return batchKey ? { tool: 'ip', netns, args, batchKey } : { tool: 'ip', netns, args };
}

/** A single-process op. */
export function cmdOp(argv: string[], netns: string | null = null, input?: string): Op {
  return { tool: 'cmd', cmd: input === undefined ? { argv, netns } : { argv, netns, input } };
}

/** The key of a link object: `link:NETNS:NAME` (`-` for the current netns). */
export function linkKey(netns: string | null, name: string): string {
  return `link:${netns ?? '-'}:${name}`;
}

/** The key of a netns object. */
export function netnsKey(name: string): string {
  return `netns:${name}`;
}

/** Renders an op as the argv a person would type (for messages and `plan --json`). */
export function opArgv(op: Op): string[] {
  return op.tool === 'ip' ? displayArgv(['ip', ...op.args], op.netns) : displayArgv(op.cmd.argv, op.cmd.netns);
}
