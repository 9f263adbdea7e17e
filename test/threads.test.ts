import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Settings } from '../src/config/settings.js';
import { createDemoSchema, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { compareTable } from './compare.js';
import { duck } from './duck.js';
import { dropship } from './kit/cli.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * A large table read by two threads (src/pipeline/threads/): the real in-process export, a real Postgres, a local
 * target; DuckDB reads every file back value by value against Postgres. The worker thread runs the TypeScript
 * source through tsx here (the bundle on Lambda, the built CLI's chunk from `dropship`).
 */
let h: Harness;
let pool: pg.Pool;
let settings: Settings;
let dest: Destination;
const root = mkdtempSync(join(tmpdir(), 'dropship-threads-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
const run = (s: Settings) =>
  exportAccount(dest, { sourceUrl: h.stack.databaseUrl, settings: s, reporter: silent, ledger: h.ledger });

/** The files of a table as delivered (keys under the local target's root). */
const filesOf = (t: { files: { key: string }[] }): string[] => t.files.map((f) => join(root, f.key));

beforeAll(async () => {
  h = await startHarness();
  pool = h.pool;
  settings = h.settings({
    DROPSHIP_ROW_GROUP_ROWS: '2000',
    DROPSHIP_SHARD_TARGET_BYTES: String(1024 * 1024),
    DROPSHIP_ALLOW_LOCAL_TARGET: 'true',
    DROPSHIP_TABLE_THREADS: '2',
    DROPSHIP_TABLE_THREADS_MIN_ROWS: '10000',
  });
  const client = await pool.connect();
  try {
    await createDemoSchema(client, 'threads', 60_000, 0.1);
    // Written in id order, never updated: its ids rise with its blocks.
    await client.query(`create table threads.ordered (id bigint primary key, t text not null);
      insert into threads.ordered select g, md5(g::text) from generate_series(1, 50000) g;`);
    await client.query('analyze');
  } finally {
    client.release();
  }
  const d = await setupCustomer(h.stack, h.registry, {
    accountId: 'threads',
    awsAccountId: '333333333333',
    bucket: 'threads-data',
    prefix: 'dropship/threads',
    schema: 'threads',
  });
  dest = { ...d.destination, target: { kind: 'local', root, prefix: d.destination.prefix } };
});

afterAll(async () => {
  await h?.stop();
  rmSync(root, { recursive: true, force: true });
});

// A split needs a second core (src/pipeline/threads/split.ts usableCores): on a one-core runner these are skipped.
describe.skipIf(availableParallelism() < 2)('a large table read by two threads', () => {
  it('reads the large tables in two halves and delivers every row exactly once, in one set of shards', async () => {
    // Act
    const outcome = await run(settings);

    // Assess
    if (!outcome.ok) throw new Error(JSON.stringify(outcome));
    const client = await pool.connect();
    try {
      for (const t of outcome.tables) {
        const files = filesOf(t);
        for (const f of files) expect(existsSync(f), f).toBe(true);
        const diff = await compareTable(client, 'threads', t.table, t.columns, files);
        expect(diff.mismatches, `${t.table}: ${diff.examples.join('; ')}`).toBe(0);
        expect(diff.parquetRows).toBe(diff.pgRows);
        expect(t.rows).toBe(Number((await client.query(`select count(*) from threads.${t.table}`)).rows[0].count));
      }
    } finally {
      client.release();
    }
    // Each thread's row groups hold only its own half: none straddles the first id of the upper half of blocks
    // (one thread reading the whole table in block order would write one that does), and both halves have some.
    const ordered = outcome.tables.find((t) => t.table === 'ordered')!;
    expect(ordered.threads).toBe(2);
    expect(outcome.tables.find((t) => t.table === 'events')!.threads).toBe(2);
    const split = await pool.query(
      `select min(id)::int as id from threads.ordered
        where ctid >= format('(%s,0)', pg_relation_size('threads.ordered') / current_setting('block_size')::int / 2)::tid`,
    );
    const first = Number(split.rows[0].id);
    const db = await duck();
    try {
      const list = filesOf(ordered)
        .map((f) => `'${f}'`)
        .join(', ');
      const groups = await db.all(
        `select min(stats_min_value::bigint)::int as lo, max(stats_max_value::bigint)::int as hi
           from parquet_metadata([${list}]) where path_in_schema = 'id' group by file_name, row_group_id`,
      );
      const below = groups.filter((g) => Number(g.hi) < first).length;
      const above = groups.filter((g) => Number(g.lo) >= first).length;
      expect(below).toBeGreaterThan(0);
      expect(above).toBeGreaterThan(0);
      expect(below + above).toBe(groups.length);
    } finally {
      db.close();
    }
  });

  it('reads with one thread when DROPSHIP_TABLE_THREADS is 1, the same rows', async () => {
    // Act
    const outcome = await run({ ...settings, DROPSHIP_TABLE_THREADS: 1 });

    // Assess
    if (!outcome.ok) throw new Error(JSON.stringify(outcome));
    expect(outcome.tables.every((t) => t.threads === undefined)).toBe(true);
  });

  it('the dropship command reads a large table with two threads too (the built CLI in CI: its chunk starts the thread)', async () => {
    // Act
    const r = await dropship(h.stack, ['export', '--account', 'threads'], {
      env: {
        DROPSHIP_LOG_LEVEL: 'silent',
        DROPSHIP_TABLE_THREADS: '2',
        DROPSHIP_TABLE_THREADS_MIN_ROWS: '10000',
      },
      timeoutMs: 120_000,
    });

    // Assess: the S3 destination got the run; the ledger's task result says how the table was read.
    expect(r.code, r.stderr).toBe(0);
    const task = await pool.query(
      `select t.result->>'threads' as threads, t.rows from dropship.run_tasks t join dropship.runs r using (run_id)
        where r.account_id = 'threads' and t.table_name = 'ordered' order by r.started_at desc limit 1`,
    );
    expect(task.rows[0]).toEqual({ threads: '2', rows: '50000' });
    expect(await h.stack.s3.keys('threads-data')).toContain('dropship/threads/receipt.json');
  });

  /** Source sessions of this account still open, polled until none are left (backends end asynchronously). */
  async function sessionsLeft(client: pg.PoolClient): Promise<number> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const left = await client.query(
        `select count(*)::int as n from pg_stat_activity where application_name like 'dropship threads%'`,
      );
      if (left.rows[0].n === 0 || Date.now() > deadline) return left.rows[0].n;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it.each([
    ['the second thread', 'its last row, in the upper half of blocks', 30000],
    ['the main thread', 'its first row, in the lower half (the second thread is stopped)', 1],
  ])(
    'fails the table when %s cannot export its half (%s), and leaves no connection behind',
    async (_who, _where, id) => {
      // Prepare: a table whose row `id` has no exact Parquet value, written in id order.
      const client = await pool.connect();
      try {
        await client.query(`create table threads.bad (id bigint primary key, v numeric(18,4));
        insert into threads.bad select g, case when g = ${id} then 'NaN'::numeric else g end
          from generate_series(1, 30000) g;
        analyze threads.bad;`);
        const blocks = await client.query(
          `select (ctid::text::point)[0] as block, (select relpages from pg_class where oid = 'threads.bad'::regclass) as pages
           from threads.bad where id = ${id}`,
        );
        const upper = Number(blocks.rows[0].block) >= Math.floor(Number(blocks.rows[0].pages) / 2);
        expect(upper).toBe(id !== 1);

        // Act
        const outcome = await run(settings);

        // Assess
        expect(outcome.ok).toBe(false);
        expect(JSON.stringify(outcome)).toMatch(/NaN has no Parquet DECIMAL value/);
        expect(await sessionsLeft(client)).toBe(0);
      } finally {
        await client.query('drop table if exists threads.bad');
        client.release();
      }
    },
  );
});
