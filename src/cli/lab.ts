// `nslab lab ls|show|run|up|down|verify|script|shell`: the course notes' experiments.
import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';
import type { LabReport } from '../engine/labs/lab.js';

type Args = { action: string; id?: string; node?: string; lang: 'en' | 'zh'; json: boolean; step: boolean; check: boolean };

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
      .option('step', { type: 'boolean', default: false, describe: 'run: pause for Enter between steps' })
      .option('check', { type: 'boolean', default: true, describe: 'run/up: check each step\'s expectations (--no-check: build only, verify later with lab verify)' })
      .example('$0 lab ls', 'the labs')
      .example('$0 lab run 01', 'run lab 01 in a private sandbox: each step, its commands, its checks, then teardown')
      .example('$0 lab show 08 --lang zh', 'the lab\'s steps and narration, in Chinese')
      .example('$0 lab script 07 > lab07.sh', 'the lab as plain shell commands, to replay by hand')
      .example('$0 sandbox -- sh -c "nslab lab up 07 && nslab lab verify 07 && nslab lab down 07"', 'explore a lab that stays up') as unknown as Argv<Args>,
  handler: async (a) => {
    try {
      const { labHeads, loadLab } = await import('../model/lab.js');
      const { invalid } = await import('../errors.js');
      if (a.action === 'ls') {
        const labs = await labHeads();
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
      requireRoot();
      const { inSandbox } = await import('../exec/sandbox.js');
      const sandboxed = await inSandbox();
      if ((a.action === 'run' || a.action === 'script') && !sandboxed) {
        const { runInSandbox } = await import('../exec/sandbox.js');
        process.exitCode = await runInSandbox([process.execPath, ...process.argv.slice(1)]);
        return;
      }
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
        const rep = await eng.runLab(r, lab, { lang: a.lang, print: !a.json, keep: a.action === 'up', check: a.check, ...(pause ? { pause } : {}) });
        if (a.step) process.stdin.pause();
        if (a.json) printJson(rep);
        else process.stdout.write(labSummary(rep, a.action === 'up'));
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
        const { paint } = await import('./terminal.js');
        if (a.json) printJson(checks);
        else for (const c of checks) process.stdout.write(`${c.ok ? paint('✓', 'green') : paint('✗', 'red')} ${c.text}${c.ok || !c.detail ? '' : `  [${c.detail}]`}\n`);
        process.exitCode = checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
        return;
      }
      if (a.action === 'script') {
        process.stdout.write(await eng.labScript(r, lab, a.lang));
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
export function labSummary(rep: LabReport, up: boolean): string {
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
      : ` (left up: nslab lab down ${rep.id})`
    : rep.teardown.clean
      ? ', torn down'
      : `, teardown: ${rep.teardown.errors.join('; ')}`;
  return `lab ${rep.id}: ${outcome}${after}\n`;
}
