import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Destination, Layout } from '../accounts/destination.js';
import { explainS3Error } from '../aws/clients.js';
import type { ColumnInfo, TableResult } from '../run/table.js';
import { receiptKey } from '../sink/layout.js';
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
}

export interface Receipt {
  timestamp: string;
  tables: Record<string, ReceiptTable>;
  run_id: string;
  format: 'parquet';
  compression: 'gzip';
  layout: Layout;
  /** Receipt chain (src/receipt/chain.ts): +1 per published receipt of the destination. */
  sequence?: number;
  /** SHA-256 of the previous receipt's exact bytes; null for the first. */
  previous_receipt_sha256?: string | null;
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
): Receipt {
  const tables: Record<string, ReceiptTable> = {};
  for (const r of [...results].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0))) {
    tables[r.table] = {
      folder: r.folder,
      total_file_count: r.files.length,
      row_count: r.rows,
      bytes: r.bytes,
      files: r.files.map((f) => ({ key: f.key, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
      columns: r.columns,
    };
  }
  return {
    timestamp: formatMicros(startedMicros),
    tables,
    run_id: runId,
    format: 'parquet',
    compression: 'gzip',
    layout,
  };
}

export class ReceiptError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ReceiptError';
  }
}

export async function writeReceipt(s3: S3Client, dest: Destination, receipt: Receipt): Promise<string> {
  const key = receiptKey(dest);
  // Never publish a receipt that breaks the contract customers automate against.
  const violations = validateReceipt(receipt);
  if (violations.length > 0) {
    throw new ReceiptError(
      `receipt for ${dest.accountId} violates the contract: ${violations.map((v) => `${v.path} ${v.message}`).join('; ')}`,
    );
  }
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: dest.bucket,
        Key: key,
        Body: receiptBytes(receipt),
        ContentType: 'application/json',
        ...(dest.kmsKeyArn ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: dest.kmsKeyArn } : {}),
      }),
    );
  } catch (e) {
    throw explainS3Error(dest, key, e);
  }
  return key;
}
