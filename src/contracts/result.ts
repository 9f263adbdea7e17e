import type { ColumnInfo, DestinationCompression, ReadSnapshot, TableChanges } from './receipt.js';

/**
 * What exporting one table (or one key range of it) produced, as the ledger records it and the
 * receipt is built from: shared by the pipeline (src/pipeline/), the ledger (src/store/ledger/) and
 * the receipt (src/receipt/), so none of them needs another's module for the shape.
 */

/** One uploaded Parquet shard: its key, size and SHA-256. */
export interface UploadedShard {
  key: string;
  bytes: number;
  sha256: string;
}

/** One key range of a split table: rows with lo ≤ key < hi (the last part includes hi). */
export interface TaskPart {
  table: string;
  part: number;
  parts: number;
  keyColumn: string;
  lo: bigint;
  hi: bigint;
}

/** What one table (or one key range of it) delivered: its files, rows, bytes and columns. */
export interface TableResult {
  table: string;
  objectName: string;
  /** Folder relative to the destination prefix, e.g. `2023-01-02T15:04/events`. */
  folder: string;
  rows: number;
  bytes: number;
  files: (UploadedShard & { rows: number })[];
  /** Parquet page codec of every file of this table. */
  compression?: DestinationCompression;
  columns: ColumnInfo[];
  seconds: number;
  /** Change set since the last successful delivery (destinations with `--changes`; src/changes/). */
  changes?: TableChanges;
  /** The source snapshot this table (or this key-range part) was read in. */
  snapshot?: ReadSnapshot;
  /** 2 when it was read in two halves on two threads (src/pipeline/threads/split.ts); absent: one. */
  threads?: number;
}
