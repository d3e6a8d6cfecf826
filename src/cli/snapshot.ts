// What the V8 startup snapshots of the CLI share (dist/snapshot/*.blob, made by `npm run build`,
// started by bin/nslab): their entry modules are evaluated when the snapshot is built, so a call skips
// Node's module loading, most of a short call's cost. Two blobs, not one: each MB of snapshot costs
// ~3 ms to load here, and pipework's path (called once per guest) needs neither yargs nor YAML.
import v8 from 'node:v8';
import { ExecRunner, traceMark } from '../exec/runner.js';
import { RecordingRunner } from '../exec/recorder.js';
import { applySteps } from '../engine/apply.js';
import { planAttach } from '../engine/attach/attach.js';
import { parsePipework } from '../model/pipework.js';

/**
 * Runs `main` with the command line: at once when this file runs as a script, or, while a snapshot is
 * being built, as the snapshot's main function (then `process.argv` is `[node, ...args]`).
 * @param main the command, given the arguments after the script (or after `node --snapshot-blob B --`)
 */
export function startFromSnapshot(main: (args: string[]) => Promise<void>): void {
  if (v8.startupSnapshot?.isBuildingSnapshot()) {
    v8.startupSnapshot.setDeserializeMainFunction(() => {
      traceMark('main (from the startup snapshot)');
      void main(process.argv.slice(1));
    });
    // The runner's first spawn costs more than later ones (lazy set-up): pay it here, once.
    void new ExecRunner().run({ argv: ['true'] });
    // Parse, plan and apply one attach (recorded: nothing runs). V8 compiles a function on its first
    // call and the snapshot keeps what was compiled: ~3 ms less of each call's own work here.
    const c = parsePipework(['br0', 'g', '10.0.0.2/24@10.0.0.1', 'U:g']);
    if (c.kind === 'attach') {
      const host = { kind: 'bridge' as const, name: 'br0', exists: true, mtu: 1500 };
      void applySteps(new RecordingRunner(), planAttach({ req: c.request, guest: { ref: 'g', kind: 'netns', netns: 'g', ipNetns: 'g' }, host, local: 'g-eth1', existing: false, prevDefault: {}, guestRead: false }));
    }
  } else void main(process.argv.slice(2));
}

/**
 * Ends the process with `code` at once: on Linux, stdout and stderr writes are synchronous, so nothing
 * is lost, and Node's own teardown of a snapshot's heap took 25-30 ms here after the last command.
 */
export function exitNow(code: number): never {
  process.exit(code);
}
