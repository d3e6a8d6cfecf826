// `nslab doctor`: which tools and kernel features are present, and what to install.
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, printTable, reportError } from './output.js';

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
      const { paint } = await import('../exec/terminal.js');
      const rows = checks.map((c) => [c.name, c.ok ? paint('ok', 'green') : c.required ? paint('MISSING', 'red') : paint('no', 'yellow'), c.detail, c.ok ? '' : (c.fix ?? '')]);
      await printTable(['CHECK', 'OK', 'DETAIL', 'WHEN MISSING'], rows);
      // A required tool missing: exit 3, as every command that needs one (README "Exit codes").
      if (checks.some((c) => c.required && !c.ok)) process.exitCode = EXIT.missing;
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
