/**
 * The direction of dropship's dependencies (`npm run check:deps`, part of `npm test`).
 *
 *   handlers/, src/cli/          entry points (Lambda, CLI)
 *     → src/run/                 orchestration: runs, tasks, the ledger, the wiring
 *       → stages                 notify → receipt → changes → sink → aws → destinations → accounts → source → parquet
 *         → bottom               src/log/ → src/config/ → src/contracts/ (receipt types, task message,
 *                                slots, selections, the error family, SQL quoting; zod only)
 *
 * A folder may import only folders below it (and itself). The stages are a strict order too, so
 * no two stages can lean on each other. Production code never imports the local stack in test/,
 * with one door: `src/cli/dev-tooling.ts` loads it on demand (a dynamic import) for `dropship dev`
 * and `dropship demo`; nothing else in src/ or handlers/ may reach test/.
 */
const LAYERS = [
  ['handlers', 'src/cli'],
  ['src/run'],
  ['src/notify'],
  ['src/receipt'],
  ['src/changes'],
  ['src/sink'],
  ['src/aws'],
  ['src/destinations'],
  ['src/accounts'],
  ['src/source'],
  ['src/parquet'],
  ['src/log'],
  ['src/config'],
  ['src/contracts'],
];

const folderRe = (folders) => `^(${folders.map((f) => f.replace('/', '[/]')).join('|')})/`;

/** For every layer: what lies above it is forbidden to it. */
const layerRules = LAYERS.slice(1).map((folders, i) => ({
  name: `layer-${folders.join('+').replaceAll('src/', '')}`,
  comment: `${folders.join(', ')} may not import ${LAYERS.slice(0, i + 1)
    .flat()
    .join(', ')} (dependencies point down: see .dependency-cruiser.cjs)`,
  severity: 'error',
  from: { path: folderRe(folders) },
  to: { path: folderRe(LAYERS.slice(0, i + 1).flat()) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'production-not-to-local-stack',
      comment:
        'handlers/ and src/ never import test/ (the local stack is development tooling); the one door is src/cli/dev-tooling.ts',
      severity: 'error',
      from: { path: '^(src|handlers)/', pathNot: ['^src/cli/dev-tooling[.]ts$', '[.]test[.]ts$'] },
      to: { path: '^test/' },
    },
    {
      name: 'dev-tooling-loads-on-demand',
      comment:
        'src/cli/dev-tooling.ts reaches the local stack only through a dynamic import (operator commands never load it)',
      severity: 'error',
      from: { path: '^src/cli/dev-tooling[.]ts$' },
      to: { path: '^test/', dynamic: false },
    },
    {
      name: 'dev-tooling-no-dev-packages',
      comment: 'src/cli/dev-tooling.ts itself uses no devDependency: only the local stack it loads on demand does',
      severity: 'error',
      from: { path: '^src/cli/dev-tooling[.]ts$' },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'handlers-not-cli',
      comment: 'the two entry points are siblings: a Lambda handler never imports the CLI (nor the CLI a handler)',
      severity: 'error',
      from: { path: '^handlers/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'cli-not-handlers',
      comment: 'the two entry points are siblings: the CLI never imports a Lambda handler',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^handlers/' },
    },
    {
      name: 'contracts-only-zod',
      comment: 'src/contracts/ is the bottom: plain types, constants and zod schemas, no other package',
      severity: 'error',
      from: { path: '^src/contracts/', pathNot: '[.]test[.]ts$' },
      to: {
        dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'],
        pathNot: 'node_modules/zod/',
      },
    },
    {
      name: 'in-a-layer',
      comment: 'every production module lives in a folder of the layer list above (add a new folder to LAYERS)',
      severity: 'error',
      from: {
        path: '^(src|handlers)/',
        pathNot: [folderRe(LAYERS.flat()), '^src/cli/bin[.]mjs$', '^src/cli/build[.]mjs$'],
      },
      to: {},
    },
    {
      name: 'not-to-undeclared-package',
      comment: 'a package production code imports must be declared in package.json (not reached through another one)',
      severity: 'error',
      from: { path: '^(src|handlers)/' },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'no-circular',
      comment: 'modules that depend on each other cannot be read (or changed) one at a time',
      severity: 'error',
      from: { path: '^(src|handlers)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] }, dynamic: false },
    },
    {
      name: 'not-to-dev-dependency',
      comment:
        'production code may not use a devDependency: `npm ci --omit=dev` would break it (src/cli/build.mjs, the CLI build `npm ci` runs, does without esbuild)',
      severity: 'error',
      from: {
        path: '^(src|handlers)/',
        pathNot: ['[.]test[.]ts$', '^src/cli/dev-tooling[.]ts$', '^src/cli/build[.]mjs$'],
      },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.json'],
    },
  },
};
