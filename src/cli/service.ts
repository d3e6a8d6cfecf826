// `nslab service ovs|dnsmasq start|stop|status`: the daemons the README's OVS and DHCP examples need, in this sandbox.
import type { Argv, CommandModule } from 'yargs';
import { EXIT, printJson, reportError, requireRoot } from './output.js';

interface ServiceArgs {
  name: string;
  action: string;
  iface?: string;
  range?: string;
  json: boolean;
}

/** `nslab service ovs|dnsmasq start|stop|status [IFACE] [--range FIRST,LAST]` */
export const serviceCommand: CommandModule<object, ServiceArgs> = {
  command: 'service <name> <action> [iface]',
  describe: 'Start, stop or show Open vSwitch (userspace datapath) or a DHCP server (dnsmasq) in this sandbox, state under /run/nslab',
  builder: (y) =>
    y
      .positional('name', { type: 'string', choices: ['ovs', 'dnsmasq'], describe: 'ovs: ovsdb-server + ovs-vswitchd; dnsmasq: a DHCP server on IFACE' })
      .positional('action', { type: 'string', choices: ['start', 'stop', 'status'] })
      .positional('iface', { type: 'string', describe: 'dnsmasq: the interface to serve (a bridge with an IPv4 address)' })
      .option('range', { type: 'string', describe: 'dnsmasq: FIRST,LAST addresses to hand out (default: .100-.200 of the interface\'s subnet)' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 service ovs start', 'then: nslab attach g1 --to ovs-br0 --ip 10.10.0.1/24 --vlan 10')
      .example('$0 service ovs status', 'its PIDs, and the OVS_RUNDIR to export for running ovs-vsctl by hand (exit 3 when stopped)')
      .example('$0 service dnsmasq start br0', 'DHCP on br0 (its address 10.0.0.1/24 gives 10.0.0.100-10.0.0.200); then nslab attach g3 --to br0 --dhcp')
      .example('$0 service dnsmasq stop br0', 'stop it') as unknown as Argv<ServiceArgs>,
  handler: async (a) => {
    try {
      const svc = await import('../engine/services.js');
      const { invalid } = await import('../errors.js');
      if (a.name === 'ovs' && a.iface !== undefined) throw invalid(`service ovs ${a.action} takes no interface (got ${JSON.stringify(a.iface)})`);
      if (a.action === 'status') {
        const st = a.name === 'ovs' ? svc.ovsStatus() : svc.dnsmasqStatus();
        if (a.json) printJson(st);
        else if (a.name === 'ovs') {
          process.stdout.write(st.running ? `ovs: running (pids ${st.pids.join(', ')}), state in ${st.dir}\n  to run ovs-vsctl by hand: export OVS_RUNDIR=${st.env!.OVS_RUNDIR}\n` : 'ovs: not running here (nslab service ovs start)\n');
        } else process.stdout.write(st.running ? `dnsmasq: serving ${st.ifaces!.join(', ')} (pids ${st.pids.join(', ')})\n` : 'dnsmasq: not running here (nslab service dnsmasq start IFACE)\n');
        // As LSB init scripts answer status: 3 = not running (README "Exit codes": a daemon missing).
        process.exitCode = st.running ? EXIT.ok : EXIT.missing;
        return;
      }
      if (a.name === 'dnsmasq' && !a.iface) throw invalid(`service dnsmasq ${a.action} needs the interface: nslab service dnsmasq ${a.action} br0`);
      requireRoot();
      const { inSandbox } = await import('../exec/sandbox.js');
      if (a.action === 'start' && !(await inSandbox())) throw invalid(`service ${a.name} start runs the daemon in the namespace it is called in: run it inside \`nslab sandbox\` (e.g. nslab sandbox, then nslab service ${a.name} start${a.iface ? ` ${a.iface}` : ''})`);
      const { ExecRunner } = await import('../exec/runner.js');
      const r = new ExecRunner();
      if (a.name === 'ovs') {
        if (a.action === 'start') {
          const { activeJournal } = await import('../engine/clean/journal.js');
          // Journaled first: a start killed half-way leaves daemons `nslab clean` stops.
          activeJournal()?.write({ t: 'ovs', dir: svc.sandboxOvsDir() });
          await svc.startOvs(r, svc.sandboxOvsDir());
          const st = svc.ovsStatus();
          if (a.json) printJson(st);
          else process.stdout.write(`ovs: started (pids ${st.pids.join(', ')}), state in ${st.dir}; nslab finds it there, ovs-vsctl by hand after: export OVS_RUNDIR=${st.env!.OVS_RUNDIR}\n`);
        } else {
          const was = svc.ovsStatus().running;
          await svc.stopOvs(r, svc.sandboxOvsDir());
          if (a.json) printJson({ service: 'ovs', stopped: was });
          else process.stdout.write(was ? 'ovs: stopped (its bridges deleted)\n' : 'ovs: was not running\n');
        }
        return;
      }
      const iface = a.iface!;
      if (a.action === 'start') {
        const { dhcpRange } = await import('../model/services.js');
        const { readLinks } = await import('../kernel/link.js');
        const links = await readLinks(r, null);
        const link = links.find((l) => l.ifname === iface);
        if (!link) throw new (await import('../errors.js')).NslabError('NOT_FOUND', `interface ${JSON.stringify(iface)} does not exist here`, { hint: `make it first, e.g. nslab attach g1 --to ${iface} --ip 10.0.0.1/24 (a br* name is created), then ip addr add 10.0.0.254/24 dev ${iface}` });
        const addrs = (await r.run({ argv: ['ip', '-j', '-4', 'addr', 'show', 'dev', iface] })).stdout;
        const v4 = (JSON.parse(addrs || '[]') as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>)[0]?.addr_info?.[0];
        const { first, last, netmask } = dhcpRange(iface, v4 ? `${v4.local}/${v4.prefixlen}` : null, a.range);
        await svc.startDnsmasq(r, iface, [first, last], netmask);
        if (a.json) printJson({ ...svc.dnsmasqStatus(), range: [first, last] });
        else process.stdout.write(`dnsmasq: serving ${first}-${last} on ${iface}; stop: nslab service dnsmasq stop ${iface}\n`);
      } else {
        const was = await svc.stopDnsmasq(iface);
        if (a.json) printJson({ service: 'dnsmasq', iface, stopped: was });
        else process.stdout.write(was ? `dnsmasq: stopped on ${iface}\n` : `dnsmasq: was not running on ${iface}\n`);
      }
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
