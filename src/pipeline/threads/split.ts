import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type pg from 'pg';
import type { Chunk } from '../parquet/column.js';
import { copyIntoSink } from '../sink/copy-into.js';
import type { TableSink } from '../sink/table-sink.js';
import type { TablePlan } from '../source/catalog.js';
import { SourceError } from '../source/errors.js';
import { type BlockHalf, copySql, type KeyRange, type RowFilter, tableRef } from '../source/select.js';
import type { SourceSession } from '../source/snapshot.js';
import { type FromHalf, fromMessage, HALF_WORKER, type HalfJob, type ToHalf } from './half.js';
import { unpackGroup } from './wire.js';

/**
 * One large table on two cores (issue 27, item 2). The main thread's own work — decoding COPY rows, encoding
 * columns, dictionaries, statistics — sets the pace of one table (compression already runs in workers), so on a
 * machine with a second core (Lambda from 3,538 MB: `usableCores`) a large table can be read in two halves
 * of its blocks: the main thread reads the blocks below the middle, a worker thread (./half.ts) the rest, each with
 * its own binary COPY in the same snapshot (the main transaction exports it; the worker imports it and checks it sees
 * the same), and the worker's row groups are appended to the same shards the main thread writes. One sink, so the
 * shards, the ledger's shard count, the receipt and the crash paths are those of a table read by one thread; only
 * the order of row groups inside a shard differs (Parquet promises none).
 *
 * Off by default (`DROPSHIP_TABLE_THREADS=1`): measured slower on this project's 2-vCPU machine, where Postgres and
 * the local S3 share the cores (docs/operations/capacity.md). A table is split when all hold: `DROPSHIP_TABLE_THREADS`
 * is 2 and `usableCores()` is two or more; it is a plain
 * table (not partitioned, not a view) read whole (not a key-range part, not one tenant's rows); its estimate is at
 * least `DROPSHIP_TABLE_THREADS_MIN_ROWS`; Postgres is 14 or later (TID Range Scan: each half reads only its blocks);
 * it has at least two blocks. Otherwise nothing changes: one thread, as before.
 */
export interface SplitSource {
  url: string;
  session?: SourceSession | undefined;
  applicationName: string;
}

/** A table to be read in two halves: what the main thread reads, and what the worker needs to read the rest. */
export interface SplitPlan {
  /** The main thread's half (the blocks below the middle); the worker reads the others. */
  lower: BlockHalf;
  upper: BlockHalf;
  source: SplitSource;
  /** pg_export_snapshot() of the main reading transaction. */
  exportId: string;
  /** The transaction's txid_current_snapshot(). */
  snapshot: string;
}

/** Lambda's CPU share per 1,769 MB of memory: one vCPU's worth (AWS Lambda's documented ratio). */
const LAMBDA_MB_PER_VCPU = 1769;

/**
 * The cores this process may keep busy: the machine's, and on Lambda (which shows two CPUs at every memory size) the
 * CPU share its memory size buys — two only from 3,538 MB.
 */
export function usableCores(env: NodeJS.ProcessEnv = process.env, machine = availableParallelism()): number {
  const mb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(mb) && mb > 0 ? Math.min(machine, Math.max(1, Math.floor(mb / LAMBDA_MB_PER_VCPU))) : machine;
}

