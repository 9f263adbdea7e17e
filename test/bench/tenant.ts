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
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Destination } from '../../src/accounts/destination.js';
import { migrate } from '../../src/accounts/migrations.js';
import { Registry } from '../../src/accounts/registry.js';
import { EMPTY_SELECTION } from '../../src/accounts/selection.js';
import { formatCount, renderTable } from '../../src/cli/format.js';
import { loadSettings } from '../../src/config/settings.js';
import { createLogger } from '../../src/log/logger.js';
import { exportAccount } from '../../src/run/account.js';
import { Ledger } from '../../src/run/ledger.js';
import { LogReporter } from '../../src/run/reporter.js';
import { setupCustomer } from '../stack/demo.js';
import { LocalStack } from '../stack/stack.js';

export interface TenantBench {
  rows: number;
  tenants: number;
  tenant_rows: number;
  runs: number;
  tenant_rows_per_s: number;
  tenant_seconds: number;
  full_rows_per_s: number;
  full_seconds: number;
  /** tenant seconds / full seconds (1/100 of the rows; fixed costs per run keep it above 0.01). */
  tenant_time_ratio: number;
  /** The table's own export (COPY → Parquet → upload), without the run's fixed costs (role, snapshot, receipt). */
  tenant_table_seconds: number;
  full_table_seconds: number;
  table_time_ratio: number;
  /** Rows Postgres fetched for one tenant export: through the index, and by sequential scan. */
  tenant_rows_read_index: number;
  tenant_rows_read_seq: number;
  no_index_tenant_seconds: number;
  no_index_tenant_time_ratio: number;
  no_index_rows_read_seq: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

async function readStats(pool: pg.Pool): Promise<{ idx: number; seq: number }> {
  // Other backends' counters reach the shared statistics within about a second of their transaction.
  await new Promise((r) => setTimeout(r, 1500));
  await pool.query('select pg_stat_clear_snapshot()');
  const r = await pool.query(
    `select coalesce(idx_tup_fetch, 0)::bigint as idx, coalesce(seq_tup_read, 0)::bigint as seq
       from pg_stat_user_tables where schemaname = 'bench_tenant' and relname = 'events'`,
  );
  return { idx: Number(r.rows[0].idx), seq: Number(r.rows[0].seq) };
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
  const once = async (dest: Destination): Promise<{ seconds: number; rows: number; tableSeconds: number }> => {
    const t0 = performance.now();
    const o = await exportAccount(dest, { sourceUrl: stack.databaseUrl, settings, reporter, ledger });
    const seconds = (performance.now() - t0) / 1000;
    if (!o.ok) throw new Error(`bench export failed: ${String((o as { error: unknown }).error)}`);
    return { seconds, rows: o.tables.reduce((n, t) => n + t.rows, 0), tableSeconds: o.tables[0]!.seconds };
  };
  const tenantRows = Number(
    (await pool.query('select count(*) as n from bench_tenant.events where org_id = 42')).rows[0].n,
  );
  const tenantTimes: number[] = [];
  const fullTimes: number[] = [];
  const tenantTable: number[] = [];
  const fullTable: number[] = [];
  let read = { idx: 0, seq: 0 };
  for (let r = 0; r < runs; r++) {
    const before = r === 0 ? await readStats(pool) : undefined;
    const t = await once(tenant.destination);
    if (t.rows !== tenantRows) throw new Error(`tenant export wrote ${t.rows} rows, expected ${tenantRows}`);
    if (before) {
      const after = await readStats(pool);
      read = { idx: after.idx - before.idx, seq: after.seq - before.seq };
    }
    tenantTimes.push(t.seconds);
    tenantTable.push(t.tableSeconds);
    const f = await once(full);
    if (f.rows !== rows) throw new Error(`full export wrote ${f.rows} rows, expected ${rows}`);
    fullTimes.push(f.seconds);
    fullTable.push(f.tableSeconds);
  }
  await pool.query('drop index bench_tenant.events_org_id');
  const beforeNoIndex = await readStats(pool);
  const noIndexRuns: { seconds: number; tableSeconds: number }[] = [];
  let noIndexSeq = 0;
  for (let r = 0; r < runs; r++) {
    const t = await once(tenant.destination);
    if (t.rows !== tenantRows) throw new Error('tenant export without the index wrote the wrong number of rows');
    if (r === 0) noIndexSeq = (await readStats(pool)).seq - beforeNoIndex.seq;
    noIndexRuns.push(t);
  }
  const noIndex = {
    seconds: median(noIndexRuns.map((t) => t.seconds)),
    tableSeconds: median(noIndexRuns.map((t) => t.tableSeconds)),
  };
  const tenantSeconds = median(tenantTimes);
  const fullSeconds = median(fullTimes);
  const result: TenantBench = {
    rows,
    tenants,
    tenant_rows: tenantRows,
    runs,
    tenant_rows_per_s: Math.round(tenantRows / tenantSeconds),
    tenant_seconds: Number(tenantSeconds.toFixed(3)),
    full_rows_per_s: Math.round(rows / fullSeconds),
    full_seconds: Number(fullSeconds.toFixed(3)),
    tenant_time_ratio: Number((tenantSeconds / fullSeconds).toFixed(4)),
    tenant_table_seconds: Number(median(tenantTable).toFixed(3)),
    full_table_seconds: Number(median(fullTable).toFixed(3)),
    table_time_ratio: Number((median(tenantTable) / median(fullTable)).toFixed(4)),
    tenant_rows_read_index: read.idx,
    tenant_rows_read_seq: read.seq,
    no_index_tenant_seconds: Number(noIndex.seconds.toFixed(3)),
    no_index_tenant_time_ratio: Number((noIndex.seconds / fullSeconds).toFixed(4)),
    no_index_rows_read_seq: noIndexSeq,
  };
  log(
    renderTable(
      ['export', 'rows', 'run seconds (median)', 'rows/s', 'time vs full', 'table seconds'],
      [
        [
          'one tenant, index on org_id',
          formatCount(tenantRows),
          result.tenant_seconds.toFixed(3),
          formatCount(result.tenant_rows_per_s),
          `${result.tenant_time_ratio}×`,
          `${result.tenant_table_seconds} (${result.table_time_ratio}×)`,
        ],
        [
          'one tenant, no index (sequential scan)',
          formatCount(tenantRows),
          result.no_index_tenant_seconds.toFixed(3),
          formatCount(Math.round(tenantRows / noIndex.seconds)),
          `${result.no_index_tenant_time_ratio}×`,
          noIndex.tableSeconds.toFixed(3),
        ],
        [
          'whole table',
          formatCount(rows),
          result.full_seconds.toFixed(3),
          formatCount(result.full_rows_per_s),
          '1×',
          String(result.full_table_seconds),
        ],
      ],
      [1, 2, 3, 4, 5],
    ),
  );
  log(
    `rows Postgres read for one tenant export: ${read.idx} through the index, ${read.seq} sequentially; without the index: ${noIndexSeq} sequentially`,
  );
  await pool.query('drop schema bench_tenant cascade');
  await registry.remove('bench-tenant');
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
  };
  const stack = await LocalStack.start();
  const pool = new pg.Pool({ connectionString: stack.databaseUrl });
  pool.on('error', () => {});
  try {
    await migrate(pool);
    Object.assign(process.env, stack.env(), {
      DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    const tenant = await benchTenant({
      stack,
      pool,
      rows: Number(arg('rows', '1000000')),
      runs: Number(arg('runs', '3')),
    });
    process.stdout.write(`${JSON.stringify({ bench: 'dropship-tenant', node: process.version, tenant })}\n`);
  } finally {
    await pool.end();
    await stack.stop();
  }
}
