import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStack } from '../src/devstack/stack.js';
import { type Explained, explainLedgerQueries, fillLedger } from './bench/ledger-scale.js';

/**
 * Issue 25 item 6: the queries behind due, claim, sweep, catch-up, slot status, GET /runs, the change-set base,
 * the receipt chain and retention keep using indexes at 10,000 accounts and half a million task rows
 * (100,000 runs; the planner's choices are the same at 5M: `node --import tsx test/bench/ledger-scale.ts`
 * prints those plans). The SQL explained is the code's own (test/bench/ledger-scale.ts). A sequential
 * scan of the ledger's big tables in any of them fails the test; the destinations table may be read
 * whole (due returns every destination of the slot).
 */
const BIG = ['runs', 'run_tasks', 'receipt_chain', 'outcome_events', 'run_outcomes', 'change_states', 'webhook_events'];
let stack: LocalStack;
let pool: pg.Pool;
let plans: Explained[];

beforeAll(async () => {
  stack = await LocalStack.start();
  pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
  pool.on('error', () => {});
  const now = new Date();
  await fillLedger(pool, { accounts: 10_000, runsPerAccount: 10, tasksPerRun: 5 }, now);
  // Retention of 4 days over 5 days of runs: the oldest slot of every account is past it.
  plans = await explainLedgerQueries(pool, now, { retentionDays: 4 });
}, 240_000);

afterAll(async () => {
  await pool?.end();
  await stack?.stop();
});

describe('ledger indexes at scale', () => {
  it('filled the volume it claims', async () => {
    const r = await pool.query(
      'select (select count(*) from dropship.runs)::int as runs, (select count(*) from dropship.run_tasks)::int as tasks, (select count(*) from dropship.destinations)::int as accounts',
    );
    expect(r.rows[0]).toEqual({ runs: 100_000, tasks: 500_000, accounts: 10_000 });
  });

  it('explains every query it names, and none reads a big ledger table sequentially', () => {
    expect([...new Set(plans.map((p) => p.query))]).toEqual([
      'due (registry)',
      'claim',
      'complete',
      'open: free folder',
      'sweep: active runs',
      'sweep: expired tasks',
      'catch-up: slotRuns',
      'slot status: listRuns',
      'API: listRuns',
      'API: listRuns by account',
      'change-set base',
      'receipt chain: nextLink',
      'retention',
    ]);
    // Six retention statements: runs, receipt links, outcome events, webhook events, recorded outcomes, and the
    // API's Idempotency-Key rows (a day of keys, not a big table: no index of its own).
    expect(plans.filter((p) => p.query === 'retention')).toHaveLength(6);
    const scans = plans.flatMap((p) =>
      p.seqScans.filter((r) => BIG.includes(r)).map((r) => `${p.query}: Seq Scan on ${r}\n${p.plan}`),
    );
    expect(scans).toEqual([]);
  });

  it('GET /runs without an account reads its page from an index in its order: no sort, no filtering of runs', () => {
    // Before migration 23, each such page read the runs table whole and sorted it (red team, scale). With an account,
    // its few runs are read through runs_by_account and sorted (no sequential scan: the test above).
    const api = plans.filter((p) => p.query === 'API: listRuns');
    expect(api).toHaveLength(4);
    const unserved = api
      .filter((p) => p.sorts || p.seqScans.length > 0 || p.filtered.includes('runs'))
      .map((p) => `${p.sql}\n${p.plan}`);
    expect(unserved).toEqual([]);
  });
});
