import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import { AccountsError, type Registry } from '../accounts/registry.js';
import { DestinationAccessError, destinationClients, isDestinationProblem, verifyAssumeRole } from '../aws/clients.js';
import type { Settings } from '../config/settings.js';
import { ensureExternalIdEnforced } from '../notify/drift.js';
import { recordRunOutcome } from '../notify/outcome.js';
import { ParquetWriter } from '../parquet/writer.js';
import { nowMicros } from '../receipt/receipt.js';
import { folderName, shardKey } from '../sink/layout.js';
import { ShardUpload } from '../sink/shard-upload.js';
import { listTables, type TablePlan } from '../source/catalog.js';
import { MappingError } from '../source/errors.js';
import { release, sourceClient, TEXT_FORM_SETTINGS } from '../source/snapshot.js';
import { finishRun } from './finish.js';
import type { Ledger, Run, TaskPart, Trigger } from './ledger.js';
import { exportTable, type TableResult } from './table.js';

/**
 * The fan-out path (Lambda): a run is opened for an account with one task per table; each task
 * travels as one SQS message and is exported by whichever worker receives it. The ledger makes
 * duplicate and concurrent deliveries harmless, and the last task to complete writes the receipt.
 *
 * Consistency: each table is read in its own REPEATABLE READ transaction, at the moment its task
 * runs. (The in-process path, `dropship export`, reads all tables of a run in one snapshot; a
 * snapshot cannot outlive the Lambda that exported it.)
 */
export interface TaskMessage {
  runId: string;
  accountId: string;
  table: string;
  /** Key-range part of a split table (0 for whole tables). */
  part?: number;
}

/** Shards of part p are numbered from p × 1,000,000 (the 12-digit index leaves room for both). */
export const PART_SHARD_BLOCK = 1_000_000;

/**
 * Key ranges for tables estimated above `splitRows` rows that have a single integer primary key:
 * ceil(estimate / splitRows) equal ranges between its min and max.
 */
export async function planParts(client: pg.Client, schema: string, splitRows: number): Promise<TaskPart[]> {
  const big = await client.query<{ relname: string; est: string; key: string }>(
    `select c.relname, greatest(c.reltuples, 0)::bigint as est, a.attname as key
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       join pg_catalog.pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnkeyatts = 1
       join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
      where n.nspname = $1 and c.relkind in ('r', 'p') and a.atttypid in (20, 21, 23) and c.reltuples > $2`,
    [schema, splitRows],
  );
  const parts: TaskPart[] = [];
  for (const t of big.rows) {
    const key = `"${t.key.replaceAll('"', '""')}"`;
    const mm = await client.query<{ lo: string | null; hi: string | null }>(
      `select min(${key})::text as lo, max(${key})::text as hi from "${schema.replaceAll('"', '""')}"."${t.relname.replaceAll('"', '""')}"`,
    );
    const lo = mm.rows[0]?.lo;
    const hi = mm.rows[0]?.hi;
    if (lo === null || hi === null || lo === undefined || hi === undefined) continue;
    const n = Math.min(Math.ceil(Number(t.est) / splitRows), 1000);
    if (n < 2) continue;
    const from = BigInt(lo);
    const span = BigInt(hi) - from + 1n;
    const step = span / BigInt(n) + (span % BigInt(n) === 0n ? 0n : 1n);
    for (let p = 0; p < n; p++) {
      const a = from + step * BigInt(p);
      const b = p === n - 1 ? BigInt(hi) : a + step;
      parts.push({ table: t.relname, part: p, parts: n, keyColumn: t.key, lo: a, hi: b });
    }
  }
  return parts;
}

