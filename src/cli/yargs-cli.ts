// The yargs set-up every nslab command line goes through: usage, strictness, one-line failures.
// Shared by the ESM entry (run.ts, every command) and the startup snapshot (snapshot-main.ts, the
// attach commands only), so both parse and fail alike.
import yargs, { type CommandModule } from 'yargs';
import { EXIT } from './output.js';
import { openJournal } from '../engine/clean/journal.js';
import { catchInterrupts } from '../exec/interrupt.js';
import { useSandboxOvs } from '../engine/services.js';
import { progressLine, setWide } from '../exec/terminal.js';
import { setProgressSink } from '../exec/progress.js';

/** yargs' completion function with a fallback (complete.ts): given only by the ESM entry, not the snapshot. */
export type CompleteFn = (current: string, argv: { _: Array<string | number> }, fallback: (cb: (err: Error | null, list?: string[]) => void) => void, done: (list: string[]) => void) => void;

/**
 * Parses `argv` against `commands` and runs the one named (yargs' `parseAsync`).
 * @param argv the arguments after `nslab`
 * @param commands the command modules to offer (all of nslab's, or a subset that includes argv[0])
 * @param opts.complete what `--get-yargs-completions` (the scripts of `nslab completion`) answers with
 * @param opts.version what `--version` prints (default: yargs' own lookup)
 */
export async function runCommands(argv: string[], commands: ReadonlyArray<CommandModule<any, any>>, opts: { complete?: CompleteFn; version?: string } = {}): Promise<void> {
  const { complete, version } = opts;
  // Every command that may change the kernel writes ahead what it does (engine/clean/journal.ts);
  // the file appears with its first entry only, so a command that changes nothing leaves none.
  const completing = argv.includes('--get-yargs-completions');
  // A watcher or a plugin runs for days: each attach it makes is marked, and found by clean.
  if (!completing && !READ_ONLY.has(argv[0] ?? '') && !(argv[0] === 'docker' && (argv[1] === 'watch' || argv[1] === 'plugin'))) openJournal(commandOwner(argv), argv);
  // Ctrl-C: undo, then exit 130 (exec/interrupt.ts); the OVS that `nslab service ovs start` or a lab
  // started in this sandbox, found without OVS_RUNDIR (engine/services.ts).
  if (!completing) {
    catchInterrupts();
    useSandboxOvs();
    // A progress line on a terminal for the long ones; lab run prints its own [i/n] step headers.
    if (PROGRESS.has(argv[0] ?? '')) setProgressSink(progressLine(argv.includes('--json')));
  }
  let y = yargs(argv)
    .scriptName('nslab')
    .usage('$0 <command> [options]\n\nWire network namespaces, veth pairs and bridges by hand, reproducibly.');
  for (const c of commands) y = y.command(c);
  skipHelpCache(y);
  y = version === undefined ? y.version() : y.version(version);
  await y
    .demandCommand(1, 'name a command')
    .strict()
    .parserConfiguration({ 'populate--': false })
    .example('$0 sandbox -- nslab lab run 07', 'run a lab in a private sandbox')
    .example('$0 sandbox -- sh -c "nslab up examples/star.yaml && nslab pingall examples/star.yaml"', 'build a topology, ping all pairs')
    .example('source <($0 completion bash)', 'complete commands, lab ids, node, network and file names in bash')
    .fail((msg, err, usage) => {
      // One line: yargs words some messages over several ("Invalid values:\n  Argument: ...").
      const text = String(msg ?? err?.message);
      // A command called without what it needs shows its usage and examples (as git and docker do),
      // then one line naming what is missing; a bad value gets the line alone, with where to look.
      const missing = /^(Not enough non-option arguments|Missing required argument|name a)/.test(text);
      if (missing) {
        const help = (usage as unknown as { help(): string }).help();
        process.stderr.write(`${help}\n\nnslab: ${missingLine(text, help)}\n`);
      } else process.stderr.write(`nslab: ${text.replace(/:?\s*\n\s*/g, ': ')} (${helpFor(argv, commands)})\n`);
      process.exit(EXIT.usage);
    })
    .option('wide', { type: 'boolean', global: true, describe: 'tables: every cell whole, not fitted to the terminal\'s width (COLUMNS, else the terminal, else 80)' })
    .middleware((a) => setWide(a.wide === true))
    .help()
    .alias('help', 'h')
    .alias('version', 'V')
    .completion('__completion-script', false, (complete ?? defaultComplete) as never)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
}

