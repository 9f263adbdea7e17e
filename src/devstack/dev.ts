import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { type AdminFile, adminFilePath, devDir } from '../cli/dev-client.js';
import { REPO_ROOT } from '../cli/paths.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import { AdminServer } from './admin.js';
import { LocalApi } from './api.js';
import { createDemoSchema } from './demo.js';
import { LocalStack, PLATFORM_ACCOUNT_ID } from './stack.js';

/**
 * `dropship dev`: the local stack in the foreground. PostgreSQL data persists in .dropship/dev
 * (or DROPSHIP_DEV_DIR); buckets, roles and users come from a world file at start and, while it
 * runs, from `dropship dev provision|apply` through a loopback-only admin endpoint protected by a
 * random token. The endpoint, the token and the stack's environment are written to
 * `<dev dir>/admin.json` (mode 0600) so a second shell needs no copy-paste (`dropship dev env`).
 */
export async function runDev(opts: {
  world?: string;
  fresh?: boolean;
  demoData?: boolean;
  events?: number;
  /** Port of the HTTP API on 127.0.0.1 (default: a free one). */
  apiPort?: number;
}): Promise<void> {
  const dataDir = devDir(process.env, REPO_ROOT);
  const adminPath = adminFilePath(dataDir);
  const running = readRunning(adminPath);
  if (running) {
    throw new DevError(
      `a dev stack is already running from ${dataDir} (pid ${running.pid}); stop it first, or set DROPSHIP_DEV_DIR to use another folder`,
    );
  }
  if (opts.fresh) rmSync(dataDir, { recursive: true, force: true });
  const world = opts.world ? JSON.parse(readFileSync(opts.world, 'utf8')) : undefined;
  const print = (s: string): void => {
    process.stdout.write(`${s}\n`);
  };
  const stack = await LocalStack.start({ dataDir, keep: true });
  const admin = new AdminServer(stack);
  let api: { stop: () => Promise<void> } | undefined;
  let wroteAdmin = false;
  try {
    if (world) {
      const users = await stack.applyWorld(world);
      for (const u of users.values()) {
        print(`# user ${u.arn}: AWS_ACCESS_KEY_ID=${u.accessKeyId} AWS_SECRET_ACCESS_KEY=${u.secretAccessKey}`);
      }
    }
    if (opts.demoData) await seedDemo(stack, opts.events ?? 100_000, print);
    await admin.start();
    const stackEnv = { ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' };
    const local = await startLocalApi(stack, stackEnv, opts.apiPort);
    api = local;
    const env = { ...stackEnv, DROPSHIP_API_URL: local.url };
    const file: AdminFile = { url: admin.url, token: admin.token, pid: process.pid, env };
    mkdirSync(dataDir, { recursive: true });
    if (existsSync(adminPath)) unlinkSync(adminPath);
    writeFileSync(adminPath, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    chmodSync(adminPath, 0o600);
    wroteAdmin = true;
    print('# dropship local stack is running. In another shell:');
    print('#   eval "$(npx dropship dev env)"      # or paste these:');
    for (const [k, v] of Object.entries(env)) print(`export ${k}=${v}`);
    print(`# HTTP API (SigV4, service execute-api, region ${stack.region}): ${local.url}  (docs/operations/api.md)`);
    print(`# admin endpoint (loopback only): ${admin.url}`);
    print(`# admin token: ${admin.token}`);
    print(`#   (both also in ${adminPath}, readable only by you; dev provision/apply read them from there)`);
    print('# then e.g.: npx dropship destinations list   ·   npx dropship dev provision --account <id>');
    print('# Ctrl-C stops everything.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    if (wroteAdmin) rmSync(adminPath, { force: true });
    await api?.stop();
    await admin.stop();
    await stack.stop();
    print('# local stack stopped.');
  }
}

/**
 * The HTTP API of this stack (src/devstack/api.ts) on 127.0.0.1, served by this process with the
 * CLI's own wiring pointed at the stack (as dropship's own identity, like the deployed function).
 */
async function startLocalApi(
  stack: LocalStack,
  env: Record<string, string>,
  port: number | undefined,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const { App } = await import('../cli/app.js');
  const { createLogger } = await import('../log/logger.js');
  // The wiring's AWS clients (the task queue) take their credentials from the standard environment.
  Object.assign(process.env, env);
  const app = new App({ ...process.env, ...env });
  const log = createLogger({ level: app.settings.DROPSHIP_LOG_LEVEL ?? 'info', destination: process.stderr });
  const deps = (async () => ({
    ...(await app.operations()),
    log,
    queue: await app.queue('for the HTTP API’s on-demand runs'),
    faults: app.faults,
  }))();
  deps.catch(() => {});
  const api = new LocalApi(stack.iam, () => deps, {
    region: stack.region,
    accountId: PLATFORM_ACCOUNT_ID,
    ...(port !== undefined ? { port } : {}),
  });
  await api.start();
  return {
    url: api.url,
    stop: async () => {
      await api.stop();
      await app.close();
    },
  };
}

/** The dev stack cannot start or be reached. Not retryable. */
export class DevError extends DropshipError {
  override name = 'DevError';
  readonly code: string = 'dev';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
  }
}

/** The admin file of a dev stack whose process is still alive, if any. */
function readRunning(path: string): AdminFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const f = JSON.parse(readFileSync(path, 'utf8')) as AdminFile;
    process.kill(f.pid, 0);
    return f;
  } catch {
    return undefined; // unreadable, or its process is gone: a stale file
  }
}

/** The demo schema `acme` (as `npm start` creates it), analyzed so the planner has row estimates. */
async function seedDemo(stack: LocalStack, events: number, print: (s: string) => void): Promise<void> {
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: stack.databaseUrl });
  await client.connect();
  try {
    const exists = await client.query(`select 1 from pg_namespace where nspname = 'acme'`);
    if (exists.rowCount) {
      print('# demo schema acme already exists: kept as it is');
      return;
    }
    print(`# creating the demo schema acme (${events.toLocaleString('en-US')} events rows) …`);
    await createDemoSchema(client, 'acme', events, 0.11);
    await client.query('analyze');
  } finally {
    await client.end();
  }
}
