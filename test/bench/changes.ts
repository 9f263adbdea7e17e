/**
 * node --import tsx test/bench/changes.ts [--rows 200000] [--runs 3] [--change-percent 1]
 * (also run by `npm run bench`, which prints its figure under `changes`)
 *
 * The overhead of `--changes` against a plain export of the same table by the same code, in one
 * run, to the local S3:
 *   - plain export (changes off);
 *   - export with changes, first delivery (full refresh: the state is written, no change files);
 *   - export with changes after `change-percent` % of the rows were updated, 0.1 % deleted and
 *     0.1 % inserted (the state is written, diffed, and the changed rows fetched and written).
 * CPU is this process's (process.cpuUsage) plus Postgres' — source and registry are one local
 * server here; its backends' CPU is read from the postmaster's reaped-children counters
 * (/proc/<postmaster>/stat cutime + cstime, 10 ms ticks). State bytes per row: heap + index of
 * dropship.change_rows divided by its rows.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { Destination } from '../../src/accounts/destination.js';
import { Registry } from '../../src/accounts/registry.js';
import { ChangeStateStore } from '../../src/changes/state.js';
import { formatCount, renderTable } from '../../src/cli/format.js';
import { loadSettings } from '../../src/config/settings.js';
import { setupCustomer } from '../../src/devstack/demo.js';
import type { LocalStack } from '../../src/devstack/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { exportAccount } from '../../src/run/drivers/in-process.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import { Ledger } from '../../src/store/ledger/ledger.js';
import { median, runStandalone } from './standalone.js';

export interface ChangesVariant {
  run_seconds: number;
  /** CPU of this process + Postgres backends, per row of the table. */
  cpu_us_per_row: number;
  node_cpu_us_per_row: number;
  pg_cpu_us_per_row: number;
  changed_rows: number;
}

