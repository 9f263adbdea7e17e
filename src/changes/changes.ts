import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import type { Settings } from '../config/settings.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type { TableChanges } from '../contracts/receipt.js';
import { CHANGES_FOLDER, OP_COLUMN } from '../contracts/receipt.js';
import { quoteIdent } from '../contracts/sql.js';
import type { DestinationPort } from '../destinations/port.js';
import type { ColumnSpec } from '../pipeline/parquet/schema.js';
import { copyIntoSink } from '../pipeline/sink/copy-into.js';
import { tableFolder, tableObjectName } from '../pipeline/sink/layout.js';
import { TableSink } from '../pipeline/sink/table-sink.js';
import type { TablePlan } from '../pipeline/source/catalog.js';
import { MappingError } from '../pipeline/source/errors.js';
import { type RowFilter, readRef, tableRef, tenantLiteral, whereClause } from '../pipeline/source/select.js';
import { type ColumnPlan, type PgTypeInfo, planColumn } from '../pipeline/source/typemap.js';
import { ChangeStateStore, type LastSucceededRun } from './state.js';

/**
 * Change sets (issue 16): besides its full snapshot, every delivery of a destination with
 * `--changes` carries, for each table with a primary key, what changed since the account's last
 * SUCCESSFUL delivery — inserts, updates and hard deletes — computed on our side, asking nothing
 * of the source:
 *
 *   1. in the export's own snapshot (same connection, right after the table's COPY), read
 *      `(key, md5 of the exported row)` for every row and stream it into the registry database as
 *      this run's pending state (src/changes/state.ts);
 *   2. full-join it with the base state (the last succeeded run's) in Postgres: keys only in the
 *      new state are inserts, only in the base deletes, in both with another hash updates;
 *   3. fetch the full rows of inserted/updated keys — still in the same snapshot, by primary key —
 *      in batches, through the same COPY decoder and Parquet sink as the snapshot (exact types),
 *      plus `_op`; deletes carry the key columns, every other column NULL.
 *
 * Files: `<run folder>/<table>/_changes/_changes_<12 digits>.parquet.gz` — a subfolder, so a glob
 * over `<table>/*.parquet.gz` (the model's layout) never picks them up.
 */

/** Keys fetched per source query (bounded memory; one index lookup per key). */
const BATCH = 5000;

export interface ChangesInput {
  client: pg.ClientBase;
  /** The registry database (the ledger's pool). */
  db: pg.Pool;
  /** The ledger's last succeeded run of the account (the change set's base). */
  lastSucceededRun: LastSucceededRun;
  /** The ledger's: which of these runs failed or were cancelled (their change-set states are pruned). */
  runsEndedBadly: (runIds: string[]) => Promise<Set<string>>;
  schema: string;
  table: TablePlan;
  rowFilter?: RowFilter | undefined;
  dest: Pick<Destination, 'bucket' | 'prefix' | 'layout' | 'compression'>;
  /** The destination's port, opened for the run. */
  port: DestinationPort;
  /** The run, and the destination generation it serves (change sets never span generations). */
  run: { runId: string; accountId: string; folder: string; destinationGeneration?: number | null };
  settings: Settings;
  signal?: AbortSignal;
}

/** A table's change set could not be delivered; retryable as its cause is (none: retryable). */
export class ChangeSetError extends DropshipError {
  readonly code: string = 'change-set';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options);
    this.name = 'ChangeSetError';
  }
}

/** The changed keys read back in the snapshot are not as many as the diff found (the key's equality differs). */
class ChangeSetMismatch extends ChangeSetError {
  override readonly code: string = 'change-set-mismatch';
}

/** The primary key's columns, in key order ([] when the relation has none). */
async function primaryKey(client: pg.ClientBase, schema: string, table: string): Promise<string[]> {
  const res = await client.query<{ attname: string }>(
    `select a.attname
       from pg_catalog.pg_index i
       join pg_catalog.pg_attribute a on a.attrelid = i.indrelid
        -- The key columns only: a primary key's INCLUDE columns follow them in indkey (not unique, may be NULL).
        and a.attnum = any((i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1])
      where i.indrelid = $1::regclass and i.indisprimary
      order by array_position(i.indkey::int2[], a.attnum)`,
    [tableRef(schema, table)],
  );
  return res.rows.map((r) => r.attname);
}

/** Why a table gets no change set (null: it gets one). */
function noChangesReason(table: TablePlan, key: string[]): string | null {
  if (key.length === 0) return 'no primary key';
  const names = new Set(table.columns.map((c) => c.name));
  const missing = key.filter((k) => !names.has(k));
  if (missing.length > 0) return `primary key column(s) ${missing.join(', ')} not exported (column selection)`;
  if (names.has(OP_COLUMN)) return `the table has a column named ${OP_COLUMN}`;
  return null;
}

