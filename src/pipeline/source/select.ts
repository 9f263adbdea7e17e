import type { ClientBase } from 'pg';
import pg from 'pg';
import { sharedObjectNames } from '../../contracts/object-names.js';
import type { ReceiptSelection } from '../../contracts/receipt.js';
import {
  isTenantMode,
  isWholeSchema,
  matchesAny,
  type Selection,
  splitColumnPattern,
} from '../../contracts/selection.js';
import { quoteIdent } from '../../contracts/sql.js';
import { listTables, schemaRelations, type TablePlan, type TaskPart } from './catalog.js';
import { connectSource, type SourceSession, sourceClient } from './snapshot.js';

/**
 * A destination's selection (src/contracts/selection.ts) applied to the catalog of its source schema,
 * and the SQL that reads one selected table:
 *
 *   COPY (SELECT <exported columns> FROM "schema"."table"
 *         WHERE "tenant" = '<value>'::<the column's base type> [AND <key range>]) TO STDOUT (FORMAT binary)
 *
 * COPY takes no bind parameters, so the tenant value is a literal: quoted by pg's escapeLiteral
 * (doubles quotes, E'' form for backslashes) and cast to the tenant column's own base type, named
 * without a type modifier (`pg_catalog.bpchar`, never `character(4)`, whose cast would truncate the
 * value and could match another tenant). Comparing in the column's type keeps a btree index on the
 * column usable; the value was canonicalised in that type at registration (`007` → `7`), so two
 * destinations can never name the same tenant in two spellings.
 */
export interface RowFilter {
  column: string;
  /** The tenant value, canonical text of the column's type. */
  value: string;
  /** The column's base type, schema-qualified, without typmod (e.g. `pg_catalog.int4`). */
  castType: string;
}

export interface KeyRange {
  keyColumn: string;
  lo: bigint;
  hi: bigint;
  /** The last part includes `hi`. */
  last: boolean;
  /**
   * The parts of a split table cover the whole key space: the first has no lower bound and the last
   * no upper bound, so rows whose keys fall outside the min/max seen when the run was planned (rows
   * inserted before the run's snapshot was taken) are still exported — by exactly one part.
   */
  first?: boolean;
}

export interface LeftOut {
  table: string;
  reason: string;
  /** True when the table was left out to keep tenants apart (recorded in the receipt). */
  isolation: boolean;
}

export interface SelectedTables {
  /** Tables to export, each with only the columns that go into the files. */
  tables: TablePlan[];
  /** Tenant filter per table name (tenant mode; global tables have none). */
  filters: Map<string, RowFilter>;
  /** Tenant mode: tables without the tenant column exported whole (named by --global-tables). */
  global: string[];
  leftOut: LeftOut[];
  /** One line per problem; a run with problems exports nothing. */
  problems: string[];
  /** Tenant mode: the tenant column's type in every table that has it (read once, for checkSelection too). */
  tenantTypes?: Map<string, TenantColumnType>;
}

/**
 * Base types a tenant column may have. Not citext, nor a text column with a nondeterministic
 * collation: their equality ignores case (or more), so two registered tenants could match each
 * other's rows.
 */
const TENANT_TYPES = ['int2', 'int4', 'int8', 'uuid', 'text', 'varchar', 'bpchar'] as const;

interface TenantColumnType {
  /** format_type of the column as declared, for messages. */
  declared: string;
  typname: string;
  castType: string;
  /** False for a nondeterministic (e.g. case-insensitive ICU) collation. */
  deterministic: boolean;
}

