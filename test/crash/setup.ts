import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Settings } from '../../src/config/settings.js';
import type { Receipt } from '../../src/contracts/receipt.js';
import { type Customer, setupCustomer } from '../../src/devstack/demo.js';
import type { FaultAction } from '../../src/devstack/s3.js';
import { REPO_ROOT } from '../../src/devstack/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { exportAccount } from '../../src/run/drivers/in-process.js';
import { resetLambdaDeps } from '../../src/run/lambda.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import { dropship, assertExact as kitAssertExact } from '../kit/index.js';
import { machineEnv } from '../kit/machine-env.js';
import { pastTheBound as movePastTheBound } from '../kit/runs.js';
import { type Harness, startHarness } from '../kit/stack-harness.js';

export type FaultResult = FaultAction | undefined;

/**
 * The crash matrix and the chaos loop (issue 10): the owner of a run is killed at every point of
 * the lifecycle — a `dropship export` child process with SIGKILL; a Lambda handler abandoned at a
 * test-only crash point (DROPSHIP_TEST_CRASH_AT, mode `hang`) with its database sessions
 * terminated — time moves past the bound, and then:
 *   - the run has ended (`failed` as abandoned, or finished by someone else),
 *   - the next export succeeds and compares exact (Postgres vs DuckDB),
 *   - no failed run has a receipt, and every receipt published for a run has one content,
 *   - no unfinished multipart upload remains, except those of a SIGKILLed process (the bucket's
 *     AbortIncompleteMultipartUpload lifecycle rule cleans those; docs/design/run-lifecycle.md).
 * "Time moves past the bound" is done by moving the ledger's heartbeat and lease timestamps back
 * (pastTheBound), except in the frozen-owner test, which really waits DROPSHIP_RUN_STALE_SECONDS.
 */
export let h: Harness;
export let cli: Customer;
export let chaos: Customer;
export let lam: Customer;
export let lamBig: Customer;
export let sqs: SQSClient;
export const silent = new LogReporter(createLogger({ level: 'silent' }));
export const PART = String(5 * 1024 * 1024);
/** Every receipt.json body published, per run id, in order (read the moment S3 stored it). */
export const published = new Map<string, string[]>();
/** Unfinished uploads a SIGKILLed process left behind (allowed to remain). */
export const killedUploads = new Set<string>();

export type Handler = (event: unknown, context?: { getRemainingTimeInMillis(): number }) => Promise<unknown>;
export let worker: Handler;
export let exportAccountHandler: Handler;
export let sweeper: Handler;

const WEIRD = `
  create table %s."__proto__" ("__proto__" int primary key, "constructor" text, "toString" text, "hasOwnProperty" boolean);
  insert into %s."__proto__" select i, 'c' || i, 't' || i, i % 2 = 0 from generate_series(1, 50) i;
  create table %s."constructor" (id int, "valueOf" text, "__proto__" numeric(10,2));
  insert into %s."constructor" select i, 'v' || i, i * 1.25 from generate_series(1, 40) i;
  create table %s."toString" (id int, "hasOwnProperty" text);
  insert into %s."toString" select i, 'h' || i from generate_series(1, 30) i;
  create table %s."hasOwnProperty" (id bigint);
  insert into %s."hasOwnProperty" select generate_series(1, 20);`;
const weird = (schema: string) => WEIRD.replaceAll('%s', schema);
// A table whose Parquet is over one 5 MiB part, so its upload is a real multipart upload.
const BIG = (schema: string) => `
  create table ${schema}.big as
    select i as id, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) as a, md5(i::text)::uuid as u
      from generate_series(1, 110000) i;`;

/**
 * Registers the crash tests' shared setup in the calling test file: the local stack and its four
 * customers (crashcli, chaos, crashlam, crashbig), the receipt recorder, the Lambda handlers.
 */
