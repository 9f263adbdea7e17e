import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type { ColumnInfo, Receipt } from '../contracts/receipt.js';
import { quoteIdent, quoteLiteral } from '../contracts/sql.js';
import { MAX_RECEIPT_BYTES, parseReceiptJson, receiptPrefix, validateReceipt } from '../receipt/validate.js';
import {
  appliesTo,
  applyChangesDuckDb,
  applyChangesPostgres,
  ChangeSetMismatchError,
  CSV_FOR_POSTGRES,
  LOADS_TABLE,
  loadedRunDuckDb,
  loadedRunPostgres,
  readParquet,
} from './apply-changes.js';
import { differOnlyInCase } from './warehouse-sql.js';

/**
 * The customer's side of receipt.json: load every table a receipt lists into a database, replacing the
 * previous load of each table in one transaction. Used by `dropship load` and by the receipt-trigger
 * example (examples/receipt-trigger/). Targets:
 *   - `duckdb:/path/to/file.duckdb`: CREATE OR REPLACE TABLE … AS SELECT * FROM read_parquet(…);
 *   - `postgres://…`: the table is created with the receipt's Postgres types (types the target lacks,
 *     such as enums and domains, become text), DuckDB turns the Parquet values into Postgres' text
 *     input forms, and COPY … FROM STDIN loads them.
 * Files are downloaded with the caller's credentials (the customer's own read access).
 */
export interface LoadResult {
  table: string;
  rows: number;
  /** `changes`: the table's change set was applied to the previous load (`load --changes`). */
  via?: 'snapshot' | 'changes';
}

/** `dropship load` failed (a bad URI, a receipt or folder that does not add up). Not retryable. */
export class LoadError extends DropshipError {
  readonly code: string = 'load';
  /** The receipt or its files refused: one clear line and a non-zero exit, never a stack trace (red team). */
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
    this.name = 'LoadError';
  }
}

function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new LoadError(`not an s3:// URI: ${uri}`);
  return { bucket: m[1]!, key: m[2]! };
}

/** DuckDB expression producing the Postgres text input form of a column (NULL stays NULL). */
function pgTextExpr(col: ColumnInfo): string {
  const c = quoteIdent(col.name);
  const list = col.parquet_type.startsWith('LIST<');
  const t = list ? col.parquet_type.slice(5, -1) : col.parquet_type;
  const scalar = (v: string): string => {
    if (t.includes('TIMESTAMP(MICROS,UTC)'))
      return `case when isinf(${v}) then ${v}::varchar else make_timestamp(epoch_us(${v}))::varchar || '+00' end`;
    if (t === 'BOOLEAN') return `case when ${v} is null then null when ${v} then 't' else 'f' end`;
    if (t === 'BYTE_ARRAY') return `'\\x' || lower(hex(${v}))`;
    return `${v}::varchar`;
  };
  if (!list) return scalar(c);
  // Postgres array literal: every element double-quoted and escaped, NULL unquoted.
  const element = `case when x is null then 'NULL' else '"' || replace(replace(${scalar('x')}, '\\', '\\\\'), '"', '\\"') || '"' end`;
  return `case when ${c} is null then null else '{' || array_to_string(list_transform(${c}, x -> ${element}), ',') || '}' end`;
}

