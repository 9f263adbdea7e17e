import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Destination, DestinationCompression, Layout } from '../accounts/destination.js';
import { explainS3Error } from '../aws/clients.js';
import type { TableChanges } from '../changes/changes.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type { ColumnInfo, TableResult } from '../run/table.js';
import { receiptKey } from '../sink/layout.js';
import type { ReceiptSelection } from '../source/select.js';
import type { ReadSnapshot } from '../source/snapshot.js';
import { consistencyOf, type PartRead, type TableSnapshots } from './consistency.js';
import { validateReceipt } from './validate.js';

/**
 * receipt.json: the model's format (`timestamp` with microseconds, `tables.<name>.folder`,
 * `tables.<name>.total_file_count`) plus additive fields. Written last, and only when every
 * table of the run succeeded, so an S3 trigger on it always sees a complete dump.
 */
export interface ReceiptTable {
  folder: string;
  total_file_count: number;
  row_count: number;
  bytes: number;
  files: { key: string; rows: number; bytes: number; sha256: string }[];
  columns: ColumnInfo[];
  /** Parquet page codec of this table's files (absent in receipts written before codecs were chosen: gzip). */
  compression?: DestinationCompression;
  /** Destinations with change sets: what changed since the last successful delivery (src/changes/). */
  changes?: TableChanges;
  /** Only with consistency `table`: the snapshot(s) this table was read in, and the parts read in each. */
  snapshots?: TableSnapshots[];
}

export interface Receipt {
  timestamp: string;
  tables: Record<string, ReceiptTable>;
  run_id: string;
  format: 'parquet';
  /** The codec of every file; `mixed` only if the destination's codec changed during the run (see each table's). */
  compression: DestinationCompression | 'mixed';
  layout: Layout;
  /** What this destination receives when it is not its whole schema (tenant mode, selections). */
  selection?: ReceiptSelection;
  /** Receipt chain (src/receipt/chain.ts): +1 per published receipt of the destination. */
  sequence?: number;
  /** SHA-256 of the previous receipt's exact bytes; null for the first. */
  previous_receipt_sha256?: string | null;
  /** The moment the data was read (see consistencyOf). */
  snapshot?: ReadSnapshot;
  consistency?: 'delivery' | 'table';
}

/** The exact bytes written as receipt.json (the chain hashes these). */
export function receiptBytes(receipt: Receipt): string {
  return `${JSON.stringify(receipt, null, 2)}\n`;
}

/** Wall-clock time with microseconds (Date has milliseconds only). */
export function nowMicros(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

export function formatMicros(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString(); // 2023-03-14T04:03:07.963Z
  const micro = String(us % 1000n).padStart(3, '0');
  return `${iso.slice(0, 23)}${micro}Z`;
}

export function buildReceipt(
  runId: string,
  startedMicros: bigint,
  results: TableResult[],
  layout: Layout = 'dreamdata',
  selection?: ReceiptSelection,
  /** What each table and key-range part was read in (default: each result's own snapshot, as part 0). */
  reads?: PartRead[],
): Receipt {
  const c = consistencyOf(reads ?? results.map((r) => ({ table: r.table, part: 0, snapshot: r.snapshot })));
  // Keyed by customer table names: a null-prototype object, so `__proto__`, `constructor` … are plain keys.
  const tables = Object.create(null) as Record<string, ReceiptTable>;
  for (const r of [...results].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0))) {
    tables[r.table] = {
      folder: r.folder,
      total_file_count: r.files.length,
      row_count: r.rows,
      bytes: r.bytes,
      files: r.files.map((f) => ({ key: f.key, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
      columns: r.columns,
      compression: r.compression ?? 'gzip',
      ...(r.changes ? { changes: r.changes } : {}),
      ...(c.perTable?.get(r.table) ? { snapshots: c.perTable.get(r.table) } : {}),
    };
  }
  const codecs = new Set(Object.values(tables).map((t) => t.compression ?? 'gzip'));
  const compression = codecs.size === 0 ? 'gzip' : codecs.size === 1 ? [...codecs][0]! : 'mixed';
  return {
    timestamp: formatMicros(startedMicros),
    tables,
    run_id: runId,
    format: 'parquet',
    compression,
    layout,
    ...(selection ? { selection } : {}),
    ...(c.snapshot ? { snapshot: c.snapshot } : {}),
    consistency: c.consistency,
  };
}

/** A receipt that breaks its contract. Not retryable. */
export class ReceiptError extends DropshipError {
  readonly code: string = 'receipt';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
    this.name = 'ReceiptError';
  }
}

export async function writeReceipt(s3: S3Client, dest: Destination, receipt: Receipt): Promise<string> {
  return putReceiptBody(s3, dest, receiptBody(receipt));
}

/** The receipt's exact bytes; refuses a receipt that breaks the contract customers automate against. */
export function receiptBody(receipt: Receipt): string {
  const violations = validateReceipt(receipt);
  if (violations.length > 0) {
    throw new ReceiptError(
      `receipt of run ${receipt.run_id} violates the contract: ${violations.map((v) => `${v.path} ${v.message}`).join('; ')}`,
    );
  }
  return receiptBytes(receipt);
}

/** Publishes receipt bytes (recorded in the ledger first, so a retry publishes identical content). */
export async function putReceiptBody(s3: S3Client, dest: Destination, body: string): Promise<string> {
  const key = receiptKey(dest);
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: dest.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
        ...(dest.kmsKeyArn ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: dest.kmsKeyArn } : {}),
      }),
    );
  } catch (e) {
    throw explainS3Error(dest, key, e);
  }
  return key;
}
