import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import type { Receipt, TableChanges } from '../src/contracts/receipt.js';
import { quoteLiteral } from '../src/contracts/sql.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { runTask } from '../src/run/drivers/task.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { duck } from './duck.js';
import { downloadKeys, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Change sets on tables whose shape the property test (test/changes.test.ts) does not draw: a key with INCLUDE
 * columns, a NOT NULL domain, a key value that no longer reads in its type, a key too long for the state's index.
 * Each account has a schema of its own; every delivery after the first is checked against the customer docs'
 * recipe (remove every changed key, insert the new rows) in DuckDB: previous snapshot + change set = new snapshot.
 * Red-team pass on change sets (2026-12-06): each of these failed the account's every run, or delivered a change
 * set that did not apply.
 */
let h: Harness;
let settings: Settings;
const dir = mkdtempSync(join(tmpdir(), 'dropship-changes-edges-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
const T0 = 1_800_000_000_000_000n;
let runNo = 0;
let aws = 600_000_000_100;

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings();
}, 120_000);

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** An account with change sets on a schema of its own, built by `sql` (`$s` is the schema). */
async function account(name: string, sql: string): Promise<Customer> {
  await h.pool.query(`create schema ${name}; ${sql.replaceAll('$s', name)}`);
  const c = await setupCustomer(h.stack, h.registry, {
    accountId: name,
    awsAccountId: String(aws++),
    bucket: `${name}-data`,
    prefix: 'dropship',
    schema: name,
  });
  return { ...c, destination: await h.registry.update(name, { changes: true }) };
}

async function download(c: Customer, keys: string[], sub: string): Promise<string[]> {
  return downloadKeys(h.stack, c, keys, join(dir, sub));
}

interface Delivery {
  receipt: Receipt;
  changes: TableChanges;
  snapshot: string[];
  changeFiles: string[];
}

/** One run of `c`; it must succeed. `table`'s snapshot and change files, downloaded. */
async function deliver(c: Customer, table: string): Promise<Delivery> {
  runNo++;
  const out = await exportAccount(c.destination, {
    sourceUrl: h.stack.databaseUrl,
    settings,
    reporter: silent,
    ledger: h.ledger,
    clock: () => T0 + BigInt(runNo) * 60_000_000n,
  });
  expect(out.ok, out.ok ? '' : JSON.stringify((out as { failures?: unknown }).failures ?? String(out.error))).toBe(
    true,
  );
  const receipt = await readReceipt(h.stack, c);
  const t = receipt.tables[table]!;
  const changes = t.changes!;
  return {
    receipt,
    changes,
    snapshot: await download(
      c,
      t.files.map((f) => f.key),
      receipt.run_id,
    ),
    changeFiles: changes.available
      ? await download(
          c,
          changes.files.map((f) => f.key),
          receipt.run_id,
        )
      : [],
  };
}

const list = (paths: string[]): string => `[${paths.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]`;

/** The customer docs' recipe applied in DuckDB to `prev`'s snapshot gives `next`'s, row for row. */
async function applies(prev: Delivery, next: Delivery, key: string[]): Promise<{ extra: number; missing: number }> {
  expect(next.changes).toMatchObject({ available: true, full_refresh: false, since_run_id: prev.receipt.run_id });
  const db = await duck();
  try {
    await db.all(`create table cur as select * from read_parquet(${list(prev.snapshot)})`);
    await db.all(`create table nxt as select * from read_parquet(${list(next.snapshot)})`);
    if (next.changeFiles.length > 0) {
      await db.all(`create table chg as select * from read_parquet(${list(next.changeFiles)})`);
      await db.all(`delete from cur using chg where ${key.map((k) => `cur.${k} = chg.${k}`).join(' and ')}`);
      await db.all(`insert into cur select * exclude (_op) from chg where _op <> 'delete'`);
    }
    const [diff] = await db.all(`select
        (select count(*) from (select * from cur except all select * from nxt))::int as extra,
        (select count(*) from (select * from nxt except all select * from cur))::int as missing`);
    return diff as { extra: number; missing: number };
  } finally {
    db.close();
  }
}

describe('change sets on unusual tables', () => {
  it('a primary key with INCLUDE columns: only the key columns are the key; NULLs in included columns apply', async () => {
    const c = await account(
      'chinc',
      `create table $s.inc (id int, note text, v int, constraint inc_pk primary key (id) include (note));
       insert into $s.inc values (1, null, 1), (2, 'a', 2), (3, 'c', 3);`,
    );
    const first = await deliver(c, 'inc');
    expect(first.changes).toMatchObject({ available: true, key_columns: ['id'] });
    await h.pool.query(`delete from chinc.inc where id = 1; update chinc.inc set note = 'b' where id = 2;
      insert into chinc.inc values (4, null, 4);`);
    const second = await deliver(c, 'inc');
    expect(second.changes).toMatchObject({ inserted: 1, updated: 1, deleted: 1 });
    expect(await applies(first, second, ['id'])).toEqual({ extra: 0, missing: 0 });
  });

  it('a NOT NULL domain column: a delete row carries NULL there, and the change set applies', async () => {
    const c = await account(
      'chdom',
      `create domain $s.nn as int not null;
       create table $s.dn (id int primary key, v $s.nn);
       insert into $s.dn values (1, 1), (2, 2), (3, 3);`,
    );
    const first = await deliver(c, 'dn');
    await h.pool.query('delete from chdom.dn where id = 2; update chdom.dn set v = 30 where id = 3');
    const second = await deliver(c, 'dn');
    expect(second.changes).toMatchObject({ inserted: 0, updated: 1, deleted: 1 });
    expect(await applies(first, second, ['id'])).toEqual({ extra: 0, missing: 0 });
  });

  it('a deleted key that no longer reads in its type (an enum value renamed): delivered without a change set, saying why; the next change set applies', async () => {
    const c = await account(
      'chenum',
      `create type $s.st as enum ('cancelled', 'open');
       create table $s.en (s $s.st, id int, v int, primary key (s, id));
       insert into $s.en values ('cancelled', 1, 1), ('open', 2, 2);`,
    );
    await deliver(c, 'en');
    await h.pool.query(`alter type chenum.st rename value 'cancelled' to 'canceled'`);
    // The renamed value's key is gone from the state's point of view: it is a delete that cannot be read back.
    const second = await deliver(c, 'en');
    expect(second.changes).toEqual({
      available: false,
      reason: "the change set could not be built (SQLSTATE 22P02); load this delivery's snapshot",
    });
    // This delivery's state is the next change set's base: it applies to this snapshot.
    await h.pool.query(`update chenum.en set v = 20 where id = 2`);
    const third = await deliver(c, 'en');
    expect(third.changes).toMatchObject({ inserted: 0, updated: 1, deleted: 0 });
    expect(await applies(second, third, ['s', 'id'])).toEqual({ extra: 0, missing: 0 });
  });

  it("a key too long for the state's index: delivered without a change set, saying why, run after run", async () => {
    const c = await account(
      'chlong',
      `create table $s.bk (k bytea primary key, v int);
       insert into $s.bk select decode(string_agg(md5(i::text), '' order by i), 'hex'), 1 from generate_series(1, 94) i;
       insert into $s.bk values ('\\x01', 2);`,
    );
    for (let i = 0; i < 2; i++) {
      const d = await deliver(c, 'bk');
      expect(d.changes).toEqual({
        available: false,
        reason: "the change set could not be built (SQLSTATE 54000); load this delivery's snapshot",
      });
      expect(d.receipt.tables.bk!.row_count).toBe(2);
    }
  });

  it('a split table whose parts were read in different snapshots gets no change set; the next one is a full refresh', async () => {
    // Prepare: a first delivery; then a fan-out run split in parts whose shared snapshot holder died at once
    const c = await account(
      'chsplit',
      `create table $s.sp (id bigint primary key, v text);
       insert into $s.sp select i, 'v' || i from generate_series(1, 300) i; analyze $s.sp;`,
    );
    await deliver(c, 'sp');
    const fanOut: Settings = { ...settings, DROPSHIP_SPLIT_ROWS: 100 };
    const messages: TaskMessage[] = [];
    const { run } = await startFanOutRun(c.destination, {
      sourceUrl: h.stack.databaseUrl,
      ledger: h.ledger,
      settings: fanOut,
      trigger: 'manual',
      queue: { send: async (batch) => void messages.push(...batch) },
    });
    expect(await h.ledger.snapshot.claimHolder({ runId: run.runId, holder: 'a holder that died' })).toBe(true);
    await h.ledger.snapshot.record({ runId: run.runId, exportId: '00000003-000000AB-1', id: '1:1:', at: 'gone' });
    const work = (m: TaskMessage) =>
      runTask(m, { sourceUrl: h.stack.databaseUrl, ledger: h.ledger, registry: h.registry, settings: fanOut });
    const isPart0 = (m: TaskMessage) => 'table' in m && m.table === 'sp' && (m.part ?? 0) === 0;
    // Act: part 0 reads, a writer commits, the other parts read after it
    for (const m of messages.filter(isPart0)) await work(m);
    await h.pool.query(`update chsplit.sp set v = 'changed' where id in (290, 291); delete from chsplit.sp where id = 299;
      insert into chsplit.sp values (5000, 'new')`);
    for (const m of messages.filter((m) => !isPart0(m))) await work(m);
    // Assess
    expect((await h.ledger.getRun(run.runId))?.status).toBe('succeeded');
    const receipt = await readReceipt(h.stack, c);
    expect(receipt.run_id).toBe(run.runId);
    expect(receipt.consistency).toBe('table');
    expect(receipt.tables.sp!.changes).toEqual({
      available: false,
      reason: "the table's parts were read in different snapshots; load this delivery's snapshot",
    });
    // The next delivery has no base state for the table: a full refresh, not a diff against part 0's snapshot
    const next = await deliver(c, 'sp');
    expect(next.changes).toMatchObject({
      available: true,
      full_refresh: true,
      full_refresh_reason: 'previous state missing',
    });
  });
});
