// Runs a parsed pipework command line (shared by `nslab pipework` and the `pipework` bin).
import { existsSync } from 'node:fs';
import { reportError, requireRoot } from './output.js';
import { catchInterrupts } from '../exec/interrupt.js';
import { useSandboxOvs } from '../engine/services.js';

/** What nslab's pipework adds to pipework's own usage text (its --help). */
const PIPEWORK_HELP = `nslab's pipework: the same grammar and defaults (guest interface eth1), with rollback on failure.
  GUEST: a netns name, a PID, a Docker container, or an nslab node.
  Address forms: ADDR/LEN[@GW], 0/0 (no address), dhcp[:OPTS], udhcpc[-f][:OPTS], dhclient[-f][:OPTS], dhcpcd[:OPTS].
  Undo one attach: nslab detach GUEST IFNAME.  Exit codes: 0 ok, 1 failed (rolled back), 2 bad input or no such guest, 3 a tool or daemon missing.

Examples:
  pipework br0 c1 172.17.2.24/24@172.17.2.1          veth into c1 on br0, default route via .1
  pipework ovs-br0 -i eth2 g1 10.10.0.1/24 @10       OVS port with VLAN tag 10 (nslab service ovs start first)
  pipework ens33 g2 dhcp U:g2                        macvlan with a MAC derived from "g2", address by DHCP
  pipework route g1 add 10.0.0.0/8 via 10.10.0.254   ip route in the guest`;

/**
 * Runs pipework's grammar: attach, `route`/`rule`/`tc` inside the guest, or `--wait`.
 * @returns the process exit code
 */
export async function runPipework(argv: string[]): Promise<number> {
  try {
    const { PIPEWORK_USAGE } = await import('../model/pipework.js');
    // pipework prints its usage when called without arguments; --help / -h as every nslab command.
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
      const text = `Usage:\n${PIPEWORK_USAGE.split('\n').map((l) => `  ${l}`).join('\n')}\n\n${PIPEWORK_HELP}\n`;
      if (argv.length === 0) {
        process.stderr.write(`${text}\nnslab: pipework needs a host interface, a guest and an address (usage above)\n`);
        return 2;
      }
      process.stdout.write(text);
      return 0;
    }
    const { ExecRunner } = await import('../exec/runner.js');
    const r = new ExecRunner();
    // Later pipework's --save (record the attach, for a container's restarts) and --restore CONTAINER.
    const save = argv[0] === '--save';
    if (save) argv = argv.slice(1);
    if (argv[0] === '--restore') {
      const { invalid } = await import('../errors.js');
      if (argv.length !== 2) throw invalid(`pipework --restore takes one container (name or ID), got ${argv.length - 1} arguments`);
      requireRoot();
      const { restoreContainer } = await import('../engine/docker/lifecycle.js');
      const rep = await restoreContainer(r, argv[1]!);
      for (const l of [...rep.done, ...rep.errors.map((e) => `failed: ${e}`)]) process.stdout.write(`${l}\n`);
      return rep.errors.length ? 1 : 0;
    }
    const { parsePipework } = await import('../model/pipework.js');
    const cmd = parsePipework(argv);
    if (cmd.kind === 'wait') {
      // pipework --wait: inside a guest, block until the interface shows up.
      while (!existsSync(`/sys/class/net/${cmd.ifname}`)) await new Promise((res) => setTimeout(res, 100));
      // (no SIGINT handler is installed for --wait: Ctrl-C ends it at once, as pipework's loop)
      return 0;
    }
    requireRoot();
    catchInterrupts();
    useSandboxOvs();
    const { openJournal } = await import('../engine/clean/journal.js');
    openJournal(cmd.kind === 'attach' ? `attach ${cmd.request.guest}` : 'pipework', ['pipework', ...argv]);
    if (cmd.kind === 'attach') {
      const { attach } = await import('../engine/attach/attach.js');
      const rep = await attach(r, cmd.request, { persist: save });
      for (const n of rep.notes ?? []) process.stderr.write(`pipework: note: ${n}\n`);
      if (save && !rep.container) process.stderr.write(`pipework: --save is for Docker containers; ${cmd.request.guest} is not one (attached, not saved)\n`);
      return 0;
    }
    if (save) {
      const { invalid } = await import('../errors.js');
      throw invalid('pipework --save goes with an attach (pipework --save HOSTIF GUEST ADDR...), not with route, rule or tc');
    }
    const { resolveGuest } = await import('../engine/attach/guest.js');
    const g = await resolveGuest(r, cmd.guest);
    const argvIn = cmd.kind === 'tc' ? ['tc', ...cmd.args] : ['ip', cmd.kind, ...cmd.args];
    // The tool's own failure is framed as every nslab error is (one line, exit 1), not passed through
    // raw with ip's exit code (2, or 255 for some).
    const res = await r.run({ argv: argvIn, netns: g.netns }, { check: false });
    process.stdout.write(res.stdout);
    if (res.exitCode !== 0) {
      const { NslabError } = await import('../errors.js');
      const first = res.stderr.trim().split('\n').filter(Boolean)[0] ?? `exit code ${res.exitCode}`;
      throw new NslabError('COMMAND_FAILED', `pipework ${cmd.kind} ${cmd.guest}: ${argvIn.join(' ')} failed in the guest: ${first}`);
    }
    process.stderr.write(res.stderr);
    return 0;
  } catch (err) {
    reportError(err, false);
    return Number(process.exitCode ?? 1);
  }
}
