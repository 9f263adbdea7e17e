import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdempotencyStore, KEEP_HOURS } from '../src/api/idempotency.js';
import type { Settings } from '../src/config/settings.js';
import type { Receipt, TableChanges } from '../src/contracts/receipt.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { tidy } from '../src/schedule/tidy.js';
import { pruneLedger } from '../src/store/ledger/retention.js';
import { addDestination, runOf } from './kit/runs.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 25 item 6: ledger retention on a real ledger, with time as an input. Runs of "before" end,
 * the clock reads the instant between them and "after" (`cut`), then the periodic function runs
 * with its clock at `cut` + DROPSHIP_LEDGER_RETENTION_DAYS: everything of "before" is older than the
 * retention, everything of "after" is not — no row is backdated, no calendar date is written here.
 *
 *   ret   (change sets on) before: succeeded, succeeded, failed. Its last succeeded run is the
 *         change-set base and its receipt the chain's last link: both stay, the rest goes.
 *   ret2  before: succeeded; after: succeeded → the old one goes (no longer the base), the new stays.
 *   ret3  before: a run still running (opened, never ended) → stays however old.
 * Then the next run of `ret` still chains (sequence 3, previous_receipt_sha256 = SHA-256 of receipt 2's
 * bytes as the customer has them) and its change set is against run 2, with the right counts.
 */
let h: Harness;
let settings: Settings;
let ret: Customer;
let ret2: Customer;
const silent = new LogReporter(createLogger({ level: 'silent' }));
const DAYS = 30;
const T0 = BigInt(Date.now()) * 1000n;
let runNo = 0;

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({ DROPSHIP_LEDGER_RETENTION_DAYS: String(DAYS) });
  await h.pool.query(`
    create schema ret; create table ret.items (id int primary key, v text, n numeric(10, 2));
    insert into ret.items select i, 'v' || i, i from generate_series(1, 100) i;
    create schema ret2; create table ret2.t (id int primary key); insert into ret2.t values (1), (2);
    create schema ret3; create table ret3.t (id int primary key);`);
  const c = await setupCustomer(h.stack, h.registry, {
    accountId: 'ret',
    awsAccountId: '320000000001',
    bucket: 'ret-data',
    schema: 'ret',
  });
  ret = { ...c, destination: await h.registry.update('ret', { changes: true }) };
  ret2 = await setupCustomer(h.stack, h.registry, {
    accountId: 'ret2',
    awsAccountId: '320000000002',
    bucket: 'ret2-data',
    schema: 'ret2',
  });
  await setupCustomer(h.stack, h.registry, {
    accountId: 'ret3',
    awsAccountId: '320000000003',
    bucket: 'ret3-data',
    schema: 'ret3',
  });
}, 120_000);

afterAll(async () => h?.stop());

async function run(c: Customer): Promise<{ ok: boolean; runId: string }> {
  runNo++;
  const o = await exportAccount(c.destination, {
    sourceUrl: h.stack.databaseUrl,
    settings,
    reporter: silent,
    ledger: h.ledger,
    // Every run its own minute folder.
    clock: () => T0 + BigInt(runNo) * 60_000_000n,
  });
  return { ok: o.ok, runId: o.runId! };
}

async function receiptBytes(c: Customer): Promise<string> {
  const s3 = customerS3(h.stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: 'receipt.json' }));
    return await res.Body!.transformToString();
  } finally {
    s3.destroy();
  }
}

const count = async (sql: string, args: unknown[] = []): Promise<number> =>
  Number((await h.pool.query(`select count(*)::int as n from ${sql}`, args)).rows[0].n);

