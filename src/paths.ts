// Where this installation's own files are (share/, labs/, bin/), however it was built or launched.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root directory, holding `share/`, `labs/`, `bin/` and `dist/`.
 * `NSLAB_ROOT` wins: the `bin/` launchers set it, because a V8 startup snapshot (bin/pipework) keeps
 * the module URL of the machine that built it. Otherwise found by walking up from this module (it may
 * be `src/`, `dist/` or a bundle chunk) to the first folder with a `share/` beside a `package.json`.
 * @returns an absolute path (the current directory when nothing matches)
 */
export function packageRoot(): string {
  const env = process.env.NSLAB_ROOT;
  // Absolute: bin/nslab sets it relative to how it was called (bin/..), and a printed script that
  // names share/udhcpc.sh must work from any directory.
  if (env) return resolve(env);
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, d = dirname(d)) if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'share'))) return d;
  return process.cwd();
}

/** nslab's state directory: `$NSLAB_STATE_DIR`, else `/run/nslab` (tmpfs: gone at reboot, as the objects are). */
export function stateDir(): string {
  return process.env.NSLAB_STATE_DIR || '/run/nslab';
}