/** Where to split `table`, or undefined when it is read by one thread (the rules above). */
export async function planSplit(
  client: pg.ClientBase,
  schema: string,
  table: TablePlan,
  source: SplitSource,
  opts: { threads: number; minRows: number; whole: boolean; cores?: number },
): Promise<SplitPlan | undefined> {
  if (opts.threads < 2 || (opts.cores ?? usableCores()) < 2 || !opts.whole) return undefined;
  if (table.kind !== 'table' || (table.estimatedRows ?? 0) < opts.minRows) return undefined;
  try {
    const res = await client.query<{ modern: boolean; blocks: string }>(
      `select current_setting('server_version_num')::int >= 140000 as modern,
              (pg_catalog.pg_relation_size($1::pg_catalog.regclass) / current_setting('block_size')::int)::text as blocks`,
      [tableRef(schema, table.name)],
    );
    const { modern, blocks } = res.rows[0]!;
    if (!modern || Number(blocks) < 2) return undefined;
    const snap = await client.query<{ id: string; snapshot: string }>(
      'select pg_catalog.pg_export_snapshot() as id, pg_catalog.txid_current_snapshot()::text as snapshot',
    );
    const block = Math.floor(Number(blocks) / 2);
    return {
      lower: { block, upper: false },
      upper: { block, upper: true },
      source,
      exportId: snap.rows[0]!.id,
      snapshot: snap.rows[0]!.snapshot,
    };
  } catch (e) {
    // The reading transaction is aborted now: the task fails (and is retried); DROPSHIP_TABLE_THREADS=1 avoids this.
    throw new SourceError(
      `table ${table.name}: cannot prepare its second reading thread (DROPSHIP_TABLE_THREADS=2): ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/**
 * Reads both halves: this thread's with `copyIntoSink`, the other in a worker (`readOtherHalf`), into one sink.
 * Either failing stops the other, and the first failure is what is thrown. While this thread waits for the other
 * half, its reading transaction is pinged (it holds the exported snapshot, and an idle-in-transaction timeout would
 * end its session). Resolves with the rows of both; `onRows` gets their sum as they come.
 */
export async function readInTwo(input: {
  client: pg.Client;
  /** The main thread's COPY (of `split.lower`). */
  sql: string;
  sink: TableSink;
  signal?: AbortSignal | undefined;
  onRows: (rows: number) => void;
  split: SplitPlan;
  schema: string;
  table: TablePlan;
  rowFilter?: RowFilter | undefined;
  range?: KeyRange | undefined;
  /** The source session's idle-in-transaction timeout (0: none set by dropship). */
  idleInTransactionSeconds: number;
  /** DROPSHIP_MAX_ROW_BYTES, for both threads. */
  maxRowBytes: number;
}): Promise<number> {
  const { client, sink, split, schema, table } = input;
  const job: HalfJob = {
    ...split.source,
    exportId: split.exportId,
    snapshot: split.snapshot,
    schema,
    table: table.name,
    columns: table.columns.map((c) => ({ name: c.name, pgType: c.pgType })),
    sql: copySql(schema, table, input.rowFilter, input.range, split.upper),
    writer: sink.writerOptions,
    maxRowBytes: input.maxRowBytes,
  };
  const stop = new AbortController();
  const both = input.signal ? AbortSignal.any([input.signal, stop.signal]) : stop.signal;
  let mine = 0;
  let theirs = 0;
  const report = (): void => input.onRows(mine + theirs);
  const other = readOtherHalf({
    job,
    signal: both,
    onGroup: (chunks, rows) => sink.appendRowGroup(chunks, rows),
    onRows: (n) => {
      theirs = n;
      report();
    },
  });
  other.catch((e) => stop.abort(e));
  try {
    mine = await copyIntoSink({
      client,
      sql: input.sql,
      columns: table.columns,
      sink,
      maxRowBytes: input.maxRowBytes,
      signal: both,
      onRows: (n) => {
        mine = n;
        report();
      },
    });
    const idle = input.idleInTransactionSeconds;
    const ping = setInterval(
      () => void client.query('select 1').catch(() => {}),
      idle > 0 ? Math.min(30_000, (idle * 1000) / 3) : 30_000,
    );
    try {
      theirs = await other;
    } finally {
      clearInterval(ping);
    }
    return mine + theirs;
  } catch (e) {
    stop.abort(e);
    await other.catch(() => {});
    throw stop.signal.reason;
  }
}

// The worker imports the module that spawned it (this file's URL: the bundle, a chunk of the CLI, or the source),
// whose evaluation starts the half's work (./half.ts); the TypeScript source needs tsx's loader first.
const BOOT = `
(async () => {
  const { workerData } = await import('node:worker_threads');
  if (workerData.tsx) {
    const tsx = await import(workerData.tsx);
    (tsx.register ?? tsx.default.register)();
  }
  await import(workerData.module);
})().catch(async (e) => {
  const { parentPort } = await import('node:worker_threads');
  parentPort.postMessage({ type: 'error', name: 'Error', message: String((e && e.stack) || e), retryable: true });
});
`;

function entry(): { module: string; tsx?: string } {
  const module = import.meta.url;
  if (!/\.[mc]?ts$/.test(new URL(module).pathname)) return { module };
  return { module, tsx: pathToFileURL(createRequire(module).resolve('tsx/esm/api')).href };
}

/**
 * Runs the worker's half: each row group it sends goes to `onGroup` (the sink; the worker sends the next once that
 * resolves), its progress to `onRows`. Resolves with its rows; rejects with its error, or `signal`'s reason (the
 * worker is then terminated: its connection closes, its backend ends).
 */
function readOtherHalf(input: {
  job: HalfJob;
  signal: AbortSignal;
  /** Resolves when the sink took the row group (the thread then sends the next). */
  onGroup: (chunks: Chunk[], rows: number) => Promise<void>;
  onRows: (rows: number) => void;
}): Promise<number> {
  const { job, signal } = input;
  return new Promise<number>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const worker = new Worker(BOOT, { eval: true, workerData: { ...entry(), [HALF_WORKER]: job } });
    let settled = false;
    const send = (m: ToHalf): void => {
      if (!settled) worker.postMessage(m);
    };
    const end = (error: unknown, rows?: number): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      void worker.terminate();
      if (error === undefined) resolve(rows!);
      else reject(error);
    };
    const onAbort = (): void => end(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: FromHalf) => {
      if (settled) return;
      if (m.type === 'group') input.onGroup(unpackGroup(m.group), m.group.rows).then(() => send({ type: 'ack' }), end);
      else if (m.type === 'rows') input.onRows(m.rows);
      else if (m.type === 'done') end(undefined, m.rows);
      else end(fromMessage(m));
    });
    worker.on('error', (e) =>
      end(new SourceError(`the table's second reading thread failed: ${e.message}`, { cause: e })),
    );
    worker.on('exit', (code) =>
      end(
        new SourceError(`the table's second reading thread of ${job.table} stopped (exit code ${code}) before its end`),
      ),
    );
  });
}
