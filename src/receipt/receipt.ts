import type { Destination } from '../accounts/destination.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type {
  ColumnInfo,
  DestinationCompression,
  FileEntry,
  Layout,
  ReadSnapshot,
  Receipt,
  ReceiptSelection,
  ReceiptTable,
  TableChanges,
} from '../contracts/receipt.js';
import { type DestinationPort, PreconditionFailed } from '../destinations/port.js';
import { receiptKey } from '../pipeline/sink/layout.js';
import { consistencyOf, type PartRead } from './consistency.js';
import { validateReceipt } from './validate.js';

/** The exact bytes written as receipt.json (the chain hashes these). */
function receiptBytes(receipt: Receipt): string {
  return `${JSON.stringify(receipt, null, 2)}\n`;
}

/** Wall-clock time with microseconds (Date has milliseconds only). */
export function nowMicros(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

function formatMicros(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString(); // 2023-03-14T04:03:07.963Z
  const micro = String(us % 1000n).padStart(3, '0');
  return `${iso.slice(0, 23)}${micro}Z`;
}

/** What the receipt needs to know of one delivered table (the run's table results are these). */
export interface DeliveredTable {
  table: string;
  /** Folder relative to the destination prefix, e.g. `2023-01-02T15:04/events`. */
  folder: string;
  rows: number;
  bytes: number;
  files: FileEntry[];
  columns: ColumnInfo[];
  compression?: DestinationCompression;
  changes?: TableChanges;
  /** The source snapshot this table was read in (when the run's reads are not given). */
  snapshot?: ReadSnapshot;
}

export function buildReceipt(
  runId: string,
  startedMicros: bigint,
  results: DeliveredTable[],
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

/** The receipt's exact bytes; refuses a receipt that breaks the contract customers automate against. */
export function receiptBody(receipt: Receipt, where: { prefix?: string } = {}): string {
  const violations = validateReceipt(receipt, where.prefix === undefined ? {} : { prefix: where.prefix });
  if (violations.length > 0) {
    throw new ReceiptError(
      `receipt of run ${receipt.run_id} violates the contract: ${violations.map((v) => `${v.path} ${v.message}`).join('; ')}`,
    );
  }
  return receiptBytes(receipt);
}

/** Publishes receipt bytes (recorded in the ledger first, so a retry publishes identical content). */
/**
 * PUTs receipt.json. With `ifMatch` it is a conditional write: it replaces the object only if its
 * current ETag is that one; else (another object in place, or none: on S3 a 412 or 404) it throws
 * `ReceiptPreconditionFailed` and nothing changes.
 */
export async function putReceiptBody(
  port: DestinationPort,
  dest: Pick<Destination, 'prefix'>,
  body: string,
  opts: { ifMatch?: string; ifNoneMatch?: '*' } = {},
): Promise<{ key: string; etag: string | undefined }> {
  const key = receiptKey(dest);
  try {
    return await port.putObject(key, body, {
      contentType: 'application/json',
      ...(opts.ifMatch ? { ifMatch: opts.ifMatch } : {}),
      ...(opts.ifNoneMatch ? { ifNoneMatch: opts.ifNoneMatch } : {}),
    });
  } catch (e) {
    if (e instanceof PreconditionFailed) throw new ReceiptPreconditionFailed(key, { cause: e.cause ?? e });
    throw e;
  }
}

/**
 * An account's first receipt found a `receipt.json` in place that dropship never wrote (the customer's own object at a
 * bucket-root destination, or one a dropship with another ledger left): dropship never replaces an object it did not
 * write. Not retryable: someone moves the object away.
 */
export class ReceiptPlaceTaken extends DropshipError {
  readonly code: string = 'receipt-place-taken';
  constructor(where: string, options?: DropshipErrorOptions) {
    super(
      `${where} is already there and dropship never wrote a receipt at this place: it is not replaced; move it away (or out of dropship's prefix), then run again`,
      options,
      {
        retryable: false,
        customerMessage: `a receipt.json that dropship did not write is at ${where}: dropship does not replace it; move it away, and the next delivery writes its own`,
      },
    );
    this.name = 'ReceiptPlaceTaken';
  }
}

/** A conditional receipt PUT found another object in place (not retryable as such). */
export class ReceiptPreconditionFailed extends DropshipError {
  readonly code: string = 'receipt-precondition-failed';
  constructor(key: string, options?: DropshipErrorOptions) {
    super(`${key} is no longer the receipt this one follows`, options, { retryable: false });
    this.name = 'ReceiptPreconditionFailed';
  }
}
