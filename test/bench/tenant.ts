/**
 * node --import tsx test/bench/tenant.ts [--rows 1000000] [--runs 3]
 * (also run by `npm run bench`, which prints its figure under `tenant`)
 *
 * One tenant out of 100 from a shared `events` table (tenant column `org_id integer`, btree index),
 * measured in one run against a full export of the same table by the same code, to the local S3:
 *   - tenant export with the index: rows/s of the tenant's rows, seconds vs the full export, and
 *     the rows Postgres read for it (pg_stat_user_tables: index fetches vs sequential reads);
 *   - the same tenant export after dropping the index (what happens without one);
 *   - the full-table export (every row).
 * Prints a table on stderr and one JSON line on stdout.
 */
import type pg from 'pg';
import type { Destination } from '../../src/accounts/destination.js';
import { Registry } from '../../src/accounts/registry.js';
import { formatCount, renderTable } from '../../src/cli/format.js';
import { loadSettings } from '../../src/config/settings.js';
import { EMPTY_SELECTION } from '../../src/contracts/selection.js';
import { setupCustomer } from '../../src/devstack/demo.js';
import type { LocalStack } from '../../src/devstack/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { exportAccount } from '../../src/run/drivers/in-process.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import { Ledger } from '../../src/store/ledger/ledger.js';
import { median, runStandalone } from './standalone.js';

/** One way of exporting, measured over `runs` runs (medians) plus what Postgres read in the first. */
export interface TenantVariant {
  rows: number;
  run_seconds: number;
  rows_per_s: number;
  /** The table's own export (COPY → Parquet → upload), without the run's fixed costs. */
  table_seconds: number;
  /** Run time relative to the whole-table export. */
  time_ratio: number;
  rows_read_index: number;
  rows_read_seq: number;
  /** Heap pages Postgres touched (pg_statio: read + hit), and the table's size in pages. */
  heap_pages: number;
  table_pages: number;
}