/** Without complete.ts (the snapshot): yargs' own answer. */
const defaultComplete: CompleteFn = (_c, _a, fallback, done) => fallback((_e, l) => done(l ?? []));

/**
 * What a command called without enough words lacks, from its usage line (`nslab detach <guest>
 * <ifname>`) and yargs' count ("got 1, need at least 2"): `detach needs IFNAME (usage above)`.
 */
export function missingLine(msg: string, help: string): string {
  const usage = help.split('\n')[0] ?? '';
  const m = /^nslab ((?:[a-z][\w-]* ?)+?)(?: <|$| \[)/.exec(usage);
  const cmd = m?.[1]?.trim() ?? '';
  if (/^name a/.test(msg)) return `${cmd ? `${cmd}: ` : ''}${msg.replace(/: nslab .* lists them$/, '')} (listed above)`;
  const required = [...usage.matchAll(/<([\w-]+)(?:\.\.)?>/g)].map((x) => x[1]!.toUpperCase());
  const got = Number(/got (\d+)/.exec(msg)?.[1] ?? 0);
  const named = /^Missing required argument: (.*)$/.exec(msg)?.[1]?.split(', ').map((x) => x.toUpperCase());
  const lacks = named ?? required.slice(got);
  return `${cmd || 'nslab'} needs ${lacks.length ? lacks.join(' and ') : 'more arguments'} (usage above)`;
}

/** `nslab CMD [SUB] --help`: where a user finds the command's usage (its words before the first option). */
function helpFor(argv: string[], commands: ReadonlyArray<CommandModule<any, any>>): string {
  // The command, and its subcommand for the commands that have them (never a bad value typed after,
  // nor a misspelt command: `nslab bogus` is pointed at `nslab --help`).
  const [cmd, sub] = argv;
  const known = new Set(commands.flatMap((c) => [c.command ?? []].flat()).map((c) => String(c).split(' ')[0]));
  const words = cmd && !cmd.startsWith('-') && known.has(cmd) ? [cmd] : [];
  if (sub && (cmd === 'network' || cmd === 'node' || cmd === 'docker') && /^[a-z]+$/.test(sub)) words.push(sub);
  return `nslab ${words.length ? words.join(' ') + ' ' : ''}--help`;
}

/**
 * yargs renders a command's whole help text before running its handler, every time, in case the
 * handler calls showHelp() later (usage.cacheHelpMessage, yargs 17-18): 25-30 ms of string-width and
 * wrap-ansi per nslab call here, a third of a `nslab attach` call. nslab's handlers never show help,
 * so the cache is skipped; `--help` and usage errors render it as before. Guarded: an internal API.
 */
function skipHelpCache(y: unknown): void {
  const usage = (y as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

/** Commands that show a progress line on a terminal (exec/progress.ts). */
const PROGRESS = new Set(['up', 'down', 'clean', 'pingall']);

/** Commands that never change the kernel (or, for clean, must not journal their own undo work). */
const READ_ONLY = new Set(['clean', 'inspect', 'verify', 'plan', 'pingall', 'graph', 'doctor', 'sandbox', 'gen', 'completion', '--help', '-h', '--version', '-V']);

/**
 * Whom a command line works for, as `nslab clean NAME` and `inspect` name owners: `topology NAME`
 * (up/down FILE), `network NAME`, `node NAME`, `lab ID`, `attach GUEST`, else the command's name.
 * @param argv the arguments after `nslab`
 */
export function commandOwner(argv: string[]): string {
  const [cmd, sub, ...rest] = argv;
  const plain = rest.filter((w) => !w.startsWith('-'));
  const base = (f: string) => f.replace(/^.*\//, '').replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]/g, '-');
  switch (cmd) {
    case 'up':
    case 'down':
      return sub && !sub.startsWith('-') ? `topology ${base(sub)}` : 'topology';
    case 'network':
      return sub === 'create' || sub === 'rm' ? `network ${plain[0] ?? '?'}` : sub === 'connect' || sub === 'disconnect' ? `node ${plain[1] ?? '?'}` : 'network';
    case 'node': {
      const i = rest.indexOf('--name');
      return `node ${i >= 0 ? rest[i + 1] : plain[0] ?? '?'}`;
    }
    case 'lab':
      return `lab ${plain[0] ?? rest[rest.length - 1] ?? '?'}`;
    case 'attach':
    case 'detach':
      return sub && !sub.startsWith('-') ? `attach ${sub}` : 'attach';
    default:
      return cmd ?? 'nslab';
  }
}
