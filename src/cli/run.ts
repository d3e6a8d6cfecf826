// nslab's command line: parses flags and calls one engine function per command (STYLE.md §7).
// Everything is imported on demand: a pipework call must not pay for yargs and every command.
// Entries: main.ts (ESM bundle) and snapshot-main.ts (the V8 startup snapshot bin/nslab starts
// attach, detach and pipework from).

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

async function runYargs(argv: string[]): Promise<void> {
  const [{ runCommands }, { attachCommand, detachCommand, pipeworkCommand }, { doctorCommand }, { labCommand }, { networkCommand }, { nodeCommand }, { graphCommand }, { inspectCommand }, { pingallCommand }, { sandboxCommand }, { cleanCommand }, { downCommand, planCommand, upCommand }, { verifyCommand }, { captureCommand }, { linkCommand }, { uiCommand }, { dockerCommand }] = await Promise.all([
    import('./yargs-cli.js'),
    import('./attach.js'),
    import('./doctor.js'),
    import('./lab.js'),
    import('./network.js'),
    import('./node.js'),
    import('./graph.js'),
    import('./inspect.js'),
    import('./pingall.js'),
    import('./sandbox.js'),
    import('./clean.js'),
    import('./topology.js'),
    import('./verify.js'),
    import('./capture.js'),
    import('./link.js'),
    import('./ui.js'),
    import('./docker.js'),
  ]);
  const [{ completionCommand, complete }, { serviceCommand }] = await Promise.all([import('./complete.js'), import('./service.js')]);
  await runCommands(argv, [upCommand, downCommand, planCommand, attachCommand, detachCommand, pipeworkCommand, labCommand, verifyCommand, pingallCommand, graphCommand, inspectCommand, cleanCommand, networkCommand, nodeCommand, serviceCommand, sandboxCommand, doctorCommand, dockerCommand, captureCommand, linkCommand, uiCommand, completionCommand], complete);
}
