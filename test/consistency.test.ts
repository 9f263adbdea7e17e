import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from '../src/accounts/registry.js';
import { loadSettings } from '../src/config/settings.js';
import { quoteLiteral } from '../src/contracts/sql.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import { LocalStack } from '../src/devstack/stack.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { runTask } from '../src/run/drivers/task.js';
import { Wiring } from '../src/run/wiring.js';
import type { Ledger } from '../src/store/ledger/ledger.js';
import { downloadReceiptFiles } from './compare.js';
import { duck } from './duck.js';
import { dropship, readReceipt } from './kit/index.js';

/**
 * Issue 12: every delivery is one consistent snapshot, on every path. A writer keeps moving amounts
 * from rows of one table to rows of another (the total over both is constant) and inserting parent
 * and child rows in pairs (every child has its parent) while the account is exported; tables are
 * big enough, and exported one at a time, that their tasks start a second or more apart. Every
 * delivered dump, read back with DuckDB, must satisfy both invariants: on the CLI path, on the
 * fan-out path run locally (`export --via-queue`, 2 workers) with split tables, and the receipt
 * must say `consistency: "delivery"`. When the shared snapshot is gone, the receipt must say
 * `consistency: "table"` and list each table's snapshot instead of claiming one.
 */
const TOTAL = 100_000 * 1_000;
let stack: LocalStack;
let wiring: Wiring;
let pool: pg.Pool;
let ledger: Ledger;
let registry: Registry;
let cust: Customer;
const work = mkdtempSync(join(tmpdir(), 'dropship-consistency-'));
const savedEnv = { ...process.env };

beforeAll(async () => {
  stack = await LocalStack.start();
  // The in-process parts (the last test) reach the stack through standard settings, as the CLI does.
  Object.assign(process.env, stack.env(), { DROPSHIP_S3_FORCE_PATH_STYLE: 'true', DROPSHIP_LOG_LEVEL: 'silent' });
  wiring = new Wiring({ settings: loadSettings(), databaseUrl: stack.databaseUrl, poolMax: 6 });
  pool = await wiring.pool();
  ledger = await wiring.ledger();
  registry = await wiring.registry();
  // Exported in name order: parents before the big table before children, amounts on both sides of it.
  await pool.query(`create schema cons;
    create table cons.a_parents (id bigint primary key, note text not null);
    create table cons.b_amounts (id bigint primary key, amount bigint not null);
    create table cons.c_big (id bigint primary key, pad text not null);
    create table cons.d_amounts (id bigint primary key, amount bigint not null);
    create table cons.e_children (id bigint primary key, parent_id bigint not null, note text not null);
    insert into cons.a_parents select i, md5(i::text) from generate_series(1, 60000) i;
    insert into cons.e_children select i, i, md5(i::text) from generate_series(1, 60000) i;
    insert into cons.b_amounts select i, 1000 from generate_series(1, 50000) i;
    insert into cons.d_amounts select i, 1000 from generate_series(1, 50000) i;
    insert into cons.c_big select i, md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text)
      from generate_series(1, 240000) i;
    create sequence cons.pairs start 1000000;
    analyze cons.a_parents, cons.b_amounts, cons.c_big, cons.d_amounts, cons.e_children;`);
  cust = await setupCustomer(stack, registry, {
    accountId: 'cons',
    awsAccountId: '210000000012',
    bucket: 'cons-data',
    schema: 'cons',
  });
}, 120_000);

afterAll(async () => {
  await wiring?.close();
  await stack?.stop();
  process.env = savedEnv;
  rmSync(work, { recursive: true, force: true });
});

