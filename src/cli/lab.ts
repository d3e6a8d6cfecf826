// `nslab lab ls|show|run|up|down|verify|script|shell`: the course notes' experiments.
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';
import { JUNIT_OPTION, writeJunit } from './junit-out.js';

type Args = { action: string; id?: string; node?: string; lang: 'en' | 'zh'; json: boolean; step: boolean; check: boolean; junit?: string };

/** `nslab lab ...` */
export const labCommand: CommandModule<object, Args> = {
  command: 'lab <action> [id] [node]',
  describe: 'Labs from the course notes: ls, show ID, run ID, up ID, down ID, verify ID, script ID, shell ID NODE',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['ls', 'show', 'run', 'up', 'down', 'verify', 'script', 'shell'], describe: 'what to do' })
      .positional('id', { type: 'string', describe: 'lab id: 01, 02, ... (nslab lab ls)' })
      .positional('node', { type: 'string', describe: 'for shell: the node (netns) to open a shell in' })
      .option('lang', { type: 'string', choices: ['en', 'zh'], default: 'en', describe: 'language of the narration' })
      .option('json', { type: 'boolean', default: false, describe: 'a JSON report' })
      .option('junit', { ...JUNIT_OPTION, describe: 'verify/run: also write the checks as JUnit XML to FILE (one test case per check)' })
      .option('step', { type: 'boolean', default: false, describe: 'run: pause for Enter between steps' })
      .option('check', { type: 'boolean', default: true, describe: 'run/up: check each step\'s expectations (--no-check: build only, verify later with lab verify)' })
      .example('$0 lab ls', 'the labs')
      .example('$0 lab run 01', 'run lab 01 in a private sandbox: each step, its commands, its checks, then teardown')
      .example('$0 lab show 08 --lang zh', 'the lab\'s steps and narration, in Chinese')
      .example('$0 lab script 07 > lab07.sh', 'the lab as plain shell commands, to replay by hand')
      .example('$0 sandbox -- sh -c "nslab lab up 07 && nslab lab verify 07 && nslab lab down 07"', 'explore a lab that stays up') as unknown as Argv<Args>,
  handler: async (a) => {
    try {
      const { listLabs, loadLab } = await import('../model/lab.js');
      const { invalid } = await import('../errors.js');
      if (a.action === 'ls') {
        const labs = await Promise.all((await listLabs()).map((l) => loadLab(l.id)));
        if (a.json) return printJson(labs.map((l) => ({ id: l.id, title: l.title, note: l.note })));
        for (const l of labs) process.stdout.write(`${l.id}  ${l.title[a.lang]}\n`);
        return;
      }
      if (!a.id) throw invalid(`lab ${a.action} needs a lab id (nslab lab ls)`);
      const lab = await loadLab(a.id);
      if (a.action === 'show') {
        if (a.json) return printJson(lab);
        process.stdout.write(`Lab ${lab.id}: ${lab.title[a.lang]}\n${lab.teaches[a.lang]}\n(${lab.note})\n\n`);
        lab.steps.forEach((s, i) => process.stdout.write(`${i + 1}. ${s.say[a.lang]}\n`));
        return;
      }
      const { inSandbox } = await import('../exec/sandbox.js');
      const sandboxed = await inSandbox();
      if ((a.action === 'run' || a.action === 'script') && !sandboxed) {
        // A sandbox of its own: with root, or without it through a user namespace.
        const { runInSandbox } = await import('../exec/sandbox.js');
        process.exitCode = await runInSandbox([process.execPath, ...process.argv.slice(1)]);
        return;
      }
      requireRoot();
      if (!sandboxed) throw invalid(`lab ${a.action} changes the network of the namespace it runs in: run it inside \`nslab sandbox\` (e.g. nslab sandbox -- nslab lab ${a.action} ${lab.id})`);
      const { ExecRunner } = await import('../exec/runner.js');
      const r = new ExecRunner();
      const eng = await import('../engine/labs/lab.js');
      if (a.action === 'run' || a.action === 'up') {
        const pause = a.step
          ? async () => {
              process.stdout.write('-- Enter for the next step --');
              await new Promise((res) => process.stdin.once('data', res));
            }
          : undefined;
        const rep = await eng.runLab(r, lab, { lang: a.lang, print: !a.json, keep: a.action === 'up', check: a.check, ...(pause ? { pause } : {}) });
        if (a.step) process.stdin.pause();
        const { checkCases } = await import('../verify/junit.js');
        const stepCases = rep.steps.flatMap((s, i) => checkCases(`lab ${lab.id} step ${i + 1}: ${s.title}`, s.checks));
        const down = rep.teardown.clean || a.action === 'up' ? [] : checkCases(`lab ${lab.id} teardown`, [{ ok: false, text: 'teardown leaves nothing behind', detail: rep.teardown.errors.join('; ') }]);
        await writeJunit(a.junit, `nslab lab ${a.action} ${lab.id}`, [...stepCases, ...down]);
        if (a.json) printJson(rep);
        else process.stdout.write(`lab ${lab.id}: ${rep.ok ? 'all checks hold' : 'FAILED'}${a.action === 'up' ? ' (left up: nslab lab down ' + lab.id + ')' : rep.teardown.clean ? ', torn down' : `, teardown: ${rep.teardown.errors.join('; ')}`}\n`);
        process.exitCode = rep.ok ? EXIT.ok : EXIT.failed;
        return;
      }
      if (a.action === 'down') {
        const errs = await eng.labDown(r, lab);
        if (errs.length) throw new Error(errs.join('; '));
        process.stdout.write(`lab ${lab.id}: down\n`);
        return;
      }
      if (a.action === 'verify') {
        const checks = await eng.labVerify(r, lab);
        const { checkCases } = await import('../verify/junit.js');
        await writeJunit(a.junit, `nslab lab verify ${lab.id}`, checkCases(`lab ${lab.id} verify`, checks));
        if (a.json) printJson(checks);
        else for (const c of checks) process.stdout.write(`${c.ok ? '✓' : '✗'} ${c.text}${c.ok || !c.detail ? '' : `  [${c.detail}]`}\n`);
        process.exitCode = checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
        return;
      }
      if (a.action === 'script') {
        process.stdout.write(await eng.labScript(r, lab, a.lang));
        return;
      }
      // shell
      if (!a.node) throw invalid('lab shell needs a node: nslab lab shell ID NODE');
      const { spawn } = await import('node:child_process');
      const child = spawn('ip', ['netns', 'exec', a.node, process.env.SHELL || '/bin/sh'], { stdio: 'inherit' });
      process.exitCode = await new Promise<number>((res) => child.on('exit', (c) => res(c ?? 1)));
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