/** The tenant column's type in every table (and materialized view) of the schema that has it. */
async function tenantColumnTypes(
  client: ClientBase,
  schema: string,
  column: string,
): Promise<Map<string, TenantColumnType>> {
  const res = await client.query<{
    relname: string;
    declared: string;
    typname: string;
    cast_type: string;
    deterministic: boolean;
  }>(
    `with recursive rel as materialized (${schemaRelations('n.nspname = $1')}),
      base(attrelid, oid, depth) as (
        select a.attrelid, a.atttypid, 0
          from pg_catalog.pg_attribute a
          join rel c on c.oid = a.attrelid
         where a.attname = $2 and a.attnum > 0 and not a.attisdropped
        union all
        select b.attrelid, t.typbasetype, b.depth + 1
          from base b join pg_catalog.pg_type t on t.oid = b.oid
         where t.typtype = 'd'
      )
      select c.relname, pg_catalog.format_type(a.atttypid, a.atttypmod) as declared,
             -- A built-in only from pg_catalog: a user type named int8 or uuid is qualified, so never allowed.
             case when tn.nspname = 'pg_catalog' then t.typname else tn.nspname || '.' || t.typname end as typname,
             pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) as cast_type,
             coalesce(co.collisdeterministic, true) as deterministic
        from base b
        join pg_catalog.pg_type t on t.oid = b.oid and t.typtype <> 'd'
        join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
        join pg_catalog.pg_class c on c.oid = b.attrelid
        join pg_catalog.pg_attribute a on a.attrelid = b.attrelid and a.attname = $2
        left join pg_catalog.pg_collation co on co.oid = a.attcollation`,
    [schema, column],
  );
  return new Map(
    res.rows.map((r) => [
      r.relname,
      { declared: r.declared, typname: r.typname, castType: r.cast_type, deterministic: r.deterministic },
    ]),
  );
}

/** The column parts of the `table.column` patterns whose table part matches `table` (matched once per table). */
const excludedColumnGlobs = (table: string, patterns: string[]): string[] =>
  patterns.map(splitColumnPattern).flatMap(({ table: t, column: c }) => (matchesAny(table, [t]) ? [c] : []));

/**
 * Applies a selection to the tables of `schema` (from listTables, in the run's snapshot). With
 * `registration`, patterns that match nothing are problems too (at run time a table dropped since
 * registration is not an error; isolation problems always are).
 */
export async function selectTables(
  client: ClientBase,
  schema: string,
  all: TablePlan[],
  sel: Selection,
  opts: { registration?: boolean } = {},
): Promise<SelectedTables> {
  const out: SelectedTables = { tables: [], filters: new Map(), global: [], leftOut: [], problems: [] };
  // The whole schema, as it is (an empty schema is the run's error, not the registration's).
  if (isWholeSchema(sel)) {
    out.tables = all;
    if (!opts.registration) unreadable(out);
    return withOwnFolders(out);
  }
  const names = all.map((t) => t.name);
  if (opts.registration) {
    for (const [flag, patterns] of [
      ['--include-tables', sel.includeTables],
      ['--exclude-tables', sel.excludeTables],
    ] as const) {
      for (const p of patterns)
        if (!names.some((n) => matchesAny(n, [p])))
          out.problems.push(`${flag}: no table of schema "${schema}" matches "${p}"`);
    }
    for (const p of sel.excludeColumns) {
      const { table, column } = splitColumnPattern(p);
      const tables = all.filter((t) => matchesAny(t.name, [table]));
      if (tables.length === 0)
        out.problems.push(`--exclude-columns: no table of schema "${schema}" matches "${table}"`);
      else if (!tables.some((t) => t.columns.some((c) => matchesAny(c.name, [column]))))
        out.problems.push(
          `--exclude-columns: no column of ${tables.map((t) => `"${t.name}"`).join(', ')} matches "${column}"`,
        );
    }
  }
  const tenant = isTenantMode(sel) ? sel : undefined;
  const types = tenant ? await tenantColumnTypes(client, schema, tenant.tenantColumn) : new Map();
  if (tenant) out.tenantTypes = types;
  if (tenant && opts.registration) {
    if (types.size === 0)
      out.problems.push(`--tenant-column: no table of schema "${schema}" has a column "${tenant.tenantColumn}"`);
    for (const p of sel.globalTables)
      if (!names.some((n) => !types.has(n) && matchesAny(n, [p])))
        out.problems.push(
          `--global-tables: "${p}" matches no table of schema "${schema}" without the tenant column "${tenant.tenantColumn}" (tables with it are always filtered)`,
        );
  }
  for (const t of all) {
    if (sel.includeTables.length > 0 && !matchesAny(t.name, sel.includeTables)) {
      out.leftOut.push({ table: t.name, reason: 'not matched by --include-tables', isolation: false });
      continue;
    }
    const ex = matchesAny(t.name, sel.excludeTables);
    if (ex !== undefined) {
      out.leftOut.push({ table: t.name, reason: `excluded by --exclude-tables "${ex}"`, isolation: false });
      continue;
    }
    let filter: RowFilter | undefined;
    if (tenant) {
      const type = types.get(t.name);
      if (type) {
        if (!(TENANT_TYPES as readonly string[]).includes(type.typname)) {
          out.problems.push(
            `table "${t.name}": tenant column "${tenant.tenantColumn}" is ${type.declared}; a tenant column must be an integer (smallint, integer, bigint), uuid or text (text, varchar, char)`,
          );
          continue;
        }
        if (!type.deterministic) {
          out.problems.push(
            `table "${t.name}": tenant column "${tenant.tenantColumn}" has a nondeterministic collation; its equality could match another tenant's values`,
          );
          continue;
        }
        filter = { column: tenant.tenantColumn, value: tenant.tenantValue, castType: type.castType };
      } else if (matchesAny(t.name, sel.globalTables) !== undefined) {
        out.global.push(t.name);
      } else {
        out.leftOut.push({
          table: t.name,
          reason: `no tenant column "${tenant.tenantColumn}" and not listed in --global-tables`,
          isolation: true,
        });
        continue;
      }
    }
    const excluded = excludedColumnGlobs(t.name, sel.excludeColumns);
    const columns = t.columns.filter(
      (c) =>
        matchesAny(c.name, excluded) === undefined && !(filter && sel.dropTenantColumn && c.name === filter.column),
    );
    if (columns.length === 0) {
      if (t.columns.length > 0) out.problems.push(`table "${t.name}": the column selection leaves no column to export`);
      else out.tables.push(t); // a table without columns at all: unreadable() says so, at run time
      continue;
    }
    if (filter) out.filters.set(t.name, filter);
    out.tables.push(columns.length === t.columns.length ? t : { ...t, columns });
  }
  if (!opts.registration) unreadable(out);
  if (tenant && !opts.registration) await sameTenantEverywhere(client, tenant, out);
  withOwnFolders(out);
  if (out.tables.length === 0 && out.problems.length === 0)
    out.problems.push(
      all.length === 0
        ? `schema "${schema}" has no tables or materialized views`
        : `the selection leaves no table of schema "${schema}" to export`,
    );
  return out;
}

