import type { Pool, PoolClient } from 'pg';
import type { Layout } from '../accounts/destination.js';
import type { TableResult } from './table.js';

/**
 * The run ledger (dropship.runs, dropship.run_tasks): every run of an account and its table tasks,
 * with status, attempts, rows, bytes, files and errors. It is what makes fan-out safe under SQS's
 * at-least-once delivery:
 *   - a task is claimed with a lease (a second delivery of a task that is running is told "busy");
 *   - a result is recorded only by the attempt that holds the claim (fencing by attempt number);
 *   - the receipt is written by the one caller that moves the run from `running` to `finishing`
 *     while every task has succeeded — a row-level transition, so concurrent completions and
 *     retries produce exactly one receipt writer (a crashed writer's lease expires and another
 *     caller takes over).
 */
export type RunStatus = 'running' | 'finishing' | 'succeeded' | 'failed';
export type TaskStatus = 'pending' | 'running' | 'succeeded' | 'failed';
export type Trigger = 'schedule' | 'manual' | 'cli';

export interface Run {
  runId: string;
  accountId: string;
  trigger: Trigger;
  slot: string | null;
  status: RunStatus;
  layout: Layout;
  folder: string;
  startedMicros: bigint;
  startedAt: Date;
  finishedAt: Date | null;
  receiptKey: string | null;
  error: string | null;
}

/** One key range of a split table: rows with lo ≤ key < hi (the last part includes hi). */
export interface TaskPart {
  table: string;
  part: number;
  parts: number;
  keyColumn: string;
  lo: bigint;
  hi: bigint;
}

export interface Task {
  runId: string;
  table: string;
  part: number;
  parts: number;
  keyColumn: string | null;
  rangeLo: bigint | null;
  rangeHi: bigint | null;
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  shardsStarted: number;
  rows: number | null;
  bytes: number | null;
  result: TableResult | null;
  error: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export class LedgerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LedgerError';
  }
}

export class RunInProgress extends LedgerError {
  constructor(accountId: string) {
    super(`account ${accountId} already has a run in progress (see: dropship runs list --account ${accountId})`);
    this.name = 'RunInProgress';
  }
}

export type Claim =
  | { claimed: true; attempt: number }
  | { claimed: false; reason: 'done' | 'busy' | 'failed' | 'run-closed' | 'unknown' | 'exhausted' };