describe('ledger retention', () => {
  it('prunes what is older than the retention, keeps the chain’s last link, the change-set base and active runs; the next run chains and its change set is right', async () => {
    // before
    const r1 = await run(ret);
    await h.pool.query(`update ret.items set v = 'changed' where id <= 10; delete from ret.items where id > 95`);
    const r2 = await run(ret);
    const receipt2 = await receiptBytes(ret);
    // A value with no Parquet DECIMAL fails the run (after its change state may have been written).
    await h.pool.query(`insert into ret.items values (1000, 'bad', 'NaN')`);
    const r3 = await run(ret);
    await h.pool.query('delete from ret.items where id = 1000');
    const old2 = await run(ret2);
    const active = await h.ledger.openRun(
      runOf((await h.registry.get('ret3')) as Parameters<typeof runOf>[0], { tables: ['t'] }),
    );
    expect([r1.ok, r2.ok, r3.ok, old2.ok]).toEqual([true, true, false, true]);
    const cut = new Date((await h.pool.query<{ t: Date }>('select clock_timestamp() as t')).rows[0]!.t);
    await new Promise((r) => setTimeout(r, 20));
    // after
    const new2 = await run(ret2);
    expect(new2.ok).toBe(true);

    const beforeRows = {
      runs: await count('dropship.runs'),
      tasks: await count('dropship.run_tasks'),
      links: await count('dropship.receipt_chain'),
      states: await count(`dropship.change_states where account_id = 'ret'`),
      events: await count('dropship.outcome_events'),
    };
    expect(beforeRows.runs).toBe(6);
    expect(beforeRows.links).toBe(4);

    // The periodic function, its clock DAYS after the cut (destinations disabled meanwhile, so its
    // catch-up does not open the future's slots; the sweep sees the active run alive).
    for (const a of ['ret', 'ret2', 'ret3']) await h.registry.setEnabled(a, false);
    const sent: TaskMessage[] = [];
    const result = await tidy({
      ledger: h.ledger,
      registry: h.registry,
      settings,
      log: createLogger({ level: 'silent' }),
      queue: { send: async (m: TaskMessage[]) => void sent.push(...m) },
      opens: { send: async () => {} },
      sourceUrl: h.stack.databaseUrl,
      now: () => new Date(cut.getTime() + DAYS * 86_400_000),
      gauges: () => {},
    });
    for (const a of ['ret', 'ret2', 'ret3']) await h.registry.setEnabled(a, true);
    expect(sent).toEqual([]);
    expect(result.pruned).toMatchObject({ runs: 3, receiptLinks: 2, complete: true });

    const left = (await h.pool.query<{ run_id: string }>('select run_id from dropship.runs order by run_id')).rows.map(
      (r) => r.run_id,
    );
    expect(left.sort()).toEqual([r2.runId, active.runId, new2.runId].sort());
    // Cascades: no task or change state of a pruned run is left.
    expect(await count('dropship.run_tasks where run_id <> all($1)', [left])).toBe(0);
    expect(await count('dropship.run_tasks where run_id = $1', [active.runId])).toBe(1);
    expect(await count('dropship.change_states where run_id <> all($1)', [left])).toBe(0);
    expect(await count(`dropship.change_states where run_id = $1`, [r2.runId])).toBe(1);
    // The chain keeps its last link per destination: ret's receipt 2, ret2's newest.
    const links = (
      await h.pool.query<{ account_id: string; sequence: string }>(
        'select account_id, sequence from dropship.receipt_chain order by account_id',
      )
    ).rows.map((r) => `${r.account_id}:${r.sequence}`);
    expect(links).toEqual(['ret:2', 'ret2:2']);
    // Delivered outcome events of "before" are gone; "after"'s stays.
    expect(await count('dropship.outcome_events where run_id = $1', [new2.runId])).toBe(1);
    expect(await count('dropship.outcome_events where run_id = any($1)', [[r1.runId, r3.runId, old2.runId]])).toBe(0);

    // The next run of ret: chains on receipt 2, and its change set is against run 2.
    await h.pool.query(`insert into ret.items values (500, 'new', 5); update ret.items set n = 0 where id = 20`);
    const r4 = await run(ret);
    expect(r4.ok).toBe(true);
    const receipt4 = JSON.parse(await receiptBytes(ret)) as Receipt;
    expect(receipt4.run_id).toBe(r4.runId);
    expect(receipt4.sequence).toBe(3);
    expect(receipt4.previous_receipt_sha256).toBe(createHash('sha256').update(receipt2).digest('hex'));
    const ch = receipt4.tables.items!.changes as Extract<TableChanges, { available: true }>;
    expect(ch).toMatchObject({ since_run_id: r2.runId, full_refresh: false, inserted: 1, updated: 1, deleted: 0 });
  });

  it('deletes in batches and stops at its time budget, going on at the next call', async () => {
    const d = await addDestination(h, 'ret4');
    // Three ended runs of ret4, all older than the retention at the clock used below.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await h.ledger.openRun(runOf(d, { tables: ['t'], runId: `r${i}-${Date.now()}` }));
      await h.ledger.failRun({ runId: r.runId, error: 'test' });
      ids.push(r.runId);
    }
    const later = new Date(Date.now() + (DAYS + 1) * 86_400_000);
    let ticks = 0;
    const none = await pruneLedger(h.pool, { now: later, retentionDays: DAYS, batch: 1, budgetMs: 0 });
    expect(none).toMatchObject({ runs: 0, complete: false });
    // A clock that ticks once per look: the start, then one look before each statement — a budget of 3
    // lets two one-row batches of runs through, then it stops.
    const part = await pruneLedger(h.pool, {
      now: later,
      retentionDays: DAYS,
      batch: 1,
      budgetMs: 3,
      elapsed: () => ticks++,
    });
    expect(part).toMatchObject({ runs: 2, complete: false });
    const rest = await pruneLedger(h.pool, { now: later, retentionDays: DAYS, batch: 1 });
    expect(rest.runs).toBeGreaterThanOrEqual(1);
    expect(rest.complete).toBe(true);
    expect(await count('dropship.runs where run_id = any($1)', [ids])).toBe(0);
  });

  it('prunes the API’s Idempotency-Key rows older than their 24 h (in batches), keeps younger ones', async () => {
    const store = new IdempotencyStore(h.pool);
    const createdAt = async (key: string): Promise<Date> =>
      (await h.pool.query('select created_at from dropship.api_idempotency where key = $1', [key])).rows[0].created_at;
    await store.reserve('arn:aws:iam::111111111111:user/vendor', 'ret-old-1', 'h1');
    await store.complete('arn:aws:iam::111111111111:user/vendor', 'ret-old-1', 201, { ok: true });
    await store.reserve('arn:aws:iam::111111111111:user/vendor', 'ret-old-2', 'h2');
    const older = await createdAt('ret-old-2');
    await new Promise((r) => setTimeout(r, 20));
    await store.reserve('arn:aws:iam::111111111111:user/vendor', 'ret-young', 'h3');
    const younger = await createdAt('ret-young');
    expect(younger.getTime()).toBeGreaterThan(older.getTime());
    // The clock reads KEEP_HOURS after the instant between the old keys and the young one.
    const between = (older.getTime() + younger.getTime()) / 2;
    const now = new Date(between + KEEP_HOURS * 3_600_000);
    const r = await pruneLedger(h.pool, { now, retentionDays: DAYS, batch: 1 });
    expect(r).toMatchObject({ apiIdempotency: 2, complete: true });
    const left = await h.pool.query<{ key: string }>(
      "select key from dropship.api_idempotency where key like 'ret-%' order by key",
    );
    expect(left.rows.map((x) => x.key)).toEqual(['ret-young']);
  });
});