export async function loadReceipt(opts: {
  s3: S3Client;
  receiptUri: string;
  into: string;
  workDir?: string;
  /** Apply change sets to tables whose previous load is the change set's base (src/customer/apply-changes.ts). */
  changes?: boolean;
  /** Load even where the target holds a later delivery of a table (`--allow-older`): by default that is refused. */
  allowOlder?: boolean;
}): Promise<LoadResult[]> {
  const { bucket, key } = parseS3Uri(opts.receiptUri);
  let receipt: Receipt;
  try {
    const receiptRes = await opts.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if ((receiptRes.ContentLength ?? 0) > MAX_RECEIPT_BYTES) {
      (receiptRes.Body as Readable).destroy();
      throw new Error(`larger than a receipt may be (${MAX_RECEIPT_BYTES} bytes)`);
    }
    receipt = parseReceiptJson(await receiptRes.Body!.transformToString()) as Receipt;
  } catch (e) {
    // One line a person can act on (a missing or unreadable receipt, or not JSON), never the SDK's stack.
    const err = e as Error;
    throw new LoadError(`cannot read ${opts.receiptUri}: ${err.name}: ${err.message}`, { cause: e });
  }
  // Every key under the receipt's own prefix: a receipt (tampered, or another's) never makes the loader fetch an
  // object elsewhere in the bucket with the customer's credentials.
  const violations = validateReceipt(receipt, { prefix: receiptPrefix(key) });
  if (violations.length > 0)
    throw new LoadError(
      `${opts.receiptUri} is not a valid receipt: ${violations.map((v) => `${v.path} ${v.message}`).join('; ')}`,
    );
  const refused = unloadable(receipt, opts.into.startsWith('duckdb:') ? 'duckdb' : 'postgres');
  if (refused.length > 0)
    throw new LoadError(
      `${opts.receiptUri} cannot be loaded into this target as it is (nothing was loaded):\n  ${refused.join('\n  ')}`,
    );
  // What the target holds of each table (`dropship_loads`, recorded by every load): a receipt older than a table's
  // last load would put older rows back silently — an older receipt.json restored or copied into place, or loaded by
  // hand (noticed in the customer-tools red team). Refused whole unless asked for; the same run loads again.
  const loaded = new Map<string, string | null>();
  for (const table of Object.keys(receipt.tables)) loaded.set(table, await loadedRun(opts.into, table));
  const newer = [...loaded].filter(([, run]) => run !== null && runTime(run) > runTime(receipt.run_id));
  if (newer.length > 0 && !opts.allowOlder)
    throw new LoadError(
      `${opts.receiptUri} is older than what the target holds (nothing was loaded): ${newer
        .map(([table, run]) => `table ${table} holds run ${run}, later than this receipt's ${receipt.run_id}`)
        .join('; ')}. Load it anyway with --allow-older.`,
    );
  const work = opts.workDir ?? mkdtempSync(join(tmpdir(), 'dropship-load-'));
  const results: LoadResult[] = [];
  try {
    // Every file of every table is fetched and checked (size, SHA-256, its columns against the receipt's) before
    // any table is loaded: a replaced or damaged file, or a receipt whose columns are not its files', changes nothing
    // (red team, customer tools: the tables before the bad one were already replaced, mixing two deliveries).
    const plans: {
      table: string;
      t: Receipt['tables'][string];
      dir: string;
      paths: string[];
      via: 'snapshot' | 'changes';
    }[] = [];
    for (const [table, t] of Object.entries(receipt.tables)) {
      if (!t.files || !t.columns)
        throw new LoadError(`receipt entry ${table} has no files/columns list (written by an older exporter)`);
      const dir = join(work, String(plans.length));
      mkdirSync(dir, { recursive: true });
      // A table whose change set applies to the target: its change files, fetched and checked now too (they were
      // fetched as each was applied, after earlier tables had been loaded).
      if (opts.changes && appliesTo(t.changes, loaded.get(table) ?? null)) {
        const paths: string[] = [];
        for (const [i, f] of t.changes.files.entries())
          paths.push(await fetchListed(opts.s3, bucket, f, join(dir, `changes-${i}.parquet`)));
        plans.push({ table, t, dir, paths, via: 'changes' });
        continue;
      }
      const paths: string[] = [];
      for (const [i, f] of t.files.entries())
        paths.push(await fetchListed(opts.s3, bucket, f, join(dir, `${i}.parquet`)));
      await checkColumns(table, t.columns, paths);
      plans.push({ table, t, dir, paths, via: 'snapshot' });
    }
    for (const { table, t, dir, paths, via } of plans) {
      try {
        if (via === 'changes') {
          const applied = await applyChangeSet(opts.into, receipt.run_id, table, t, paths, dir);
          if (applied !== null) {
            results.push({ table, rows: applied, via: 'changes' });
            continue;
          }
          throw new LoadError(`table ${table}: its change set no longer applies to the target (loaded meanwhile?)`);
        }
        // The count is checked before the load commits: a load that does not give the receipt's rows changes nothing.
        const rows = opts.into.startsWith('duckdb:')
          ? await loadIntoDuckDb(opts.into.slice('duckdb:'.length), table, paths, t.row_count, receipt.run_id)
          : await loadIntoPostgres(opts.into, table, t.columns!, paths, work, t.row_count, receipt.run_id);
        results.push({ table, rows, ...(opts.changes ? { via: 'snapshot' as const } : {}) });
      } catch (e) {
        // Each table commits on its own: say which ones this receipt already replaced.
        if (results.length === 0) throw e;
        const done = results.map((r) => r.table).join(', ');
        throw new LoadError(
          `${(e as Error).message} — tables already loaded from this receipt: ${done}; the others hold their previous load`,
          { cause: e },
        );
      }
    }
  } finally {
    if (!opts.workDir) rmSync(work, { recursive: true, force: true });
  }
  return results;
}

/** The run whose delivery the target holds of `table` (`dropship_loads`), null if none was loaded. */
async function loadedRun(into: string, table: string): Promise<string | null> {
  return into.startsWith('duckdb:')
    ? loadedRunDuckDb(into.slice('duckdb:'.length), table)
    : loadedRunPostgres(into, table);
}

/** A run id's start time (`20230314T040307Z-3f9a1c` → `20230314T040307Z`): they sort as the runs started. */
function runTime(runId: string): string {
  return runId.slice(0, 16);
}

/**
 * Applies the table's change set (its files fetched and checked, `paths`) when the target still holds its base; null
 * when it no longer does.
 */
async function applyChangeSet(
  into: string,
  runId: string,
  table: string,
  t: Receipt['tables'][string],
  paths: string[],
  work: string,
): Promise<number | null> {
  const duck = into.startsWith('duckdb:') ? into.slice('duckdb:'.length) : null;
  if (!appliesTo(t.changes, await loadedRun(into, table))) return null;
  const application = { table, changes: t.changes, columns: t.columns, paths, runId, expectedRows: t.row_count };
  try {
    return duck
      ? await applyChangesDuckDb({ ...application, file: duck })
      : await applyChangesPostgres({ ...application, url: into, work, textExpr: pgTextExpr });
  } catch (e) {
    if (e instanceof ChangeSetMismatchError) throw new LoadError(e.message, { cause: e });
    throw e;
  }
}

/**
 * One file the receipt lists, fetched to `path`, its bytes checked against the receipt (size and SHA-256) before
 * anything reads it: a file replaced in the bucket (or damaged) is refused, never loaded.
 */
export async function fetchListed(
  s3: S3Client,
  bucket: string,
  f: { key: string; bytes: number; sha256?: string },
  path: string,
): Promise<string> {
  const differs = (got: string) =>
    new LoadError(
      `s3://${bucket}/${f.key} is not the file the receipt lists (${got}; the receipt says ${f.bytes} bytes${f.sha256 ? `, sha256 ${f.sha256}` : ''}): its table was not loaded`,
    );
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: f.key }));
  const body = res.Body as Readable;
  // Its size first, then streamed to disk while hashed, never past the receipt's size: a replaced object of 400 MiB
  // was read whole into memory (1.4 GB) before the comparison (red team, customer tools).
  if (res.ContentLength !== undefined && res.ContentLength !== f.bytes) {
    body.destroy();
    throw differs(`${res.ContentLength} bytes`);
  }
  const hash = createHash('sha256');
  let seen = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > f.bytes) return done(differs(`more than ${f.bytes} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(body, count, createWriteStream(path));
  const sha256 = hash.digest('hex');
  if (seen !== f.bytes || (f.sha256 !== undefined && sha256 !== f.sha256))
    throw differs(`${seen} bytes, sha256 ${sha256}`);
  return path;
}

/** One top-level column of a Parquet file: its name, leaf physical type (and length), whether it is a list. */
interface FileColumn {
  name: string;
  physical: string;
  length: number | null;
  list: boolean;
  precision: number | null;
  scale: number | null;
}

/**
 * The files' columns against the receipt's, before anything is loaded: the same names in the same order, and each
 * leaf's physical type (with a FIXED_LEN_BYTE_ARRAY's length, a DECIMAL's precision and scale) and list-ness as the
 * receipt's `parquet_type` says. A receipt that disagrees with its files (a writer's bug, a tampered receipt) is
 * refused: the Postgres target turned every `revenue` into `true` when the receipt said BOOLEAN, and a column left
 * out of the receipt was dropped by one target and kept by the other (red team, customer tools).
 */
export async function checkColumns(table: string, columns: ColumnInfo[], paths: string[]): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    for (const path of paths) {
      const rows = (
        await conn.runAndReadAll(
          `select name, type, type_length, num_children, precision, scale from parquet_schema(${quoteLiteral(path, 'duckdb')})`,
        )
      ).getRowObjectsJS() as {
        name: string;
        type: string | null;
        type_length: unknown;
        num_children: unknown;
        precision: unknown;
        scale: unknown;
      }[];
      const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
      const got: FileColumn[] = [];
      let i = 1; // rows[0] is the schema's root
      const leaf = (): { row: (typeof rows)[number]; list: boolean } => {
        const row = rows[i++]!;
        if ((num(row.num_children) ?? 0) === 0) return { row, list: false };
        // A list: the group, its repeated 'list' group, the element.
        let inner = leaf();
        while ((num(inner.row.num_children) ?? 0) > 0) inner = leaf();
        return { row: inner.row, list: true };
      };
      while (i < rows.length) {
        const name = rows[i]!.name;
        const { row, list } = leaf();
        got.push({
          name,
          physical: row.type ?? '?',
          length: num(row.type_length),
          list,
          precision: num(row.precision),
          scale: num(row.scale),
        });
      }
      const problems: string[] = [];
      if (got.map((c) => c.name).join('\u0000') !== columns.map((c) => c.name).join('\u0000'))
        problems.push(
          `its columns are ${JSON.stringify(got.map((c) => c.name))}, the receipt lists ${JSON.stringify(columns.map((c) => c.name))}`,
        );
      else
        for (const [k, c] of columns.entries()) {
          const f = got[k]!;
          const list = c.parquet_type.startsWith('LIST<');
          const type = list ? c.parquet_type.slice(5, -1) : c.parquet_type;
          const physical = /^[A-Z_0-9]+/.exec(type)?.[0] ?? '';
          const length = /^FIXED_LEN_BYTE_ARRAY\((\d+)\)/.exec(type)?.[1];
          const decimal = /DECIMAL\((\d+),(\d+)\)/.exec(type);
          const same =
            list === f.list &&
            physical === f.physical &&
            (length === undefined || Number(length) === f.length) &&
            (!decimal || (Number(decimal[1]) === f.precision && Number(decimal[2]) === f.scale));
          if (!same)
            problems.push(
              `column ${JSON.stringify(c.name)} is ${f.list ? 'LIST<' : ''}${f.physical}${f.length ? `(${f.length})` : ''}${f.precision !== null ? ` DECIMAL(${f.precision},${f.scale})` : ''}${f.list ? '>' : ''} in the file, the receipt says ${c.parquet_type}`,
            );
        }
      if (problems.length > 0)
        throw new LoadError(
          `table ${table}: a file does not match the receipt (nothing was loaded): ${problems.join('; ')}`,
        );
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** dropship's own tables in the target (./apply-changes.ts): a delivered table must not take their names. */
const OWN_TABLES = ['dropship_loads', 'dropship_changes'];

/**
 * What the loader cannot load exactly, one line each (red-team, customer tools): names that differ only in case
 * (DuckDB matches identifiers, and Parquet columns, regardless of case — `id` read `Id`'s values, and of tables
 * `Users` and `users` one replaced the other), names Postgres would cut at 63 bytes (a long name replaced another
 * table of the customer's), and dropship's own table names. Refused before anything is loaded.
 */
export function unloadable(receipt: Receipt, target: 'duckdb' | 'postgres'): string[] {
  const out: string[] = [];
  const fold = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const clashes = differOnlyInCase;
  const tables = Object.keys(receipt.tables);
  if (target === 'duckdb')
    for (const [a, b] of clashes(tables))
      out.push(`tables ${JSON.stringify(a)} and ${JSON.stringify(b)} differ only in case: DuckDB holds them as one`);
  for (const t of tables) {
    if (OWN_TABLES.includes(target === 'duckdb' ? fold(t) : t))
      out.push(`table ${JSON.stringify(t)}: the name of dropship's own table in the target`);
    if (target === 'postgres' && Buffer.byteLength(t) > 63)
      out.push(`table ${JSON.stringify(t)}: longer than Postgres' 63 bytes (it would be cut, and meet another name)`);
    const columns = (receipt.tables[t]!.columns ?? []).map((c) => c.name);
    for (const [a, b] of clashes(columns))
      out.push(
        `table ${JSON.stringify(t)}: columns ${JSON.stringify(a)} and ${JSON.stringify(b)} differ only in case (DuckDB, which reads the files, cannot tell them apart)`,
      );
    if (target === 'postgres')
      for (const c of columns.filter((c) => Buffer.byteLength(c) > 63))
        out.push(`table ${JSON.stringify(t)}: column ${JSON.stringify(c)} is longer than Postgres' 63 bytes`);
  }
  return out;
}

