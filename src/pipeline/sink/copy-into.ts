import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { ColumnBuilder } from '../parquet/column.js';
import { BinaryCopyDecoder } from '../source/copy-decoder.js';
import { copyOut } from '../source/copy-out.js';
import { sourceDataError } from '../source/errors.js';
import type { ColumnPlan } from '../source/typemap.js';

/** Where decoded rows go: a table's sink (./table-sink.ts), or the row groups one thread of a split table reads. */
export interface RowSink {
  /** The column builders the decoder appends to. */
  readonly columns: ColumnBuilder[];
  endRow(): void;
  /** True when the row group being filled should be flushed. */
  readonly full: boolean;
  /** Hands the row group over; resolves when the next may be filled (bounds memory). */
  flush(): Promise<void>;
}

/**
 * One binary `COPY … TO STDOUT` into a table sink: COPY → decoder → the sink's column buffers.
 * The decoder fills rows as long as they fit the row group; when the sink is full it awaits the
 * sink (a row group written, a shard uploaded) before reading on, so at most two row groups are in
 * memory. `pipeline` carries backpressure and destroys the COPY stream on failure. Used for a
 * table's snapshot (src/pipeline/table.ts) and for its change files (src/changes/changes.ts).
 */
export async function copyIntoSink(input: {
  client: pg.ClientBase;
  sql: string;
  columns: ColumnPlan[];
  sink: RowSink;
  /** Named in decoding errors (a caller that prefixes its errors with the table leaves it out). */
  table?: string;
  /** DROPSHIP_MAX_ROW_BYTES: a longer row fails the read (src/pipeline/source/copy-decoder.ts). */
  maxRowBytes: number;
  signal?: AbortSignal | undefined;
  /** After every chunk decoded (rows read so far), for progress. */
  onRows?: ((rows: number) => void) | undefined;
}): Promise<number> {
  const { sink, signal, onRows } = input;
  const decoder = new BinaryCopyDecoder(input.columns, () => sink.columns, {
    ...(input.table !== undefined ? { table: input.table } : {}),
    columns: input.columns.map((c) => c.name),
    maxRowBytes: input.maxRowBytes,
  });
  const endRow = (): void => sink.endRow();
  const full = (): boolean => sink.full;
  // Decodes as long as rows fit the row group; awaits the sink (a row group written) when full.
  const drain = async (): Promise<void> => {
    do await sink.flush();
    while (decoder.run(endRow, full));
  };
  // A value Postgres refuses to send (a data exception) fails for good, naming its SQLSTATE (./source/errors.ts).
  const failed = (e: unknown): never => {
    throw sourceDataError(e, input.table) ?? e;
  };
  await pipeline(
    input.client.query(copyOut(input.sql)),
    new Writable({
      highWaterMark: 1,
      objectMode: true,
      write(chunk: Buffer, _enc, done) {
        if (signal?.aborted) return done(signal.reason as Error);
        try {
          decoder.feed(chunk);
          if (!decoder.run(endRow, full)) {
            onRows?.(decoder.rows);
            return done();
          }
        } catch (e) {
          return done(e as Error);
        }
        drain().then(() => {
          onRows?.(decoder.rows);
          done();
        }, done);
      },
      final(done) {
        try {
          decoder.end();
          done();
        } catch (e) {
          done(e as Error);
        }
      },
    }),
  ).catch(failed);
  return decoder.rows;
}
