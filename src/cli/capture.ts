// `nslab capture TARGET [-w FILE] [-c N] [--filter BPF] [--duration S]`: tcpdump in the right netns.
import type { Argv, CommandModule } from 'yargs';
import { reportError, requireRoot } from './output.js';

interface CaptureArgs {
  target: string;
  id?: string;
  end?: string;
  w?: string;
  c?: string;
  filter?: string;
  duration?: string;
}

/** `nslab capture TARGET`, `nslab capture lab ID NODE:IF` */
export const captureCommand: CommandModule<object, CaptureArgs> = {
  command: 'capture <target> [id] [end]',
  describe: 'Capture packets on an interface (NODE:IF, a host veth, a bridge, an OVS port) with tcpdump, inside its netns',
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'NODE:IF, host:IF, BRIDGE:PORT, a host interface, or "lab" followed by ID NODE:IF' })
      .positional('id', { type: 'string', describe: 'with "lab": the lab id' })
      .positional('end', { type: 'string', describe: 'with "lab": NODE:IF in the lab' })
      .option('w', { type: 'string', describe: 'write a pcap file (- = standard output, for wireshark -k -i -)' })
      .option('c', { type: 'string', describe: 'stop after this many packets' })
      .option('filter', { type: 'string', describe: 'pcap-filter(7) expression, e.g. "icmp" or "arp or port 53"' })
      .option('duration', { type: 'string', describe: 'stop after this many seconds' })
      .example('$0 capture h1:eth0', 'one line per packet (with MACs and VLAN tags) until Ctrl-C')
      .example('$0 capture lab 07 c1:eth1 -c 4 --filter icmp', 'four ICMP packets on c1:eth1 of lab 07')
      .example('$0 capture h1:eth0 -w - | wireshark -k -i -', 'watch it live in Wireshark')
      .example('$0 capture ovs-br0:trunk0 --duration 5 -w /tmp/t.pcap', '5 s of a trunk port (802.1Q tags) to a file') as Argv<CaptureArgs>,
  handler: async (a) => {
    try {
      const { checkCaptureOptions, capture } = await import('../engine/live/capture.js');
      const { invalid } = await import('../errors.js');
      const count = a.c === undefined ? undefined : /^\d+$/.test(a.c.trim()) ? Number(a.c) : NaN;
      if (Number.isNaN(count)) throw invalid(`-c ${JSON.stringify(a.c)}: expected a whole number of packets, at least 1`);
      const duration = a.duration === undefined ? undefined : /^\d+(\.\d+)?$/.test(a.duration.trim()) ? Number(a.duration) : NaN;
      if (Number.isNaN(duration)) throw invalid(`--duration ${JSON.stringify(a.duration)}: expected seconds, more than 0 and at most 86400`);
      const opts = { ...(a.w !== undefined ? { write: a.w } : {}), ...(count !== undefined ? { count } : {}), ...(a.filter !== undefined ? { filter: a.filter } : {}), ...(duration !== undefined ? { duration } : {}) };
      checkCaptureOptions(opts);
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { targetFromArgs } = await import('./live-target.js');
      const t = await targetFromArgs(new ExecRunner(), a.target, a.id, a.end);
      const dest = a.w === undefined ? 'standard output' : a.w === '-' ? 'pcap on standard output' : a.w;
      const res = await capture(t, opts, 'inherit', { onStart: () => process.stderr.write(`capturing on ${t.label} to ${dest}${a.duration ? ` for ${a.duration} s` : ''}${count ? `, ${count} packet${count === 1 ? '' : 's'} at most` : ''}; Ctrl-C stops\n`) });
      process.stderr.write(`${res.packets} packet${res.packets === 1 ? '' : 's'} captured on ${t.label}${a.w && a.w !== '-' ? `, written to ${a.w}` : ''}\n`);
    } catch (err) {
      reportError(err, false);
    }
  },
};
