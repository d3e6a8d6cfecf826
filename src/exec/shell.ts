// Turns recorded commands into a plain, copy-pasteable shell script (for `nslab plan` and labs).
import { displayArgv } from './command.js';
import type { Recorded } from './recorder.js';

/** Quotes one argument for POSIX sh: bare when it is safe, else in single quotes. */
export function shQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One argv as a shell command line. */
export function shJoin(argv: string[]): string {
  return argv.map(shQuote).join(' ');
}

/** A comment line placed before a group of commands. */
export interface ScriptComment {
  before: number; // index into the recorded calls
  text: string;
}

/**
 * Prints recorded calls as a shell script: one command per line, batch lines expanded to single
 * `ip [-n NS] ...` commands (what a person would type), commands in a netns as `ip netns exec NS ...`.
 * Stdin of a command is given as a here-document.
 */
export function toShellScript(calls: Recorded[], opts: { header?: string[]; comments?: ScriptComment[] } = {}): string {
  const out: string[] = ['#!/bin/sh', 'set -e'];
  for (const h of opts.header ?? []) out.push(`# ${h}`);
  calls.forEach((c, i) => {
    for (const cm of opts.comments ?? []) if (cm.before === i) out.push('', `# ${cm.text}`);
    if (c.type === 'batch') {
      for (const l of c.lines) out.push(shJoin(displayArgv([c.tool, ...l], c.netns)));
      return;
    }
    const argv = displayArgv(c.cmd.argv, c.cmd.netns);
    if (c.cmd.background) {
      out.push(`${shJoin(argv)} >/dev/null 2>&1 &`);
    } else if (c.cmd.input !== undefined && c.cmd.input !== '') {
      out.push(`${shJoin(argv)} <<'NSLAB_EOF'`, c.cmd.input.replace(/\n$/, ''), 'NSLAB_EOF');
    } else {
      out.push(shJoin(argv));
    }
  });
  return out.join('\n') + '\n';
}
