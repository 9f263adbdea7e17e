import type { ClientBase } from 'pg';
import { type ColumnPlan, type PgTypeInfo, planColumn } from './typemap.js';

/** One key range of a split table: rows with lo ≤ key < hi (the last part includes hi). */
export interface TaskPart {
  table: string;
  part: number;
  parts: number;
  keyColumn: string;
  lo: bigint;
  hi: bigint;
}

export interface TablePlan {
  /** The table's name in Postgres (exact, may need quoting). */
  name: string;
  kind: 'table' | 'partitioned table' | 'materialized view';
  columns: ColumnPlan[];
}

const KIND: Record<string, TablePlan['kind']> = { r: 'table', p: 'partitioned table', m: 'materialized view' };

/**
 * Every base table, partitioned table (as one table, not its partitions) and materialized view
 * of `schema`, with a column plan each. Run it inside the export's snapshot so the catalog and
 * the data agree.
 */
export async function listTables(client: ClientBase, schema: string): Promise<TablePlan[]> {
  const rels = await client.query<{ oid: number; relname: string; relkind: string }>(
    `select c.oid, c.relname, c.relkind
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p', 'm') and not c.relispartition
      order by c.relname`,
    [schema],
  );
  if (rels.rows.length === 0) return [];
  const cols = await client.query<{
    attrelid: number;
    attname: string;
    attnotnull: boolean;
    atttypid: number;
    atttypmod: number;
    pg_type: string;
  }>(
    `select a.attrelid, a.attname, a.attnotnull, a.atttypid, a.atttypmod,
            pg_catalog.format_type(a.atttypid, a.atttypmod) as pg_type
       from pg_catalog.pg_attribute a
      where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
      order by a.attrelid, a.attnum`,
    [rels.rows.map((r) => r.oid)],
  );
  const types = await loadTypes(client, [...new Set(cols.rows.map((c) => c.atttypid))]);
  return rels.rows.map((rel) => ({
    name: rel.relname,
    kind: KIND[rel.relkind]!,
    columns: cols.rows
      .filter((c) => c.attrelid === rel.oid)
      .map((c) =>
        planColumn(
          { name: c.attname, notNull: c.attnotnull, typeOid: c.atttypid, typmod: c.atttypmod, pgType: c.pg_type },
          types,
        ),
      ),
  }));
}

/** pg_type rows for the given oids and everything they refer to (domain bases, array elements). */
async function loadTypes(client: ClientBase, oids: number[]): Promise<Map<number, PgTypeInfo>> {
  const res = await client.query<PgTypeInfo>(
    `with recursive t(oid) as (
        select unnest($1::oid[])
        union
        select x from (
          select case when ty.typtype = 'd' then ty.typbasetype else ty.typelem end as x
            from pg_catalog.pg_type ty join t on ty.oid = t.oid
        ) s where x <> 0
      )
      select ty.oid::int as oid, ty.typname, n.nspname, ty.typtype, ty.typcategory,
             ty.typelem::int as typelem, ty.typbasetype::int as typbasetype, ty.typtypmod
        from pg_catalog.pg_type ty
        join pg_catalog.pg_namespace n on n.oid = ty.typnamespace
       where ty.oid in (select oid from t)`,
    [oids],
  );
  return new Map(res.rows.map((r) => [r.oid, r]));
}

/**
 * Key ranges for tables estimated above `splitRows` rows that have a single integer primary key:
 * ceil(estimate / splitRows) equal ranges between its min and max.
 */
export async function planParts(client: ClientBase, schema: string, splitRows: number): Promise<TaskPart[]> {
  const big = await client.query<{ relname: string; est: string; key: string }>(
    `select c.relname, greatest(c.reltuples, 0)::bigint as est, a.attname as key
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       join pg_catalog.pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnkeyatts = 1
       join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
      where n.nspname = $1 and c.relkind in ('r', 'p') and a.atttypid in (20, 21, 23) and c.reltuples > $2`,
    [schema, splitRows],
  );
  const parts: TaskPart[] = [];
  for (const t of big.rows) {
    const key = `"${t.key.replaceAll('"', '""')}"`;
    const mm = await client.query<{ lo: string | null; hi: string | null }>(
      `select min(${key})::text as lo, max(${key})::text as hi from "${schema.replaceAll('"', '""')}"."${t.relname.replaceAll('"', '""')}"`,
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