/** Appends `value` to the list under `key` (linear: a schema of 20,000 tables took 20 s with a copy per append). */
function groupInto(groups: Map<string, string[]>, key: string, value: string): void {
  const list = groups.get(key);
  if (list) list.push(value);
  else groups.set(key, [value]);
}

/**
 * At every run, not only at registration: the tenant value reads as itself in the type of every filtered table's
 * tenant column. Registration made it canonical in the types the schema had then; a table added later, or a column
 * whose type changed, may read it otherwise — `'007'` is 7 in an integer column, `'abc '` is `'abc'` in a char(n)
 * one, an upper-case uuid is the lower-case one — and the filter would then match the rows of the account registered
 * as `7`, `abc` or the lower-case uuid (red-team, tenants). Such a table is a problem: the run exports nothing until
 * the value is given in the form every table shares, or the table is left out. A value the type cannot read at all
 * is one too (the filter would fail the table). Each distinct type is cast once, in a savepoint when the client is
 * in a transaction (a snapshot: a failed cast must not end it).
 */
async function sameTenantEverywhere(
  client: ClientBase,
  tenant: { tenantColumn: string; tenantValue: string },
  out: SelectedTables,
): Promise<void> {
  const byType = new Map<string, string[]>();
  for (const [table, filter] of out.filters) groupInto(byType, filter.castType, table);
  const inTransaction = client.getTransactionStatus() === 'T';
  for (const [castType, tables] of byType) {
    const type = castType.replace(/^pg_catalog\./, '');
    const named = tables.map((t) => `"${t}"`).join(', ');
    if (inTransaction) await client.query('savepoint dropship_tenant');
    try {
      const r = await client.query<{ v: string }>(`select ($1::text)::${castType}::text as v`, [tenant.tenantValue]);
      if (inTransaction) await client.query('release savepoint dropship_tenant');
      const v = r.rows[0]!.v;
      if (v !== tenant.tenantValue)
        out.problems.push(
          `table(s) ${named}: tenant column "${tenant.tenantColumn}" is ${type}, in which the tenant value ${JSON.stringify(tenant.tenantValue)} reads as ${JSON.stringify(v)} — another tenant's value there; nothing is exported until the value is given in the form every table shares (destinations update --tenant-value) or the table is left out (--exclude-tables)`,
        );
    } catch (e) {
      if (inTransaction) await client.query('rollback to savepoint dropship_tenant');
      // Only the type refusing the value is a problem of the destination; a dropped connection is the run's error.
      if (!/^22/.test(String((e as { code?: unknown }).code))) throw e;
      out.problems.push(
        `table(s) ${named}: the tenant value ${JSON.stringify(tenant.tenantValue)} is not a valid ${type} (tenant column "${tenant.tenantColumn}"): ${(e as Error).message}; leave the table out (--exclude-tables) or change the destination's --tenant-value`,
      );
    }
  }
}

