import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from '../../src/devstack/stack.js';

/** Node flags and environment as on Lambda (serverless.yml: NODE_OPTIONS, MALLOC_ARENA_MAX). */
export const LAMBDA_NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=2'];
export const LAMBDA_ENV = { MALLOC_ARENA_MAX: '2' };

/**
 * test/bench/export-child.ts of the checkout at `root`, bundled by esbuild as serverless.yml bundles the Lambda
 * functions (dropship runs bundled in production; the benchmark measures that form, not the TypeScript loader the
 * CLI uses in development). The bundle sits under node_modules, so the compression workers resolve their packages
 * from node_modules, as on Lambda. Returns its path.
 */
export async function bundleExportChild(root: string, name: string): Promise<string> {
  const dir = join(REPO_ROOT, 'node_modules/.cache/dropship-bench');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `${name}.mjs`);
  await build({
    entryPoints: [join(root, 'test/bench/export-child.ts')],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    outfile,
    external: ['pg-native', 'libdeflate', 'snappy-wasm'],
    minifyWhitespace: true, // as serverless.yml deploys it
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'error',
  });
  return outfile;
}
