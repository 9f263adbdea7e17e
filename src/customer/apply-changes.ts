import { createReadStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type ColumnInfo, OP_COLUMN, type TableChanges } from '../contracts/receipt.js';
import { quoteIdent, quoteLiteral } from '../contracts/sql.js';

/** DuckDB's `read_parquet([...])` over local files (the loader's and the change sets'). */
export function readParquet(paths: string[]): string {
  return `read_parquet([${paths.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}])`;
}

/**
 * The customer's side of change sets (`dropship load --changes`): a table whose target copy is
 * exactly the delivery the change set is relative to (`since_run_id`, remembered in the target's
 * `dropship_loads` table) gets the change files applied — in one transaction, every changed key
 * removed, then the new rows of inserts and updates inserted (a MERGE, spelled so that DuckDB and
 * Postgres run it alike). Any other table is loaded whole from its snapshot.
 */
export type AvailableChanges = Extract<TableChanges, { available: true }>;

/** Can this table be brought up to date by its change set, given what the target holds? */
export function appliesTo(changes: TableChanges | undefined, loadedRunId: string | null): changes is AvailableChanges {
  return (
    !!changes?.available &&
    !changes.full_refresh &&
    changes.since_run_id !== null &&
    changes.since_run_id === loadedRunId
  );
}

/** Where the change files are read into before they are merged (a temporary table). */
const CHANGES_RELATION = 'dropship_changes';
const OP = quoteIdent(OP_COLUMN);

/** The statements that apply the change files (already read into CHANGES_RELATION) to the table. */
function mergeStatements({
  table,
  changes,
  columns,
}: Pick<ChangeApplication, 'table' | 'changes' | 'columns'>): string[] {
  const src = CHANGES_RELATION;
  const on = changes.key_columns
    .map((k) => `${quoteIdent(table)}.${quoteIdent(k)} = ${src}.${quoteIdent(k)}`)
    .join(' and ');
  const cols = columns.map((c) => quoteIdent(c.name)).join(', ');
  return [
    `delete from ${quoteIdent(table)} using ${src} where ${on}`,
    `insert into ${quoteIdent(table)} (${cols}) select ${cols} from ${src} where ${OP} <> 'delete'`,
  ];
}

/** The target's record of what each table holds: table name → the run whose delivery was loaded last. */
export const LOADS_TABLE = 'dropship_loads';

