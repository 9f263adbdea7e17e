import type { ClientBase } from 'pg';
import { type ColumnPlan, type PgTypeInfo, planColumn } from './typemap.js';

export interface TablePlan {
  /** The table's name in Postgres (exact, may need quoting). */
  name: string;
  kind: 'table' | 'partitioned table' | 'materialized view';
  columns: ColumnPlan[];
  /**
   * The planner's row estimate (pg_class.reltuples; for a partitioned table the sum over its leaf
   * partitions), for progress and time left. `null` when Postgres has none: a table never vacuumed
   * or analyzed has reltuples -1 (0 is also treated as unknown: it is what an empty or not yet
   * analyzed table shows, and a percentage of 0 rows means nothing).
   */
  estimatedRows: number | null;
  /** False for a materialized view never populated (`WITH NO DATA`): reading it is an error in Postgres. */
  populated?: boolean;
}

const KIND: Record<string, TablePlan['kind']> = { r: 'table', p: 'partitioned table', m: 'materialized view' };

/**
 * A CTE body: the base tables, partitioned tables and materialized views (never partitions) of the
 * schemas whose `n.nspname` satisfies `nspWhere`, as (oid, nspname, relname, relkind, reltuples).
 *
 * Found through pg_depend's reference index — every relation of these kinds depends on its namespace
 * (Postgres records it at CREATE and moves it with ALTER … SET SCHEMA) — not by filtering pg_class on
 * relnamespace, which has no index of its own: pg_class_relname_nsp_index leads with relname, so that
 * filter is a skip scan over every distinct relation name of the database and grows with the number of
 * schemas. `c.relnamespace = n.oid` stays as a guard, so nothing of another schema can come through
 * (test: src/pipeline/source/catalog.test.ts compares it with the pg_class filter on every kind).
 * Measured with 10,000 schemas of 3 tables (PG 18, this 2-core machine, warm): the lookup 4.7 → 0.05 ms;
 * `listTables` 7.7 → 3.2 ms, `estimateTableBytes` 5.2 → 1.1 ms, `planParts` 218 → 1.2 ms (a query each, mean of 20).
 */
export function schemaRelations(nspWhere: string): string {
  // distinct: one row per relation even if pg_depend ever held two links to the same namespace.
  return `select distinct c.oid, n.nspname, c.relname, c.relkind, c.reltuples, c.relispopulated
            from pg_catalog.pg_namespace n
            join pg_catalog.pg_depend d
              on d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass and d.refobjid = n.oid
             and d.refobjsubid = 0 and d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
            join pg_catalog.pg_class c on c.oid = d.objid and c.relnamespace = n.oid
           where ${nspWhere} and c.relkind in ('r', 'p', 'm') and not c.relispartition`;
}

/**
 * Every base table, partitioned table (as one table, not its partitions) and materialized view
 * of `schema`, with a column plan each. Run it inside the export's snapshot so the catalog and
 * the data agree.
 */
export async function listTables(client: ClientBase, schema: string): Promise<TablePlan[]> {
  const rels = await client.query<{
    oid: number;
    relname: string;
    relkind: string;
    reltuples: number;
    relispopulated: boolean;
  }>(
    `with rel as materialized (${schemaRelations('n.nspname = $1')})
     select c.oid, c.relname, c.relkind, c.relispopulated,
            case when c.relkind = 'p'
                 then coalesce((select sum(greatest(pc.reltuples, 0))
                                  from pg_catalog.pg_partition_tree(c.oid) pt
                                  join pg_catalog.pg_class pc on pc.oid = pt.relid
                                 where pt.isleaf), 0)
                 else c.reltuples end::float8 as reltuples
       from rel c
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
    estimatedRows: rel.reltuples > 0 ? Math.round(rel.reltuples) : null,
    ...(rel.relispopulated ? {} : { populated: false }),
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

/**
 * Each table's size on disk in bytes (heap and TOAST, no indexes; for a partitioned table the sum over
 * its leaf partitions), by name: the estimate fan-out packing uses (src/run/drivers/pack.ts). Unlike
 * reltuples it is known before the first ANALYZE; in tenant mode it is the whole table's, an upper bound
 * of one tenant's share.
 */
export async function estimateTableBytes(client: ClientBase, schema: string): Promise<Map<string, number>> {
  const res = await client.query<{ relname: string; bytes: string }>(
    `with rel as materialized (${schemaRelations('n.nspname = $1')})
     select c.relname,
            case when c.relkind = 'p'
                 then coalesce((select sum(pg_catalog.pg_table_size(pt.relid))
                                  from pg_catalog.pg_partition_tree(c.oid) pt where pt.isleaf), 0)
                 else pg_catalog.pg_table_size(c.oid) end::bigint as bytes
       from rel c`,
    [schema],
  );
  return new Map(res.rows.map((r) => [r.relname, Number(r.bytes)]));
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
             ty.typelem::int as typelem, ty.typbasetype::int as typbasetype, ty.typtypmod,
             (select e.extname
                from pg_catalog.pg_depend dep
                join pg_catalog.pg_extension e on e.oid = dep.refobjid
               where dep.classid = 'pg_catalog.pg_type'::pg_catalog.regclass and dep.objid = ty.oid
                 and dep.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass and dep.deptype = 'e'
               limit 1) as extname
        from pg_catalog.pg_type ty
        join pg_catalog.pg_namespace n on n.oid = ty.typnamespace
       where ty.oid in (select oid from t)`,
    [oids],
  );
  return new Map(res.rows.map((r) => [r.oid, r]));
}

export type { TaskPart } from '../../contracts/result.js';