export function newRunId(start: Date): string {
  const stamp = start.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${stamp}Z-${randomBytes(3).toString('hex')}`;
}

/** Opens a run and its tasks; fails the run at once (visible to operators) if the role cannot be assumed. */
export async function openAccountRun(
  dest: Destination,
  deps: { sourceUrl: string; ledger: Ledger; settings: Settings; trigger: Trigger; slot?: string },
): Promise<{ run: Run; messages: TaskMessage[] }> {
  if (!dest.enabled)
    throw new AccountsError(`account ${dest.accountId} is disabled (dropship destinations enable ${dest.accountId})`);
  const startedMicros = nowMicros();
  const start = new Date(Number(startedMicros / 1000n));
  const runId = newRunId(start);
  const client = sourceClient(deps.sourceUrl, `dropship ${dest.accountId}`);
  await client.connect();
  let tables: TablePlan[];
  let parts: TaskPart[];
  try {
    tables = await listTables(client, dest.sourceSchema);
    parts = await planParts(client, dest.sourceSchema, deps.settings.DROPSHIP_SPLIT_ROWS);
  } finally {
    await client.end().catch(() => {});
  }
  const run = await deps.ledger.openRun({
    runId,
    accountId: dest.accountId,
    trigger: deps.trigger,
    slot: deps.slot ?? null,
    layout: dest.layout,
    folder: folderName(start, dest.layout),
    startedMicros,
    tables: tables.map((t) => t.name),
    parts,
    maxAttempts: deps.settings.DROPSHIP_TASK_MAX_ATTEMPTS,
  });
  const clients = destinationClients(dest, runId, deps.settings);
  try {
    if (tables.length === 0)
      throw new Error(`source schema "${dest.sourceSchema}" has no tables or materialized views`);
    await verifyAssumeRole(dest, clients);
    await ensureExternalIdEnforced(deps.ledger.pool, dest);
  } catch (e) {
    await deps.ledger.failRun(runId, (e as Error).message);
    await recordRunOutcome(
      { pool: deps.ledger.pool, settings: deps.settings, s3: clients.s3 },
      { accountId: dest.accountId, runId, ok: false, error: e },
    );
    return { run: (await deps.ledger.getRun(runId))!, messages: [] };
  } finally {
    clients.s3.destroy();
  }
  const split = new Set(parts.map((p) => p.table));
  const messages: TaskMessage[] = [
    ...tables.filter((t) => !split.has(t.name)).map((t) => ({ runId, accountId: dest.accountId, table: t.name })),
    ...parts.map((p) => ({ runId, accountId: dest.accountId, table: p.table, part: p.part })),
  ];
  return { run, messages };
}

export type TaskOutcome =
  | { status: 'succeeded'; receiptKey?: string }
  | { status: 'skipped'; reason: string }
  /** Deliver again later (busy elsewhere, or a retryable failure). */
  | { status: 'retry'; reason: string }
  | { status: 'failed'; reason: string };

export interface TaskDeps {
  sourceUrl: string;
  ledger: Ledger;
  registry: Registry;
  settings: Settings;
  signal?: AbortSignal;
}

export async function runTask(msg: TaskMessage, deps: TaskDeps): Promise<TaskOutcome> {
  const { ledger, settings } = deps;
  const run = await ledger.getRun(msg.runId);
  if (!run) return { status: 'skipped', reason: `unknown run ${msg.runId}` };
  const dest = await deps.registry.get(run.accountId);
  const part = msg.part ?? 0;
  const claim = await ledger.claimTask(msg.runId, msg.table, settings.DROPSHIP_TASK_LEASE_SECONDS, part);
  if (!claim.claimed) {
    if (claim.reason === 'busy') return { status: 'retry', reason: 'another worker holds this task' };
    if (claim.reason === 'done') {
      // A previous finisher may have died after the last task completed: finishing is idempotent.
      const clients = destinationClients(dest, run.runId, settings);
      try {
        const receiptKey = await finishRun(ledger, run.runId, dest, clients.s3);
        if (receiptKey)
          await recordRunOutcome(
            { pool: ledger.pool, settings, s3: clients.s3 },
            { accountId: run.accountId, runId: run.runId, ok: true, receiptKey },
          );
        return receiptKey ? { status: 'succeeded', receiptKey } : { status: 'skipped', reason: 'already done' };
      } finally {
        clients.s3.destroy();
      }
    }
    if (claim.reason === 'exhausted')
      await recordRunOutcome(
        { pool: ledger.pool, settings },
        {
          accountId: run.accountId,
          runId: run.runId,
          ok: false,
          error: `table ${msg.table}: gave up after the last attempt`,
        },
      );
    return { status: 'skipped', reason: claim.reason };
  }

  const clients = destinationClients(dest, run.runId, settings);
  const client = sourceClient(deps.sourceUrl, `dropship ${dest.accountId}`);
  let broken = true;
  try {
    await client.connect();
    await client.query(TEXT_FORM_SETTINGS);
    await client.query('begin isolation level repeatable read, read only');
    const table = (await listTables(client, dest.sourceSchema)).find((t) => t.name === msg.table);
    if (!table) throw new MappingError(`table ${msg.table} no longer exists in schema ${dest.sourceSchema}`);
    const task = await ledger.task(run.runId, msg.table, part);
    const shardBase = part * PART_SHARD_BLOCK;
    const result = await exportTable({
      ...(task?.keyColumn && task.rangeLo !== null && task.rangeHi !== null
        ? {
            range: {
              keyColumn: task.keyColumn,
              lo: task.rangeLo,
              hi: task.rangeHi,
              last: task.part === task.parts - 1,
            },
            shardBase,
          }
        : {}),
      client,
      schema: dest.sourceSchema,
      table,
      dest,
      s3: clients.s3,
      folder: run.folder,
      settings,
      ...(deps.signal ? { signal: deps.signal } : {}),
      onShardOpen: async (index) => {
        await ledger.noteShardsStarted(run.runId, msg.table, index - shardBase + 1, part);
      },
    });
    broken = false;
    await coverStaleShards(ledger, run, dest, table, result, clients.s3, settings, part, shardBase);
    if (!(await ledger.completeTask(run.runId, msg.table, claim.attempt, result, part))) {
      return { status: 'skipped', reason: 'lost the claim to another attempt' };
    }
    const receiptKey = await finishRun(ledger, run.runId, dest, clients.s3);
    // After the run's state is committed: status.json, webhook, metrics (src/notify/outcome.ts).
    if (receiptKey)
      await recordRunOutcome(
        { pool: ledger.pool, settings, s3: clients.s3 },
        { accountId: run.accountId, runId: run.runId, ok: true, receiptKey },
      );
    return { status: 'succeeded', ...(receiptKey ? { receiptKey } : {}) };
  } catch (e) {
    const cause = (e as Error).cause;
    const final =
      isDestinationProblem(cause) ||
      cause instanceof DestinationAccessError ||
      e instanceof MappingError ||
      cause instanceof MappingError;
    const message = (e as Error).message;
    const verdict = await ledger.releaseTask(run.runId, msg.table, claim.attempt, message, final, false, part);
    if (verdict === 'failed')
      await recordRunOutcome(
        { pool: ledger.pool, settings, s3: clients.s3 },
        { accountId: run.accountId, runId: run.runId, ok: false, error: e },
      );
    return verdict === 'retry' ? { status: 'retry', reason: message } : { status: 'failed', reason: message };
  } finally {
    await release(client, broken);
    clients.s3.destroy();
  }
}

/**
 * An earlier attempt of this task may have started more shards than this one wrote (the table
 * shrank between attempts). Customers load whole folders, and dropship may not delete, so each
 * such key is overwritten with a valid Parquet file of the same schema and no rows, and listed in
 * the result: the folder, the receipt and the data agree.
 */
export async function coverStaleShards(
  ledger: Ledger,
  run: Pick<Run, 'runId' | 'accountId' | 'folder'>,
  dest: Destination,
  table: TablePlan,
  result: TableResult,
  s3: ReturnType<typeof destinationClients>['s3'],
  settings: Settings,
  part: number,
  shardBase: number,
): Promise<void> {
  const started = Math.max(
    await ledger.shardsStarted(run.runId, table.name, part),
    part === 0 ? await ledger.shardsStartedInFolder(run.accountId, run.folder, table.name, run.runId) : 0,
  );
  for (let i = result.files.length; i < started; i++) {
    const index = shardBase + i;
    const upload = new ShardUpload({
      client: s3,
      bucket: dest.bucket,
      key: shardKey(dest, run.folder, result.objectName, index),
      partSize: settings.DROPSHIP_PART_SIZE_BYTES,
      queueSize: 1,
      ...(dest.kmsKeyArn ? { kmsKeyArn: dest.kmsKeyArn } : {}),
    });
    const writer = new ParquetWriter(
      table.columns.map((c) => c.spec),
      {
        rowGroupRows: 1,
        rowGroupBytes: 1,
        pageSize: 1,
        gzipLevel: settings.DROPSHIP_GZIP_LEVEL,
        createdBy: 'dropship',
      },
      (b) => upload.write(b),
    );
    await writer.finish();
    result.files.push({ ...(await upload.complete()), rows: 0 });
  }
  result.bytes = result.files.reduce((n, f) => n + f.bytes, 0);
}

/** Slots per plan from settings (`04:00,15:00` …). */
export function slotsByPlan(settings: Settings): Record<'paid' | 'free', string[]> {
  return { paid: settings.DROPSHIP_PAID_SLOTS.split(','), free: settings.DROPSHIP_FREE_SLOTS.split(',') };
}

export type { DestinationAccessError };
