import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import type { DestinationPort } from '../../destinations/port.js';
import type { Chunk, ColumnBuilder } from '../parquet/column.js';
import type { ColumnSpec } from '../parquet/schema.js';
import { ParquetWriter, type WriterOptions } from '../parquet/writer.js';
import { shardKey } from './layout.js';
import { ShardUpload, type UploadedShard } from './shard-upload.js';

/**
 * The sink of one table (or one key-range part of it): the only place that creates shard uploads
 * and rotates shards. The decoder appends rows to `columns`; `flush()` hands a full row group
 * over; `finish()` ends the last shard. A new shard starts before a row group that would go into
 * a shard already at `DROPSHIP_SHARD_TARGET_BYTES`, so no shard is ever empty (except the single
 * shard of an empty table, a valid Parquet file with no rows).
 *
 * Memory: one row group being filled plus one being compressed and written (`flush()` waits for
 * the previous one), plus the upload's parts in flight (`DROPSHIP_UPLOAD_QUEUE_SIZE` ×
 * `DROPSHIP_PART_SIZE_BYTES`).
 */
export interface TableSinkOptions {
  /** Where the shards go (the destination's port, opened for the run). */
  port: DestinationPort;
  dest: Pick<Destination, 'prefix' | 'layout' | 'compression'>;
  folder: string;
  objectName: string;
  specs: ColumnSpec[];
  settings: Pick<
    Settings,
    | 'DROPSHIP_SHARD_TARGET_BYTES'
    | 'DROPSHIP_ROW_GROUP_ROWS'
    | 'DROPSHIP_ROW_GROUP_BYTES'
    | 'DROPSHIP_PAGE_BYTES'
    | 'DROPSHIP_GZIP_LEVEL'
    | 'DROPSHIP_ZSTD_LEVEL'
    | 'DROPSHIP_PART_SIZE_BYTES'
    | 'DROPSHIP_UPLOAD_QUEUE_SIZE'
  >;
  /** First shard index (parts of a split table number their shards in separate blocks). */
  shardBase?: number;
  /** Awaited before shard `index` starts uploading (the ledger's high-water mark of shards). */
  onShardOpen?: (index: number) => Promise<void>;
  keyValueMetadata?: Record<string, string>;
}

export type SinkFile = UploadedShard & { rows: number };

/** Tables with more columns than this get half the configured row-group bytes (`rowGroupBytes`). */
export const WIDE_TABLE_COLUMNS = 500;

/**
 * The uncompressed bytes a row group of `columns` columns may hold: `DROPSHIP_ROW_GROUP_BYTES`, halved above
 * `WIDE_TABLE_COLUMNS` columns. A row group's memory is its bytes plus what each column's buffers keep beside them
 * (capacity grown by doubling, its current page, its dictionary), so at a thousand columns the same bytes take far more
 * memory. Measured (issue 27; `npm run bench -- --rows 20000 --codecs zstd,snappy,none --wide-rows 30000`, 1,000
 * columns × 30,000 rows; three runs halved, against the runs without): peak RSS ZSTD 398–415 → 374–383 MiB, SNAPPY
 * 362–375 → 329–342, GZIP 338–348 → 302–331 (none 318 → 319–325: no gain), at 16–23 % fewer rows/s and ≤ 1.7 %
 * more output. A step, not a slope: at 6 MiB the same table
 * peaked higher (408–477 MiB, output +12 %), not explained yet.
 */
export function rowGroupBytes(configured: number, columns: number): number {
  return columns > WIDE_TABLE_COLUMNS ? Math.floor(configured / 2) : configured;
}

/** Writer options for a destination: its codec, the configured sizes. */
function writerOptions(
  dest: Pick<Destination, 'compression'>,
  settings: TableSinkOptions['settings'],
  columns: number,
  keyValueMetadata?: Record<string, string>,
): WriterOptions {
  return {
    rowGroupRows: settings.DROPSHIP_ROW_GROUP_ROWS,
    rowGroupBytes: rowGroupBytes(settings.DROPSHIP_ROW_GROUP_BYTES, columns),
    pageSize: settings.DROPSHIP_PAGE_BYTES,
    compression: dest.compression ?? 'gzip',
    gzipLevel: settings.DROPSHIP_GZIP_LEVEL,
    ...(dest.compression === 'zstd' ? { level: settings.DROPSHIP_ZSTD_LEVEL } : {}),
    createdBy: 'dropship',
    ...(keyValueMetadata ? { keyValueMetadata } : {}),
    // A destination's upload has taken a chunk's bytes when its write resolves (ObjectUpload.write).
    reusePages: true,
  };
}

export class TableSink {
  readonly files: SinkFile[] = [];
  private readonly writer: ParquetWriter;
  private shard: ShardUpload | undefined;
  private index: number;
  private pending: Promise<void> | undefined;
  private gate: Promise<void> = Promise.resolve();
  /** Set by `fail()`: steps still in turn stop. */
  private failure: { reason: unknown } | undefined;
  private doneBytes = 0;

  /** The writer's options: a second thread reading the same table builds its row groups with the same. */
  readonly writerOptions: WriterOptions;

  private constructor(private readonly o: TableSinkOptions) {
    this.index = o.shardBase ?? 0;
    this.writerOptions = writerOptions(o.dest, o.settings, o.specs.length, o.keyValueMetadata);
    this.writer = new ParquetWriter(o.specs, this.writerOptions, (b) => this.shard!.write(b));
  }

