// The yargs set-up every nslab command line goes through: usage, strictness, one-line failures.
// Shared by the ESM entry (run.ts, every command) and the startup snapshot (snapshot-main.ts, the
// attach commands only), so both parse and fail alike.
import yargs, { type CommandModule } from 'yargs';
import { EXIT } from './output.js';

/**
 * Parses `argv` against `commands` and runs the one named (yargs' `parseAsync`).
 * @param argv the arguments after `nslab`
 * @param commands the command modules to offer (all of nslab's, or a subset that includes argv[0])
 */
export async function runCommands(argv: string[], commands: ReadonlyArray<CommandModule<any, any>>): Promise<void> {
  let y = yargs(argv)
    .scriptName('nslab')
    .usage('$0 <command> [options]\n\nWire network namespaces, veth pairs and bridges by hand, reproducibly.');
  for (const c of commands) y = y.command(c);
  skipHelpCache(y);
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
    .version()
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
