import { createHash } from 'node:crypto';
import type { ColumnInfo, FileEntry, Receipt } from '../contracts/receipt.js';
import { commentText, quoteIdent, quoteLiteral } from '../contracts/sql.js';

/**
 * Loading SQL for customers' warehouses, generated from a receipt's `columns` (the Parquet types
 * dropship wrote): Redshift COPY … FORMAT AS PARQUET, Snowflake COPY INTO, Athena/Glue DDL.
 *
 * Each loads exactly the files the receipt lists — never a folder prefix, which would also pick up
 * the `_changes/` subfolder (change files with an `_op` column: Redshift's positional COPY fails on
 * it, Snowflake's MATCH_BY_COLUMN_NAME loads key-only delete rows as data) and any file in the
 * folder the receipt does not list:
 *   - Redshift: `COPY … MANIFEST` from a manifest per table (`loadManifests`: the receipt's file
 *     URLs, `mandatory: true`, `content_length` as Parquet requires);
 *   - Snowflake: `COPY INTO … FILES = (…)`, at most 1,000 names per statement (Snowflake's limit);
 *   - Athena/Glue: external tables read every file under their LOCATION, so the table reads a
 *     symlink manifest instead (Hive's SymlinkTextInputFormat: a text file listing the files' URLs,
 *     one per line, what Athena reads Delta Lake manifests with).
 * The manifests are files the user uploads to a place of their choosing (`manifestUrl`): dropship
 * never writes into the customer's bucket outside its own folders.
 */
export type Dialect = 'redshift' | 'snowflake' | 'athena';

export interface SqlTarget {
  bucket: string;
  /** The destination prefix the receipt lives under ('' for the bucket root). */
  prefix: string;
  /** Redshift: the IAM role Redshift assumes to read the bucket. */
  redshiftIamRole?: string;
  /** Snowflake: the external stage pointing at s3://bucket/prefix/. */
  snowflakeStage?: string;
  /** Redshift/Athena: the S3 folder the user uploads the manifests (`loadManifests`) to. */
  manifestUrl?: string;
}

/** Snowflake takes at most 1,000 file names in one COPY's FILES list. */
export const SNOWFLAKE_MAX_FILES = 1000;

/** One manifest file to upload: its name (relative to the manifest folder) and its content. */
export interface Manifest {
  table: string;
  name: string;
  body: string;
}

/** A file-name-safe, unique, readable name for a table (names may hold any character). */
export function fileStem(receipt: Receipt, table: string): string {
  const safe = table.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 60);
  const tag = createHash('sha256').update(table).digest('hex').slice(0, 8);
  return `${receipt.run_id}-${safe}-${tag}`;
}

const fileUrl = (bucket: string, key: string): string => `s3://${bucket}/${key}`;

/**
 * The manifests `warehouseSql` loads from, one per table: for Redshift the COPY manifest
 * (`{"entries":[{"url","mandatory":true,"meta":{"content_length"}}]}`), for Athena a symlink
 * manifest (`<name>` = `<folder>/manifest`, the table's LOCATION being that folder). Exactly the
 * receipt's files, in its order.
 */
export function loadManifests(receipt: Receipt, d: 'redshift' | 'athena', target: SqlTarget): Manifest[] {
  return Object.entries(receipt.tables).map(([table, t]) => {
    const stem = fileStem(receipt, table);
    if (d === 'redshift') return { table, name: `${stem}.manifest`, body: redshiftManifest(t.files, target) };
    return { table, name: `${stem}/manifest`, body: t.files.map((f) => `${fileUrl(target.bucket, f.key)}\n`).join('') };
  });
}

/** A Redshift COPY manifest of exactly `files` (Parquet needs each file's content_length). */
export function redshiftManifest(files: FileEntry[], target: Pick<SqlTarget, 'bucket'>): string {
  const entries = files.map((f) => ({
    url: fileUrl(target.bucket, f.key),
    mandatory: true,
    meta: { content_length: f.bytes },
  }));
  return `${JSON.stringify({ entries }, null, 2)}\n`;
}

/**
 * Snowflake `FILES = (…)` clauses naming exactly `files` (relative to `folder`, the FROM path
 * under the destination prefix), at most SNOWFLAKE_MAX_FILES per clause: one COPY per clause.
 */
