import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Destination } from '../accounts/destination.js';
import { explainS3Error } from '../aws/clients.js';
import type { Settings } from '../config/settings.js';
import { describeType } from '../parquet/schema.js';
import { ParquetWriter } from '../parquet/writer.js';
import { shardKey, tableFolder, tableObjectName } from '../sink/layout.js';
import { ShardUpload, type UploadedShard } from '../sink/shard-upload.js';
import type { TablePlan } from '../source/catalog.js';
import { BinaryCopyDecoder } from '../source/copy-decoder.js';
import { MappingError } from '../source/errors.js';
import { copySql, type RowFilter } from '../source/select.js';

/**
 * One table, end to end: binary COPY out of Postgres (in the run's snapshot) → decoded straight
 * into Parquet column buffers → row groups → shards of about `DROPSHIP_SHARD_TARGET_BYTES` →
 * streamed multipart uploads. Never more than one row group (plus the upload queue) in memory.
 */
export interface ColumnInfo {
  name: string;
  postgres_type: string;
  parquet_type: string;
  nullable: boolean;
  /** true when values are exported in their Postgres text form (see docs/type-mapping.md). */
  text_form: boolean;
}

export interface TableResult {
  table: string;
  objectName: string;
  /** Folder relative to the destination prefix, e.g. `2023-01-02T15:04/events`. */
  folder: string;
  rows: number;
  bytes: number;
  files: (UploadedShard & { rows: number })[];
  columns: ColumnInfo[];
  seconds: number;
}

export interface TableProgress {
  table: string;
  rows: number;
  bytes: number;
  files: number;
  /** The planner's row estimate for what this export reads (null: unknown; see TablePlan.estimatedRows). */
  estimatedRows?: number | null;
}

export class TableExportError extends Error {
  constructor(
    readonly table: string,
    message: string,
    options?: ErrorOptions,
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
  s3: S3Client;
  folder: string;
  settings: Settings;
  signal?: AbortSignal;
  onProgress?: (p: TableProgress) => void;
  /** Awaited before shard `index` starts uploading (the ledger's high-water mark of shards). */
  onShardOpen?: (index: number) => Promise<void>;
  /** Only rows with lo ≤ key < hi (≤ hi when `last`): one part of a split table. */
  range?: { keyColumn: string; lo: bigint; hi: bigint; last: boolean };
  /** First shard index (parts of a split table number their shards in separate blocks). */
  shardBase?: number;
  /** Tenant mode: only this tenant's rows (src/source/select.ts). */
  rowFilter?: RowFilter | undefined;
}

export async function exportTable(input: TableExportInput): Promise<TableResult> {
  const { client, schema, table, dest, s3, folder, settings, signal, onProgress, onShardOpen } = input;
  const started = performance.now();
  if (table.columns.length === 0) throw new MappingError(`table ${table.name} has no columns`);
  const objectName = tableObjectName(table.name);
  const sql = copySql(schema, table, input.rowFilter, input.range);

  const files: TableResult['files'] = [];
  let index = input.shardBase ?? 0;
  const open = (): ShardUpload =>
    new ShardUpload({
      client: s3,
      bucket: dest.bucket,
      key: shardKey(dest, folder, objectName, index),
      partSize: settings.DROPSHIP_PART_SIZE_BYTES,
      queueSize: settings.DROPSHIP_UPLOAD_QUEUE_SIZE,
      ...(dest.kmsKeyArn ? { kmsKeyArn: dest.kmsKeyArn } : {}),
    });
  await onShardOpen?.(index);
  let shard = open();
  const writer = new ParquetWriter(
    table.columns.map((c) => c.spec),
    {
      rowGroupRows: settings.DROPSHIP_ROW_GROUP_ROWS,
      rowGroupBytes: settings.DROPSHIP_ROW_GROUP_BYTES,
      pageSize: settings.DROPSHIP_PAGE_BYTES,
      gzipLevel: settings.DROPSHIP_GZIP_LEVEL,
      createdBy: 'dropship',
      keyValueMetadata: { 'dropship.source': `${schema}.${table.name}` },
    },
    (b) => shard.write(b),
  );
  const decoder = new BinaryCopyDecoder(
    table.columns.map((c) => c.decode),
    () => writer.columns,
    table.columns.map((c) => c.kind),
    table.columns.map((c) => c.scale),
  );
  let totalBytes = 0;
  const endShard = async (): Promise<void> => {
    const { rows } = await writer.writeFooter();
    const uploaded = await shard.complete();
    files.push({ ...uploaded, rows });
    totalBytes += uploaded.bytes;
  };
  // At most one row group is being written while the next one is decoded.
  let pending: Promise<void> | undefined;
  const flush = async (): Promise<void> => {
    if (pending) await pending;
    // Rotate before a row group that would go into an already full shard: never an empty shard.
    if (writer.fileRows > 0 && writer.bytesWritten >= settings.DROPSHIP_SHARD_TARGET_BYTES) {
      await endShard();
      index++;
      await onShardOpen?.(index);
      shard = open();
      writer.restart();
    }
    pending = writer.flushRowGroup();
    pending.catch(() => {}); // observed by the next flush or at the end
  };
  const report = (): void =>
    onProgress?.({
      table: table.name,
      rows: decoder.rows,
      bytes: totalBytes + writer.bytesWritten,
      files: files.length + 1,
      // A key range of a split table, or one tenant's rows, is only part of the table: its estimate does not apply.
      estimatedRows: input.range || input.rowFilter ? null : (table.estimatedRows ?? null),
    });

  const stream = client.query(copyTo(sql));
  let copyDone = false;
  try {
    const endRow = (): void => writer.endRow();
    const full = (): boolean => writer.shouldFlush;
    for await (const chunk of stream) {
      signal?.throwIfAborted();
      decoder.feed(chunk as Buffer);
      while (decoder.run(endRow, full)) await flush();
      report();
    }
    copyDone = true;
    decoder.end();
    if (writer.rows > writer.fileRows) await flush();
    if (pending) await pending;
    await endShard();
    report();
  } catch (e) {
    if (!copyDone) stream.destroy();
    await shard.fail(e);
    const key = shard.key;
    const err = isS3Error(e) ? explainS3Error(dest, key, e) : e;
    throw new TableExportError(table.name, `table ${table.name}: ${(err as Error).message}`, { cause: err });
  }
  return {
    table: table.name,
    objectName,
    folder: tableFolder(folder, objectName),
    rows: decoder.rows,
    bytes: totalBytes,
    files,
    columns: table.columns.map((c) => ({
      name: c.name,
      postgres_type: c.pgType,
      parquet_type: describeType(c.spec),
      nullable: c.spec.nullable,
      text_form: c.textForm,
    })),
    seconds: (performance.now() - started) / 1000,
  };
}

function isS3Error(e: unknown): boolean {
  return typeof e === 'object' && e !== null && '$metadata' in e;
}
