// `nslab lab ls|show|run|up|down|verify|script|shell|check|schema|new`: the course notes' experiments, and writing new ones.
import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';
import type { LabReport } from '../engine/labs/lab.js';
import { JUNIT_OPTION, writeJunit } from './junit-out.js';

type Args = { action: string; id?: string; node?: string; lang: 'en' | 'zh'; json: boolean; step: boolean; check: boolean; junit?: string; until?: number; topology: boolean };

/** `nslab lab ...` */
export const labCommand: CommandModule<object, Args> = {
  command: 'lab <action> [id] [node]',
  describe: 'Labs from the course notes: ls, show ID, run ID, up ID, down ID, verify ID, script ID, shell ID NODE; writing labs: new NN-topic, check [ID|DIR], schema (docs/labs.md)',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['ls', 'show', 'run', 'up', 'down', 'verify', 'script', 'shell', 'check', 'schema', 'new'], describe: 'what to do' })
      .positional('id', { type: 'string', describe: 'lab id: 01, 02, ... (nslab lab ls), or a folder holding a lab.yaml (./labs/16-nat-router); for new: NN-topic' })
      .positional('node', { type: 'string', describe: 'for shell: the node (netns) to open a shell in' })
      .option('lang', { type: 'string', choices: ['en', 'zh'], default: 'en', describe: 'language of the narration' })
      .option('json', { type: 'boolean', default: false, describe: 'a JSON report' })
      .option('junit', { ...JUNIT_OPTION, describe: 'verify/run: also write the checks as JUnit XML to FILE (one test case per check)' })
      .option('step', { type: 'boolean', default: false, describe: 'run: pause for Enter between steps' })
      .option('check', { type: 'boolean', default: true, describe: 'run/up: check each step\'s expectations (--no-check: build only, verify later with lab verify)' })
      .option('until', { type: 'number', describe: 'up: stop after step N (then graph, verify, pingall see that state)' })
      .option('topology', { type: 'boolean', default: false, describe: 'schema: of a topology file instead of lab.yaml' })
      .example('$0 lab ls', 'the labs')
      .example('$0 lab run 01', 'run lab 01 in a private sandbox: each step, its commands, its checks, then teardown')
      .example('$0 lab show 08 --lang zh', 'the lab\'s steps and narration, in Chinese')
      .example('$0 lab script 07 > lab07.sh', 'the lab as plain shell commands, to replay by hand')
      .example('$0 lab new 16-nat-router', 'a new lab to edit (labs/16-nat-router/lab.yaml and README.md); the format: docs/labs.md')
      .example('$0 lab check ./labs/16-nat-router', 'every problem of a lab file at once, without root, building nothing')
      .example('$0 sandbox -- sh -c "nslab lab up 16 --until 2 && nslab graph lab 16 --live"', 'the lab as step 2 left it')
      .example('$0 sandbox -- sh -c "nslab lab up 07 && nslab lab verify 07 && nslab lab down 07"', 'explore a lab that stays up') as unknown as Argv<Args>,
  handler: async (a) => {
    try {
      const { findLab, labHeads, listLabs, loadLab, noteText } = await import('../model/lab.js');
      const { invalid } = await import('../errors.js');
      if (a.action === 'ls') {
        const labs = await labHeads();
        if (a.json) return printJson(labs.map((l) => ({ id: l.id, title: l.title, note: l.note })));
        for (const l of labs) process.stdout.write(`${l.id}  ${l.title[a.lang]}\n`);
        return;
      }
      if (a.action === 'schema') {
        const { labJsonSchema, topologyJsonSchema } = await import('../model/lab-doc.js');
        return printJson(a.topology ? topologyJsonSchema() : labJsonSchema());
      }
      if (a.action === 'new') {
        if (!a.id) throw invalid('lab new needs a name: nslab lab new NN-topic (16-nat-router)');
        const { newLab } = await import('../engine/labs/scaffold.js');
        const dir = newLab(a.id);
        process.stdout.write(`${dir}: lab.yaml and README.md written; edit them (docs/labs.md), then: nslab lab check ${dir} && nslab lab run ${dir}\n`);
        return;
      }
      if (a.action === 'check') {
        const { formatProblem, lintLabDir } = await import('../model/lab-lint.js');
        const { relative } = await import('node:path');
        const targets = a.id ? [await findLab(a.id)] : await listLabs();
        const problems = targets.flatMap((t) => lintLabDir(t.dir, relative(process.cwd(), `${t.dir}/lab.yaml`) || 'lab.yaml'));
        const errors = problems.filter((p) => p.level === 'error').length;
        if (a.json) printJson({ ok: errors === 0, labs: targets.map((t) => t.id), problems });
        else {
          for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
          process.stdout.write(`${targets.length === 1 ? `lab ${targets[0]!.id}` : `${targets.length} labs`}: ${errors} error${errors === 1 ? '' : 's'}, ${problems.length - errors} warning${problems.length - errors === 1 ? '' : 's'}\n`);
        }
        process.exitCode = errors ? EXIT.usage : EXIT.ok;
        return;
      }
      if (!a.id) throw invalid(`lab ${a.action} needs a lab id (nslab lab ls)`);
      // A lab that is run or printed is checked first: every problem at once, before anything is built.
      if ((a.action === 'run' || a.action === 'script' || a.action === 'up') && !process.env.NSLAB_LAB_CHECKED) {
        const { formatProblem, lintLabDir } = await import('../model/lab-lint.js');
        const { relative } = await import('node:path');
        const t = await findLab(a.id);
        const problems = lintLabDir(t.dir, relative(process.cwd(), `${t.dir}/lab.yaml`) || 'lab.yaml');
        for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
        const errors = problems.filter((p) => p.level === 'error').length;
        if (errors) throw invalid(`lab ${t.id}: ${errors} error${errors === 1 ? '' : 's'} (above): nothing was run`);
        process.env.NSLAB_LAB_CHECKED = '1';
      }
      const lab = await loadLab(a.id);
      if (a.action === 'show') {
        if (a.json) return printJson(lab);
        process.stdout.write(`Lab ${lab.id}: ${lab.title[a.lang]}\n${lab.teaches[a.lang]}\n${lab.note ? `(${noteText(lab.note, a.lang)})\n` : ''}\n`);
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
        // Already up here: say so before anything runs ("File exists" from its first step otherwise).
        const left = eng.labNetns(lab).filter((n) => existsSync(`/run/netns/${n}`));
        if (eng.labIsUp(lab.id) || left.length) {
          throw invalid(`lab ${lab.id} is already up here${eng.labIsUp(lab.id) ? ` (nslab lab up ${lab.id})` : ` (netns ${left.join(', ')} exist${left.length === 1 ? 's' : ''})`}: nslab lab down ${lab.id} first, or ${a.action} it in a fresh sandbox: nslab sandbox -- nslab lab ${a.action} ${lab.id}`);
        }
        const pause = a.step ? stepPause() : undefined;
        if (a.until !== undefined && (!Number.isInteger(a.until) || a.until < 1 || a.until > lab.steps.length)) throw invalid(`--until ${a.until}: expected a step number from 1 to ${lab.steps.length}`);
        if (a.until !== undefined && a.action !== 'up') throw invalid('--until goes with lab up (the lab stays as that step left it)');
        const rep = await eng.runLab(r, lab, { lang: a.lang, print: !a.json, keep: a.action === 'up', check: a.check, ...(pause ? { pause } : {}), ...(a.until !== undefined ? { until: a.until } : {}) });
        if (a.step) process.stdin.pause();
        const { checkCases } = await import('../verify/junit.js');
        const stepCases = rep.steps.flatMap((s, i) => checkCases(`lab ${lab.id} step ${i + 1}: ${s.title}`, s.checks));
        const down = rep.teardown.clean || a.action === 'up' ? [] : checkCases(`lab ${lab.id} teardown`, [{ ok: false, text: 'teardown leaves nothing behind', detail: rep.teardown.errors.join('; ') }]);
        await writeJunit(a.junit, `nslab lab ${a.action} ${lab.id}`, [...stepCases, ...down]);
        if (a.json) printJson(rep);
        else process.stdout.write(labSummary(rep, a.action === 'up', a.until));
        // Ctrl-C mid-step: the runner refused what came next, the lab was torn down (or kept, up): 130.
        const { isInterrupted } = await import('../exec/interrupt.js');
        process.exitCode = rep.stopped || isInterrupted() ? EXIT.interrupted : rep.ok ? EXIT.ok : EXIT.failed;
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
        const { paint } = await import('../exec/terminal.js');
        const { checkCases } = await import('../verify/junit.js');
        await writeJunit(a.junit, `nslab lab verify ${lab.id}`, checkCases(`lab ${lab.id} verify`, checks));
        if (a.json) printJson(checks);
        else for (const c of checks) process.stdout.write(`${c.ok ? paint('✓', 'green') : paint('✗', 'red')} ${c.text}${c.ok || !c.detail ? '' : `  [${c.detail}]`}\n`);
        process.exitCode = checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
        return;
      }
      if (a.action === 'script') {
        const problems: string[] = [];
        process.stdout.write(await eng.labScript(r, lab, a.lang, problems));
        for (const p of problems) process.stderr.write(`nslab: lab script ${lab.id}: ${p}\n`);
        return;
      }
      // shell
      const nodes = eng.labNetns(lab);
      if (!a.node) throw invalid(`lab shell needs a node: nslab lab shell ${lab.id} NODE (its nodes: ${nodes.join(', ')})`);
      // Checked first: ip netns exec's own "Cannot open network namespace" comes with exit 255.
      if (!existsSync(`/run/netns/${a.node}`)) {
        const { NslabError } = await import('../errors.js');
        const up = nodes.filter((n) => existsSync(`/run/netns/${n}`));
        throw new NslabError('NOT_FOUND', `lab shell ${lab.id} ${a.node}: no netns ${JSON.stringify(a.node)} here; lab ${lab.id}'s nodes: ${nodes.join(', ')}`, { hint: up.length ? `up here: ${up.join(', ')}` : `lab ${lab.id} is not up here: nslab lab up ${lab.id} first` });
      }
      // The shell finds the lab's Open vSwitch (OVS_RUNDIR, exported by runCommands when it runs).
      const { spawn } = await import('node:child_process');
      const child = spawn('ip', ['netns', 'exec', a.node, process.env.SHELL || '/bin/sh'], { stdio: 'inherit' });
      process.exitCode = await new Promise<number>((res) => child.on('exit', (c) => res(c ?? 1)));
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/**
 * The `--step` pause: waits for Enter; end of input (stdin closed, Ctrl-D) or Ctrl-C says stop, so
 * the lab ends there with its summary and teardown instead of node exiting mid-lab (code 13, an
 * unsettled await, with the lab's netns left behind).
 */
function stepPause(): () => Promise<void | 'stop'> {
  let ended = false;
  process.stdin.once('end', () => (ended = true));
  return async () => {
    if (ended) return 'stop';
    process.stdout.write('-- Enter for the next step, Ctrl-D to stop here --');
    const { onInterrupt } = await import('../exec/interrupt.js');
    return new Promise<void | 'stop'>((res) => {
      const done = (v: void | 'stop') => {
        process.stdin.removeListener('data', onData);
        process.stdin.removeListener('end', onEnd);
        off();
        process.stdin.pause();
        if (v === 'stop') process.stdout.write('\n');
        res(v);
      };
      const onData = () => done();
      const onEnd = () => {
        ended = true;
        done('stop');
      };
      const off = onInterrupt(() => done('stop'));
      process.stdin.once('data', onData);
      process.stdin.once('end', onEnd);
      process.stdin.resume();
    });
  };
}

/** The last line of `lab run|up`: its outcome, where it stopped, and what was left. */
export function labSummary(rep: LabReport, up: boolean, until?: number): string {
  const checks = rep.steps.flatMap((s) => s.checks);
  const failed = checks.filter((c) => !c.ok).length;
  const outcome = rep.stopped
    ? `stopped after step ${rep.stopped.after}/${rep.stopped.of} (${checks.length - failed} check${checks.length - failed === 1 ? '' : 's'} held, ${failed} failed)`
    : rep.ok
      ? 'all checks hold'
      : 'FAILED';
  const after = up
    ? rep.stopped
      ? `; left up what step${rep.stopped.after === 1 ? ' 1' : `s 1-${rep.stopped.after}`} built: nslab lab down ${rep.id}`
      : `${until ? ` (up to step ${until})` : ''} (left up: nslab lab down ${rep.id})`
    : rep.teardown.clean
      ? ', torn down'
      : `, teardown: ${rep.teardown.errors.join('; ')}`;
  return `lab ${rep.id}: ${outcome}${after}\n`;
}