export interface TenantBench {
  rows: number;
  tenants: number;
  tenant_rows: number;
  runs: number;
  /** The headline figure: one tenant, index on the tenant column, rows of all tenants interleaved. */
  tenant_rows_per_s: number;
  tenant_time_ratio: number;
  full_rows_per_s: number;
  variants: {
    /** Index on org_id; each page holds rows of many tenants (rows inserted round-robin). */
    tenant_interleaved: TenantVariant;
    /** Index on org_id, table clustered by it (CLUSTER): the tenant's rows on few pages. */
    tenant_clustered: TenantVariant;
    /** No index on org_id: a sequential scan of the whole table. */
    tenant_no_index: TenantVariant;
    full_table: TenantVariant;
  };
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

interface Stats {
  idx: number;
  seq: number;
  pages: number;
}

async function readStats(pool: pg.Pool): Promise<Stats> {
  // Other backends' counters reach the shared statistics within about a second of their transaction.
  await new Promise((r) => setTimeout(r, 1500));
  await pool.query('select pg_stat_clear_snapshot()');
  const r = await pool.query(
    `select coalesce(s.idx_tup_fetch, 0)::bigint as idx, coalesce(s.seq_tup_read, 0)::bigint as seq,
            (coalesce(io.heap_blks_read, 0) + coalesce(io.heap_blks_hit, 0))::bigint as pages
       from pg_stat_user_tables s join pg_statio_user_tables io using (relid)
      where s.schemaname = 'bench_tenant' and s.relname = 'events'`,
  );
  return { idx: Number(r.rows[0].idx), seq: Number(r.rows[0].seq), pages: Number(r.rows[0].pages) };
}

export async function benchTenant(opts: {
  stack: LocalStack;
  pool: pg.Pool;
  rows: number;
  runs: number;
}): Promise<TenantBench> {
  const { stack, pool, rows, runs } = opts;
  const tenants = 100;
  const registry = new Registry(pool);
  const ledger = new Ledger(pool);
  const settings = loadSettings({ ...process.env });
  const reporter = new LogReporter(createLogger({ level: 'silent' }));
  log(`\n== tenant: 1 of ${tenants} tenants in a ${rows.toLocaleString('en-US')}-row shared table: generating …`);
  await pool.query(`drop schema if exists bench_tenant cascade; create schema bench_tenant; select setseed(0.25);
    create table bench_tenant.events as
      select i::bigint as id, (i % ${tenants})::int as org_id, gen_random_uuid() as event_id,
             timestamptz '2023-01-01 00:00:00+00' + i * interval '1 second' as occurred_at,
             (array['page_view','form_submit','ad_click','email_open','meeting'])[1 + (i % 5)] as event_type,
             case when random() < 0.1 then null else jsonb_build_object('path', '/p/' || (i % 97), 'n', i) end as properties,
             case when random() < 0.1 then null else round((random() * 2000000 - 1000000)::numeric, 4)::numeric(18,4) end as revenue,
             case when random() < 0.1 then null else random() * 100 end as score
        from generate_series(1, ${rows}) i;
    alter table bench_tenant.events add primary key (id);
    create index events_org_id on bench_tenant.events (org_id);`);
  await pool.query('vacuum analyze bench_tenant.events');
  const tenant = await setupCustomer(stack, registry, {
    accountId: 'bench-tenant',
    awsAccountId: '123456789099',
    bucket: 'bench-tenant-data',
    schema: 'bench_tenant',
    selection: { tenantColumn: 'org_id', tenantValue: '42' },
  });
  // The same destination exporting the whole table (not registered: the registry would refuse a
  // schema-per-account destination on a schema shared by tenants).
  const full: Destination = { ...tenant.destination, selection: EMPTY_SELECTION };
  const tenantRows = Number(
    (await pool.query('select count(*) as n from bench_tenant.events where org_id = 42')).rows[0].n,
  );
  const measure = async (dest: Destination, expected: number): Promise<Omit<TenantVariant, 'time_ratio'>> => {
    const runSeconds: number[] = [];
    const tableSeconds: number[] = [];
    let read: Stats = { idx: 0, seq: 0, pages: 0 };
    for (let r = 0; r < runs; r++) {
      const before = r === 0 ? await readStats(pool) : undefined;
      const t0 = performance.now();
      const o = await exportAccount(dest, { sourceUrl: stack.databaseUrl, settings, reporter, ledger });
      runSeconds.push((performance.now() - t0) / 1000);
      if (!o.ok) throw new Error(`bench export failed: ${String((o as { error: unknown }).error)}`);
      const n = o.tables.reduce((k, t) => k + t.rows, 0);
      if (n !== expected) throw new Error(`exported ${n} rows, expected ${expected}`);
      tableSeconds.push(o.tables[0]!.seconds);
      if (before) {
        const after = await readStats(pool);
        read = { idx: after.idx - before.idx, seq: after.seq - before.seq, pages: after.pages - before.pages };
      }
    }
    const pages = Number(
      (await pool.query(`select relpages from pg_class where oid = 'bench_tenant.events'::regclass`)).rows[0].relpages,
    );
    return {
      rows: expected,
      run_seconds: Number(median(runSeconds).toFixed(3)),
      rows_per_s: Math.round(expected / median(runSeconds)),
      table_seconds: Number(median(tableSeconds).toFixed(3)),
      rows_read_index: read.idx,
      rows_read_seq: read.seq,
      heap_pages: read.pages,
      table_pages: pages,
    };
  };
  // Warm-up (not measured): the first export of a process pays for loading code and first connections.
  await exportAccount(tenant.destination, { sourceUrl: stack.databaseUrl, settings, reporter, ledger });
  const interleaved = await measure(tenant.destination, tenantRows);
  const fullTable = await measure(full, rows);
  await pool.query('cluster bench_tenant.events using events_org_id');
  await pool.query('analyze bench_tenant.events');
  const clustered = await measure(tenant.destination, tenantRows);
  await pool.query('drop index bench_tenant.events_org_id');
  const noIndex = await measure(tenant.destination, tenantRows);
  const ratio = (v: Omit<TenantVariant, 'time_ratio'>): TenantVariant => ({
    ...v,
    time_ratio: Number((v.run_seconds / fullTable.run_seconds).toFixed(4)),
  });
  const variants = {
    tenant_interleaved: ratio(interleaved),
    tenant_clustered: ratio(clustered),
    tenant_no_index: ratio(noIndex),
    full_table: ratio(fullTable),
  };
  const result: TenantBench = {
    rows,
    tenants,
    tenant_rows: tenantRows,
    runs,
    tenant_rows_per_s: variants.tenant_interleaved.rows_per_s,
    tenant_time_ratio: variants.tenant_interleaved.time_ratio,
    full_rows_per_s: variants.full_table.rows_per_s,
    variants,
  };
  const line = (name: string, v: TenantVariant): string[] => [
    name,
    formatCount(v.rows),
    v.run_seconds.toFixed(3),
    formatCount(v.rows_per_s),
    `${v.time_ratio}×`,
    v.table_seconds.toFixed(3),
    `${formatCount(v.rows_read_index)} / ${formatCount(v.rows_read_seq)}`,
    `${formatCount(v.heap_pages)} of ${formatCount(v.table_pages)}`,
  ];
  log(
    renderTable(
      ['export', 'rows', 'run s', 'rows/s', 'vs full', 'table s', 'rows read idx / seq', 'heap pages'],
      [
        line('one tenant, index, tenants interleaved', variants.tenant_interleaved),
        line('one tenant, index, clustered by tenant', variants.tenant_clustered),
        line('one tenant, no index', variants.tenant_no_index),
        line('whole table', variants.full_table),
      ],
      [1, 2, 3, 4, 5, 6, 7],
    ),
  );
  await pool.query('drop schema bench_tenant cascade');
  await registry.remove('bench-tenant');
  return result;
}

await runStandalone(import.meta.url, 'dropship-tenant', 'tenant', ({ stack, pool, arg }) =>
  benchTenant({
    stack,
    pool,
    rows: Number(arg('rows', '1000000')),
    runs: Number(arg('runs', '3')),
  }),
);
