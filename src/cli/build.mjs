// Builds the `dropship` command ahead of time: src/cli/main.ts and what it imports, compiled by
// esbuild into dist/cli/ (ES modules, one chunk per set of modules a command loads on demand;
// packages stay in node_modules). `npm ci` runs it (the `prepare` script); src/cli/bin.mjs runs the
// build while it is newer than every input listed in dist/cli/manifest.json, else the sources.
//
// esbuild is a devDependency: a production install (`npm ci --omit=dev`) has none, and the CLI
// runs from the sources there. So its absence is not a failure.
//
//   node src/cli/build.mjs [outdir]     (default dist/cli; must be two folders below the root)
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const outdir = process.argv[2] ?? 'dist/cli';

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.log('dropship: esbuild is not installed (a production install): the CLI runs from its TypeScript sources');
  process.exit(0);
}

rmSync(`${root}${outdir}`, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  // Chunks beside the entry: every file two folders below the root, as the sources are, so that
  // `new URL('../../', import.meta.url)` (src/cli/paths.ts, test/stack/stack.ts) is the root here too.
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked', // for NODE_OPTIONS=--enable-source-maps
  metafile: true,
  logLevel: 'warning',
});
// Written last, under a temporary name first: a manifest names a finished build.
const inputs = Object.keys(result.metafile.inputs).sort();
const manifest = `${root}${outdir}/manifest.json`;
mkdirSync(`${root}${outdir}`, { recursive: true });
writeFileSync(`${manifest}.tmp`, `${JSON.stringify({ entry: 'main.mjs', inputs }, null, 2)}\n`);
renameSync(`${manifest}.tmp`, manifest);
console.log(`dropship: built the CLI into ${outdir}/ (${inputs.length} modules)`);
