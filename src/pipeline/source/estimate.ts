import type { ClientBase } from 'pg';
import { isTenantMode, isWholeSchema, type Selection } from '../../contracts/selection.js';
import { listTables, schemaRelations } from './catalog.js';
import { estimateRows, selectTables } from './select.js';

/**
 * Size estimates of what a destination exports, for `dropship capacity` and the slot's forecast
 * (src/schedule/capacity.ts): the planner's row estimate (pg_class.reltuples, as `listTables` reads
 * it) and the table's size on disk (pg_total_relation_size: heap, TOAST and indexes; for a partitioned
 * table the sum over its leaf partitions). No table is read: catalog only.
 *
 * The selection is applied by the export's own code (`selectTables`); a tenant's rows are the planner's
 * estimate of the tenant filter (`estimateRows`, as `planParts` splits by), its bytes the table's bytes
 * in the same proportion.
 */
export interface TableSize {
  table: string;
  /** null: Postgres has no estimate (never vacuumed or analyzed). */
  rows: number | null;
  bytes: number;
  /**
   * What the fan-out packs small tables by (`estimateTableBytes`: pg_table_size — heap and TOAST, no
   * indexes — of the whole table, not scaled to a tenant), so the forecast packs as the run will.
   */
  packBytes: number;
}

interface RelSize {
  rows: number | null;
  bytes: number;
  packBytes: number;
}

/** Rows and bytes of every table, partitioned table and materialized view of each schema, in one catalog query. */
export async function schemaSizes(client: ClientBase, schemas: string[]): Promise<Map<string, Map<string, RelSize>>> {
  const res = await client.query<{
    nspname: string;
    relname: string;
    reltuples: number;
    bytes: string;
    pack_bytes: string;
  }>(
    `with rel as materialized (${schemaRelations('n.nspname = any($1::text[])')})
     select c.nspname, c.relname,
            case when c.relkind = 'p'
                 then coalesce((select sum(greatest(pc.reltuples, 0)) from pg_catalog.pg_partition_tree(c.oid) pt
                                  join pg_catalog.pg_class pc on pc.oid = pt.relid where pt.isleaf), 0)
                 else c.reltuples end::float8 as reltuples,
            case when c.relkind = 'p'
                 then coalesce((select sum(pg_catalog.pg_total_relation_size(pt.relid))
                                  from pg_catalog.pg_partition_tree(c.oid) pt where pt.isleaf), 0)
                 else pg_catalog.pg_total_relation_size(c.oid) end::bigint::text as bytes,
            case when c.relkind = 'p'
                 then coalesce((select sum(pg_catalog.pg_table_size(pt.relid))
                                  from pg_catalog.pg_partition_tree(c.oid) pt where pt.isleaf), 0)
                 else pg_catalog.pg_table_size(c.oid) end::bigint::text as pack_bytes
       from rel c`,
    [schemas],
  );
  const out = new Map<string, Map<string, RelSize>>();
  for (const r of res.rows) {
    const m = out.get(r.nspname) ?? new Map<string, RelSize>();
    out.set(r.nspname, m);
    // The same rule as listTables: 0 or -1 is "unknown" (never analyzed, or empty).
    m.set(r.relname, {
      rows: r.reltuples > 0 ? Math.round(r.reltuples) : null,
      bytes: Number(r.bytes),
      packBytes: Number(r.pack_bytes),
    });
  }
  return out;
}

/**
 * What one destination exports, table by table. `sizes` is `schemaSizes` of its schema (pass one map
 * for many destinations: a whole-schema destination needs no further query).
 */
export async function selectedSizes(
  client: ClientBase,
  schema: string,
  selection: Selection,
  sizes: Map<string, RelSize> | undefined,
): Promise<TableSize[]> {
  const of = sizes ?? (await schemaSizes(client, [schema])).get(schema) ?? new Map<string, RelSize>();
  if (isWholeSchema(selection))
    return [...of].map(([table, s]) => ({ table, ...s })).sort((a, b) => a.table.localeCompare(b.table));
  const selected = await selectTables(client, schema, await listTables(client, schema), selection);
  const out: TableSize[] = [];
  for (const t of selected.tables) {
    const s = of.get(t.name) ?? { rows: t.estimatedRows, bytes: 0, packBytes: 0 };
    const filter = isTenantMode(selection) ? selected.filters.get(t.name) : undefined;
    if (!filter) {
      out.push({ table: t.name, ...s });
      continue;
    }
    const rows = Math.round(await estimateRows(client, schema, t.name, filter));
    out.push({
      table: t.name,
      rows,
      bytes: s.rows && s.rows > 0 ? Math.round((s.bytes * Math.min(rows, s.rows)) / s.rows) : s.bytes,
      // Unscaled: the fan-out packs by the whole table's size in tenant mode too.
      packBytes: s.packBytes,
    });
  }
  return out;
}
