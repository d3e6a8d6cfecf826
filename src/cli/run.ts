// nslab's command line: parses flags and calls one engine function per command (STYLE.md §7).
// Everything is imported on demand: a pipework call must not pay for yargs and every command.
// Entries: main.ts (ESM bundle) and snapshot.ts (the V8 startup snapshot bin/nslab starts from).

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
  // pipework's drop-in is called once per attach, as pipework is: skip yargs (its grammar is its own).
  if (argv[0] === 'pipework' && !argv.includes('--help')) {
    const { runPipework } = await import('./pipework-run.js');
    process.exitCode = await runPipework(argv.slice(argv[1] === '--' ? 2 : 1));
  } else await runYargs(argv);
}

async function runYargs(argv: string[]): Promise<void> {
  const [{ default: yargs }, { attachCommand, detachCommand, pipeworkCommand }, { doctorCommand }, { labCommand }, { networkCommand }, { nodeCommand }, { EXIT }, { graphCommand }, { inspectCommand }, { pingallCommand }, { sandboxCommand }, { downCommand, planCommand, upCommand }, { verifyCommand }] = await Promise.all([
    import('yargs'),
    import('./attach.js'),
    import('./doctor.js'),
    import('./lab.js'),
    import('./network.js'),
    import('./node.js'),
    import('./output.js'),
    import('./graph.js'),
    import('./inspect.js'),
    import('./pingall.js'),
    import('./sandbox.js'),
    import('./topology.js'),
    import('./verify.js'),
  ]);
  await yargs(argv)
    .scriptName('nslab')
    .usage('$0 <command> [options]\n\nWire network namespaces, veth pairs and bridges by hand, reproducibly.')
    .command(upCommand)
    .command(downCommand)
    .command(planCommand)
    .command(attachCommand)
    .command(detachCommand)
    .command(pipeworkCommand)
    .command(labCommand)
    .command(verifyCommand)
    .command(pingallCommand)
    .command(graphCommand)
    .command(inspectCommand)
    .command(networkCommand)
    .command(nodeCommand)
    .command(sandboxCommand)
    .command(doctorCommand)
    .demandCommand(1, 'name a command: nslab --help lists them')
    .strict()
    .parserConfiguration({ 'populate--': false })
    .example('$0 sandbox -- sh -c "nslab up examples/star.yaml && ip netns exec h1 ping -c1 10.0.0.2"', 'build and ping, in a sandbox')
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