export function snowflakeFilesClauses(prefix: string, folder: string, files: FileEntry[]): string[] {
  const base = `${prefix ? `${prefix}/` : ''}${folder}/`;
  const names = files.map((f) => (f.key.startsWith(base) ? f.key.slice(base.length) : f.key));
  const out: string[] = [];
  for (let i = 0; i < names.length; i += SNOWFLAKE_MAX_FILES)
    out.push(
      `FILES = (${names
        .slice(i, i + SNOWFLAKE_MAX_FILES)
        .map((n) => quoteLiteral(n, 'snowflake'))
        .join(', ')})`,
    );
  return out;
}

/**
 * The stage location of a folder, `'@stage/<folder>/'`, as one quoted literal (Snowflake takes any location in single
 * quotes): the folder comes from the receipt, and raw it could end the statement (`x; DROP TABLE customers; --`).
 */
export function snowflakeLocation(target: SqlTarget, folder: string): string {
  return quoteLiteral(`@${target.snowflakeStage ?? '<stage>'}/${folder}/`, 'snowflake');
}

export const manifestFolder = (target: SqlTarget): string =>
  (target.manifestUrl ?? '<s3-folder-you-upload-the-manifests-to>').replace(/\/+$/, '');

interface Parsed {
  list: boolean;
  physical: string;
  logical: string;
  precision?: number;
  scale?: number;
}

function parse(col: ColumnInfo): Parsed {
  const list = col.parquet_type.startsWith('LIST<');
  const t = list ? col.parquet_type.slice(5, -1) : col.parquet_type;
  const [physical = '', ...rest] = t.split(' ');
  const logical = rest.join(' ');
  const dec = /DECIMAL\((\d+),(\d+)\)/.exec(logical);
  return { list, physical, logical, ...(dec ? { precision: Number(dec[1]), scale: Number(dec[2]) } : {}) };
}

function scalarType(p: Parsed, d: Dialect): string {
  const L = p.logical;
  if (L.startsWith('DECIMAL'))
    return d === 'snowflake' ? `NUMBER(${p.precision},${p.scale})` : `DECIMAL(${p.precision},${p.scale})`;
  if (L.startsWith('TIMESTAMP')) {
    const utc = L.includes('UTC');
    return d === 'redshift'
      ? utc
        ? 'TIMESTAMPTZ'
        : 'TIMESTAMP'
      : d === 'snowflake'
        ? utc
          ? 'TIMESTAMP_TZ'
          : 'TIMESTAMP_NTZ'
        : 'timestamp';
  }
  if (L.startsWith('TIME')) return d === 'athena' ? 'string' : 'TIME';
  if (L === 'DATE') return d === 'athena' ? 'date' : 'DATE';
  if (L === 'JSON') return d === 'redshift' ? 'SUPER' : d === 'snowflake' ? 'VARIANT' : 'string';
  if (L === 'UUID') return d === 'redshift' ? 'VARBYTE(16)' : d === 'snowflake' ? 'BINARY(16)' : 'binary';
  if (L === 'STRING') return d === 'redshift' ? 'VARCHAR(65535)' : d === 'snowflake' ? 'VARCHAR' : 'string';
  if (L.startsWith('INTEGER(16')) return d === 'snowflake' ? 'NUMBER(5,0)' : 'smallint';
  switch (p.physical) {
    case 'INT32':
      return d === 'snowflake' ? 'NUMBER(10,0)' : d === 'athena' ? 'int' : 'INTEGER';
    case 'INT64':
      return d === 'snowflake' ? 'NUMBER(19,0)' : 'bigint';
    case 'FLOAT':
      return d === 'athena' ? 'float' : 'REAL';
    case 'DOUBLE':
      return d === 'athena' ? 'double' : d === 'snowflake' ? 'FLOAT' : 'DOUBLE PRECISION';
    case 'BOOLEAN':
      return d === 'athena' ? 'boolean' : 'BOOLEAN';
    default:
      return d === 'redshift' ? 'VARBYTE' : d === 'snowflake' ? 'BINARY' : 'binary';
  }
}

export function columnType(col: ColumnInfo, d: Dialect): string {
  const p = parse(col);
  if (!p.list) return scalarType(p, d);
  // Lists: Athena knows arrays; Redshift and Snowflake load nested data as semi-structured values.
  return d === 'athena' ? `array<${scalarType(p, d)}>` : d === 'redshift' ? 'SUPER' : 'ARRAY';
}

