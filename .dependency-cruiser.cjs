/**
 * The shape of dropship (`npm run check:deps`, part of `npm test`): folders grouped by role, and the
 * edges allowed between them. Any import from one group to another that is not listed in ALLOWED
 * fails the check, naming both groups. `npm run docs:graph` draws the real edges into
 * docs/design/architecture.md (and a test fails when the drawing is stale).
 *
 * The data path reads from the folder list: schedule → accounts → destinations (assume role) →
 * pipeline (source: COPY + decode → parquet → sink: shards, multipart upload) → receipt; the run
 * (lifecycle, drivers, liveness, progress) orchestrates it, store/ keeps dropship's own database
 * (registry rows, ledger, migrations), notify/ tells the customer, customer/ holds the tools
 * customers run, devstack/ the local stack (`dropship dev`).
 */
const GROUPS = {
  handlers: '^handlers/',
  cli: '^src/cli/',
  api: '^src/api/',
  operations: '^src/operations/',
  devstack: '^src/devstack/',
  schedule: '^src/schedule/',
  run: '^src/run/[^/]+$',
  'run/drivers': '^src/run/drivers/',
  'run/lifecycle': '^src/run/lifecycle/',
  'run/liveness': '^src/run/liveness/',
  'run/progress': '^src/run/progress/',
  notify: '^src/notify/',
  receipt: '^src/receipt/',
  changes: '^src/changes/',
  customer: '^src/customer/',
  pipeline: '^src/pipeline/[^/]+$',
  'pipeline/source': '^src/pipeline/source/',
  'pipeline/parquet': '^src/pipeline/parquet/',
  'pipeline/sink': '^src/pipeline/sink/',
  'pipeline/threads': '^src/pipeline/threads/',
  destinations: '^src/destinations/',
  aws: '^src/aws/',
  accounts: '^src/accounts/',
  store: '^src/store/',
  log: '^src/log/',
  config: '^src/config/',
  contracts: '^src/contracts/',
};

const BASE = ['log', 'config', 'contracts'];

/** Which group may import which (besides itself). Everything not listed is forbidden. */
const ALLOWED = {
  handlers: ['api', 'operations', 'run', 'run/drivers', 'run/lifecycle', 'run/liveness', 'schedule', ...BASE],
  cli: [
    'operations',
    'devstack',
    'schedule',
    'run',
    'run/drivers',
    'run/lifecycle',
    'run/progress',
    'notify',
    'receipt',
    'customer',
    'pipeline',
    'destinations',
    'aws',
    'accounts',
    'store',
    ...BASE,
  ],
  devstack: ['cli', 'api', 'accounts', 'destinations', 'store', ...BASE],
  api: ['operations', 'run/lifecycle', 'notify', 'destinations', 'accounts', 'store', ...BASE],
  operations: ['schedule', 'run/drivers', 'run/lifecycle', 'notify', 'accounts', 'store', ...BASE],
  schedule: [
    'run/drivers',
    'run/lifecycle',
    'run/liveness',
    'notify',
    'pipeline/source',
    'destinations',
    'accounts',
    'store',
    ...BASE,
  ],
  run: ['run/lifecycle', 'aws', 'accounts', 'store', ...BASE],
  'run/drivers': [
    'run/lifecycle',
    'run/liveness',
    'run/progress',
    'notify',
    'receipt',
    'pipeline',
    'pipeline/source',
    'pipeline/sink',
    'destinations',
    'aws',
    'accounts',
    'store',
    ...BASE,
  ],
  'run/lifecycle': [
    'notify',
    'receipt',
    'changes',
    'pipeline',
    'pipeline/source',
    'pipeline/sink',
    'destinations',
    'accounts',
    'store',
    ...BASE,
  ],
  'run/liveness': ['run/lifecycle', 'destinations', 'accounts', 'store', ...BASE],
  'run/progress': ['pipeline', ...BASE],
  notify: ['destinations', 'aws', 'accounts', 'store', ...BASE],
  receipt: ['pipeline/sink', 'destinations', 'accounts', ...BASE],
  changes: ['pipeline/source', 'pipeline/parquet', 'pipeline/sink', 'destinations', 'accounts', 'store', ...BASE],
  customer: ['receipt', 'destinations', ...BASE],
  pipeline: [
    'pipeline/source',
    'pipeline/parquet',
    'pipeline/sink',
    'pipeline/threads',
    'destinations',
    'accounts',
    ...BASE,
  ],
  'pipeline/threads': ['pipeline/source', 'pipeline/parquet', 'pipeline/sink', ...BASE],
  'pipeline/sink': ['pipeline/source', 'pipeline/parquet', 'destinations', 'accounts', ...BASE],
  'pipeline/source': ['pipeline/parquet', ...BASE],
  'pipeline/parquet': [...BASE],
  destinations: ['accounts', ...BASE],
  aws: ['destinations', ...BASE],
  accounts: ['pipeline/source', 'store', ...BASE],
  store: ['accounts', ...BASE],
  log: ['config', 'contracts'],
  config: ['contracts'],
  contracts: [],
};

