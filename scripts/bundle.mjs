// `npm run bundle`: the CLI as ESM chunks loaded on demand (dist/bundle), and its attach commands as
// CommonJS files frozen into V8 startup snapshots for this node (dist/snapshot: pipework.blob for
// `pipework`, attach.blob for `attach` and `detach`, cni.blob for the CNI plugin), which bin/nslab and
// bin/nslab-cni start them from.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

rmSync('dist/bundle', { recursive: true, force: true });
rmSync('dist/snapshot', { recursive: true, force: true });
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
await build({
  ...common,
  entryPoints: ['src/cli/main.ts', 'src/cli/cni-main.ts'],
  minify: true,
  keepNames: true,
  format: 'esm',
  splitting: true,
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  banner: { js: "import { createRequire as __nslabRequire } from 'module'; const require = __nslabRequire(import.meta.url);" },
});
// string-width (under yargs' cliui and wrap-ansi) makes an Intl.Segmenter when it loads; V8 cannot put
// one in a startup snapshot ("global handle not serialized: Foreign", the build aborts). In the
// snapshot's copy it is made on first use instead.
const lazySegmenter = {
  name: 'lazy-intl-segmenter',
  setup(b) {
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      const lazy = 'let nslabSegmenter; const segmenter = { segment: (s) => (nslabSegmenter ??= new Intl.Segmenter()).segment(s) };';
      // Older copies (cli-table3's string-width 4) have no segmenter: left as they are.
      return { contents: src.replace('const segmenter = new Intl.Segmenter();', lazy), loader: 'js' };
    });
  },
};
// proper-lockfile installs signal-exit's handlers when it loads (network modes' lock, which nslab-cni's
// own IPAM takes); a handle V8 cannot put in a startup snapshot (the build aborts). In the snapshots'
// copy its lock module loads on first use instead.
const lazyLockfile = {
  name: 'lazy-proper-lockfile',
  setup(b) {
    b.onLoad({ filter: /[\\/]proper-lockfile[\\/]index\.js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      const lazy = "let nslabLockfile; const lockfile = new Proxy({}, { get: (_, k) => (nslabLockfile ??= require('./lib/lockfile'))[k] });";
      return { contents: src.replace("const lockfile = require('./lib/lockfile');", lazy), loader: 'js', resolveDir: args.path.replace(/[\\/]index\.js$/, '') };
    });
  },
};
// One snapshot per entry: pipework's (called once per guest: small and quick to load) and the attach
// commands' (yargs, YAML). Node warns that child_process and tty are "not yet fully verified" in
// snapshots; the integration tests run every attach, detach and pipework call through bin/nslab, so
// through them. Without a blob, bin/nslab runs the command from dist/bundle/main.mjs.
mkdirSync('dist/snapshot', { recursive: true });
let snapshots = 0;
for (const name of ['pipework', 'attach', 'cni', 'topology', 'netmodes']) {
  await build({
    ...common,
    plugins: [lazySegmenter, lazyLockfile],
    entryPoints: [`src/cli/${name}-main.ts`],
    format: 'cjs',
    outfile: `dist/snapshot/${name}.cjs`,
    define: { 'import.meta.url': '__nslabUrl' },
    banner: { js: "var __nslabUrl = require('url').pathToFileURL(__filename).href;" },
  });
  // A process started from a snapshot has no dynamic import(): `await import('node:fs')` there fails
  // at run time ("A dynamic import callback was not specified"), so the build refuses one.
  const dyn = (await readFile(`dist/snapshot/${name}.cjs`, 'utf8')).match(/\bimport\(\s*["'][^"']+["']\s*\)/g);
  if (dyn) {
    process.stderr.write(`bundle: the ${name} snapshot's code keeps a dynamic import, which fails when started from a snapshot: ${[...new Set(dyn)].join(', ')}; import it statically\n`);
    process.exit(1);
  }
  const snap = spawnSync(process.execPath, ['--snapshot-blob', `dist/snapshot/${name}.blob`, '--build-snapshot', `dist/snapshot/${name}.cjs`], { encoding: 'utf8' });
  if (snap.status === 0) snapshots++;
  else {
    rmSync(`dist/snapshot/${name}.blob`, { force: true });
    process.stderr.write(`bundle: no ${name} startup snapshot (node ${process.version}); bin/nslab will run dist/bundle/main.mjs:\n${snap.stderr}\n`);
  }
}
// bin/nslab uses the blob only with this node binary (same path, not changed since): a blob from
// another node version is refused by node.
if (snapshots > 0) writeFileSync('dist/snapshot/node-path', process.execPath + '\n');
