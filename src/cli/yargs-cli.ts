// The yargs set-up every nslab command line goes through: usage, strictness, one-line failures.
// Shared by the ESM entry (run.ts, every command) and the startup snapshot (snapshot-main.ts, the
// attach commands only), so both parse and fail alike.
import yargs, { type CommandModule } from 'yargs';
import { EXIT } from './output.js';
import { openJournal } from '../engine/clean/journal.js';

/**
 * Parses `argv` against `commands` and runs the one named (yargs' `parseAsync`).
 * @param argv the arguments after `nslab`
 * @param commands the command modules to offer (all of nslab's, or a subset that includes argv[0])
 * @param version what `--version` prints (default: yargs' own lookup)
 */
export async function runCommands(argv: string[], commands: ReadonlyArray<CommandModule<any, any>>, version?: string): Promise<void> {
  // Every command that may change the kernel writes ahead what it does (engine/clean/journal.ts);
  // the file appears with its first entry only, so a command that changes nothing leaves none.
  // A watcher or a plugin runs for days: each attach it makes is marked, and found by clean.
  if (!READ_ONLY.has(argv[0] ?? '') && !(argv[0] === 'docker' && (argv[1] === 'watch' || argv[1] === 'plugin'))) openJournal(commandOwner(argv), argv);
  let y = yargs(argv)
    .scriptName('nslab')
    .usage('$0 <command> [options]\n\nWire network namespaces, veth pairs and bridges by hand, reproducibly.');
  for (const c of commands) y = y.command(c);
  skipHelpCache(y);
  y = version === undefined ? y.version() : y.version(version);
  await y
    .demandCommand(1, 'name a command: nslab --help lists them')
    .strict()
    .parserConfiguration({ 'populate--': false })
    .example('$0 sandbox -- nslab lab run 07', 'run a lab in a private sandbox')
    .example('$0 sandbox -- sh -c "nslab up examples/star.yaml && nslab pingall examples/star.yaml"', 'build a topology, ping all pairs')
    .fail((msg, err) => {
      // One line: yargs words some messages over several ("Invalid values:\n  Argument: ...").
      process.stderr.write(`nslab: ${String(msg ?? err?.message).replace(/:?\s*\n\s*/g, ': ')}\n`);
      process.exit(EXIT.usage);
    })
    .help()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .parseAsync();
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

/** Commands that never change the kernel (or, for clean, must not journal their own undo work). */
const READ_ONLY = new Set(['clean', 'inspect', 'verify', 'plan', 'pingall', 'graph', 'doctor', 'sandbox', 'gen', '--help', '--version']);

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
