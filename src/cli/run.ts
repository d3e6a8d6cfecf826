// nslab's command line: parses flags and calls one engine function per command (STYLE.md §7).
// Everything is imported on demand: a pipework call must not pay for yargs and every command.
// Entries: main.ts (ESM bundle) and snapshot-main.ts (the V8 startup snapshot bin/nslab starts
// attach, detach and pipework from).
import type { CommandModule } from 'yargs';
import { packageVersion } from './version.js';

/**
 * Runs one nslab command line and sets `process.exitCode`.
 * @param argv the arguments after `nslab` (e.g. `['attach', 'c1', '--to', 'br0']`)
 */
export async function main(argv: string[]): Promise<void> {
  // `nslab lab ls | head`: a closed pipe ends the output, as it does for ip and ls.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  // pipework's drop-in is called once per attach, as pipework is: skip yargs (its grammar is its own,
  // --help included).
  if (argv[0] === 'pipework') {
    const { runPipework } = await import('./pipework-run.js');
    process.exitCode = await runPipework(argv.slice(argv[1] === '--' ? 2 : 1));
  } else await runYargs(argv);
}

/** Each command's module, loaded only when that command runs (or for --help): yargs and every module cost 70-100 ms. */
const COMMANDS: Record<string, () => Promise<Array<CommandModule<any, any>>>> = {
  up: async () => [(await import('./topology.js')).upCommand],
  down: async () => [(await import('./topology.js')).downCommand],
  plan: async () => [(await import('./topology.js')).planCommand],
  attach: async () => [(await import('./attach.js')).attachCommand],
  detach: async () => [(await import('./attach.js')).detachCommand],
  pipework: async () => [(await import('./attach.js')).pipeworkCommand],
  lab: async () => [(await import('./lab.js')).labCommand],
  verify: async () => [(await import('./verify.js')).verifyCommand],
  pingall: async () => [(await import('./pingall.js')).pingallCommand],
  graph: async () => [(await import('./graph.js')).graphCommand],
  inspect: async () => [(await import('./inspect.js')).inspectCommand],
  clean: async () => [(await import('./clean.js')).cleanCommand],
  network: async () => [(await import('./network.js')).networkCommand],
  node: async () => [(await import('./node.js')).nodeCommand],
  sandbox: async () => [(await import('./sandbox.js')).sandboxCommand],
  doctor: async () => [(await import('./doctor.js')).doctorCommand],
  gen: async () => [(await import('./gen.js')).genCommand],
  docker: async () => [(await import('./docker.js')).dockerCommand],
  service: async () => [(await import('./service.js')).serviceCommand],
  capture: async () => [(await import('./capture.js')).captureCommand],
  link: async () => [(await import('./link.js')).linkCommand],
  ui: async () => [(await import('./ui.js')).uiCommand],
  completion: async () => [(await import('./complete.js')).completionCommand],
};

async function runYargs(argv: string[]): Promise<void> {
  // `nslab --version` alone: answered before yargs loads.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  // A known command loads its module alone; --help, completion, no command or a misspelt one load them all.
  const all = !Object.hasOwn(COMMANDS, argv[0] ?? '') || argv.includes('--help') || argv.includes('-h') || argv.includes('--get-yargs-completions');
  const one = all ? Object.keys(COMMANDS) : [argv[0]!];
  const [{ runCommands }, { complete }, ...mods] = await Promise.all([import('./yargs-cli.js'), import('./complete.js'), ...one.map((c) => COMMANDS[c]!())]);
  await runCommands(argv, mods.flat(), { complete, version: packageVersion() });
}
