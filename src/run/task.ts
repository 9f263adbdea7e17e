import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import { AccountsError, type Registry } from '../accounts/registry.js';
import { DestinationAccessError, destinationClients, isDestinationProblem, verifyAssumeRole } from '../aws/clients.js';
import type { Settings } from '../config/settings.js';
import { ParquetWriter } from '../parquet/writer.js';
import { nowMicros } from '../receipt/receipt.js';
import { folderName, shardKey } from '../sink/layout.js';
import { ShardUpload } from '../sink/shard-upload.js';
import { listTables, type TablePlan } from '../source/catalog.js';
import { MappingError } from '../source/errors.js';
import { release, TEXT_FORM_SETTINGS } from '../source/snapshot.js';
import { finishRun } from './finish.js';
import type { Ledger, Run, Trigger } from './ledger.js';
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
  const client = new pg.Client({ connectionString: deps.sourceUrl, application_name: `dropship ${dest.accountId}` });
  await client.connect();
  let tables: TablePlan[];
  try {
    tables = await listTables(client, dest.sourceSchema);
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
    maxAttempts: deps.settings.DROPSHIP_TASK_MAX_ATTEMPTS,
  });
  const clients = destinationClients(dest, runId, deps.settings);
  try {
    if (tables.length === 0)
      throw new Error(`source schema "${dest.sourceSchema}" has no tables or materialized views`);
    await verifyAssumeRole(dest, clients);
  } catch (e) {
    await deps.ledger.failRun(runId, (e as Error).message);
    return { run: (await deps.ledger.getRun(runId))!, messages: [] };
  } finally {
    clients.s3.destroy();
  }
  return { run, messages: tables.map((t) => ({ runId, accountId: dest.accountId, table: t.name })) };
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
  const claim = await ledger.claimTask(msg.runId, msg.table, settings.DROPSHIP_TASK_LEASE_SECONDS);
  if (!claim.claimed) {
    if (claim.reason === 'busy') return { status: 'retry', reason: 'another worker holds this task' };
    if (claim.reason === 'done') {
      // A previous finisher may have died after the last task completed: finishing is idempotent.
      const clients = destinationClients(dest, run.runId, settings);
      try {
        const receiptKey = await finishRun(ledger, run.runId, dest, clients.s3);
        return receiptKey ? { status: 'succeeded', receiptKey } : { status: 'skipped', reason: 'already done' };
      } finally {
        clients.s3.destroy();
      }
    }
    return { status: 'skipped', reason: claim.reason };
  }

  const clients = destinationClients(dest, run.runId, settings);
  const client = new pg.Client({ connectionString: deps.sourceUrl, application_name: `dropship ${dest.accountId}` });
  let broken = true;
  try {
    await client.connect();
    await client.query(TEXT_FORM_SETTINGS);
    await client.query('begin isolation level repeatable read, read only');
    const table = (await listTables(client, dest.sourceSchema)).find((t) => t.name === msg.table);
    if (!table) throw new MappingError(`table ${msg.table} no longer exists in schema ${dest.sourceSchema}`);
    const result = await exportTable({
      client,
      schema: dest.sourceSchema,
      table,
      dest,
      s3: clients.s3,
      folder: run.folder,
      settings,
      ...(deps.signal ? { signal: deps.signal } : {}),
      onShardOpen: async (index) => {
        await ledger.noteShardsStarted(run.runId, msg.table, index + 1);
      },
    });
    broken = false;
    await coverStaleShards(ledger, run, dest, table, result, clients.s3, settings);
    if (!(await ledger.completeTask(run.runId, msg.table, claim.attempt, result))) {
      return { status: 'skipped', reason: 'lost the claim to another attempt' };
    }
    const receiptKey = await finishRun(ledger, run.runId, dest, clients.s3);
    return { status: 'succeeded', ...(receiptKey ? { receiptKey } : {}) };
  } catch (e) {
    const cause = (e as Error).cause;
    const final =
      isDestinationProblem(cause) ||
      cause instanceof DestinationAccessError ||
      e instanceof MappingError ||
      cause instanceof MappingError;
    const message = (e as Error).message;
    const verdict = await ledger.releaseTask(run.runId, msg.table, claim.attempt, message, final);
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
async function coverStaleShards(
  ledger: Ledger,
  run: Run,
  dest: Destination,
  table: TablePlan,
  result: TableResult,
  s3: ReturnType<typeof destinationClients>['s3'],
  settings: Settings,
): Promise<void> {
  const started = await ledger.shardsStarted(run.runId, table.name);
  for (let index = result.files.length; index < started; index++) {
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
