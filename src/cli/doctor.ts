// `nslab doctor`: which tools and kernel features are present, and what to install.
import type { Argv, CommandModule } from 'yargs';
import { printJson, reportError } from './output.js';

/** `nslab doctor` */
export const doctorCommand: CommandModule<object, { json: boolean }> = {
  command: 'doctor',
  describe: 'Check tools (iproute2, brctl, iptables, OVS, dnsmasq, docker) and kernel features',
  builder: (y) => y.option('json', { type: 'boolean', default: false }).example('$0 doctor', 'what works here and what to install') as Argv<{ json: boolean }>,
  handler: async (a) => {
    try {
      const { doctor } = await import('../engine/doctor.js');
      const { ExecRunner } = await import('../exec/runner.js');
      const checks = await doctor(new ExecRunner());
      if (a.json) return printJson(checks);
      const { default: Table } = await import('cli-table3');
      const t = new Table({ head: ['check', '', 'detail', 'when missing'], style: { head: [], border: [] } });
      for (const c of checks) t.push([c.name, c.ok ? 'ok' : c.required ? 'MISSING' : 'no', c.detail, c.ok ? '' : (c.fix ?? '')]);
      process.stdout.write(t.toString() + '\n');
      if (checks.some((c) => c.required && !c.ok)) process.exitCode = 1;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
