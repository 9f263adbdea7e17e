/**
 * The receipt contract: what receipt.json holds (schemas/receipt.schema.json is its JSON Schema),
 * shared by the writer (src/run, src/receipt), the readers (validator, loader, warehouse SQL) and the
 * change sets (src/changes). Types and constants only — this module imports nothing.
 *
 * Written last, and only when every table of the run succeeded, so an S3 trigger on it always sees
 * a complete dump. The model's format (`timestamp` with microseconds, `tables.<name>.folder`,
 * `tables.<name>.total_file_count`) plus additive fields.
 */

/**
 * Object layouts (src/pipeline/sink/layout.ts): `dreamdata` is the model's (folder `2023-01-02T15:04`,
 * files `.parquet.gz`); `portable` has no colon in keys (folder `20230102T1504Z`, which Hadoop and
 * Spark paths accept) and the `.parquet` extension, which no reader mistakes for a gzip file.
 */
export const LAYOUTS = ['dreamdata', 'portable'] as const;
export type Layout = (typeof LAYOUTS)[number];

/**
 * Parquet page codecs a destination can choose (src/pipeline/parquet/compression.ts). GZIP is the default
 * and the model's; ZSTD is smaller and ~6× cheaper to write; SNAPPY cheaper still, larger files.
 * Only GZIP files are named `.parquet.gz` (dreamdata layout); every other codec writes `.parquet`.
 */
export const COMPRESSION_CHOICES = ['gzip', 'zstd', 'snappy', 'none'] as const;
export type DestinationCompression = (typeof COMPRESSION_CHOICES)[number];

/** One exported column, as the receipt lists it. */
export interface ColumnInfo {
  name: string;
  postgres_type: string;
  parquet_type: string;
  nullable: boolean;
  /** true when values are exported in their Postgres text form (see docs/type-mapping.md). */
  text_form: boolean;
}

/** One object the receipt lists (a shard or a change file). */
export interface FileEntry {
  key: string;
  rows: number;
  bytes: number;
  sha256: string;
}

/** The column of a change file that says what happened to the row: `insert`, `update` or `delete` (src/changes/state.ts). */
export const OP_COLUMN = '_op';
/** Subfolder of a table's folder that holds its change files. */
export const CHANGES_FOLDER = '_changes';

/** A table's change set since the last successful delivery (destinations with `--changes`; src/changes/). */
export type TableChanges =
  | {
      available: true;
      /** The run whose delivery this change set applies to (null on a full refresh without one). */
      since_run_id: string | null;
      /** true: no change set — take this delivery's snapshot whole (see `full_refresh_reason`). */
      full_refresh: boolean;
      full_refresh_reason?: 'first delivery' | 'schema changed' | 'previous state missing';
      key_columns: string[];
      inserted: number;
      updated: number;
      deleted: number;
      /** Folder of the change files, relative to the destination prefix. */
      folder: string;
      files: FileEntry[];
    }
  | { available: false; reason: string };

/** A source snapshot as the reading transaction reported it (txid_current_snapshot(), clock time). */
export interface ReadSnapshot {
  id: string;
  at: string;
}

/** With consistency `table`: one snapshot a table was read in, and the key-range parts read in it. */
export interface TableSnapshots {
  id: string;
  at: string;
  parts: number[];
}

/** The `selection` block of receipt.json. */
export interface ReceiptSelection {
  tenant_column?: string;
  /** false when --drop-tenant-column left the tenant column out of the files. */
  tenant_column_exported?: boolean;
  global_tables: string[];
  include_tables: string[];
  exclude_tables: string[];
  exclude_columns: string[];
  /** Tables of the schema not exported to keep tenants apart, and why. */
  left_out: { table: string; reason: string }[];
}

export interface ReceiptTable {
  folder: string;
  total_file_count: number;
  row_count: number;
  bytes: number;
  files: FileEntry[];
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
  /** The moment the data was read (see src/receipt/consistency.ts). */
  snapshot?: ReadSnapshot;
  consistency?: 'delivery' | 'table';
}
