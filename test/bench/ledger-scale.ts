import type { Pool, QueryResult } from 'pg';
import pg from 'pg';
import { Registry } from '../../src/accounts/registry.js';
import { DEFAULT_SLOTS } from '../../src/contracts/slots.js';
import { LocalStack } from '../../src/devstack/stack.js';
import { nextLink } from '../../src/receipt/chain.js';
import { freeFolder, Ledger } from '../../src/store/ledger/ledger.js';
import { pruneLedger } from '../../src/store/ledger/retention.js';

/**
 * The ledger at scale (issue 25): fills a throwaway dropship database with a realistic volume —
 * `accounts` destinations, each with `runsPerAccount` scheduled runs (two slots a day, going back
 * runsPerAccount / 2 days from the clock's now), `tasksPerRun` tasks each, a receipt-chain link, an
 * outcome event (delivered) and a recorded outcome per ended run, 2 % of accounts with a run still
 * active — then ANALYZEs it and EXPLAINs the queries the code runs for due (registry), claim and
 * complete (worker), sweep (active runs, their tasks), catch-up (slotRuns), slot status (listRuns by
 * slot), the change-set base, the receipt chain and retention. The SQL explained is the code's own:
 * the ledger, registry and pruning are given a pool whose `query` EXPLAINs what it is asked.
 *
 *   node --import tsx test/bench/ledger-scale.ts [--accounts 10000] [--runs 100] [--tasks-per-run 5]
 *
 * (defaults: 10,000 accounts × 100 runs × 5 tasks = 1M runs, 5M task rows). test/ledger-indexes.test.ts
 * runs the same at ~500k task rows and asserts no sequential scan of the ledger's big tables.
 */
export interface Volume {
  accounts: number;
  runsPerAccount: number;
  tasksPerRun: number;
}

/** Fills the ledger; `now` is the clock (runs go back from it). Returns seconds taken. */
export async function fillLedger(pool: Pool, v: Volume, now: Date): Promise<number> {
  const t0 = performance.now();
  const c = await pool.connect();
  try {
    // Bulk load: no triggers (the outcome events are written here as the trigger would) and no FK checks.
    await c.query(`set session_replication_role = replica`);
    await c.query(
      `insert into dropship.destinations (account_id, plan, bucket, region, role_arn, external_id, source_schema)
       select 'acct-' || lpad(i::text, 6, '0'), case when i % 10 = 0 then 'free' else 'paid' end,
              'bucket-' || i, 'us-east-1', 'arn:aws:iam::123456789012:role/dropship-' || i, md5(i::text), 'acct_' || i
         from generate_series(1, $1::int) i`,
      [v.accounts],
    );
    // Run j of an account (0 = oldest): slot j % 2 of day floor(j / 2); the newest run of every 50th
    // account is still running; every 33rd run failed.
    await c.query(
      `insert into dropship.runs (run_id, account_id, trigger, slot, slot_date, status, layout, folder, started_micros,
                                  started_at, finished_at, heartbeat_at, owner, destination_generation, destination_version,
                                  receipt_key, dispatched_at, destination)
       select 'run-' || d.i || '-' || j, d.account_id, 'schedule', case when j % 2 = 0 then '04:00' else '15:00' end,
              (r.at at time zone 'UTC')::date,
              case when j = $2::int - 1 and d.i % 50 = 0 then 'running' when (d.i + j) % 33 = 0 then 'failed' else 'succeeded' end,
              'dreamdata', to_char(r.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI'),
              (extract(epoch from r.at) * 1e6)::bigint, r.at,
              case when j = $2::int - 1 and d.i % 50 = 0 then null else r.at + interval '5 minutes' end,
              case when j = $2::int - 1 and d.i % 50 = 0 then $3::timestamptz else r.at + interval '5 minutes' end,
              'fan-out', d.generation, 1, 'receipt.json', r.at,
              jsonb_build_object('accountId', d.account_id, 'bucket', d.bucket, 'prefix', d.prefix, 'generation', d.generation)
         from (select row_number() over (order by account_id) as i, account_id, generation, bucket, prefix
                 from dropship.destinations) d
        cross join generate_series(0, $2::int - 1) j
        cross join lateral (select date_trunc('day', $3::timestamptz at time zone 'UTC') at time zone 'UTC'
                                   - make_interval(days => ($2::int - 1 - j) / 2 + 1)
                                   + case when j % 2 = 0 then interval '4 hours' else interval '15 hours' end as at) r
        where d.i <= $1::int`,
      [v.accounts, v.runsPerAccount, now],
    );
    await c.query(
      `insert into dropship.run_tasks (run_id, table_name, status, attempts, rows, bytes, started_at, finished_at)
       select r.run_id, 't' || k, case when r.status = 'running' then 'pending' else 'succeeded' end,
              case when r.status = 'running' then 0 else 1 end, 1000, 100000, r.started_at, r.finished_at
         from dropship.runs r cross join generate_series(1, $1) k`,
      [v.tasksPerRun],
    );
    await c.query(
      `insert into dropship.receipt_chain (account_id, generation, sequence, run_id, receipt_key, sha256, published_at, bucket, etag)
       select account_id, destination_generation, row_number() over (partition by account_id order by started_at),
              run_id, 'receipt.json', md5(run_id) || md5(run_id), finished_at, 'bucket', md5(run_id)
         from dropship.runs where status = 'succeeded'`,
    );
    await c.query(
      `insert into dropship.outcome_events (run_id, account_id, status, generation, rows, bytes, seconds, ended_at,
                                            attempts, next_attempt_at, delivered_at)
       select run_id, account_id, status, destination_generation, 1000, 100000, 300, finished_at, 1, finished_at,
              finished_at + interval '1 minute'
         from dropship.runs where status <> 'running'`,
    );
    await c.query(
      `insert into dropship.run_outcomes (run_id, account_id, ok, recorded_at, ended_at)
       select run_id, account_id, status = 'succeeded', finished_at, finished_at from dropship.runs where status <> 'running'`,
    );
    // Change sets on for every 10th account: one state per table of its last succeeded run.
    await c.query(
      `insert into dropship.change_states (account_id, table_name, run_id, signature, rows, generation)
       select r.account_id, 't' || k, r.run_id, 'sig', 1000, r.destination_generation
         from (select distinct on (account_id) account_id, run_id, destination_generation from dropship.runs
                where status = 'succeeded' order by account_id, finished_at desc) r
        cross join generate_series(1, $1) k
        where right(r.account_id, 1) = '0'`,
      [v.tasksPerRun],
    );
    await c.query(
      `insert into dropship.webhook_events (account_id, type, body, created_at, attempts, delivered_at, generation)
       select account_id, 'run.succeeded', '{}', finished_at, 1, finished_at, destination_generation
         from dropship.runs where status = 'succeeded' and right(account_id, 1) = '0'`,
    );
    await c.query(`set session_replication_role = origin`);
    await c.query('analyze');
  } finally {
    c.release();
  }
  return (performance.now() - t0) / 1000;
}