/**
 * Selected relations a run cannot deliver, as problems (the run is refused before anything is read or written, its
 * error naming each and the fix): a table without columns (a Parquet file needs one), and a materialized view never
 * populated (created `WITH NO DATA`: Postgres refuses to read it). Without this they failed mid-run, blamed on the
 * write and retried. Not at registration: a view may be populated by the time the run comes.
 */
function unreadable(out: SelectedTables): void {
  for (const t of out.tables) {
    if (t.columns.length === 0)
      out.problems.push(
        `table "${t.name}" has no columns, and a Parquet file needs one: leave it out (--exclude-tables) or give it a column`,
      );
    else if (t.kind === 'materialized view' && t.populated === false)
      out.problems.push(
        `materialized view "${t.name}" has never been populated (created WITH NO DATA): REFRESH MATERIALIZED VIEW it, or leave it out (--exclude-tables)`,
      );
  }
}

/**
 * Every selected table gets a folder (and keys) of its own: tables whose object names meet (`sharedObjectNames`) would
 * overwrite each other's files, and the receipt would list one table's bytes for both. Such a selection is a problem
 * (the run exports nothing, its error names the tables): the operator excludes or the customer renames one of them.
 */
function withOwnFolders(out: SelectedTables): SelectedTables {
  for (const s of sharedObjectNames(out.tables.map((t) => t.name)))
    out.problems.push(
      `table "${s.table}": its files would be named "${s.name}", as table "${s.keeps}"'s are, and overwrite them: rename one of the two, or leave one out (--exclude-tables)`,
    );
  return out;
}

/**
 * Registration/update check of a selection against the source catalog: one line per problem, and
 * the tenant value canonicalised in the tenant column's type (the same in every table, or a problem).
 */
export async function checkSelection(
  client: ClientBase,
  schema: string,
  sel: Selection,
): Promise<{ problems: string[]; tenantValue?: string }> {
  if (isWholeSchema(sel)) return { problems: [] };
  const tables = await listTables(client, schema);
  const selected = await selectTables(client, schema, tables, sel, { registration: true });
  const problems = [...selected.problems];
  if (!isTenantMode(sel)) return { problems };
  // Canonical in every table that has the column (selected now or not: a later update may select it).
  const byType = new Map<string, string[]>();
  for (const [table, t] of selected.tenantTypes ?? (await tenantColumnTypes(client, schema, sel.tenantColumn)))
    if ((TENANT_TYPES as readonly string[]).includes(t.typname)) groupInto(byType, t.castType, table);
  const canonical = new Map<string, string>();
  for (const [castType, tables] of byType) {
    await client.query('savepoint tenant_value');
    try {
      const r = await client.query<{ v: string }>(`select ($1::text)::${castType}::text as v`, [sel.tenantValue]);
      canonical.set(castType, r.rows[0]!.v);
      await client.query('release savepoint tenant_value');
    } catch (e) {
      await client.query('rollback to savepoint tenant_value');
      problems.push(
        `--tenant-value: ${JSON.stringify(sel.tenantValue)} is not a valid ${castType.replace(/^pg_catalog\./, '')} (tenant column of ${tables.map((t) => `"${t}"`).join(', ')}): ${(e as Error).message}`,
      );
    }
  }
  const forms = new Set(canonical.values());
  if (forms.size > 1)
    problems.push(
      `--tenant-value: ${JSON.stringify(sel.tenantValue)} reads differently in the tenant columns' types (${[...canonical].map(([t, v]) => `${t.replace(/^pg_catalog\./, '')}: ${JSON.stringify(v)}`).join(', ')}); give the value in the form they share`,
    );
  const [value] = forms;
  return { problems, ...(problems.length === 0 && value !== undefined ? { tenantValue: value } : {}) };
}

