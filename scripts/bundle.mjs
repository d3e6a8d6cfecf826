// `npm run bundle`: the CLI as ESM chunks loaded on demand (dist/bundle), and its pipework path as one
// CommonJS file frozen into a V8 startup snapshot for this node (dist/snapshot), which bin/nslab starts
// `nslab pipework` from (bin/pipework too).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/bundle', { recursive: true, force: true });
rmSync('dist/snapshot', { recursive: true, force: true });
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  format: 'esm',
  splitting: true,
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  banner: { js: "import { createRequire as __nslabRequire } from 'module'; const require = __nslabRequire(import.meta.url);" },
});
await build({
  ...common,
  entryPoints: ['src/cli/pipework-main.ts'],
  format: 'cjs',
  outfile: 'dist/snapshot/pipework.cjs',
  define: { 'import.meta.url': '__nslabUrl' },
  banner: { js: "var __nslabUrl = require('url').pathToFileURL(__filename).href;" },
});
// Node warns that child_process and tty are "not yet fully verified" in snapshots; the integration
// tests run every pipework call through bin/nslab, so through the snapshot. Without one, bin/nslab
// runs pipework from dist/bundle/main.mjs.
mkdirSync('dist/snapshot', { recursive: true });
const snap = spawnSync(process.execPath, ['--snapshot-blob', 'dist/snapshot/pipework.blob', '--build-snapshot', 'dist/snapshot/pipework.cjs'], { encoding: 'utf8' });
// bin/nslab uses the blob only with this node binary (same path, not changed since): a blob from
// another node version is refused by node.
if (snap.status === 0) writeFileSync('dist/snapshot/node-path', process.execPath + '\n');
else {
  rmSync('dist/snapshot/pipework.blob', { force: true });
  process.stderr.write(`bundle: no startup snapshot (node ${process.version}); bin/nslab will run dist/bundle/main.mjs:\n${snap.stderr}\n`);
}