/**
 * Pairs of `names` equal when ASCII case is ignored (the first seen, then the other): DuckDB and Redshift fold A–Z
 * only (`É` and `é` are two names to them).
 */
export function differOnlyInCase(names: string[]): [string, string][] {
  const fold = (n: string) => n.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const seen = new Map<string, string>();
  const pairs: [string, string][] = [];
  for (const n of names) {
    const other = seen.get(fold(n));
    if (other !== undefined) pairs.push([other, n]);
    else seen.set(fold(n), n);
  }
  return pairs;
}

/**
 * Names a case-folding warehouse would take for one (Redshift folds identifiers, even quoted ones, unless
 * enable_case_sensitive_identifier is on; Athena's Hive catalog keeps lower case): tables of the receipt, or columns
 * of one table, that differ only in case — one line each; none for Snowflake, whose quoted names keep their case.
 */
export function caseFolded(receipt: Receipt, d: Dialect): string[] {
  if (d === 'snowflake') return [];
  const out = differOnlyInCase(Object.keys(receipt.tables)).map(
    ([a, b]) => `tables ${JSON.stringify(a)} and ${JSON.stringify(b)} differ only in case`,
  );
  for (const [t, entry] of Object.entries(receipt.tables))
    for (const [a, b] of differOnlyInCase((entry.columns ?? []).map((c) => c.name)))
      out.push(`table ${JSON.stringify(t)}: columns ${JSON.stringify(a)} and ${JSON.stringify(b)} differ only in case`);
  return out;
}

export function warehouseSql(receipt: Receipt, d: Dialect, target: SqlTarget): string {
  const out: string[] = [`-- dropship run ${commentText(`${receipt.run_id} (${receipt.timestamp})`)}, ${d}`];
  const manifests =
    d === 'snowflake'
      ? new Map<string, Manifest>()
      : new Map(loadManifests(receipt, d, target).map((m) => [m.table, m]));
  if (d !== 'snowflake')
    out.push(
      `-- Loads exactly the files this receipt lists, through one manifest per table: upload the manifests\n-- (dropship receipt sql … --manifest-dir <dir>) to ${manifestFolder(target)}/ first, e.g.\n--   aws s3 cp --recursive <dir> ${manifestFolder(target)}/`,
    );
  for (const [name, t] of Object.entries(receipt.tables)) {
    const cols = (t.columns ?? [])
      .map((c) => `  ${quoteIdent(c.name, d)} ${columnType(c, d)}${!c.nullable && d !== 'athena' ? ' NOT NULL' : ''}`)
      .join(',\n');
    if (d === 'redshift') {
      out.push(`CREATE TABLE IF NOT EXISTS ${quoteIdent(name, d)} (\n${cols}\n);`);
      out.push(`TRUNCATE ${quoteIdent(name, d)};`);
      out.push(
        `COPY ${quoteIdent(name, d)} FROM ${quoteLiteral(`${manifestFolder(target)}/${manifests.get(name)!.name}`, d)}\n  IAM_ROLE ${quoteLiteral(target.redshiftIamRole ?? '<redshift-role-arn>', d)}\n  FORMAT AS PARQUET SERIALIZETOJSON\n  MANIFEST;`,
      );
    } else if (d === 'snowflake') {
      out.push(`CREATE TABLE IF NOT EXISTS ${quoteIdent(name, d)} (\n${cols}\n);`);
      out.push(`TRUNCATE TABLE ${quoteIdent(name, d)};`);
      for (const files of snowflakeFilesClauses(target.prefix, t.folder, t.files))
        out.push(
          `COPY INTO ${quoteIdent(name, d)} FROM ${snowflakeLocation(target, t.folder)}\n  ${files}\n  FILE_FORMAT = (TYPE = PARQUET)\n  MATCH_BY_COLUMN_NAME = CASE_SENSITIVE;`,
        );
    } else {
      const location = `${manifestFolder(target)}/${manifests.get(name)!.name.replace(/\/manifest$/, '')}/`;
      out.push(`DROP TABLE IF EXISTS ${quoteIdent(name, d)};`);
      out.push(
        `CREATE EXTERNAL TABLE ${quoteIdent(name, d)} (\n${cols}\n)\nROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\nSTORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'\nOUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\nLOCATION ${quoteLiteral(location, d)};`,
      );
    }
  }
  return `${out.join('\n\n')}\n`;
}