/** `WHERE …` for a tenant filter and/or a key range ('' when neither). */
/**
 * One of the two halves a table is read in by two threads (src/pipeline/threads/): the rows whose ctid lies in a
 * block below `block`, or at or above it. Every row version has exactly one ctid, so the two halves partition the
 * table; with Postgres 14 or later each half is a TID Range Scan that reads only its own blocks.
 */
export interface BlockHalf {
  block: number;
  upper: boolean;
}

export function whereClause(filter?: RowFilter, range?: KeyRange, half?: BlockHalf): string {
  const conds: string[] = [];
  // pg_catalog's equality, whatever the session's search_path holds (an `=` for a domain type elsewhere cannot win).
  if (filter) conds.push(`${quoteIdent(filter.column)} OPERATOR(pg_catalog.=) ${tenantLiteral(filter)}`);
  if (range) {
    const k = quoteIdent(range.keyColumn);
    if (!range.first) conds.push(`${k} >= ${range.lo}`);
    if (!range.last) conds.push(`${k} < ${range.hi}`);
  }
  if (half) {
    if (!Number.isSafeInteger(half.block) || half.block < 0) throw new RangeError(`bad block number ${half.block}`);
    conds.push(`ctid ${half.upper ? '>=' : '<'} '(${half.block},0)'::pg_catalog.tid`);
  }
  return conds.length ? ` WHERE ${conds.join(' AND ')}` : '';
}

export function tenantLiteral(filter: RowFilter): string {
  return `${pg.escapeLiteral(filter.value).trim()}::${filter.castType}`;
}