export function useCrashStack(): void {
  beforeAll(async () => {
    h = await startHarness();
    const { stack, pool, registry } = h;
    await pool.query(`create schema crashcli; ${BIG('crashcli')} ${weird('crashcli')}
      create schema chaos; ${weird('chaos')}
      create table chaos.events as select i as id, now() - i * interval '1 second' as at, 'e' || i as name
        from generate_series(1, 30000) i;
      create schema crashlam; ${weird('crashlam')}
      create schema crashbig; ${BIG('crashbig')}`);
    // 22 tables packed 2 a message (DROPSHIP_PACK_MAX_TABLES below): 11 messages, so the fan-out sends
    // more than one SendMessageBatch (crash point during-send) and every message is a packed one.
    for (let i = 0; i < 18; i++)
      await pool.query(
        `create table crashlam.t${i} as select g as id, 'row ' || g as label from generate_series(1, 200) g`,
      );
    const add = (accountId: string, n: number) =>
      setupCustomer(stack, registry, {
        accountId,
        awsAccountId: `26000000000${n}`,
        bucket: `${accountId}-data`,
        schema: accountId,
      });
    cli = await add('crashcli', 1);
    chaos = await add('chaos', 2);
    lam = await add('crashlam', 3);
    lamBig = await add('crashbig', 4);
    stack.s3.onEvent((e) => {
      if (!e.key.endsWith('receipt.json')) return;
      const body = readFileSync(join(stack.s3.directory, e.bucket, `${e.key}._S3rver_object`), 'utf8');
      const runId = (JSON.parse(body) as Receipt).run_id;
      published.set(runId, [...(published.get(runId) ?? []), body]);
    });
    Object.assign(process.env, {
      DROPSHIP_LOG_LEVEL: 'silent',
      DROPSHIP_DEADLINE_MARGIN_SECONDS: '0',
      DROPSHIP_TASK_RETRY_SECONDS: '0',
      DROPSHIP_PART_SIZE_BYTES: PART,
      DROPSHIP_PACK_MAX_TABLES: '2',
    });
    sqs = new SQSClient({ region: 'us-east-1' });
    worker = (await import('../../handlers/worker.js')).handler as Handler;
    exportAccountHandler = (await import('../../handlers/export-account.js')).handler as Handler;
    sweeper = (await import('../../handlers/sweeper.js')).handler as Handler;
  }, 120_000);
  afterAll(async () => {
    await resetLambdaDeps();
    sqs?.destroy();
    await h?.stop();
  });
}

export const settings = (extra: Record<string, string> = {}): Settings =>
  h.settings({ DROPSHIP_PART_SIZE_BYTES: PART, ...extra });

/** The next export, in-process, as an operator's rerun. */
export const exportNow = (c: Customer, extra: Partial<Parameters<typeof exportAccount>[1]> = {}) =>
  exportAccount(c.destination, {
    sourceUrl: h.stack.databaseUrl,
    settings: settings(),
    reporter: silent,
    ledger: h.ledger,
    ...extra,
  });

/** `dropship export --account <id>` in a child process. */
export function spawnExport(
  c: Customer,
  env: Record<string, string> = {},
): { child: ChildProcess; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'src/cli/bin.mjs'), 'export', '--account', c.destination.accountId],
    {
      env: {
        ...machineEnv(),
        ...h.stack.env(),
        DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
        DROPSHIP_PART_SIZE_BYTES: PART,
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exit };
}

/** stdout of a `dropship` command (its exit code must be 0). */
export async function cliOutput(args: string[]): Promise<string> {
  const r = await dropship(h.stack, args);
  if (r.code !== 0) throw new Error(`dropship ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** Time moves past every bound of the run: its heartbeat, its finishing lease and its tasks' leases. */
export const pastTheBound = (runId: string): Promise<void> => movePastTheBound(h.pool, runId);

export async function latestRun(c: Customer) {
  return (await h.ledger.listRuns({ accountId: c.destination.accountId, limit: 1 }))[0]!;
}

/**
 * The kit's exactness check (test/kit/exact.ts; the uploads a SIGKILLed process left are allowed),
 * and tables and columns named like Object.prototype members appear under their own names.
 */
export async function assertExact(c: Customer): Promise<void> {
  const receipt = await kitAssertExact(h, c, { unfinishedAllowed: killedUploads });
  if (c !== lamBig) {
    expect(Object.keys(receipt.tables)).toEqual(
      expect.arrayContaining(['__proto__', 'constructor', 'toString', 'hasOwnProperty']),
    );
    expect(
      Object.getOwnPropertyDescriptor(receipt.tables, '__proto__')?.value.columns.map(
        (col: { name: string }) => col.name,
      ),
    ).toEqual(['__proto__', 'constructor', 'toString', 'hasOwnProperty']);
  }
}

/** The ledger and the bucket agree: no failed run has a receipt; each run's receipts are one content. */
export async function assertLedgerAndReceipts(c: Customer): Promise<void> {
  const runs = await h.ledger.listRuns({ accountId: c.destination.accountId, limit: 1000 });
  for (const r of runs) {
    const bodies = published.get(r.runId) ?? [];
    if (r.status === 'succeeded') {
      expect(bodies.length, r.runId).toBeGreaterThanOrEqual(1);
      expect(new Set(bodies).size, `${r.runId}: every published copy is byte-identical`).toBe(1);
      expect(bodies[0]).toBe(r.receiptBody);
    } else {
      expect(bodies, `${r.runId} (${r.status}) has no receipt`).toEqual([]);
    }
  }
  expect(runs.filter((r) => r.status === 'running' || r.status === 'finishing')).toEqual([]);
  const unfinished = await h.stack.s3.unfinishedUploads(c.destination.bucket);
  expect(unfinished.filter((u) => !killedUploads.has(u.uploadId))).toEqual([]);
}