export async function loadedRunDuckDb(file: string, table: string): Promise<string | null> {
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    await conn.run(`create table if not exists ${LOADS_TABLE} (table_name varchar primary key, run_id varchar)`);
    const r = await conn.runAndReadAll(
      `select run_id from ${LOADS_TABLE} where table_name = ${quoteLiteral(table, 'duckdb')}`,
    );
    return (r.getRowObjectsJS()[0]?.run_id as string | undefined) ?? null;
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/**
 * DuckDB's CSV for Postgres' `COPY … (format csv)`: every value quoted (FORCE_QUOTE), so a value that is exactly
 * `\.` is data, not Postgres' end-of-data marker (a text value `\.` cut a load short, red-team); NULL stays an unquoted
 * empty field, an empty string a quoted one.
 */
export const CSV_FOR_POSTGRES = 'format csv, header false, force_quote *';

/** One table's change set to apply, whichever the target. */
export interface ChangeApplication {
  table: string;
  changes: AvailableChanges;
  /** The receipt's columns of the table (the change files carry `_op` besides). */
  columns: ColumnInfo[];
  /** Local copies of the change files, in order. */
  paths: string[];
  /** The run the table holds afterwards (recorded in `dropship_loads`). */
  runId: string;
  /**
   * The receipt's `row_count` of the table: checked before the commit, so a change set that would not give the
   * delivery's rows (a tampered receipt, a copy that was not the base after all) changes nothing and records nothing.
   */
  expectedRows: number | undefined;
}

/** The table's rows after the change set are not the receipt's: nothing was committed. */
export class ChangeSetMismatchError extends Error {
  constructor(table: string, rows: number, expected: number) {
    super(
      `table ${table}: ${rows} rows after applying its change set, the receipt says ${expected}; nothing was changed`,
    );
    this.name = 'ChangeSetMismatchError';
  }
}

/** Applies change files to a DuckDB table in one transaction; returns the table's rows after. */
export async function applyChangesDuckDb({
  file,
  table,
  changes,
  columns,
  paths,
  runId,
  expectedRows,
}: ChangeApplication & { file: string }): Promise<number> {
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    await conn.run('begin');
    if (paths.length > 0) {
      await conn.run(`create or replace temp table ${CHANGES_RELATION} as select * from ${readParquet(paths)}`);
      for (const s of mergeStatements({ table, changes, columns })) await conn.run(s);
    }
    await conn.run(
      `insert or replace into ${LOADS_TABLE} values (${quoteLiteral(table, 'duckdb')}, ${quoteLiteral(runId, 'duckdb')})`,
    );
    const r = await conn.runAndReadAll(`select count(*)::bigint as n from ${quoteIdent(table)}`);
    const n = Number(r.getRowObjectsJS()[0]!.n);
    if (expectedRows !== undefined && n !== expectedRows) throw new ChangeSetMismatchError(table, n, expectedRows);
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

export async function loadedRunPostgres(url: string, table: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`create table if not exists ${LOADS_TABLE} (table_name text primary key, run_id text not null)`);
    const r = await client.query<{ run_id: string }>(`select run_id from ${LOADS_TABLE} where table_name = $1`, [
      table,
    ]);
    return r.rows[0]?.run_id ?? null;
  } finally {
    await client.end();
  }
}

/**
 * Applies change files to a Postgres table in one transaction: the files become CSV of Postgres
 * text forms (DuckDB, `textExpr` as the full load uses), COPY into a temporary table shaped like
 * the target (without its NOT NULL constraints: deletes carry only the key), then the MERGE.
 */
export async function applyChangesPostgres({
  url,
  table,
  changes,
  columns,
  paths,
  runId,
  work,
  textExpr,
  expectedRows,
}: ChangeApplication & {
  url: string;
  /** Where the CSV of the change files is written. */
  work: string;
  /** DuckDB expression producing a column's Postgres text input form. */
  textExpr: (c: ColumnInfo) => string;
}): Promise<number> {
  const csv = join(work, `${Math.random().toString(36).slice(2)}-changes.csv`);
  if (paths.length > 0) {
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      await conn.run(
        `copy (select ${columns.map((c) => textExpr(c)).join(', ')}, ${OP} from ${readParquet(paths)}) to ${quoteLiteral(csv, 'duckdb')} (${CSV_FOR_POSTGRES})`,
      );
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  }
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('begin');
    if (paths.length > 0) {
      await client.query(
        `create temp table ${CHANGES_RELATION} on commit drop as select * from ${quoteIdent(table)} with no data`,
      );
      await client.query(`alter table ${CHANGES_RELATION} add column ${OP} text not null`);
      await pipeline(
        createReadStream(csv),
        client.query(
          copyFrom(
            `copy ${CHANGES_RELATION} (${[...columns.map((c) => quoteIdent(c.name)), OP].join(', ')}) from stdin (format csv)`,
          ),
        ),
      );
      for (const s of mergeStatements({ table, changes, columns })) await client.query(s);
    }
    await client.query(
      `insert into ${LOADS_TABLE} values ($1, $2) on conflict (table_name) do update set run_id = excluded.run_id`,
      [table, runId],
    );
    const n = Number((await client.query(`select count(*) as n from ${quoteIdent(table)}`)).rows[0].n);
    if (expectedRows !== undefined && n !== expectedRows) throw new ChangeSetMismatchError(table, n, expectedRows);
    await client.query('commit');
    return n;
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw e;
  } finally {
    await client.end();
    rmSync(csv, { force: true });
  }
}