export interface ChangesBench {
  rows: number;
  runs: number;
  change_percent: number;
  plain: ChangesVariant;
  first_delivery: ChangesVariant;
  incremental: ChangesVariant;
  /** Extra CPU-µs per table row of an incremental `--changes` export over a plain one. */
  extra_cpu_us_per_row: number;
  extra_cpu_us_per_row_first: number;
  time_ratio_incremental: number;
  state_bytes_per_row: number;
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** CPU µs of the postmaster's reaped children (every backend that has exited). */
function pgChildrenCpuUs(postmaster: number): number {
  const stat = readFileSync(`/proc/${postmaster}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime is field 16, cstime field 17.
  return (Number(fields[13]) + Number(fields[14])) * 10_000;
}

export async function benchChanges(opts: {
  stack: LocalStack;
  pool: pg.Pool;
  rows: number;
  runs: number;
  changePercent?: number;
}): Promise<ChangesBench> {
  const { stack, pool, rows, runs } = opts;
  const pct = opts.changePercent ?? 1;
  const registry = new Registry(pool);
  const ledger = new Ledger(pool);
  const settings = loadSettings({ ...process.env });
  const reporter = new LogReporter(createLogger({ level: 'silent' }));
  log(`\n== changes: --changes vs plain export, ${rows.toLocaleString('en-US')} rows, ${pct}% updated: generating …`);
  await pool.query(`drop schema if exists bench_changes cascade; create schema bench_changes; select setseed(0.5);
    create table bench_changes.events as
      select i::bigint as id, (i % 100)::int as org_id, gen_random_uuid() as event_id,
             timestamptz '2023-01-01 00:00:00+00' + i * interval '1 second' as occurred_at,
             (array['page_view','form_submit','ad_click','email_open','meeting'])[1 + (i % 5)] as event_type,
             case when random() < 0.1 then null else jsonb_build_object('path', '/p/' || (i % 97), 'n', i) end as properties,
             case when random() < 0.1 then null else round((random() * 2000000 - 1000000)::numeric, 4)::numeric(18,4) end as revenue,
             case when random() < 0.1 then null else random() * 100 end as score
        from generate_series(1, ${rows}) i;
    alter table bench_changes.events add primary key (id);`);
  await pool.query('vacuum analyze bench_changes.events');
  const c = await setupCustomer(stack, registry, {
    accountId: 'bench-changes',
    awsAccountId: '123456789098',
    bucket: 'bench-changes-data',
    schema: 'bench_changes',
  });
  const plainDest: Destination = { ...c.destination, changes: false };
  const changesDest: Destination = { ...c.destination, changes: true };
  const pidRes = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
  const ppid = Number(readFileSync(`/proc/${pidRes.rows[0]!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);

  const once = async (dest: Destination): Promise<{ s: number; node: number; pg: number; changed: number }> => {
    const pg0 = pgChildrenCpuUs(ppid);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const o = await exportAccount(dest, { sourceUrl: stack.databaseUrl, settings, reporter, ledger });
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    // Backends end with their connections: give the postmaster a moment to reap them.
    await new Promise((r) => setTimeout(r, 300));
    const pgUs = pgChildrenCpuUs(ppid) - pg0;
    if (!o.ok) throw new Error(`bench export failed: ${String((o as { error: unknown }).error)}`);
    const ch = o.tables[0]?.changes;
    const changed = ch?.available && !ch.full_refresh ? ch.inserted + ch.updated + ch.deleted : 0;
    return { s, node: cpu.user + cpu.system, pg: pgUs, changed };
  };
  const variant = (xs: { s: number; node: number; pg: number; changed: number }[]): ChangesVariant => {
    const node = median(xs.map((x) => x.node)) / rows;
    const pgc = median(xs.map((x) => x.pg)) / rows;
    return {
      run_seconds: Number(median(xs.map((x) => x.s)).toFixed(3)),
      cpu_us_per_row: Number((node + pgc).toFixed(3)),
      node_cpu_us_per_row: Number(node.toFixed(3)),
      pg_cpu_us_per_row: Number(pgc.toFixed(3)),
      changed_rows: median(xs.map((x) => x.changed)),
    };
  };
  const mutate = async (r: number): Promise<void> => {
    const step = Math.max(1, Math.round(100 / pct));
    await pool.query(`update bench_changes.events set score = coalesce(score, 0) + 1 where id % ${step} = ${r % step}`);
    await pool.query(`delete from bench_changes.events where id % 1000 = ${(r * 7 + 3) % 1000}`);
    await pool.query(
      `insert into bench_changes.events (id, org_id, event_id, occurred_at, event_type)
       select ${rows} + ${r} * 1000000 + i, 1, gen_random_uuid(), now(), 'insert' from generate_series(1, ${Math.max(1, Math.round(rows / 1000))}) i`,
    );
  };

  await once(plainDest); // warm-up
  const plain: Awaited<ReturnType<typeof once>>[] = [];
  const first: Awaited<ReturnType<typeof once>>[] = [];
  const incr: Awaited<ReturnType<typeof once>>[] = [];
  for (let r = 0; r < runs; r++) {
    plain.push(await once(plainDest));
    first.push(await once(changesDest)); // after a plain run: no state to compare with — a full refresh
    await mutate(r);
    incr.push(await once(changesDest));
  }
  const state = await new ChangeStateStore(pool).bytesPerRow();
  const result: ChangesBench = {
    rows,
    runs,
    change_percent: pct,
    plain: variant(plain),
    first_delivery: variant(first),
    incremental: variant(incr),
    extra_cpu_us_per_row: 0,
    extra_cpu_us_per_row_first: 0,
    time_ratio_incremental: 0,
    state_bytes_per_row: Number((state.bytes / Math.max(1, state.rows)).toFixed(1)),
  };
  result.extra_cpu_us_per_row = Number((result.incremental.cpu_us_per_row - result.plain.cpu_us_per_row).toFixed(3));
  result.extra_cpu_us_per_row_first = Number(
    (result.first_delivery.cpu_us_per_row - result.plain.cpu_us_per_row).toFixed(3),
  );
  result.time_ratio_incremental = Number((result.incremental.run_seconds / result.plain.run_seconds).toFixed(3));
  const line = (name: string, v: ChangesVariant): string[] => [
    name,
    v.run_seconds.toFixed(3),
    `${(v.run_seconds / result.plain.run_seconds).toFixed(2)}×`,
    v.cpu_us_per_row.toFixed(2),
    v.node_cpu_us_per_row.toFixed(2),
    v.pg_cpu_us_per_row.toFixed(2),
    formatCount(v.changed_rows),
  ];
  log(
    renderTable(
      ['export', 'run s', 'vs plain', 'CPU µs/row', 'node', 'postgres', 'changed rows'],
      [
        line('plain', result.plain),
        line('--changes, first delivery', result.first_delivery),
        line(`--changes, ${pct}% updated`, result.incremental),
      ],
      [1, 2, 3, 4, 5, 6],
    ),
  );
  log(`state: ${result.state_bytes_per_row} bytes per row (dropship.change_rows heap + index)`);
  await pool.query('drop schema bench_changes cascade');
  await registry.remove('bench-changes');
  return result;
}

await runStandalone(import.meta.url, 'dropship-changes', 'changes', ({ stack, pool, arg }) =>
  benchChanges({
    stack,
    pool,
    rows: Number(arg('rows', '200000')),
    runs: Number(arg('runs', '3')),
    changePercent: Number(arg('change-percent', '1')),
  }),
);
