// Entry of nslab-cni, the CNI plugin (bin/nslab-cni): the network configuration on stdin, CNI_* in the
// environment, a result or a spec error on stdout (CNI spec 1.1.0). Started from its own V8 startup
// snapshot (dist/snapshot/cni.blob) when the build made one, else from dist/bundle/cni-main.mjs.
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { ExecRunner } from '../exec/runner.js';
import { RecordingRunner } from '../exec/recorder.js';
import { applySteps } from '../engine/apply.js';
import { planAttach } from '../engine/attach/attach.js';
import { pathGuest } from '../engine/attach/guest.js';
import { openJournal } from '../engine/clean/journal.js';
import { runCni } from '../engine/cni/cni.js';
import { parseConf, parseEnv, resultFor } from '../model/cni.js';
import { exitNow, startFromSnapshot } from './snapshot.js';

/** stdin as text ('' when there is none: VERSION may come without). */
function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  // Compile what every call runs once while the snapshot is built (V8 keeps compiled code in it):
  // the checks of a configuration and the environment, the attach plan, a result.
  const conf = parseConf(JSON.stringify({ cniVersion: '1.0.0', name: 'warm', type: 'nslab-cni', bridge: 'cni0', isGateway: true, ipMasq: true, hairpinMode: true, mtu: 1400, ipam: { type: 'host-local', subnet: '10.0.0.0/24' } }));
  parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'warm', CNI_NETNS: '/run/netns/warm', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' });
  resultFor({ cniVersion: conf.cniVersion, interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/warm' }], ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }] }, '0.4.0');
  const host = { kind: 'bridge' as const, name: 'cni0', exists: true, mtu: 1500 };
  const req = { guest: 'cni:warm', netnsPath: '/run/netns/warm', hostIf: 'cni0', ifname: 'eth0', addresses: [{ kind: 'static' as const, cidr: '10.0.0.2/24' }], routes: [{ to: '0.0.0.0/0', via: '10.0.0.1' }], hostAccess: false, direct: false, markFields: { net: 'warm', ns: '/run/netns/warm' } };
  void applySteps(new RecordingRunner(), planAttach({ req, guest: pathGuest('cni:warm', '/run/netns/warm'), host, local: 'nvwarm', existing: false, prevDefault: {}, guestRead: false }));
}

startFromSnapshot(async () => {
  const cmd = process.env.CNI_COMMAND ?? '';
  // ADD, DEL and GC change the kernel: journaled, so that `nslab clean` finishes one that was killed.
  if ((cmd === 'ADD' || cmd === 'DEL' || cmd === 'GC') && process.geteuid?.() === 0) {
    try {
      openJournal(`attach cni:${process.env.CNI_CONTAINERID ?? ''}`, ['nslab-cni', cmd, process.env.CNI_CONTAINERID ?? '', process.env.CNI_IFNAME ?? '']);
    } catch {
      /* no state folder writable: the call still runs, unjournaled */
    }
  }
  const out = await runCni(new ExecRunner(), readStdin(), process.env);
  if (out.stdout) process.stdout.write(out.stdout + '\n');
  exitNow(out.exitCode);
});