/** Moves amounts b → d and inserts parent/child pairs, each in one transaction, until stopped. */
function writer(): { stop: () => Promise<number> } {
  let running = true;
  let commits = 0;
  const done = (async () => {
    const c = await pool.connect();
    try {
      while (running) {
        const from = 1 + Math.floor(Math.random() * 50000);
        const to = 1 + Math.floor(Math.random() * 50000);
        await c.query(`begin;
          update cons.b_amounts set amount = amount - 7 where id = ${from};
          update cons.d_amounts set amount = amount + 7 where id = ${to};
          with p as (insert into cons.a_parents select nextval('cons.pairs'), 'p' returning id)
          insert into cons.e_children select id, id, 'c' from p;
          commit;`);
        commits++;
      }
    } finally {
      c.release();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return commits;
    },
  };
}

/** Opens a fan-out run of account `cons` whose task messages are collected here instead of sent to SQS. */
async function fanOutRun() {
  const settings = loadSettings();
  const sent: TaskMessage[] = [];
  const { run } = await startFanOutRun(await registry.get('cons'), {
    sourceUrl: stack.databaseUrl,
    ledger,
    settings,
    queue: { send: async (m) => void sent.push(...m) },
    trigger: 'manual',
  });
  return { settings, run, sent };
}

const cli = (args: string[], env: Record<string, string>) => dropship(stack, args, { env, timeoutMs: 120_000 });

/** The delivered dump's invariants, read back from the Parquet files with DuckDB. */
async function invariants(): Promise<{ total: number; orphans: number; children: number }> {
  const receipt = await readReceipt(stack, cust);
  const dir = mkdtempSync(join(work, 'dump-'));
  const files = await downloadReceiptFiles(
    stack.s3.endpoint,
    cust.destination.region,
    cust.reader,
    cust.destination.bucket,
    receipt,
    dir,
  );
  const list = (t: string) =>
    `read_parquet([${files
      .get(t)!
      .map((p) => quoteLiteral(p, 'duckdb'))
      .join(', ')}])`;
  const db = await duck();
  try {
    const [sum] = await db.all(
      `select (select sum(amount) from ${list('b_amounts')}) + (select sum(amount) from ${list('d_amounts')}) as total`,
    );
    const [orph] = await db.all(
      `select count(*) as orphans, (select count(*) from ${list('e_children')}) as children
         from ${list('e_children')} c where not exists (select 1 from ${list('a_parents')} p where p.id = c.parent_id)`,
    );
    return { total: Number(sum!.total), orphans: Number(orph!.orphans), children: Number(orph!.children) };
  } finally {
    db.close();
  }
}

/** Seconds between the first and the last task start of a run (they must be apart for the test to bite). */
async function startSpread(runId: string): Promise<number> {
  const t = (await ledger.tasks(runId)).map((x) => x.startedAt!.getTime());
  return (Math.max(...t) - Math.min(...t)) / 1000;
}

describe('one consistent snapshot per delivery under a concurrent writer', () => {
  it('the CLI path (in-process, tables one at a time)', async () => {
    const w = writer();
    const res = await cli(['export', '--account', 'cons'], { DROPSHIP_TABLE_CONCURRENCY: '1' });
    const commits = await w.stop();
    expect(res.code, res.stderr).toBe(0);
    const receipt = await readReceipt(stack, cust);
    const spread = await startSpread(receipt.run_id);
    const inv = await invariants();
    console.log(`CLI: ${commits} writer commits during the export; task starts ${spread.toFixed(1)} s apart`);
    expect(commits).toBeGreaterThan(50);
    expect(spread).toBeGreaterThan(0.5);
    expect(inv.orphans).toBe(0);
    expect(inv.total).toBe(TOTAL);
    expect(validateReceipt(receipt)).toEqual([]);
    expect(receipt.consistency).toBe('delivery');
    expect(receipt.snapshot?.id).toMatch(/^\d+:\d+:/);
  }, 120_000);

  it('the fan-out path: export --via-queue with 2 workers, split tables', async () => {
    // A message of another run on the shared queue must survive the loops (handed back, not deleted).
    const foreign = JSON.stringify({ runId: '20990101T000000Z-abcdef', accountId: 'other', table: 'x' });
    stack.sqs.deliver(stack.taskQueueUrl, foreign);
    const w = writer();
    const res = await cli(['export', '--account', 'cons', '--via-queue', '--workers', '2'], {
      DROPSHIP_SPLIT_ROWS: '50000',
    });
    const commits = await w.stop();
    expect(res.code, res.stderr).toBe(0);
    const receipt = await readReceipt(stack, cust);
    const tasks = await ledger.tasks(receipt.run_id);
    const spread = await startSpread(receipt.run_id);
    const inv = await invariants();
    console.log(
      `via-queue: ${tasks.length} tasks, ${commits} writer commits; task starts ${spread.toFixed(1)} s apart\n${res.stdout}`,
    );
    // Split tables really were split, and every part read in the one snapshot.
    expect(tasks.filter((t) => t.table === 'c_big').length).toBeGreaterThan(1);
    expect(tasks.filter((t) => t.table === 'e_children').length).toBeGreaterThan(1);
    expect(commits).toBeGreaterThan(50);
    expect(spread).toBeGreaterThan(0.5);
    expect(inv.orphans).toBe(0);
    expect(inv.total).toBe(TOTAL);
    expect(validateReceipt(receipt)).toEqual([]);
    expect(receipt.consistency).toBe('delivery');
    expect(new Set(tasks.map((t) => t.result?.snapshot?.id)).size).toBe(1);
    expect(stack.sqs.pending(stack.taskQueueUrl).map((m) => m.body)).toContain(foreign);
    // The same summary as the in-process export.
    expect(res.stdout).toMatch(/cons/);
    expect(res.stdout).toMatch(/e_children|5 tables|tables/);
  }, 120_000);

  it('a task that cannot import the shared snapshot reads in its own, and the receipt says so', async () => {
    // Prepare: a run whose snapshot holder died right after recording it (the snapshot is gone).
    const { settings, run, sent } = await fanOutRun();
    expect(run.error).toBeNull();
    expect(await ledger.snapshot.claimHolder({ runId: run.runId, holder: 'a worker that died' })).toBe(true);
    await ledger.snapshot.record({
      runId: run.runId,
      exportId: '00000003-000000AB-1',
      id: '1:1:',
      at: '2026-01-01T00:00:00.000000Z',
    });
    // Act: the tasks run while the writer writes.
    const w = writer();
    for (const m of sent) {
      const out = await runTask(m, { sourceUrl: stack.databaseUrl, ledger, registry, settings });
      expect(out.status).not.toBe('failed');
    }
    await w.stop();
    // Assess: a receipt that does not claim one snapshot, and says which table was read in which.
    const receipt = await readReceipt(stack, cust);
    expect(receipt.run_id).toBe(run.runId);
    expect(validateReceipt(receipt)).toEqual([]);
    expect(receipt.consistency).toBe('table');
    const tasks = await ledger.tasks(run.runId);
    for (const t of tasks) {
      const listed = receipt.tables[t.table]!.snapshots!;
      const entry = listed.find((s) => s.parts.includes(t.part));
      expect(entry?.id).toBe(t.result!.snapshot!.id);
      expect(entry?.id).not.toBe('1:1:');
    }
  }, 120_000);

  it('a holder stopped at its deadline mid-run lets go; the run still completes, and its receipt says table', async () => {
    // Prepare: a run whose tasks are all on the (fake) queue.
    const { settings, run, sent } = await fanOutRun();
    // Act: the first task's worker becomes the holder and reaches its deadline while exporting.
    const deadline = new AbortController();
    const first = runTask(sent[0]!, {
      sourceUrl: stack.databaseUrl,
      ledger,
      registry,
      settings,
      signal: deadline.signal,
    });
    for (let i = 0; i < 200 && !(await ledger.snapshot.get(run.runId))?.exportId; i++)
      await new Promise((r) => setTimeout(r, 25));
    deadline.abort(new Error('deadline'));
    expect((await first).status).toBe('retry');
    expect((await ledger.snapshot.get(run.runId))?.released).toBe(true);
    const w = writer();
    for (const m of sent) await runTask(m, { sourceUrl: stack.databaseUrl, ledger, registry, settings });
    await w.stop();
    // Assess: not stuck, a receipt, and it does not claim one snapshot.
    expect((await ledger.getRun(run.runId))?.status).toBe('succeeded');
    const receipt = await readReceipt(stack, cust);
    expect(receipt.run_id).toBe(run.runId);
    expect(receipt.consistency).toBe('table');
    expect(validateReceipt(receipt)).toEqual([]);
  }, 120_000);
});
