#!/usr/bin/env node
// Entry point of the `dropship` command. It runs the JavaScript built ahead of time into dist/cli/
// (by src/cli/build.mjs, which `npm ci` runs) while that build is newer than each of its sources;
// otherwise (a production install has no esbuild, or a source changed since) the TypeScript
// sources through tsx's loader. Either way the commands load what they use only when they run.
import { readFileSync, statSync } from 'node:fs';
import module from 'node:module';

// One Node major for the CLI, the tests and Lambda (package.json engines; test/node-version.test.ts keeps them equal).
// `npm ci --omit=dev` installs no `node` devDependency, and npm only warns about engines: the command ran on the host's
// Node, where a ZSTD export fails (zlib.zstdCompressSync is Node 22.15+) while Lambda's succeeds (deploy red team).
export const NODE_MAJOR = 24;
const running = Number(process.versions.node.split('.')[0]);
if (running !== NODE_MAJOR) {
  process.stderr.write(
    `dropship needs Node.js ${NODE_MAJOR} (the Lambda runtime's); this is ${process.version}. In the project, npx dropship runs its own (the node devDependency); elsewhere install Node.js ${NODE_MAJOR}.\n`,
  );
  process.exit(2);
}

// V8's compiled code of every module this command loads, kept between runs (Node's compile cache,
// in the OS temp folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off). Measured with
// `npm run bench -- --cli` at load ≈ 1.3 on 2 cores: `dropship --help` 0.321 → 0.268 s wall
// (median of 5), about what parsing and compiling commander and zod cost on every start.
module.enableCompileCache?.();

// Output piped into a reader that stops early (`dropship runs list | head`): end quietly, as Unix tools do — but not
// in the middle of an export (`dropship export … 2>&1 | head -1`, a log shipper that died): the run goes on without
// its output and the process ends with the run's own exit code (it exited 0 and left the run open). An export marks
// itself busy with globalThis[Symbol.for('dropship.exporting')] (src/cli/commands/export.ts).
const EXPORTING = Symbol.for('dropship.exporting');
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    if ((globalThis[EXPORTING] ?? 0) > 0) return;
    process.exit(process.exitCode ?? 0);
  });
}

/** The built entry's URL, when dist/cli/ holds a build no older than any module it was built from. */
function freshBuild() {
  const root = new URL('../../', import.meta.url);
  const manifest = new URL('dist/cli/manifest.json', root);
  try {
    const builtAt = statSync(manifest).mtimeMs;
    const { entry, inputs } = JSON.parse(readFileSync(manifest, 'utf8'));
    for (const input of inputs) if (statSync(new URL(input, root)).mtimeMs > builtAt) return undefined;
    return new URL(entry, manifest).href;
  } catch {
    return undefined; // no build (or a source gone): the sources
  }
}

let entry = freshBuild();
if (!entry) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = './main.ts';
}
const { main } = await import(entry);
await main();