/** A load that would not give the receipt's rows: rolled back, the table as it was. */
function rowsDiffer(table: string, rows: number, expected: number | undefined): LoadError | undefined {
  return expected !== undefined && rows !== expected
    ? new LoadError(`table ${table}: loaded ${rows} rows, the receipt says ${expected}; nothing was changed`)
    : undefined;
}

/**
 * Every load records its run in `dropship_loads`, in the load's own transaction: before, only `--changes` loads did,
 * so a plain load of another delivery left the record naming the one before, and a later `--changes` applied a change
 * set to rows that were not its base.
 */
const LOADS_DDL = {
  duckdb: `create table if not exists ${LOADS_TABLE} (table_name varchar primary key, run_id varchar)`,
  postgres: `create table if not exists ${LOADS_TABLE} (table_name text primary key, run_id text not null)`,
};

async function loadIntoDuckDb(
  file: string,
  table: string,
  paths: string[],
  expectedRows: number | undefined,
  runId: string,
): Promise<number> {
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    await conn.run(LOADS_DDL.duckdb);
    await conn.run('begin');
    await conn.run(`create or replace table ${quoteIdent(table)} as select * from ${readParquet(paths)}`);
    await conn.run(
      `insert or replace into ${LOADS_TABLE} values (${quoteLiteral(table, 'duckdb')}, ${quoteLiteral(runId, 'duckdb')})`,
    );
    const r = await conn.runAndReadAll(`select count(*)::bigint as n from ${quoteIdent(table)}`);
    const n = Number(r.getRowObjectsJS()[0]!.n);
    const differ = rowsDiffer(table, n, expectedRows);
    if (differ) throw differ;
    await conn.run('commit');
    return n;
  } catch (e) {
    await conn.run('rollback').catch(() => {});
    throw e;
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

async function loadIntoPostgres(
  url: string,
  table: string,
  columns: ColumnInfo[],
  paths: string[],
  work: string,
  expectedRows: number | undefined,
  runId: string,
): Promise<number> {
  // Parquet → CSV of Postgres text forms, with DuckDB.
  const csv = join(work, `${Math.random().toString(36).slice(2)}.csv`);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(
      `copy (select ${columns.map((c) => pgTextExpr(c)).join(', ')} from ${readParquet(paths)}) to ${quoteLiteral(csv, 'duckdb')} (${CSV_FOR_POSTGRES})`,
    );
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {}); // surfaces through the query in flight
  await client.connect();
  try {
    const types: string[] = [];
    for (const c of columns) {
      const known = (await client.query<{ t: string | null }>('select to_regtype($1)::text as t', [c.postgres_type]))
        .rows[0]?.t;
      // Keep the exact declaration (numeric(18,4), varchar(80)…) when the target knows the type.
      types.push(known ? c.postgres_type : 'text');
    }
    await client.query('begin');
    await client.query(`drop table if exists ${quoteIdent(table)}`);
    await client.query(
      `create table ${quoteIdent(table)} (${columns.map((c, i) => `${quoteIdent(c.name)} ${types[i]}${c.nullable ? '' : ' not null'}`).join(', ')})`,
    );
    await pipeline(createReadStream(csv), client.query(copyFrom(`copy ${quoteIdent(table)} from stdin (format csv)`)));
    await client.query(LOADS_DDL.postgres);
    await client.query(
      `insert into ${LOADS_TABLE} values ($1, $2) on conflict (table_name) do update set run_id = excluded.run_id`,
      [table, runId],
    );
    const n = Number((await client.query(`select count(*) as n from ${quoteIdent(table)}`)).rows[0].n);
    const differ = rowsDiffer(table, n, expectedRows);
    if (differ) throw differ;
    await client.query('commit');
    return n;
  } catch (e) {
    await client.query('rollback').catch(() => {});
    if (e instanceof LoadError) throw e;
    throw new LoadError(`loading ${table} into Postgres failed: ${(e as Error).message}`, { cause: e });
  } finally {
    await client.end();
    rmSync(csv, { force: true });
  }
}