export function tableRef(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/**
 * The relation a table's rows are read from: `ONLY` for a plain table, whose inheritance children (tables of their
 * own, exported as such) would otherwise be read twice — in the parent and by themselves (as pg_dump reads them; red-
 * team, data pass). A partitioned table is read whole (its partitions are not exported apart).
 */
export function readRef(schema: string, table: Pick<TablePlan, 'name' | 'kind'>): string {
  return `${table.kind === 'table' ? 'ONLY ' : ''}${tableRef(schema, table.name)}`;
}

/** The binary COPY that reads one selected table (only its exported columns, only its rows). */
export function copySql(
  schema: string,
  table: TablePlan,
  filter?: RowFilter,
  range?: KeyRange,
  half?: BlockHalf,
): string {
  const select = table.columns.map((c) => c.select).join(', ');
  return `COPY (SELECT ${select} FROM ${readRef(schema, table)}${whereClause(filter, range, half)}) TO STDOUT (FORMAT binary)`;
}

/** The planner's estimate of a tenant's rows in a table (for splitting; no scan). */
export async function estimateRows(
  client: ClientBase,
  schema: string,
  table: string,
  filter: RowFilter,
): Promise<number> {
  const res = await client.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(
    `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${tableRef(schema, table)}${whereClause(filter)}`,
  );
  return res.rows[0]!['QUERY PLAN'][0].Plan['Plan Rows'];
}

/** min/max of an integer key over the table's (tenant's) rows, as text. */
function keyBoundsSql(schema: string, table: string, key: string, filter?: RowFilter): string {
  const k = quoteIdent(key);
  return `select min(${k})::text as lo, max(${k})::text as hi from ${tableRef(schema, table)}${whereClause(filter)}`;
}

/** The receipt's `selection` block; undefined for a destination that exports its whole schema. */
export function receiptSelection(sel: Selection, selected: SelectedTables): ReceiptSelection | undefined {
  if (isWholeSchema(sel)) return undefined;
  return {
    ...(isTenantMode(sel) ? { tenant_column: sel.tenantColumn, tenant_column_exported: !sel.dropTenantColumn } : {}),
    global_tables: selected.global,
    include_tables: sel.includeTables,
    exclude_tables: sel.excludeTables,
    exclude_columns: sel.excludeColumns,
    left_out: selected.leftOut.filter((l) => l.isolation).map(({ table, reason }) => ({ table, reason })),
  };
}

/**
 * The doctor's bounds on the source (it answers a person, and POST /destinations/{id}/check answers within the API's
 * 29 s): each lock wait, and each statement. Behind a customer's ACCESS EXCLUSIVE lock (an ALTER TABLE, a VACUUM FULL,
 * a LOCK TABLE, or one merely queued) the catalog reads would otherwise wait as long as it is held (pg_partition_tree
 * locks every partition; red team, doctor pass) — as fan-out planning bounds its own (src/run/drivers/fan-out.ts).
 * A server, role or URL setting that is shorter is kept.
 */
export const DOCTOR_LOCK_TIMEOUT_SECONDS = 5;
export const DOCTOR_STATEMENT_TIMEOUT_SECONDS = 15;
const DOCTOR_SESSION: SourceSession = {
  statementTimeoutSeconds: DOCTOR_STATEMENT_TIMEOUT_SECONDS,
  idleInTransactionSeconds: 60,
  keepAliveSeconds: 30,
};

/** Both limits, in ms, each only lowered: a shorter one the server, role or URL set stays. */
const DOCTOR_LIMITS_SQL = `select set_config('lock_timeout', least(nullif(l.setting::bigint, 0), $1::bigint)::text, false),
        set_config('statement_timeout', least(nullif(st.setting::bigint, 0), $2::bigint)::text, false)
   from pg_catalog.pg_settings l, pg_catalog.pg_settings st
  where l.name = 'lock_timeout' and st.name = 'statement_timeout'`;

/** The relations of `schema` (and their inheritance children, wherever they live) others hold or await exclusively. */
const LOCKED_SQL = `with recursive rels as (
    select c.oid from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = $1
    union
    select i.inhrelid from pg_catalog.pg_inherits i join rels r on i.inhparent = r.oid)
  select pg_catalog.format('%I.%I', n.nspname, c.relname) as name, pg_catalog.bool_or(l.granted) as held
    from pg_catalog.pg_locks l
    join rels r on r.oid = l.relation
    join pg_catalog.pg_class c on c.oid = l.relation
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where l.locktype = 'relation' and l.mode = 'AccessExclusiveLock' and l.pid <> pg_catalog.pg_backend_pid()
     and l.database = (select oid from pg_catalog.pg_database where datname = pg_catalog.current_database())
   group by 1
   order by pg_catalog.bool_or(l.granted) desc, 1
   limit 3`;

/**
 * The doctor's look at a destination's selection against the source as it is now: the registration
 * checks again (a renamed column or dropped table shows here before a run fails), and what a run
 * would export. Within the doctor's bounds (above): a source too busy to read in them is a problem
 * ("source busy: …", naming the locked table), not a wait.
 */
export async function selectionReport(
  sourceUrl: string,
  schema: string,
  sel: Selection,
  bounds: { lockTimeoutSeconds?: number; statementTimeoutSeconds?: number } = {},
): Promise<{ problems: string[]; summary: string }> {
  const lockSeconds = bounds.lockTimeoutSeconds ?? DOCTOR_LOCK_TIMEOUT_SECONDS;
  const statementSeconds = bounds.statementTimeoutSeconds ?? DOCTOR_STATEMENT_TIMEOUT_SECONDS;
  const session = { ...DOCTOR_SESSION, statementTimeoutSeconds: statementSeconds };
  const client = sourceClient(sourceUrl, 'dropship doctor', session);
  try {
    await connectSource(client, session);
    await client.query(DOCTOR_LIMITS_SQL, [lockSeconds * 1000, statementSeconds * 1000]);
    try {
      await client.query('begin isolation level repeatable read, read only');
      const { problems } = await checkSelection(client, schema, sel);
      const selected = await selectTables(client, schema, await listTables(client, schema), sel);
      const summary = `${selected.tables.length} table(s) of schema "${schema}" exported${
        isTenantMode(sel)
          ? ` (${selected.filters.size} filtered on ${sel.tenantColumn}, ${selected.global.length} global)`
          : ''
      }, ${selected.leftOut.length} left out${selected.leftOut.length ? `: ${selected.leftOut.map((l) => `${l.table} (${l.reason})`).join(', ')}` : ''}`;
      // What a run would refuse besides (a table without columns, a view never populated), once each.
      return { problems: [...problems, ...selected.problems.filter((p) => !problems.includes(p))], summary };
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== '55P03' && code !== '57014') throw e;
      await client.query('rollback').catch(() => {});
      const busy = code === '55P03' ? await lockProblem(client, schema, lockSeconds) : undefined;
      return {
        summary: `not checked: the source was busy (schema "${schema}")`,
        problems: [
          busy ??
            `source busy: reading the catalog of schema "${schema}" took longer than ${code === '55P03' ? lockSeconds : statementSeconds} s; run the doctor again later (pg_stat_activity shows what the source is doing)`,
        ],
      };
    }
  } finally {
    await client.query('rollback').catch(() => {});
    await client.end().catch(() => {});
  }
}