// biome-ignore lint/suspicious/noExplicitAny: rows come from pg untyped
function toRun(r: any): Run {
  return {
    runId: r.run_id,
    accountId: r.account_id,
    trigger: r.trigger,
    slot: r.slot,
    status: r.status,
    layout: r.layout,
    folder: r.folder,
    startedMicros: BigInt(r.started_micros),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    receiptKey: r.receipt_key,
    error: r.error,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: rows come from pg untyped
function toTask(r: any): Task {
  return {
    runId: r.run_id,
    table: r.table_name,
    part: r.part,
    parts: r.parts,
    keyColumn: r.key_column,
    rangeLo: r.range_lo === null ? null : BigInt(r.range_lo),
    rangeHi: r.range_hi === null ? null : BigInt(r.range_hi),
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    shardsStarted: r.shards_started,
    rows: r.rows === null ? null : Number(r.rows),
    bytes: r.bytes === null ? null : Number(r.bytes),
    result: r.result,
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

export class Ledger {
  /** Public for modules that keep their own tables in the same database (src/notify, the receipt chain). */
  constructor(readonly pool: Pool) {}

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('begin');
      const out = await fn(c);
      await c.query('commit');
      return out;
    } catch (e) {
      await c.query('rollback').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  async openRun(r: {
    runId: string;
    accountId: string;
    trigger: Trigger;
    slot?: string | null;
    layout: Layout;
    folder: string;
    startedMicros: bigint;
    tables: string[];
    /** Key ranges of split tables (the other tables are one task each). */
    parts?: TaskPart[];
    maxAttempts?: number;
  }): Promise<Run> {
    try {
      return await this.tx(async (c) => {
        const res = await c.query(
          `insert into dropship.runs (run_id, account_id, trigger, slot, status, layout, folder, started_micros)
           values ($1, $2, $3, $4, 'running', $5, $6, $7) returning *`,
          [r.runId, r.accountId, r.trigger, r.slot ?? null, r.layout, r.folder, r.startedMicros.toString()],
        );
        const split = new Set((r.parts ?? []).map((p) => p.table));
        await c.query(
          `insert into dropship.run_tasks (run_id, table_name, status, max_attempts)
           select $1, t, 'pending', $3 from unnest($2::text[]) t`,
          [r.runId, r.tables.filter((t) => !split.has(t)), r.maxAttempts ?? 3],
        );
        for (const p of r.parts ?? []) {
          await c.query(
            `insert into dropship.run_tasks (run_id, table_name, part, parts, key_column, range_lo, range_hi, status, max_attempts)
             values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)`,
            [r.runId, p.table, p.part, p.parts, p.keyColumn, p.lo.toString(), p.hi.toString(), r.maxAttempts ?? 3],
          );
        }
        return toRun(res.rows[0]);
      });
    } catch (e) {
      if ((e as { code?: string }).code === '23505') throw new RunInProgress(r.accountId);
      throw e;
    }
  }

  /** Claims a task (a table, or one key range of it) for one attempt, with a lease longer than any worker lives. */
  async claimTask(runId: string, table: string, leaseSeconds: number, part = 0): Promise<Claim> {
    const res = await this.pool.query(
      `update dropship.run_tasks t
          set status = 'running', attempts = t.attempts + 1, lease_until = now() + make_interval(secs => $3),
              started_at = now(), error = null
         from dropship.runs r
        where t.run_id = $1 and t.table_name = $2 and t.part = $4 and r.run_id = t.run_id and r.status = 'running'
          and (t.status = 'pending' or (t.status = 'running' and t.lease_until < now()))
          and t.attempts < t.max_attempts
      returning t.attempts`,
      [runId, table, leaseSeconds, part],
    );
    if (res.rowCount === 1) return { claimed: true, attempt: res.rows[0].attempts };
    const cur = await this.pool.query(
      `select t.status, t.attempts, t.max_attempts, t.lease_until < now() as expired, r.status as run_status
         from dropship.run_tasks t join dropship.runs r using (run_id)
        where t.run_id = $1 and t.table_name = $2 and t.part = $3`,
      [runId, table, part],
    );
    const row = cur.rows[0];
    if (!row) return { claimed: false, reason: 'unknown' };
    if (row.status === 'succeeded') return { claimed: false, reason: 'done' };
    if (row.status === 'failed') return { claimed: false, reason: 'failed' };
    if (row.run_status !== 'running') return { claimed: false, reason: 'run-closed' };
    if (row.attempts >= row.max_attempts && (row.status === 'pending' || row.expired)) {
      await this.failTask(runId, table, part, row.attempts, `gave up after ${row.attempts} attempts`);
      return { claimed: false, reason: 'exhausted' };
    }
    return { claimed: false, reason: 'busy' };
  }

  async task(runId: string, table: string, part = 0): Promise<Task | undefined> {
    const res = await this.pool.query(
      'select * from dropship.run_tasks where run_id = $1 and table_name = $2 and part = $3',
      [runId, table, part],
    );
    return res.rows[0] ? toTask(res.rows[0]) : undefined;
  }

  /** Raises the task's high-water mark of shard indexes ever started (across attempts). */
  async noteShardsStarted(runId: string, table: string, count: number, part = 0): Promise<number> {
    const res = await this.pool.query(
      `update dropship.run_tasks set shards_started = greatest(shards_started, $3)
        where run_id = $1 and table_name = $2 and part = $4 returning shards_started`,
      [runId, table, count, part],
    );
    return res.rows[0]?.shards_started ?? count;
  }

  /**
   * The most shards any other run of the account started for this table in the same folder (runs
   * within one minute share it): a later run must cover them, so the folder holds no stale rows.
   */
  async shardsStartedInFolder(accountId: string, folder: string, table: string, exceptRunId: string): Promise<number> {
    const res = await this.pool.query(
      `select coalesce(max(t.shards_started), 0)::int as n
         from dropship.run_tasks t join dropship.runs r using (run_id)
        where r.account_id = $1 and r.folder = $2 and t.table_name = $3 and t.part = 0 and r.run_id <> $4`,
      [accountId, folder, table, exceptRunId],
    );
    return res.rows[0]?.n ?? 0;
  }

  async shardsStarted(runId: string, table: string, part = 0): Promise<number> {
    return (await this.task(runId, table, part))?.shardsStarted ?? 0;
  }

  /** Records a result; only the attempt holding the claim may (returns false otherwise). */
  async completeTask(runId: string, table: string, attempt: number, result: TableResult, part = 0): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.run_tasks
          set status = 'succeeded', rows = $4, bytes = $5, result = $6, lease_until = null, finished_at = now()
        where run_id = $1 and table_name = $2 and part = $7 and status = 'running' and attempts = $3`,
      [runId, table, attempt, result.rows, result.bytes, JSON.stringify(result), part],
    );
    return res.rowCount === 1;
  }

  /**
   * Gives a failed attempt back for a retry, or fails the task for good — and with it the run,
   * unless `keepRunOpen` (the in-process path lets every table finish and fails the run at the end).
   */
  async releaseTask(
    runId: string,
    table: string,
    attempt: number,
    error: string,
    final: boolean,
    keepRunOpen = false,
    part = 0,
  ): Promise<'retry' | 'failed'> {
    if (!final) {
      const res = await this.pool.query(
        `update dropship.run_tasks set status = 'pending', lease_until = null, error = $4
          where run_id = $1 and table_name = $2 and part = $5 and status = 'running' and attempts = $3 and attempts < max_attempts
        returning 1`,
        [runId, table, attempt, error, part],
      );
      if (res.rowCount === 1) return 'retry';
    }
    await this.failTask(runId, table, part, attempt, error, keepRunOpen);
    return 'failed';
  }

  private async failTask(
    runId: string,
    table: string,
    part: number,
    attempt: number,
    error: string,
    keepRunOpen = false,
  ): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, error = $4, finished_at = now()
          where run_id = $1 and table_name = $2 and part = $5 and attempts = $3 and status in ('running', 'pending')`,
        [runId, table, attempt, error, part],
      );
      if (keepRunOpen) return;
      await c.query(
        `update dropship.runs set status = 'failed', finished_at = now(), error = coalesce(error, $2)
          where run_id = $1 and status in ('running', 'finishing')`,
        [runId, `table ${table}: ${error}`],
      );
    });
  }

  /**
   * The single transition to `finishing`: succeeds for exactly one caller once every task has
   * succeeded (or again after a previous finisher's lease ran out). The winner writes the receipt.
   */
  async tryFinish(runId: string, leaseSeconds = 300): Promise<Run | undefined> {
    const res = await this.pool.query(
      `update dropship.runs r set status = 'finishing', lease_until = now() + make_interval(secs => $2)
        where r.run_id = $1
          and (r.status = 'running' or (r.status = 'finishing' and r.lease_until < now()))
          and not exists (select 1 from dropship.run_tasks t where t.run_id = r.run_id and t.status <> 'succeeded')
      returning *`,
      [runId, leaseSeconds],
    );
    return res.rowCount === 1 ? toRun(res.rows[0]) : undefined;
  }

  async finishSucceeded(runId: string, receiptKey: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set status = 'succeeded', receipt_key = $2, finished_at = now(), lease_until = null
        where run_id = $1 and status = 'finishing'`,
      [runId, receiptKey],
    );
  }

  /** The receipt could not be written: back to `running`, so a retry can finish the run. */
  async reopen(runId: string, error: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set status = 'running', lease_until = null, error = $2 where run_id = $1 and status = 'finishing'`,
      [runId, error],
    );
  }

  async failRun(runId: string, error: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set status = 'failed', finished_at = now(), error = $2 where run_id = $1 and status in ('running', 'finishing')`,
      [runId, error],
    );
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const res = await this.pool.query('select * from dropship.runs where run_id = $1', [runId]);
    return res.rows[0] ? toRun(res.rows[0]) : undefined;
  }

  async tasks(runId: string): Promise<Task[]> {
    const res = await this.pool.query('select * from dropship.run_tasks where run_id = $1 order by table_name, part', [
      runId,
    ]);
    return res.rows.map(toTask);
  }

  async listRuns(opts: { accountId?: string; limit?: number; status?: RunStatus; since?: Date } = {}): Promise<Run[]> {
    const res = await this.pool.query(
      `select * from dropship.runs
        where ($1::text is null or account_id = $1) and ($3::text is null or status = $3)
          and ($4::timestamptz is null or started_at >= $4)
        order by started_at desc, run_id desc limit $2`,
      [opts.accountId ?? null, opts.limit ?? 50, opts.status ?? null, opts.since ?? null],
    );
    return res.rows.map(toRun);
  }
}
