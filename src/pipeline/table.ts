import type pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import type { Settings } from '../config/settings.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type { TableResult } from '../contracts/result.js';
import type { DestinationPort } from '../destinations/port.js';
import { compressionPool } from './parquet/compression.js';
import { describeType } from './parquet/schema.js';
import { copyIntoSink } from './sink/copy-into.js';
import { tableFolder, tableObjectName } from './sink/layout.js';
import { TableSink } from './sink/table-sink.js';
import type { TablePlan } from './source/catalog.js';
import { MappingError, SourceError } from './source/errors.js';
import { copySql, type RowFilter } from './source/select.js';
import { rewrittenSinceSnapshot } from './source/snapshot.js';
import { planSplit, readInTwo, type SplitSource } from './threads/split.js';

/*
 * One table, end to end: binary COPY out of Postgres (in the run's snapshot) → decoded straight
 * into Parquet column buffers → the table's sink (src/pipeline/sink/table-sink.ts: row groups, shards of
 * about `DROPSHIP_SHARD_TARGET_BYTES`, streamed multipart uploads). At most two row groups
 * (plus the upload queue) in memory. What it delivered is a `TableResult` (src/contracts/result.ts).
 */

export interface TableProgress {
  table: string;
  rows: number;
  bytes: number;
  files: number;
  /** The planner's row estimate for what this export reads (null: unknown; see TablePlan.estimatedRows). */
  estimatedRows?: number | null;
  /**
   * Which key range of a split table these figures are of (its lower bound), absent for a whole table: the figures
   * are that part's alone, and a reporter sums the parts (each part's own count jumped the table's line back and forth).
   */
  part?: string;
}

/** One table's export failed; retryable as its cause is (the destination refusing, a mapping problem: not). */
export class TableExportError extends DropshipError {
  readonly code: string = 'table-export';
  constructor(
    readonly table: string,
    message: string,
    options?: DropshipErrorOptions,
  ) {
    super(message, options);
    this.name = 'TableExportError';
  }
}

export interface TableExportInput {
  client: pg.Client;
  schema: string;
  table: TablePlan;
  dest: Destination;
  /** The destination's port, opened for the run (src/destinations/). */
  port: DestinationPort;
  folder: string;
  settings: Settings;
  signal?: AbortSignal;
  onProgress?: (p: TableProgress) => void;
  /** Awaited before shard `index` starts uploading (the ledger's high-water mark of shards). */
  onShardOpen?: (index: number) => Promise<void>;
  /** Only rows with lo ≤ key < hi (≤ hi when `last`): one part of a split table. */
  range?: { keyColumn: string; lo: bigint; hi: bigint; last: boolean; first?: boolean };
  /** First shard index (parts of a split table number their shards in separate blocks). */
  shardBase?: number;
  /** Tenant mode: only this tenant's rows (src/pipeline/source/select.ts). */
  rowFilter?: RowFilter | undefined;
  /**
   * How a second thread connects to the source: given, a large table is read by two threads when the rules of
   * src/pipeline/threads/split.ts allow it; absent, by this one.
   */
  threads?: SplitSource | undefined;
}

/**
 * Call when a run or task for `dest` opens, before its tables: the page compression's first worker starts then, its
 * start overlapping the opening's waits instead of holding up the first pages (CompressionPool.prewarm).
 */
export function prewarmTableExport(dest: Pick<Destination, 'compression'>): void {
  compressionPool().prewarm(dest.compression ?? 'gzip');
}

export async function exportTable(input: TableExportInput): Promise<TableResult> {
  const { client, schema, table, dest, port, folder, settings, signal, onProgress, onShardOpen } = input;
  const started = performance.now();
  if (table.columns.length === 0) throw new MappingError(`table ${table.name} has no columns`);
  const objectName = tableObjectName(table.name);
  const split = input.threads
    ? await planSplit(client, schema, table, input.threads, {
        threads: settings.DROPSHIP_TABLE_THREADS,
        minRows: settings.DROPSHIP_TABLE_THREADS_MIN_ROWS,
        whole: !input.range && !input.rowFilter,
      })
    : undefined;
  const sql = copySql(schema, table, input.rowFilter, input.range, split?.lower);

  const sink = await TableSink.open({
    port,
    dest,
    folder,
    objectName,
    specs: table.columns.map((c) => c.spec),
    settings,
    shardBase: input.shardBase ?? 0,
    ...(onShardOpen ? { onShardOpen } : {}),
    keyValueMetadata: { 'dropship.source': `${schema}.${table.name}` },
  });
  // A key range of a split table, or one tenant's rows, is only part of the table: its estimate does not apply.
  const estimatedRows = input.range || input.rowFilter ? null : (table.estimatedRows ?? null);
  const part = input.range ? String(input.range.lo) : undefined;
  const report = (rows: number): void =>
    onProgress?.({
      table: table.name,
      rows,
      bytes: sink.bytes,
      files: sink.shards,
      estimatedRows,
      ...(part !== undefined ? { part } : {}),
    });

  let files: TableResult['files'];
  let rows: number;
  try {
    const copy = {
      client,
      sql,
      columns: table.columns,
      sink,
      signal,
      onRows: report,
      maxRowBytes: settings.DROPSHIP_MAX_ROW_BYTES,
    };
    rows = split
      ? await readInTwo({
          ...copy,
          split,
          schema,
          table,
          rowFilter: input.rowFilter,
          range: input.range,
          idleInTransactionSeconds: settings.DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS,
        })
      : await copyIntoSink(copy);
    // At once, in the transaction that read it (its lock still held; it may not idle while the last shard uploads).
    if (await rewrittenSinceSnapshot(client, schema, table.name)) throw new TableRewritten(table.name);
    files = await sink.finish();
    report(rows);
  } catch (e) {
    await sink.fail(e);
    if (e instanceof TableRewritten) throw e;
    const key = sink.key;
    // A destination error is classified (retryable or not) where it enters: the port explains its own.
    const err = port.explain(key, e);
    throw new TableExportError(table.name, `table ${table.name}: ${(err as Error).message}`, {
      cause: err,
      retryable: port.isRetryable(err),
    });
  }
  const totalBytes = files.reduce((n, f) => n + f.bytes, 0);
  return {
    table: table.name,
    objectName,
    folder: tableFolder(folder, objectName),
    rows,
    bytes: totalBytes,
    files,
    compression: dest.compression ?? 'gzip',
    columns: table.columns.map((c) => ({
      name: c.name,
      postgres_type: c.pgType,
      parquet_type: describeType(c.spec),
      nullable: c.spec.nullable,
      text_form: c.textForm,
    })),
    seconds: (performance.now() - started) / 1000,
    ...(split ? { threads: 2 } : {}),
  };
}

export type { TableResult } from '../contracts/result.js';
export type { SplitSource } from './threads/split.js';

/**
 * The table was truncated or rewritten after the snapshot it was read in (`rewrittenSinceSnapshot`): what was read is
 * not the snapshot's rows. Not retryable in this snapshot; the next run reads it again.
 */
export class TableRewritten extends SourceError {
  override readonly code: string = 'table-rewritten';
  constructor(table: string) {
    super(
      `table ${table} was truncated or rewritten (TRUNCATE, ALTER TABLE … TYPE, VACUUM FULL, CLUSTER, REFRESH MATERIALIZED VIEW) after this run's snapshot: the rows the snapshot holds could not be read, so none are delivered; the next run reads it again`,
      undefined,
      { retryable: false },
    );
    this.name = 'TableRewritten';
  }
}