  /** Opens the sink and its first shard. */
  static async open(o: TableSinkOptions): Promise<TableSink> {
    const sink = new TableSink(o);
    await sink.openShard();
    return sink;
  }

  /** Column builders the decoder appends to. */
  get columns(): ColumnBuilder[] {
    return this.writer.columns;
  }

  endRow(): void {
    this.writer.endRow();
  }

  /** True when the row group being filled should be flushed. */
  get full(): boolean {
    return this.writer.shouldFlush;
  }

  /** Bytes uploaded or being uploaded so far (progress). */
  get bytes(): number {
    return this.doneBytes + this.writer.bytesWritten;
  }

  /** Shards started so far. */
  get shards(): number {
    return this.files.length + 1;
  }

  /** Key of the shard being written. */
  get key(): string {
    return this.shard!.key;
  }

  private async openShard(): Promise<void> {
    const { o } = this;
    await o.onShardOpen?.(this.index);
    this.shard = openUpload(o, this.index, o.settings.DROPSHIP_UPLOAD_QUEUE_SIZE);
  }

  private async endShard(): Promise<void> {
    const { rows } = await this.writer.writeFooter();
    const uploaded = await this.shard!.complete();
    this.files.push({ ...uploaded, rows });
    this.doneBytes += uploaded.bytes;
  }

  /**
   * Hands the buffered rows over as a row group; returns once the previous row group is written
   * (so at most two are in memory). Rotates the shard first when it reached the target size.
   */
  flush(): Promise<void> {
    return this.serial(() => this.hand(() => this.writer.flushRowGroup()));
  }

  /**
   * Appends a row group another thread read (src/pipeline/threads/), in turn with this sink's own: waits as `flush`
   * does, so the sink still holds at most two row groups of its own and one handed over.
   */
  appendRowGroup(chunks: Chunk[], rows: number): Promise<void> {
    return this.serial(() => this.hand(() => this.writer.appendRowGroup(chunks, rows)));
  }

  /** Flushes what is buffered and completes the last shard. */
  finish(): Promise<SinkFile[]> {
    return this.serial(async () => {
      if (this.writer.rows > this.writer.fileRows) await this.hand(() => this.writer.flushRowGroup());
      if (this.pending) await this.pending;
      await this.endShard();
      return this.files;
    });
  }

  /** Runs `step` after every step started before it (two threads' row groups reach one file in turn). */
  private serial<T>(step: () => Promise<T>): Promise<T> {
    const done = this.gate.then(step);
    this.gate = done.then(
      () => {},
      () => {},
    );
    return done;
  }

  /** Starts writing a row group once the one being written is (rotating the shard first). */
  private async hand(start: () => Promise<void>): Promise<void> {
    this.stopIfFailed();
    if (this.pending) await this.pending;
    this.stopIfFailed();
    if (this.writer.fileRows > 0 && this.writer.bytesWritten >= this.o.settings.DROPSHIP_SHARD_TARGET_BYTES) {
      await this.endShard();
      this.stopIfFailed();
      this.index++;
      await this.openShard();
      this.stopIfFailed();
      this.writer.restart();
    }
    this.pending = start();
    this.pending.catch(() => {}); // observed by the next flush or by finish()
  }

  /**
   * Stops the shard being uploaded; its multipart upload is aborted before this resolves. A step still in turn (a row
   * group a second thread handed over just before) then stops at its next boundary; a shard it opened meanwhile is
   * aborted too, so nothing unfinished stays behind.
   */
  async fail(reason: unknown): Promise<void> {
    this.failure ??= { reason };
    const first = this.shard;
    await first?.fail(reason);
    await this.gate;
    if (this.shard !== first) await this.shard?.fail(reason);
  }

  /** Throws the failure a step finds when it resumes after `fail()`. */
  private stopIfFailed(): void {
    if (this.failure) throw this.failure.reason;
  }
}

/** The multipart upload of shard `index` of a table (`queueSize` parts in flight). */
function openUpload(
  o: Pick<TableSinkOptions, 'port' | 'dest' | 'folder' | 'objectName' | 'settings'>,
  index: number,
  queueSize: number,
): ShardUpload {
  return new ShardUpload({
    port: o.port,
    key: shardKey(o.dest, o.folder, o.objectName, index),
    partSize: o.settings.DROPSHIP_PART_SIZE_BYTES,
    queueSize,
  });
}

/**
 * Writes one valid Parquet file with the table's schema and no rows at shard `index` (covering a
 * shard an earlier attempt started: src/run/lifecycle/lifecycle.ts `coverStaleShards`).
 */
export async function writeEmptyShard(
  o: Omit<TableSinkOptions, 'shardBase' | 'onShardOpen'> & { index: number },
): Promise<SinkFile> {
  const upload = openUpload(o, o.index, 1);
  const writer = new ParquetWriter(
    o.specs,
    writerOptions(o.dest, o.settings, o.specs.length, o.keyValueMetadata),
    (b) => upload.write(b),
  );
  try {
    await writer.finish();
    return { ...(await upload.complete()), rows: 0 };
  } catch (e) {
    await upload.fail(e);
    throw e;
  }
}
