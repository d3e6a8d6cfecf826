// `nslab link down|up|show|set TARGET`: take a link down, bring it back, slow it, and say what it is.
import type { Argv, CommandModule } from 'yargs';
import { printJson, reportError, requireRoot } from './output.js';

interface LinkArgs {
  action: string;
  target: string;
  id?: string;
  end?: string;
  rate?: string;
  mtu?: string;
  delay?: string;
  jitter?: string;
  loss?: string;
  clear: boolean;
  'dry-run': boolean;
  json: boolean;
}

/** `nslab link ACTION TARGET`, `nslab link ACTION lab ID NODE:IF` */
export const linkCommand: CommandModule<object, LinkArgs> = {
  command: 'link <action> <target> [id] [end]',
  describe: 'Take an interface down or up, set its rate (tc tbf), MTU, delay/jitter/loss (netem), or show it',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['down', 'up', 'show', 'set'], describe: 'what to do' })
      .positional('target', { type: 'string', demandOption: true, describe: 'NODE:IF, host:IF, BRIDGE:PORT, a host interface, or "lab" followed by ID NODE:IF' })
      .positional('id', { type: 'string', describe: 'with "lab": the lab id' })
      .positional('end', { type: 'string', describe: 'with "lab": NODE:IF in the lab' })
      .option('rate', { type: 'string', describe: 'set: shape what the interface sends to this rate (tc tbf), e.g. 10mbit' })
      .option('mtu', { type: 'string', describe: 'set: MTU in bytes' })
      .option('delay', { type: 'string', describe: 'set: delay what it sends, e.g. 20ms (netem: needs the kernel module sch_netem)' })
      .option('jitter', { type: 'string', describe: 'set: vary the delay by this much, e.g. 5ms (netem)' })
      .option('loss', { type: 'string', describe: 'set: drop this share of what it sends, e.g. 1% (netem)' })
      .option('clear', { type: 'boolean', default: false, describe: 'set: remove the rate and netem (the default qdisc comes back)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the commands, change nothing' })
      .option('json', { type: 'boolean', default: false, describe: 'a JSON report' })
      .example('$0 link down h2:eth0', 'take h2\'s eth0 down; pingall then expects its pairs lost')
      .example('$0 link set ta:eth0 --rate 10mbit', 'what ta sends on eth0 goes at 10 Mbit/s')
      .example('$0 link set lab 07 c1:eth1 --rate 1mbit --dry-run', 'the tc commands, not run')
      .example('$0 link show g1:eth1', 'up/down, MTU, qdiscs and what nslab link did') as unknown as Argv<LinkArgs>,
  handler: async (a) => {
    try {
      const { checkImpair } = await import('../kernel/tc.js');
      const { invalid } = await import('../errors.js');
      const impair = { ...(a.rate !== undefined ? { rate: a.rate } : {}), ...(a.delay !== undefined ? { delay: a.delay } : {}), ...(a.jitter !== undefined ? { jitter: a.jitter } : {}), ...(a.loss !== undefined ? { loss: a.loss } : {}) };
      // Bad values first: one line, exit 2, before anything is read.
      checkImpair(impair, 'flag');
      const mtu = a.mtu === undefined ? undefined : /^\d+$/.test(a.mtu.trim()) ? Number(a.mtu) : NaN;
      if (mtu !== undefined && !(mtu >= 68 && mtu <= 65535)) throw invalid(`--mtu ${JSON.stringify(a.mtu)}: expected a whole number of bytes from 68 to 65535`);
      if (a.action !== 'set' && (Object.keys(impair).length || mtu !== undefined || a.clear)) throw invalid(`link ${a.action}: --rate, --mtu, --delay, --jitter, --loss and --clear go with link set`);
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const r = new ExecRunner();
      const { targetFromArgs } = await import('./live-target.js');
      const t = await targetFromArgs(r, a.target, a.id, a.end);
      const eng = await import('../engine/live/links.js');
      if (a.action === 'show') {
        const rep = await eng.showLink(r, t);
        if (a.json) printJson(rep);
        else process.stdout.write(eng.formatLink(rep));
        return;
      }
      const settings = { impair, ...(mtu !== undefined ? { mtu } : {}), clear: a.clear };
      const plan = a.action === 'set' ? eng.planSettings(t, settings) : eng.planState(t, a.action === 'up');
      if (a['dry-run']) {
        if (a.json) printJson(plan);
        else process.stdout.write(eng.planText(plan));
        return;
      }
      if (a.action === 'set') await eng.setLink(r, t, settings);
      else await eng.setLinkState(r, t, a.action === 'up');
      if (a.json) printJson({ ok: true, ...plan });
      else process.stdout.write(`${t.label}: ${a.action === 'set' ? 'set' : a.action}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