export interface Explained {
  query: string;
  sql: string;
  plan: string;
  /** Relations read by a sequential scan anywhere in the plan. */
  seqScans: string[];
  /** The plan sorts (a Sort node anywhere): the order was not read from an index. */
  sorts: boolean;
  /** Relations whose scan filters rows after reading them (a condition its index does not serve). */
  filtered: string[];
}

/** A pool whose `query` EXPLAINs the statement it is given (and answers with no rows). */
function explainingPool(pool: Pool, out: Explained[], name: () => string): Pool {
  const query = async (text: string, params?: unknown[]): Promise<QueryResult> => {
    const json = await pool.query(`explain (format json) ${text}`, params);
    const txt = await pool.query(`explain ${text}`, params);
    const seq: string[] = [];
    const filtered: string[] = [];
    let sorts = false;
    const walk = (n: Record<string, unknown>) => {
      if (n['Node Type'] === 'Seq Scan') seq.push(String(n['Relation Name']));
      if (n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort') sorts = true;
      if (n['Relation Name'] !== undefined && n.Filter !== undefined) filtered.push(String(n['Relation Name']));
      for (const p of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(p);
    };
    walk(json.rows[0]['QUERY PLAN'][0].Plan);
    out.push({
      query: name(),
      sql: text.replace(/\s+/g, ' ').trim(),
      plan: txt.rows.map((r) => r['QUERY PLAN']).join('\n'),
      seqScans: seq,
      sorts,
      filtered,
    });
    return { rows: [], rowCount: 0, command: '', oid: 0, fields: [] };
  };
  return { query } as unknown as Pool;
}

/** EXPLAINs every query behind due, claim, sweep, catch-up, slot status, the change-set base, the chain and pruning. */
export async function explainLedgerQueries(
  pool: Pool,
  now: Date,
  opts: { retentionDays: number },
): Promise<Explained[]> {
  const out: Explained[] = [];
  let current = '';
  const x = explainingPool(pool, out, () => current);
  const ledger = new Ledger(x);
  const active = (
    await pool.query<{ run_id: string; account_id: string; destination_generation: string; slot: string; d: string }>(
      `select run_id, account_id, destination_generation, slot, slot_date::text as d
         from dropship.runs where status = 'running' order by run_id limit 1`,
    )
  ).rows[0]!;
  const gen = Number(active.destination_generation);
  // A position in the middle of the runs (a later page of GET /runs).
  const middle = (await new Ledger(pool).listRuns({ limit: 1, since: new Date(now.getTime() - 2 * 86_400_000) }))[0]!
    .position;
  const steps: [string, () => Promise<unknown>][] = [
    ['due (registry)', () => new Registry(x).due('04:00', DEFAULT_SLOTS)],
    ['claim', () => ledger.claimTask({ runId: active.run_id, table: 't1', part: 0, leaseSeconds: 960 })],
    [
      'complete',
      () =>
        ledger.completeTask({
          runId: active.run_id,
          table: 't1',
          part: 0,
          attempt: 1,
          result: {
            table: 't1',
            objectName: 't1',
            folder: 'f/t1',
            rows: 1,
            bytes: 1,
            files: [],
            columns: [],
            seconds: 1,
          },
        }),
    ],
    [
      'open: free folder',
      async () =>
        freeFolder(x, {
          runId: 'explain',
          accountId: active.account_id,
          trigger: 'schedule',
          layout: 'dreamdata',
          folder: '2026-01-01T04:00',
          laterFolder: (m) => `2026-01-01T04:${String(m).padStart(2, '0')}`,
          startedMicros: 0n,
          tables: [],
          destination: (await new Registry(pool).get(active.account_id))!,
        }),
    ],
    ['sweep: active runs', () => ledger.activeRuns()],
    ['sweep: expired tasks', () => ledger.expiredTasks(active.run_id)],
    ['catch-up: slotRuns', () => ledger.slotRuns({ slot: active.slot, slotDate: active.d })],
    ['slot status: listRuns', () => ledger.listRuns({ slot: active.slot, slotDate: active.d, limit: 1_000_000 })],
    // GET /runs (src/api/router.ts): a page of 100 (+1), newest first; the next page from a position; by status (one
    // there are few of, one there is none of: an index of the order alone would read it all).
    ['API: listRuns', () => ledger.listRuns({ limit: 101 })],
    ['API: listRuns', () => ledger.listRuns({ limit: 101, before: middle })],
    ['API: listRuns', () => ledger.listRuns({ limit: 101, status: 'failed' })],
    ['API: listRuns', () => ledger.listRuns({ limit: 101, status: 'cancelled', before: middle })],
    // By account: the account's runs (two a day over the retention) through runs_by_account, sorted.
    ['API: listRuns by account', () => ledger.listRuns({ limit: 101, accountId: active.account_id, before: middle })],
    [
      'change-set base',
      () => ledger.lastSucceededRun({ accountId: active.account_id, runId: active.run_id, generation: gen }),
    ],
    ['receipt chain: nextLink', () => nextLink(x, active.account_id, active.run_id, gen)],
    ['retention', () => pruneLedger(x, { now, retentionDays: opts.retentionDays })],
  ];
  for (const [name, fn] of steps) {
    current = name;
    // The explaining pool answers with no rows: code that needs one (nextLink's `max(sequence)`) stops
    // there, after its queries up to that point were explained.
    await fn().catch((e) => {
      if (!(e instanceof TypeError)) throw e;
    });
  }
  return out;
}

async function main(): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const v: Volume = {
    accounts: arg('accounts', 10_000),
    runsPerAccount: arg('runs', 100),
    tasksPerRun: arg('tasks-per-run', 5),
  };
  const stack = await LocalStack.start();
  const pool = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
  pool.on('error', () => {});
  try {
    const now = new Date();
    const seconds = await fillLedger(pool, v, now);
    const counts = (
      await pool.query(
        `select (select count(*) from dropship.runs)::int as runs, (select count(*) from dropship.run_tasks)::int as tasks,
                pg_size_pretty(pg_total_relation_size('dropship.run_tasks')) as tasks_size`,
      )
    ).rows[0];
    // Retention such that the oldest day of runs is older than it (what the first prune meets).
    const days = Math.max(1, Math.floor(v.runsPerAccount / 2) - 1);
    const t = performance.now();
    const plans = await explainLedgerQueries(pool, now, { retentionDays: days });
    const planMs = performance.now() - t;
    for (const p of plans) console.log(`\n== ${p.query}\n${p.sql}\n${p.plan}`);
    console.log(
      JSON.stringify({
        ...v,
        ...counts,
        fill_seconds: Math.round(seconds * 10) / 10,
        explain_ms: Math.round(planMs),
        seq_scans: plans.filter((p) => p.seqScans.length > 0).map((p) => ({ query: p.query, on: p.seqScans })),
      }),
    );
  } finally {
    await pool.end();
    await stack.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