/**
 * What a state depends on: where the rows come from (the source schema) and where the files went (bucket and prefix),
 * exported columns and types, the key, the row filter. A state of another schema or place is no base: its keys are
 * another table's, and the files it describes are not where this change set goes (red-team R3: an update of the
 * source schema made the next change set delete the old schema's keys). Then the change set is a full refresh.
 */
function stateSignature(
  place: { schema: string; bucket: string; prefix: string },
  table: TablePlan,
  key: string[],
  filter?: RowFilter,
): string {
  const shape = {
    place: [place.schema, place.bucket, place.prefix],
    columns: table.columns.map((c) => [c.name, c.pgType]),
    key,
    filter: filter ?? null,
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

/** COPY of `(key text, md5 uuid)` per row, in the export's snapshot. */
function stateCopySql(schema: string, table: TablePlan, key: string[], filter?: RowFilter): string {
  const k = `ARRAY[${key.map((c) => `${quoteIdent(c)}::text`).join(', ')}]::text`;
  const row = `ROW(${table.columns.map((c) => quoteIdent(c.name)).join(', ')})::text`;
  return `COPY (SELECT ${k}, md5(${row})::uuid FROM ${readRef(schema, table)}${whereClause(filter)}) TO STDOUT`;
}

const TEXT_TYPE: PgTypeInfo = {
  oid: 25,
  typname: 'text',
  nspname: 'pg_catalog',
  typtype: 'b',
  typcategory: 'S',
  typelem: 0,
  typbasetype: 0,
  typtypmod: -1,
  extname: null,
};

function opColumn(): ColumnPlan {
  return planColumn(
    { name: OP_COLUMN, notNull: true, typeOid: 25, typmod: -1, pgType: 'text' },
    new Map([[25, TEXT_TYPE]]),
  );
}

function arrayLiteral(values: string[]): string {
  return values.length === 0 ? `'{}'::text[]` : `ARRAY[${values.map((v) => pg.escapeLiteral(v)).join(',')}]::text[]`;
}

/** The binary COPY of one batch of changed keys: full rows of inserts/updates, keys of deletes. */
function changeRowsSql(
  schema: string,
  table: TablePlan,
  key: string[],
  upserts: { k: string; op: string }[],
  deletes: string[],
  filter?: RowFilter,
): string {
  const keyIndex = new Map(key.map((k, i) => [k, i + 1]));
  const typeOf = new Map(table.columns.map((c) => [c.name, c.pgType]));
  const part = (name: string, i: number): string => `(c.dropship_k::text[])[${i}]::${typeOf.get(name)}`;
  const cols = table.columns.map((c) => `t.${quoteIdent(c.name)}`).join(', ');
  // The rows read back are the tenant's only, as the snapshot's were: whatever `=` a key's type resolves to, no other
  // tenant's row can come back (a wider match fails the batch's count instead).
  const tenant = filter ? ` AND t.${quoteIdent(filter.column)} OPERATOR(pg_catalog.=) ${tenantLiteral(filter)}` : '';
  const on = `${key.map((k, i) => `t.${quoteIdent(k)} = ${part(k, i + 1)}`).join(' AND ')}${tenant}`;
  // A delete row's other columns are the NULLs of a join that matches nothing: of the column's own type, with no
  // domain check (`NULL::<a NOT NULL domain>` failed every change set with a delete, for good: red-team pass).
  const delCols = table.columns
    .map((c) => {
      const i = keyIndex.get(c.name);
      return `${i ? part(c.name, i) : `n.${quoteIdent(c.name)}`} AS ${quoteIdent(c.name)}`;
    })
    .join(', ');
  const selects = [...table.columns.map((c) => c.select), 'x.dropship_op'].join(', ');
  return `COPY (SELECT ${selects} FROM (
    SELECT ${cols}, c.dropship_op FROM unnest(${arrayLiteral(upserts.map((u) => u.k))}, ${arrayLiteral(upserts.map((u) => u.op))}) AS c(dropship_k, dropship_op)
      JOIN ${readRef(schema, table)} AS t ON ${on}
    UNION ALL
    SELECT ${delCols}, 'delete' FROM unnest(${arrayLiteral(deletes)}) AS c(dropship_k)
      LEFT JOIN ${readRef(schema, table)} AS n ON false
  ) AS x) TO STDOUT (FORMAT binary)`;
}

/**
 * Why the change set of a table cannot be built from this data (undefined: the error is not of that kind — a
 * connection, an abort, the destination — and fails the table as before). The data kinds repeat run after run:
 * Postgres refusing a value (class 22, e.g. a deleted key that no longer reads in its enum type, or a MappingError),
 * a constraint (23), a key too long for the state's index (54: program limit), or keys read back that do not
 * match (`ChangeSetMismatch`). For them the table is delivered without a change set, saying why, rather than every
 * run of the account failing until someone edits the source (red-team pass on change sets).
 */
function unbuildable(e: unknown): string | undefined {
  const chain: Error[] = [];
  for (let x: unknown = e; x instanceof Error; x = x.cause) chain.push(x);
  for (const x of chain) {
    const code = (x as { code?: unknown }).code;
    if ('severity' in x && typeof code === 'string' && /^(22|23|54)/.test(code)) return `SQLSTATE ${code}`;
  }
  if (chain.some((x) => x instanceof ChangeSetMismatch)) return 'its keys read back differently';
  if (chain.some((x) => x instanceof MappingError)) return 'a value cannot be exported';
  return undefined;
}

/** The change set of one table, after its snapshot export, on the same connection (same snapshot). */
export async function deliverChanges(input: ChangesInput): Promise<TableChanges> {
  const key = await primaryKey(input.client, input.schema, input.table.name);
  const reason = noChangesReason(input.table, key);
  if (reason) return { available: false, reason };
  try {
    return await buildChanges(input, key);
  } catch (e) {
    const why = input.signal?.aborted ? undefined : unbuildable(e);
    if (why === undefined) throw e;
    // This run's state, when it was written, is this snapshot's: the base of the next change set (the customer
    // loads this snapshot whole); when it was not, the next run is a full refresh (previous state missing).
    return { available: false, reason: `the change set could not be built (${why}); load this delivery's snapshot` };
  }
}

async function buildChanges(input: ChangesInput, key: string[]): Promise<TableChanges> {
  const { client, schema, table, rowFilter, run } = input;

  const store = new ChangeStateStore(input.db);
  const signature = stateSignature(
    { schema, bucket: input.dest.bucket, prefix: input.dest.prefix },
    table,
    key,
    rowFilter,
  );
  const base = await store.base(
    run.accountId,
    run.runId,
    table.name,
    run.destinationGeneration ?? null,
    input.lastSucceededRun,
  );
  await store.prune(run.accountId, table.name, base.state?.stateId ?? null, run.runId, input.runsEndedBadly);
  input.signal?.throwIfAborted();
  const next = await store.write(client, stateCopySql(schema, table, key, rowFilter), {
    accountId: run.accountId,
    table: table.name,
    runId: run.runId,
    signature,
    generation: run.destinationGeneration ?? null,
  });
  const objectName = tableObjectName(table.name);
  const folder = `${tableFolder(run.folder, objectName)}/${CHANGES_FOLDER}`;
  const common = { key_columns: key, folder };
  if (!base.state || base.state.signature !== signature) {
    return {
      available: true,
      since_run_id: base.lastRunId,
      full_refresh: true,
      full_refresh_reason: !base.lastRunId
        ? 'first delivery'
        : base.state
          ? 'schema changed'
          : 'previous state missing',
      ...common,
      inserted: next.rows,
      updated: 0,
      deleted: 0,
      files: [],
    };
  }

  const counts = { insert: 0, update: 0, delete: 0 };
  const op = opColumn();
  const keySet = new Set(key);
  const specs: ColumnSpec[] = [
    ...table.columns.map((c) => (keySet.has(c.name) ? c.spec : { ...c.spec, nullable: true })),
    op.spec,
  ];
  const plans = [...table.columns, op];
  let sink: TableSink | undefined;
  try {
    for await (const batch of store.diff(base.state.stateId, next.stateId, BATCH)) {
      input.signal?.throwIfAborted();
      const upserts: { k: string; op: string }[] = [];
      const deletes: string[] = [];
      for (const d of batch) {
        counts[d.op]++;
        if (d.op === 'delete') deletes.push(d.k);
        else upserts.push(d);
      }
      sink ??= await TableSink.open({
        port: input.port,
        dest: input.dest,
        folder: tableFolder(run.folder, objectName),
        objectName: CHANGES_FOLDER,
        specs,
        settings: input.settings,
        keyValueMetadata: {
          'dropship.source': `${schema}.${table.name}`,
          'dropship.changes_since_run_id': base.state.runId,
        },
      });
      const rows = await copyIntoSink({
        client,
        sql: changeRowsSql(schema, table, key, upserts, deletes, rowFilter),
        columns: plans,
        sink,
        table: table.name,
        maxRowBytes: input.settings.DROPSHIP_MAX_ROW_BYTES,
      });
      if (rows !== batch.length)
        throw new ChangeSetMismatch(
          `table ${table.name}: ${batch.length} changed keys but ${rows} rows read back in the same snapshot`,
        );
    }
    const files = sink ? await sink.finish() : [];
    return {
      available: true,
      since_run_id: base.state.runId,
      full_refresh: false,
      ...common,
      inserted: counts.insert,
      updated: counts.update,
      deleted: counts.delete,
      files: files.map((f) => ({ key: f.key, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
    };
  } catch (e) {
    await sink?.fail(e);
    throw e instanceof ChangeSetError
      ? e
      : new ChangeSetError(`table ${table.name}: change set: ${(e as Error).message}`, {
          cause: e,
          // A destination error from the change set's upload is classified here, where it enters.
          retryable: input.port.isRetryable(e),
        });
  }
}
