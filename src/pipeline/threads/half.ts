import { isMainThread, type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { DropshipError } from '../../contracts/errors.js';
import { CompressionPool } from '../parquet/compression.js';
import { ParquetWriter, type WriterOptions } from '../parquet/writer.js';
import { copyIntoSink, type RowSink } from '../sink/copy-into.js';
import { listTables } from '../source/catalog.js';
import { MappingError, RowTooLarge, SourceError } from '../source/errors.js';
import { joinSnapshot, release, type SourceSession, snapshotInfo } from '../source/snapshot.js';
import { packGroup, type WireGroup } from './wire.js';

/**
 * The second thread of a table read by two threads (./split.ts has the why): it joins the reading transaction's
 * snapshot, reads its half of the table's blocks with its own binary COPY, decodes and encodes it into row groups
 * exactly as the main thread does (the same decoder, column builders and codecs, its own compression worker), and
 * sends each finished row group to the main thread, which writes it into the table's current shard. It sends the
 * next only once the main thread has taken the last (an `ack`), so at most one of its row groups waits.
 *
 * This module starts the thread's work when it is evaluated inside such a thread (`workerData[HALF_WORKER]`): the
 * worker imports the module that spawned it — the esbuild bundle itself on Lambda, a chunk of the built CLI, or the
 * TypeScript source through tsx — and nothing runs anywhere else.
 */
export const HALF_WORKER = 'dropshipTableHalf';

export interface HalfJob {
  url: string;
  session?: SourceSession | undefined;
  applicationName: string;
  /** pg_export_snapshot() of the main thread's reading transaction. */
  exportId: string;
  /** txid_current_snapshot() the main thread reads in: the joined transaction must see the same. */
  snapshot: string;
  schema: string;
  table: string;
  /** The exported columns in order, with their Postgres types (re-planned here; a function cannot be sent). */
  columns: { name: string; pgType: string }[];
  /** The COPY of this thread's half. */
  sql: string;
  writer: Omit<WriterOptions, 'pool'>;
  /** DROPSHIP_MAX_ROW_BYTES. */
  maxRowBytes: number;
}

/** Messages from the thread to the main thread. */
export type FromHalf =
  | { type: 'group'; group: WireGroup }
  | { type: 'rows'; rows: number }
  | { type: 'done'; rows: number }
  | { type: 'error'; name: string; message: string; retryable: boolean };

/** Messages from the main thread: a row group was taken (send the next). */
export type ToHalf = { type: 'ack' };

/** Reads one half and sends its row groups; resolves with its row count. Runs inside the worker thread. */
export async function readHalf(job: HalfJob, port: Pick<MessagePort, 'postMessage' | 'on'>): Promise<number> {
  const post = (m: FromHalf, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  let acked: (() => void) | undefined;
  const pool = new CompressionPool(1, false); // its pages go to the main thread, never back to this pool
  port.on('message', (m: ToHalf) => {
    if (m.type !== 'ack') return;
    const a = acked;
    acked = undefined;
    a?.();
  });
  const client = await joinSnapshot(job.url, job.exportId, job.applicationName, job.session);
  let broken = true;
  try {
    const seen = (await snapshotInfo(client)).id;
    if (seen !== job.snapshot)
      throw new SourceError(`the second thread joined snapshot ${seen}, not the reading transaction's ${job.snapshot}`);
    const plan = (await listTables(client, job.schema)).find((t) => t.name === job.table);
    const columns = job.columns.map((c) => {
      const found = plan?.columns.find((p) => p.name === c.name);
      if (!found || found.pgType !== c.pgType)
        throw new SourceError(`table ${job.table}, column ${c.name}: not as the main thread planned it (${c.pgType})`);
      return found;
    });
    const writer = new ParquetWriter(
      columns.map((c) => c.spec),
      { ...job.writer, pool },
      async () => {},
    );
    let last = 0;
    const sink: RowSink = {
      get columns() {
        return writer.columns;
      },
      endRow: () => writer.endRow(),
      get full() {
        return writer.shouldFlush;
      },
      flush: async () => {
        const taken = writer.takeRowGroup();
        if (!taken) return;
        const taking = new Promise<void>((resolve) => {
          acked = resolve;
        });
        const packed = await packGroup(taken.chunks, taken.rows);
        try {
          post({ type: 'group', group: packed.group }, packed.transfer);
        } catch {
          // A page's buffer could not be transferred (DataCloneError; nothing was sent): copy every page.
          const copied = await packGroup(taken.chunks, taken.rows, true);
          post({ type: 'group', group: copied.group }, copied.transfer);
        }
        await taking;
      },
    };
    const rows = await copyIntoSink({
      client,
      sql: job.sql,
      columns,
      sink,
      table: job.table,
      maxRowBytes: job.maxRowBytes,
      onRows: (n) => {
        const now = performance.now();
        if (now - last < 250) return;
        last = now;
        post({ type: 'rows', rows: n });
      },
    });
    await sink.flush();
    broken = false;
    return rows;
  } finally {
    await release(client, broken);
    await pool.close();
  }
}

/** An error of the thread as the main thread gets it (the same class for a mapping problem; retryable as it was). */
function errorMessage(e: unknown): FromHalf {
  return {
    type: 'error',
    name: e instanceof Error ? e.name : 'Error',
    message: e instanceof Error ? e.message : String(e),
    retryable: e instanceof DropshipError ? e.retryable : true,
  };
}

/** The error a thread's message stands for, on the main thread. */
export function fromMessage(m: Extract<FromHalf, { type: 'error' }>): Error {
  if (m.name === 'MappingError') return new MappingError(m.message);
  if (m.name === 'RowTooLarge') return new RowTooLarge(m.message);
  return new SourceError(`the table's second reading thread failed: ${m.message}`, { retryable: m.retryable });
}

if (!isMainThread && parentPort && (workerData as Record<string, unknown> | null)?.[HALF_WORKER]) {
  const port = parentPort;
  readHalf((workerData as Record<string, HalfJob>)[HALF_WORKER]!, port).then(
    (rows) => port.postMessage({ type: 'done', rows } satisfies FromHalf),
    (e) => port.postMessage(errorMessage(e)),
  );
}
