// `nslab attach`, `nslab detach` and the pipework drop-in `nslab pipework`.
import type { Argv, CommandModule } from 'yargs';
import type { AttachFlags } from '../model/attach-flags.js';
import { printJson, reportError, requireRoot } from './output.js';

/** The flags of `nslab attach`: those of a request (model/attach-flags.ts), GUEST and --to optional with -f. */
type AttachArgs = Omit<AttachFlags, 'guest' | 'to'> & {
  guest?: string;
  to?: string;
  file?: string;
  'dry-run': boolean;
  json: boolean;
  'fault-at'?: number;
};

/** `nslab attach GUEST --to HOSTIF ...` */
export const attachCommand: CommandModule<object, AttachArgs> = {
  command: 'attach [guest]',
  describe: 'Attach a guest (netns, PID, Docker container, nslab node) to a bridge, an OVS bridge or a host interface (macvlan)',
  builder: (y) =>
    y
      .positional('guest', { type: 'string', describe: 'netns name, PID, Docker container name or ID' })
      .option('file', { alias: 'f', type: 'string', describe: 'attach every entry of a YAML list in one batch: - { guest: g1, to: br0, ip: 10.0.0.1/24 }; keys: guest, to, ip, gw, ifname, local, mac, mtu, vlan, dhcp, route, host-access' })
      .option('to', { type: 'string', describe: 'host side: Linux bridge, OVS bridge, any other interface (macvlan), or mac:MAC; a missing br*/ovs* name creates that bridge' })
      .option('ip', { type: 'string', array: true, describe: 'ADDR/LEN[@GATEWAY], repeatable (v4 and v6); 0/0 for no address' })
      .option('gw', { type: 'string', describe: 'default gateway (for the --ip of its family)' })
      .option('ifname', { alias: 'i', type: 'string', default: 'eth1', describe: 'interface name in the guest' })
      .option('local', { alias: 'l', type: 'string', describe: 'host-side interface name (default derived, <= 15 bytes)' })
      .option('mac', { type: 'string', describe: 'MAC of the guest interface, or U:STRING for one derived from STRING' })
      .option('mtu', { type: 'string', describe: 'MTU in bytes (default: the host interface\'s)' })
      .option('vlan', { type: 'string', describe: 'VLAN tag 1-4094 (OVS access port, or 802.1q sub-interface of a macvlan parent)' })
      .option('dhcp', { type: 'string', describe: 'get the address by DHCP: --dhcp (busybox udhcpc, kept running), --dhcp=udhcpc|dhclient|dhcpcd' })
      .option('route', { type: 'string', array: true, describe: 'NET[@GW] routed over this interface, repeatable' })
      .option('host-access', { type: 'boolean', default: false, describe: 'macvlan: move the host\'s address to a host macvlan so it reaches its guests' })
      .option('direct-phys', { type: 'boolean', default: false, hidden: true })
      .option('persist', { type: 'boolean', default: false, describe: 'Docker guests: apply this attach again each time the container starts (nslab docker watch, or nslab docker restore)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'read the kernel, print the commands, change nothing' })
      .option('json', { type: 'boolean', default: false })
      .option('fault-at', { type: 'number', hidden: true })
      .example('$0 attach c1 --to br0 --ip 172.17.2.24/24@172.17.2.1', 'veth into container c1, onto bridge br0 (made if missing)')
      .example('$0 attach g1 --to ovs-br0 --ip 10.10.0.1/24 --vlan 10', 'an OVS access port with VLAN tag 10')
      .example('$0 attach g2 --to ens33 --ip 192.168.192.134/24@192.168.192.2 --host-access', 'a macvlan guest the host can reach')
      .example('$0 attach g3 --to br0 --dhcp', 'address from a DHCP server on br0')
      .example('$0 attach -f guests.yaml', 'many at once: - { guest: g1, to: br0, ip: 10.0.0.1/24 }') as unknown as Argv<AttachArgs>,
  handler: async (a) => {
    try {
      const { invalid } = await import('../errors.js');
      let reqs;
      // yargs gives a flag typed twice as a list: these take one value.
      for (const k of ['file', 'to', 'gw', 'ifname', 'local', 'mac', 'mtu', 'vlan', 'dhcp'] as const) {
        const v: unknown = a[k];
        if (Array.isArray(v)) throw invalid(`--${k} given ${v.length} times (${v.join(', ')}): give it once`);
      }
      if (a.file !== undefined) {
        if (a.guest !== undefined || a.to !== undefined) throw invalid('-f FILE takes the guests from the file: give no GUEST or --to with it');
        const { loadAttachFile } = await import('../model/attach-file.js');
        reqs = await loadAttachFile(a.file);
        (await import('../exec/runner.js')).traceMark(`read ${reqs.length} attaches from ${a.file}`);
      } else {
        if (a.guest === undefined || a.to === undefined) throw invalid('attach needs GUEST and --to HOSTIF (or -f FILE): nslab attach c1 --to br0 --ip 10.0.0.2/24');
        const { requestFromFlags } = await import('../model/attach-flags.js');
        reqs = [requestFromFlags({ ...a, guest: a.guest, to: a.to })];
      }
      if (!a['dry-run']) requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { attachMany } = await import('../engine/attach/attach.js');
      const reps = await attachMany(new ExecRunner(), reqs, { dryRun: a['dry-run'], faultAt: a['fault-at'], persist: a.persist === true });
      if (a.persist && !a['dry-run']) {
        const not = reps.filter((x) => !x.container).map((x) => x.guest);
        if (not.length) process.stderr.write(`nslab: --persist is for Docker containers; ${not.join(', ')} ${not.length > 1 ? 'are' : 'is'} not one (attached, not persisted)\n`);
      }
      for (const n of new Set(reps.flatMap((x) => x.notes ?? []))) process.stderr.write(`nslab: note: ${n}\n`);
      if (a.json) printJson({ ok: true, attached: reps.map(({ script: _s, ...x }) => x), script: reps[0]?.script });
      else if (reps[0]?.script) process.stdout.write(reps[0].script);
      else for (const rep of reps) process.stdout.write(`attached ${rep.guest}${rep.container && rep.container.name !== rep.guest ? ` (${rep.container.name})` : ''}${rep.container ? ` [${rep.container.id.slice(0, 12)}]` : ''}:${rep.ifname} to ${rep.host}${rep.local ? ` (host end ${rep.local})` : ''}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab detach GUEST IFNAME` */
export const detachCommand: CommandModule<object, { guest: string; ifname: string; json: boolean }> = {
  command: 'detach <guest> <ifname>',
  describe: 'Undo one attach exactly (interface, host end, OVS port, DHCP client, host access, bridge nslab made if now empty)',
  builder: (y) =>
    y
      .positional('guest', { type: 'string', demandOption: true })
      .positional('ifname', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false })
      .example('$0 detach c1 eth1', 'remove what `attach c1 --to br0` made') as unknown as Argv<{ guest: string; ifname: string; json: boolean }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { detach } = await import('../engine/attach/attach.js');
      const rep = await detach(new ExecRunner(), a.guest, a.ifname);
      if (a.json) printJson({ ok: true, ...rep });
      else process.stdout.write(`detached ${rep.guest}:${rep.ifname} (removed ${rep.removed.join(', ')})\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab pipework ARGS...`: pipework's whole grammar. */
export const pipeworkCommand: CommandModule<object, { args?: string[]; _: Array<string | number> }> = {
  command: 'pipework [args..]',
  describe: 'Drop-in for jpetazzo/pipework: same arguments, with rollback, detach and 15-byte-safe names',
  builder: (y) =>
    y
      .positional('args', {
        type: 'string',
        array: true,
        describe:
          "pipework's: [--wait|--direct-phys] HOSTIF|mac:MAC|route|rule|tc [-i GUEST_IF] [-l HOST_IF] [-a 4|6] GUEST ADDR/LEN[@GW]|0/0|dhcp[:OPTS]|udhcpc[-f][:OPTS]|dhclient[-f][:OPTS]|dhcpcd[:OPTS] [MAC|U:STRING][@VLAN]; GUEST: netns, PID, Docker container or nslab node",
      })
      .strict(false)
      .parserConfiguration({ 'unknown-options-as-args': true })
      .example('$0 pipework br0 c1 172.17.2.24/24@172.17.2.1', 'veth into c1 on br0, default route via .1')
      .example('$0 pipework ovs-br0 -i eth2 g1 10.10.0.1/24 @10', 'OVS port with VLAN tag 10')
      .example('$0 pipework ens33 g2 dhcp U:g2', 'macvlan with a MAC derived from "g2", address by DHCP')
      .example('$0 pipework route g1 add 10.0.0.0/8 via 10.10.0.254', 'ip route in the guest') as unknown as Argv<{ args?: string[]; _: Array<string | number> }>,
  handler: async (a) => {
    const { runPipework } = await import('./pipework-run.js');
    process.exitCode = await runPipework([...(a.args ?? []), ...a._.slice(1)].map(String));
  },
};