/** "source busy: a lock on <table> …", or undefined when the lock is gone (or was elsewhere) by the time it is looked at. */
async function lockProblem(client: pg.Client, schema: string, seconds: number): Promise<string | undefined> {
  const locked = await client
    .query<{ name: string; held: boolean }>(LOCKED_SQL, [schema])
    .then((r) => r.rows)
    .catch(() => []);
  if (locked.length === 0) return undefined;
  const names = locked.map((l) => l.name).join(', ');
  const held = locked.some((l) => l.held);
  return `source busy: a lock on ${names} ${held ? 'held' : 'waited for (queued behind a longer transaction)'} longer than ${seconds} s (an ALTER TABLE, VACUUM FULL, LOCK TABLE or REINDEX holds one); run the doctor again once it is released — pg_locks and pg_stat_activity show the session`;
}

/**
 * Key ranges for tables estimated above `splitRows` rows that have a single integer primary key:
 * ceil(estimate / splitRows) equal ranges between its min and max.
 */
export async function planParts(
  client: ClientBase,
  schema: string,
  splitRows: number,
  selected?: SelectedTables,
): Promise<TaskPart[]> {
  const big = await client.query<{ relname: string; est: string; key: string }>(
    `with rel as materialized (${schemaRelations('n.nspname = $1')})
     select c.relname, greatest(c.reltuples, 0)::bigint as est, a.attname as key
       from rel c
       join pg_catalog.pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnkeyatts = 1
       join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
      where c.relkind in ('r', 'p') and a.atttypid in (20, 21, 23) and c.reltuples > $2`,
    [schema, splitRows],
  );
  const parts: TaskPart[] = [];
  for (const t of big.rows) {
    if (selected && !selected.tables.some((s) => s.name === t.relname)) continue;
    // Tenant mode: the tenant's rows only (the planner's estimate; min/max over them).
    const filter = selected?.filters.get(t.relname);
    if (filter) t.est = String(await estimateRows(client, schema, t.relname, filter));
    const mm = await client.query<{ lo: string | null; hi: string | null }>(
      keyBoundsSql(schema, t.relname, t.key, filter),
    );
    const lo = mm.rows[0]?.lo;
    const hi = mm.rows[0]?.hi;
    if (lo === null || hi === null || lo === undefined || hi === undefined) continue;
    const n = Math.min(Math.ceil(Number(t.est) / splitRows), 1000);
    if (n < 2) continue;
    const from = BigInt(lo);
    const span = BigInt(hi) - from + 1n;
    const step = span / BigInt(n) + (span % BigInt(n) === 0n ? 0n : 1n);
    for (let p = 0; p < n; p++) {
      const a = from + step * BigInt(p);
      const b = p === n - 1 ? BigInt(hi) : a + step;
      parts.push({ table: t.relname, part: p, parts: n, keyColumn: t.key, lo: a, hi: b });
    }
  }
  return parts;
}
