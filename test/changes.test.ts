import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeStateStore } from '../src/changes/state.js';
import { runInspect } from '../src/cli/inspect.js';
import type { Settings } from '../src/config/settings.js';
import type { Receipt, TableChanges } from '../src/contracts/receipt.js';
import { quoteLiteral } from '../src/contracts/sql.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { loadReceipt } from '../src/customer/loader.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { runTask } from '../src/run/drivers/task.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { duck } from './duck.js';
import { downloadKeys, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Change sets on the real stack (issue 16): seeded random inserts, updates (including rows whose
 * key stays and only other columns change) and hard deletes between runs; after each run, DuckDB
 * applies the delivered change files to the PREVIOUS delivery's snapshot files and must get this
 * delivery's snapshot, row for row; the receipt's counts must match what DuckDB sees between the
 * two snapshots. A run that fails in between must not become the base of the next change set.
 */
let h: Harness;
let settings: Settings;
let c: Customer;
const dir = mkdtempSync(join(tmpdir(), 'dropship-changes-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
const SCHEMA = 'chg';
const T0 = 1_800_000_000_000_000n; // µs; every run gets its own minute folder
let runNo = 0;

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings();
  await h.pool.query(`create schema ${SCHEMA};
    create table ${SCHEMA}.items (id int not null, region text not null, name text, amount numeric(12,2),
      flag boolean, seen timestamptz, tags text[], primary key (region, id));
    create table ${SCHEMA}.log (at int, msg text);
    create table ${SCHEMA}.boom (id int primary key, n numeric(12,2));
    create table ${SCHEMA}.big (id bigint primary key, v text, j jsonb, b bytea, f float8, u uuid);
    insert into ${SCHEMA}.big select i, 'v' || i, jsonb_build_object('i', i), int4send(i), i / 3.0, gen_random_uuid()
      from generate_series(1, 300) i;
    insert into ${SCHEMA}.log values (1, 'no key here')`);
  const customer = await setupCustomer(h.stack, h.registry, {
    accountId: 'chg',
    awsAccountId: '600000000001',
    bucket: 'chg-data',
    prefix: 'dropship',
    schema: SCHEMA,
  });
  const dest = await h.registry.update('chg', { changes: true });
  c = { ...customer, destination: dest };
}, 120_000);

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Delivery {
  receipt: Receipt;
  snapshot: string[];
  changes: string[];
}

async function download(keys: string[], sub: string): Promise<string[]> {
  return downloadKeys(h.stack, c, keys, join(dir, sub));
}

async function run(): Promise<{ ok: boolean; delivery?: Delivery }> {
  runNo++;
  const outcome = await exportAccount(c.destination, {
    sourceUrl: h.stack.databaseUrl,
    settings,
    reporter: silent,
    ledger: h.ledger,
    clock: () => T0 + BigInt(runNo) * 60_000_000n,
  });
  if (!outcome.ok) return { ok: false };
  const receipt = await readReceipt(h.stack, c);
  expect(receipt.run_id).toBe(outcome.runId);
  const items = receipt.tables.items!;
  const ch = items.changes as Extract<TableChanges, { available: true }>;
  return {
    ok: true,
    delivery: {
      receipt,
      snapshot: await download(
        items.files.map((f) => f.key),
        receipt.run_id,
      ),
      changes: await download(
        ch.files.map((f) => f.key),
        receipt.run_id,
      ),
    },
  };
}

const list = (paths: string[]): string => `[${paths.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]`;

/** Applies `next`'s change files to `prev`'s snapshot in DuckDB and compares with `next`'s snapshot. */
async function checkApplies(prev: Delivery, next: Delivery): Promise<void> {
  const ch = next.receipt.tables.items!.changes as Extract<TableChanges, { available: true }>;
  expect(ch.available).toBe(true);
  expect(ch.full_refresh).toBe(false);
  expect(ch.since_run_id).toBe(prev.receipt.run_id);
  const db = await duck();
  try {
    await db.all(`create table cur as select * from read_parquet(${list(prev.snapshot)})`);
    await db.all(`create table nxt as select * from read_parquet(${list(next.snapshot)})`);
    // Independent counts from the two snapshots.
    const [exp] = await db.all(`select
        (select count(*) from nxt n where not exists (select 1 from cur o where o.region = n.region and o.id = n.id))::int as inserted,
        (select count(*) from cur o where not exists (select 1 from nxt n where o.region = n.region and o.id = n.id))::int as deleted,
        (select count(*) from cur o join nxt n using (region, id)
          where (o.name, o.amount, o.flag, o.seen, o.tags::varchar) is distinct from (n.name, n.amount, n.flag, n.seen, n.tags::varchar))::int as updated`);
    expect({ inserted: ch.inserted, updated: ch.updated, deleted: ch.deleted }).toEqual(exp);
    if (next.changes.length > 0) {
      await db.all(`create table chg as select * from read_parquet(${list(next.changes)})`);
      // The recipe in docs/customer/change-sets.md: remove every changed key, insert the new rows of inserts and updates.
      await db.all('delete from cur using chg where cur.region = chg.region and cur.id = chg.id');
      await db.all(`insert into cur select * exclude (_op) from chg where _op <> 'delete'`);
      const [ops] = await db.all(`select
          count(*) filter (where _op = 'insert')::int as inserted,
          count(*) filter (where _op = 'update')::int as updated,
          count(*) filter (where _op = 'delete')::int as deleted,
          count(*) filter (where _op = 'delete' and (name is not null or amount is not null))::int as delete_with_values
        from chg`);
      expect(ops).toEqual({ ...exp, delete_with_values: 0 });
    } else expect(exp).toEqual({ inserted: 0, updated: 0, deleted: 0 });
    const [diff] = await db.all(`select
        (select count(*) from (select * from cur except all select * from nxt))::int as extra,
        (select count(*) from (select * from nxt except all select * from cur))::int as missing,
        (select count(*) from cur)::int as n`);
    expect(diff).toEqual({ extra: 0, missing: 0, n: next.receipt.tables.items!.row_count });
    // A reader that knows only the model's layout (`<table>/*.parquet.gz`) never sees the change files.
    const glob = join(dir, next.receipt.run_id, 'dropship', next.receipt.tables.items!.folder, '*.parquet.gz');
    const [g] = await db.all(`select count(*)::int as n from read_parquet(${quoteLiteral(glob, 'duckdb')})`);
    expect(g).toEqual({ n: next.receipt.tables.items!.row_count });
    for (const f of ch.files) expect(f.key).toContain(`/${next.receipt.tables.items!.folder}/_changes/`);
  } finally {
    db.close();
  }
}

type Mutation =
  | { op: 'insert'; id: number; region: string; name: string | null; amount: number }
  | { op: 'update'; pick: number; name: string | null; amount: number | null; flag: boolean | null }
  | { op: 'delete'; pick: number }
  /** The key itself changes: a delete of the old key and an insert of the new one. */
  | { op: 'rekey'; pick: number };

const REGIONS = ['eu', 'us', "o'hare", 'Ünï 🚀', 'a,b'];
const mutation = fc.oneof(
  fc.record({
    op: fc.constant('insert' as const),
    id: fc.integer({ min: 0, max: 400 }),
    region: fc.constantFrom(...REGIONS),
    name: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
    amount: fc.integer({ min: -100000, max: 100000 }),
  }),
  fc.record({
    op: fc.constant('update' as const),
    pick: fc.nat(),
    name: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
    amount: fc.option(fc.integer({ min: -100000, max: 100000 }), { nil: null }),
    flag: fc.option(fc.boolean(), { nil: null }),
  }),
  fc.record({ op: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('rekey' as const), pick: fc.nat() }),
);

async function apply(ms: Mutation[]): Promise<void> {
  for (const m of ms) {
    if (m.op === 'insert') {
      await h.pool.query(
        `insert into ${SCHEMA}.items values ($1, $2, $3, $4::numeric / 100, $1 % 2 = 0, now(), array[$3, null])
         on conflict do nothing`,
        [m.id, m.region, m.name, m.amount],
      );
      continue;
    }
    const n = Number((await h.pool.query(`select count(*) as n from ${SCHEMA}.items`)).rows[0].n);
    if (n === 0) continue;
    const where = `(region, id) = (select region, id from ${SCHEMA}.items order by region, id offset ${m.pick % n} limit 1)`;
    if (m.op === 'delete') await h.pool.query(`delete from ${SCHEMA}.items where ${where}`);
    else if (m.op === 'rekey')
      await h.pool.query(
        `update ${SCHEMA}.items set id = id + 100000 * (1 + (select count(*) from ${SCHEMA}.items) % 7) where ${where}
           and not exists (select 1 from ${SCHEMA}.items i2 where i2.region = items.region and i2.id = items.id + 100000 * (1 + (select count(*) from ${SCHEMA}.items) % 7))`,
      );
    else
      await h.pool.query(`update ${SCHEMA}.items set name = $1, amount = $2::numeric / 100, flag = $3 where ${where}`, [
        m.name,
        m.amount,
        m.flag,
      ]);
  }
}

describe('change sets', () => {
  let last: Delivery;

  it('first delivery: a full refresh; tables without a primary key say why', async () => {
    await apply(
      Array.from({ length: 30 }, (_, i) => ({
        op: 'insert',
        id: i,
        region: REGIONS[i % 5]!,
        name: `n${i}`,
        amount: i,
      })),
    );
    const r = await run();
    expect(r.ok).toBe(true);
    last = r.delivery!;
    expect(validateReceipt(last.receipt)).toEqual([]);
    expect(last.receipt.tables.items!.changes).toMatchObject({
      available: true,
      full_refresh: true,
      full_refresh_reason: 'first delivery',
      since_run_id: null,
      key_columns: ['region', 'id'],
      inserted: 30,
      files: [],
    });
    expect(last.receipt.tables.log!.changes).toEqual({ available: false, reason: 'no primary key' });
  }, 60_000);

  it('property: previous snapshot + change set = new snapshot, counts match (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 0, maxLength: 40 }), async (ms) => {
        await apply(ms);
        const r = await run();
        expect(r.ok).toBe(true);
        expect(validateReceipt(r.delivery!.receipt)).toEqual([]);
        await checkApplies(last, r.delivery!);
        last = r.delivery!;
      }),
      { seed: 16, numRuns: 8, endOnFailure: true },
    );
  }, 180_000);

  it('a failed run in between: the next change set is relative to the last successful delivery', async () => {
    await apply([
      { op: 'insert', id: 1000, region: 'eu', name: 'only in the failed run', amount: 1 },
      { op: 'update', pick: 3, name: 'changed before the failed run', amount: 7, flag: true },
      { op: 'delete', pick: 5 },
    ]);
    await h.pool.query(`insert into ${SCHEMA}.boom values (1, 'NaN')`); // no Parquet DECIMAL form: the run fails
    const failed = await run();
    expect(failed.ok).toBe(false);
    await h.pool.query(`delete from ${SCHEMA}.boom; delete from ${SCHEMA}.items where id = 1000`);
    await apply([{ op: 'insert', id: 1001, region: 'us', name: 'after', amount: 2 }]);
    const r = await run();
    expect(r.ok).toBe(true);
    await checkApplies(last, r.delivery!); // since_run_id is the last SUCCESSFUL run, and the data agree
    last = r.delivery!;
  }, 60_000);

  it('a schema change is a full refresh; state stays bounded to one state per table', async () => {
    await h.pool.query(`alter table ${SCHEMA}.items add column extra int`);
    const r = await run();
    expect(r.ok).toBe(true);
    expect(r.delivery!.receipt.tables.items!.changes).toMatchObject({
      full_refresh: true,
      full_refresh_reason: 'schema changed',
      since_run_id: last.receipt.run_id,
    });
    const states = await h.pool.query(
      `select table_name, count(*)::int as n from dropship.change_states group by 1 order by 1`,
    );
    // The new (pending → now last successful) state plus at most the previous base per table.
    for (const s of states.rows as { n: number }[]) expect(s.n).toBeLessThanOrEqual(2);
    const { rows, bytes } = await new ChangeStateStore(h.pool).bytesPerRow();
    expect(rows).toBeGreaterThan(0);
    expect(bytes).toBeGreaterThan(0);
  }, 60_000);

  it("pruning keeps the base and never another run's newer state (a run cancelled mid-step must not delete it)", async () => {
    // Prepare: states of one table written by runs in every situation prune meets
    const runs: [string, string][] = [
      ['prune-old', 'succeeded'],
      ['prune-base', 'succeeded'],
      ['prune-failed', 'failed'],
      ['prune-me', 'cancelled'],
      ['prune-next', 'running'],
    ];
    for (const [id, status] of runs)
      await h.pool.query(
        `insert into dropship.runs (run_id, account_id, trigger, status, layout, folder, started_micros)
         values ($1, 'prune-acct', 'manual', $2, 'dreamdata', $1, 1)`,
        [id, status],
      );
    const state = async (runId: string) =>
      (
        await h.pool.query<{ id: string }>(
          `insert into dropship.change_states (account_id, table_name, run_id, signature)
           values ('prune-acct', 't', $1, 's') returning state_id::text as id`,
          [runId],
        )
      ).rows[0]!.id;
    const old = await state('prune-old');
    const base = await state('prune-base');
    const failed = await state('prune-failed');
    const mine = await state('prune-me'); // an earlier attempt of the pruning run
    const next = await state('prune-next'); // the account's next run, between its write and its diff
    // Act: the cancelled run, still in its change-set step, prunes with its base
    await new ChangeStateStore(h.pool).prune('prune-acct', 't', base, 'prune-me', (ids) =>
      h.ledger.runsEndedBadly(ids),
    );
    // Assess
    const left = await h.pool.query<{ id: string }>(
      `select state_id::text as id from dropship.change_states where account_id = 'prune-acct' order by state_id`,
    );
    expect(left.rows.map((r) => r.id)).toEqual([base, next]);
    expect([old, failed, mine].every((id) => !left.rows.some((r) => r.id === id))).toBe(true);
  });

  it('dropship load --changes applies change sets in DuckDB and Postgres (and loads snapshots otherwise)', async () => {
    const s3 = customerS3(h.stack.s3.endpoint, 'us-east-1', c.reader);
    const file = join(dir, 'target.duckdb');
    const receiptUri = 's3://chg-data/dropship/receipt.json';
    try {
      const load = (into: string) => loadReceipt({ s3, receiptUri, into, changes: true, workDir: join(dir, 'w') });
      mkdirSync(join(dir, 'w'), { recursive: true });
      // Both targets hold the last delivery (a full refresh after the schema change): snapshots.
      for (const into of [`duckdb:${file}`, h.stack.databaseUrl])
        expect((await load(into)).find((t) => t.table === 'items')?.via).toBe('snapshot');
      for (const round of [0, 1]) {
        await apply([
          { op: 'insert', id: 2000 + round, region: 'eu', name: `r${round}`, amount: 5 },
          { op: 'update', pick: 1 + round, name: 'updated by load test', amount: null, flag: false },
          { op: 'delete', pick: 7 + round },
        ]);
        const r = await run();
        expect(r.ok).toBe(true);
        const ch = r.delivery!.receipt.tables.items!.changes as Extract<TableChanges, { available: true }>;
        expect(ch.inserted + ch.updated + ch.deleted).toBeGreaterThan(0);
        for (const into of [`duckdb:${file}`, h.stack.databaseUrl]) {
          const loaded = await load(into);
          expect(
            loaded.find((t) => t.table === 'items'),
            into,
          ).toMatchObject({ via: 'changes' });
          expect(
            loaded.find((t) => t.table === 'log'),
            into,
          ).toMatchObject({ via: 'snapshot' });
        }
        // Postgres target (public.items) equals the source table row for row.
        const pgDiff = await h.pool.query(`select
            (select count(*) from (select * from public.items except all select * from ${SCHEMA}.items) a)::int as extra,
            (select count(*) from (select * from ${SCHEMA}.items except all select * from public.items) b)::int as missing`);
        expect(pgDiff.rows[0]).toEqual({ extra: 0, missing: 0 });
        // DuckDB target equals this delivery's snapshot files.
        const db = await duck();
        try {
          await db.all(`attach ${quoteLiteral(file, 'duckdb')} as t (read_only)`);
          const [d] = await db.all(`select
              (select count(*) from (select * from t.items except all select * from read_parquet(${list(r.delivery!.snapshot)})))::int as extra,
              (select count(*) from (select * from read_parquet(${list(r.delivery!.snapshot)}) except all select * from t.items))::int as missing`);
          expect(d).toEqual({ extra: 0, missing: 0 });
        } finally {
          db.close();
        }
        last = r.delivery!;
      }
    } finally {
      s3.destroy();
    }
  }, 120_000);

  it("fan-out with a split table: part 0 computes the whole table's change set; it applies exactly", async () => {
    const prevBig = await download(
      last.receipt.tables.big!.files.map((f) => f.key),
      `${last.receipt.run_id}-big`,
    );
    await h.pool.query(`update ${SCHEMA}.big set v = v || '!' where id % 17 = 0;
      update ${SCHEMA}.big set j = jsonb_build_object('i', -id) where id % 23 = 0;
      update ${SCHEMA}.big set f = 'NaN' where id = 5; update ${SCHEMA}.big set f = '-0' where id = 6;
      delete from ${SCHEMA}.big where id % 31 = 0;
      insert into ${SCHEMA}.big select i, null, null, null, null, null from generate_series(1000, 1010) i;
      analyze ${SCHEMA}.big`);
    const fanout: Settings = { ...h.settings({ DROPSHIP_ROW_GROUP_ROWS: '5000' }), DROPSHIP_SPLIT_ROWS: 100 };
    const messages: TaskMessage[] = [];
    const { run: fanRun } = await startFanOutRun(c.destination, {
      sourceUrl: h.stack.databaseUrl,
      ledger: h.ledger,
      settings: fanout,
      trigger: 'manual',
      queue: { send: async (batch) => void messages.push(...batch) },
    });
    expect(messages.filter((m) => 'table' in m && m.table === 'big').length).toBeGreaterThanOrEqual(2);
    // The first message's worker holds the run's snapshot and exports the pending tasks itself
    // (src/run/lifecycle/shared-snapshot.ts) — here starting from the last part, so part 0 is not first; the
    // later messages find their tasks done.
    for (const m of messages.reverse()) {
      const o = await runTask(m, {
        sourceUrl: h.stack.databaseUrl,
        ledger: h.ledger,
        registry: h.registry,
        settings: fanout,
      });
      expect(
        o.status === 'succeeded' || (o.status === 'skipped' && o.reason === 'already done'),
        JSON.stringify(o),
      ).toBe(true);
    }
    expect((await h.ledger.getRun(fanRun.runId))?.status).toBe('succeeded');
    const receipt = await readReceipt(h.stack, c);
    expect(receipt.run_id).toBe(fanRun.runId);
    expect(validateReceipt(receipt)).toEqual([]);
    const ch = receipt.tables.big!.changes as Extract<TableChanges, { available: true }>;
    expect(ch).toMatchObject({ available: true, full_refresh: false, since_run_id: last.receipt.run_id });
    // `dropship inspect` lists the change sets.
    const receiptFile = join(dir, `${receipt.run_id}-receipt.json`);
    writeFileSync(receiptFile, JSON.stringify(receipt));
    const lines: string[] = [];
    await runInspect(receiptFile, {}, (l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toContain('change sets');
    expect(text).toMatch(
      new RegExp(`big\\s+${last.receipt.run_id}\\s+${ch.inserted}\\s+${ch.updated}\\s+${ch.deleted}\\s+1`),
    );
    expect(text).toMatch(/log\s+—.*no primary key/);
    const next = await download(
      receipt.tables.big!.files.map((f) => f.key),
      `${receipt.run_id}-big`,
    );
    const chg = await download(
      ch.files.map((f) => f.key),
      `${receipt.run_id}-big`,
    );
    const db = await duck();
    try {
      await db.all(`create table cur as select * from read_parquet(${list(prevBig)})`);
      await db.all(`create table nxt as select * from read_parquet(${list(next)})`);
      const [exp] = await db.all(`select
          (select count(*) from nxt where id not in (select id from cur))::int as inserted,
          (select count(*) from cur where id not in (select id from nxt))::int as deleted,
          (select count(*) from cur o join nxt n on o.id = n.id where o is distinct from n)::int as updated`);
      expect({ inserted: ch.inserted, updated: ch.updated, deleted: ch.deleted }).toEqual(exp);
      expect(exp).toMatchObject({ inserted: 11, deleted: 9 });
      await db.all(`create table chg as select * from read_parquet(${list(chg)})`);
      await db.all('delete from cur using chg where cur.id = chg.id');
      await db.all(`insert into cur select * exclude (_op) from chg where _op <> 'delete'`);
      const [diff] = await db.all(`select
          (select count(*) from (select * from cur except all select * from nxt))::int as extra,
          (select count(*) from (select * from nxt except all select * from cur))::int as missing`);
      expect(diff).toEqual({ extra: 0, missing: 0 });
    } finally {
      db.close();
    }
  }, 120_000);
});