const anyOf = (names) => `(${names.map((n) => GROUPS[n].replace(/^\^/, '')).join('|')})`;
const groupRules = Object.entries(ALLOWED).map(([name, allowed]) => ({
  name: `group-${name.replace('/', '-')}`,
  comment: `${name} may import only ${allowed.length ? allowed.join(', ') : 'nothing else'} (the graph in .dependency-cruiser.cjs)`,
  severity: 'error',
  from: { path: GROUPS[name], pathNot: '[.]test[.]ts$' },
  to: { path: '^(src|handlers)/', pathNot: `^${anyOf([name, ...allowed])}` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...groupRules,
    {
      name: 'production-not-to-local-stack',
      comment:
        'handlers/ and src/ never import test/ or the local stack (src/devstack/, development tooling); the one door is src/cli/dev-tooling.ts',
      severity: 'error',
      from: { path: '^(src|handlers)/', pathNot: ['^src/cli/dev-tooling[.]ts$', '^src/devstack/', '[.]test[.]ts$'] },
      to: { path: '^(test|src/devstack)/' },
    },
    {
      name: 'dev-tooling-loads-on-demand',
      comment:
        'src/cli/dev-tooling.ts reaches the local stack only through a dynamic import (operator commands never load it)',
      severity: 'error',
      from: { path: '^src/cli/dev-tooling[.]ts$' },
      to: { path: '^(test|src/devstack)/', dynamic: false },
    },
    {
      name: 'dev-tooling-no-dev-packages',
      comment: 'src/cli/dev-tooling.ts itself uses no devDependency: only the local stack it loads on demand does',
      severity: 'error',
      from: { path: '^src/cli/dev-tooling[.]ts$' },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'devstack-not-to-tests',
      comment: 'the local stack is a product (`dropship dev`): it never imports test/',
      severity: 'error',
      from: { path: '^src/devstack/' },
      to: { path: '^test/' },
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
      comment:
        "src/contracts/ is the bottom: plain types, constants and zod schemas, no other package (but the runtime helpers of the JSON Schemas' precompiled validators, validators.generated.ts)",
      severity: 'error',
      from: { path: '^src/contracts/', pathNot: '[.]test[.]ts$' },
      to: {
        dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'],
        pathNot: 'node_modules/(zod/|ajv/dist/runtime/)',
      },
    },
    {
      name: 'in-a-layer',
      comment: 'every production module lives in a group of the graph above (add a new folder to GROUPS and ALLOWED)',
      severity: 'error',
      from: {
        path: '^(src|handlers)/',
        pathNot: [`^${anyOf(Object.keys(GROUPS))}`, '^src/cli/bin[.]mjs$', '^src/cli/build[.]mjs$'],
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
        pathNot: [
          '[.]test[.]ts$',
          '^src/cli/dev-tooling[.]ts$',
          '^src/cli/build[.]mjs$',
          '^src/devstack/',
          // `npm run docs:openapi` and its test: openapi-typescript generates the client types (src/api/client/).
          '^src/api/openapi-files[.]ts$',
        ],
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

// The graph itself, for the drawing (scripts/dependency-graph.mjs): not enumerable, so
// dependency-cruiser's own schema check of this configuration does not see it.
Object.defineProperty(module.exports, 'graph', { value: { GROUPS, ALLOWED }, enumerable: false });
