import type { Pool, PoolClient } from 'pg';
import { inTransaction } from '../accounts/db.js';
import { DropshipError, type DropshipErrorDefaults, type DropshipErrorOptions } from '../contracts/errors.js';
import type { Layout, ReceiptSelection } from '../contracts/receipt.js';
import type { Selection } from '../contracts/selection.js';
import type { TaskPart } from '../source/catalog.js';
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
export type RunStatus = 'running' | 'finishing' | 'succeeded' | 'failed' | 'cancelled';
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
  /** Who drives the run: `cli:<host>:<pid>` (in-process) or `fan-out` (Lambda workers). */
  owner: string | null;
  /** The owner holds the session advisory lock (RUN_LOCK_SPACE, hashtext(run_id)) while it lives. */
  ownerLock: boolean;
  heartbeatAt: Date;
  staleSeconds: number;
  dispatchedAt: Date | null;
  slotDate: string | null;
  /** The receipt's exact bytes, recorded before its PutObject (retries rewrite the same bytes). */
  receiptBody: string | null;
  finishAttempts: number;
}

/** The advisory-lock key space of run owners ('drop'); the second key is hashtext(run_id). */
export const RUN_LOCK_SPACE = 0x64726f70;

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

export type { TaskPart };

/** The ledger refused a step (retryable: the state it waits for may come). */
export class LedgerError extends DropshipError {
  readonly code: string = 'ledger';
  constructor(message: string, options?: DropshipErrorOptions, defaults?: DropshipErrorDefaults) {
    super(message, options, defaults);
    this.name = 'LedgerError';
  }
}

/** Another run of the account is in progress (retryable: it ends). */
export class RunInProgress extends LedgerError {
  override readonly code: string = 'run-in-progress';
  constructor(accountId: string) {
    super(`account ${accountId} already has a run in progress (see: dropship runs list --account ${accountId})`);
    this.name = 'RunInProgress';
  }
}

/** A second scheduled run for the same account, slot and day (a duplicate event or a retry). */
export class SlotAlreadyRun extends LedgerError {
  override readonly code: string = 'slot-already-run';
  constructor(accountId: string, slot: string, slotDate: string) {
    super(`account ${accountId} already has a run for the ${slot} slot of ${slotDate}`, undefined, {
      retryable: false,
    });
    this.name = 'SlotAlreadyRun';
  }
}

/** An active run with what the ledger knows about its owner's liveness (see Ledger.activeRuns). */
export interface ActiveRun extends Run {
  /** The owner held the advisory lock and no longer does: its connection (process) is gone. */
  ownerGone: boolean;
  /** Seconds since the owner's (or any worker's) last heartbeat. */
  silentSeconds: number;
  tasksTotal: number;
  tasksSucceeded: number;
  /** The finishing lease ran out (or was released after a retryable failure). */
  finishLeaseExpired: boolean;
}

export type Claim =
  | { claimed: true; attempt: number }
  | { claimed: false; reason: 'done' | 'busy' | 'failed' | 'run-closed' | 'unknown' | 'exhausted' };

/** node-postgres parses `date` as local midnight. */
function localDate(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

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
    owner: r.owner ?? null,
    ownerLock: r.owner_lock ?? false,
    heartbeatAt: r.heartbeat_at,
    staleSeconds: r.stale_seconds ?? 120,
    dispatchedAt: r.dispatched_at ?? null,
    slotDate: r.slot_date instanceof Date ? localDate(r.slot_date) : (r.slot_date ?? null),
    receiptBody: r.receipt_body ?? null,
    finishAttempts: r.finish_attempts ?? 0,
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

export interface OpenRun {
  runId: string;
  accountId: string;
  trigger: Trigger;
  slot?: string | null;
  /** The slot's date (YYYY-MM-DD): with `trigger: 'schedule'`, one run per account, slot and day. */
  slotDate?: string | null;
  layout: Layout;
  folder: string;
  startedMicros: bigint;
  tables: string[];
  /** Key ranges of split tables (the other tables are one task each). */
  parts?: TaskPart[];
  maxAttempts?: number;
  /** `cli:<host>:<pid>` or `fan-out`. */
  owner?: string;
  /** The owner already holds pg_advisory_lock(RUN_LOCK_SPACE, hashtext(runId)) on its own connection. */
  ownerLock?: boolean;
  staleSeconds?: number;
}

export interface TaskRef {
  runId: string;
  table: string;
  /** Key-range part of a split table (0 for whole tables). */
  part?: number;
}

export interface ReleaseTask extends TaskRef {
  attempt: number;
  error: string;
  /** Give the task back for another attempt (if it has attempts left); otherwise it fails for good. */
  retry: boolean;
  /**
   * When the task fails for good, fail the run with it (fan-out). The in-process driver lets every
   * table finish and fails the run once, at the end.
   */
  failRun: boolean;
}

const ACTIVE = `('running', 'finishing')`;

export class Ledger {
  /** Public for modules that keep their own tables in the same database (src/notify, the receipt chain). */
  constructor(readonly pool: Pool) {}

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  async openRun(r: OpenRun): Promise<Run> {
    try {
      return await this.tx(async (c) => {
        const res = await c.query(
          `insert into dropship.runs (run_id, account_id, trigger, slot, slot_date, status, layout, folder, started_micros,
                                      owner, owner_lock, stale_seconds, heartbeat_at)
           values ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $9, $10, $11, now()) returning *`,
          [
            r.runId,
            r.accountId,
            r.trigger,
            r.slot ?? null,
            r.slotDate ?? null,
            r.layout,
            r.folder,
            r.startedMicros.toString(),
            r.owner ?? null,
            r.ownerLock ?? false,
            r.staleSeconds ?? 120,
          ],
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
      const err = e as { code?: string; constraint?: string };
      // The slot's key is checked first: a duplicate event while the slot's run is still going is a duplicate.
      if (err.code === '23505' && r.trigger === 'schedule' && r.slot && r.slotDate) {
        const taken = await this.pool.query(
          `select 1 from dropship.runs where account_id = $1 and trigger = 'schedule' and slot = $2 and slot_date = $3`,
          [r.accountId, r.slot, r.slotDate],
        );
        if (taken.rowCount) throw new SlotAlreadyRun(r.accountId, r.slot, r.slotDate);
      }
      if (err.code === '23505') throw new RunInProgress(r.accountId);
      throw e;
    }
  }

  /**
   * A scheduled slot that never ran (and can no longer be caught up) is recorded as a failed run,
   * so it shows in `runs list` and counts as a failure; it also occupies the slot's key.
   */
  async recordMissedSlot(r: {
    runId: string;
    accountId: string;
    slot: string;
    slotDate: string;
    layout: Layout;
    error: string;
  }): Promise<boolean> {
    const res = await this.pool.query(
      `insert into dropship.runs (run_id, account_id, trigger, slot, slot_date, status, layout, folder, started_micros,
                                  owner, finished_at, error)
       values ($1, $2, 'schedule', $3, $4, 'failed', $5, '', 0, 'sweeper', now(), $6)
       on conflict do nothing`,
      [r.runId, r.accountId, r.slot, r.slotDate, r.layout, r.error],
    );
    return res.rowCount === 1;
  }

  /** Scheduled runs (any status) of the given slot and day, per account. */
  async slotRuns(slot: string, slotDate: string): Promise<Set<string>> {
    const res = await this.pool.query<{ account_id: string }>(
      `select account_id from dropship.runs where trigger = 'schedule' and slot = $1 and slot_date = $2`,
      [slot, slotDate],
    );
    return new Set(res.rows.map((r) => r.account_id));
  }

  /**
   * The owner's sign of life. Returns the run's status: anything but `running`/`finishing` means
   * the run was ended by someone else (cancelled, or declared abandoned) and the owner must stop.
   */
  async heartbeat(runId: string): Promise<RunStatus | undefined> {
    const res = await this.pool.query<{ status: RunStatus }>(
      `with hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and status in ${ACTIVE} returning status)
       select status from hb union all select status from dropship.runs where run_id = $1 and not exists (select 1 from hb)`,
      [runId],
    );
    return res.rows[0]?.status;
  }

  /**
   * A dedicated connection holding the run owner's session advisory lock. Postgres releases the
   * lock the moment this connection dies (the owner's process was killed), which is how the next
   * run tells a dead CLI owner from a live one without waiting for its heartbeat to go stale.
   * `release()` closes the connection (never returned to the pool while it holds the lock).
   */
  async ownerLock(runId: string): Promise<{ client: PoolClient; release: () => void }> {
    const client = await this.pool.connect();
    try {
      const res = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [
        RUN_LOCK_SPACE,
        runId,
      ]);
      if (!res.rows[0]?.ok) throw new LedgerError(`the owner lock of run ${runId} is held by another session`);
    } catch (e) {
      client.release(true);
      throw e;
    }
    let released = false;
    return {
      client,
      release: () => {
        if (released) return;
        released = true;
        client.release(true);
      },
    };
  }

  /** Fan-out: every task message of the run was sent. */
  async markDispatched(runId: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set dispatched_at = now(), heartbeat_at = now() where run_id = $1 and dispatched_at is null`,
      [runId],
    );
  }

  /** Claims a task (a table, or one key range of it) for one attempt, with a lease longer than any worker lives. */
  async claimTask(ref: TaskRef, opts: { leaseSeconds: number }): Promise<Claim> {
    const { runId, table } = ref;
    const part = ref.part ?? 0;
    const res = await this.pool.query(
      `with claimed as (
         update dropship.run_tasks t
            set status = 'running', attempts = t.attempts + 1, lease_until = now() + make_interval(secs => $3),
                started_at = now(), error = null
           from dropship.runs r
          where t.run_id = $1 and t.table_name = $2 and t.part = $4 and r.run_id = t.run_id and r.status = 'running'
            and (t.status = 'pending' or (t.status = 'running' and t.lease_until < now()))
            and t.attempts < t.max_attempts
        returning t.attempts),
       hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and exists (select 1 from claimed))
       select attempts from claimed`,
      [runId, table, opts.leaseSeconds, part],
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
      await this.failTask(
        { runId, table, part },
        row.attempts,
        `gave up after ${row.attempts} attempts (the last one stopped without a result: its worker died or timed out)`,
        true,
      );
      return { claimed: false, reason: 'exhausted' };
    }
    return { claimed: false, reason: 'busy' };
  }

  /** Seconds until the task's lease runs out (0 when it has none or it ran out). */
  async leaseRemaining(ref: TaskRef): Promise<number> {
    const res = await this.pool.query<{ s: number | null }>(
      `select greatest(0, extract(epoch from lease_until - now()))::float8 as s
         from dropship.run_tasks where run_id = $1 and table_name = $2 and part = $3`,
      [ref.runId, ref.table, ref.part ?? 0],
    );
    return res.rows[0]?.s ?? 0;
  }

  async task(runId: string, table: string, part = 0): Promise<Task | undefined> {
    const res = await this.pool.query(
      'select * from dropship.run_tasks where run_id = $1 and table_name = $2 and part = $3',
      [runId, table, part],
    );
    return res.rows[0] ? toTask(res.rows[0]) : undefined;
  }

  /** Raises the task's high-water mark of shard indexes ever started (across attempts); also a heartbeat. */
  async noteShardsStarted(ref: TaskRef, count: number): Promise<number> {
    const res = await this.pool.query(
      `with t as (update dropship.run_tasks set shards_started = greatest(shards_started, $3)
                   where run_id = $1 and table_name = $2 and part = $4 returning shards_started),
            hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and status in ${ACTIVE})
       select shards_started from t`,
      [ref.runId, ref.table, count, ref.part ?? 0],
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

  /** Records a result; only the attempt holding the claim may, and only while the run is running. */
  async completeTask(ref: TaskRef & { attempt: number; result: TableResult }): Promise<boolean> {
    const res = await this.pool.query(
      `with done as (
         update dropship.run_tasks t
            set status = 'succeeded', rows = $4, bytes = $5, result = $6, lease_until = null, finished_at = now()
           from dropship.runs r
          where t.run_id = $1 and t.table_name = $2 and t.part = $7 and t.status = 'running' and t.attempts = $3
            and r.run_id = t.run_id and r.status = 'running'
          returning 1),
       hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and exists (select 1 from done))
       select count(*)::int as n from done`,
      [ref.runId, ref.table, ref.attempt, ref.result.rows, ref.result.bytes, JSON.stringify(ref.result), ref.part ?? 0],
    );
    return res.rows[0]?.n === 1;
  }

  /** Gives a failed attempt back for a retry, or fails the task for good (see ReleaseTask). */
  async releaseTask(r: ReleaseTask): Promise<'retry' | 'failed'> {
    const part = r.part ?? 0;
    if (r.retry) {
      const res = await this.pool.query(
        `update dropship.run_tasks set status = 'pending', lease_until = null, error = $4
          where run_id = $1 and table_name = $2 and part = $5 and status = 'running' and attempts = $3 and attempts < max_attempts
        returning 1`,
        [r.runId, r.table, r.attempt, r.error, part],
      );
      if (res.rowCount === 1) return 'retry';
    }
    await this.failTask({ runId: r.runId, table: r.table, part }, r.attempt, r.error, r.failRun);
    return 'failed';
  }

  private async failTask(ref: TaskRef, attempt: number, error: string, failRun: boolean): Promise<void> {
    await this.tx(async (c) => {
      const t = await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, error = $4, finished_at = now()
          where run_id = $1 and table_name = $2 and part = $5 and attempts = $3 and status in ('running', 'pending')`,
        [ref.runId, ref.table, attempt, error, ref.part ?? 0],
      );
      // A late attempt (its claim taken over by a newer one) must not fail the run.
      if (!failRun || t.rowCount !== 1) return;
      await c.query(
        `update dropship.runs set status = 'failed', finished_at = now(), error = coalesce(error, $2)
          where run_id = $1 and status = 'running'`,
        [ref.runId, `table ${ref.table}: ${error}`],
      );
    });
  }

  /**
   * The single transition to `finishing`: succeeds for exactly one caller once every task has
   * succeeded, or again after a previous finisher's lease ran out (`takeOver` also when its owner
   * is known to be dead). The winner writes the receipt.
   */
  async tryFinish(runId: string, opts: { leaseSeconds: number; takeOver?: boolean }): Promise<Run | undefined> {
    const res = await this.pool.query(
      `update dropship.runs r set status = 'finishing', lease_until = now() + make_interval(secs => $2),
              heartbeat_at = now(), finish_attempts = r.finish_attempts + 1
        where r.run_id = $1
          and (r.status = 'running' or (r.status = 'finishing' and (r.lease_until < now() or $3)))
          and not exists (select 1 from dropship.run_tasks t where t.run_id = r.run_id and t.status <> 'succeeded')
      returning *`,
      [runId, opts.leaseSeconds, opts.takeOver ?? false],
    );
    return res.rowCount === 1 ? toRun(res.rows[0]) : undefined;
  }

  /**
   * Records the receipt's bytes before they are published (the first finisher's bytes win), so a
   * finisher that retries — or takes over from a dead one — publishes byte-identical content.
   */
  async recordReceipt(runId: string, body: string): Promise<string> {
    const res = await this.pool.query<{ receipt_body: string }>(
      `update dropship.runs set receipt_body = coalesce(receipt_body, $2)
        where run_id = $1 and status = 'finishing' returning receipt_body`,
      [runId, body],
    );
    const recorded = res.rows[0]?.receipt_body;
    if (recorded === undefined) throw new LedgerError(`run ${runId} is no longer finishing`);
    return recorded;
  }

  async finishSucceeded(runId: string, receiptKey: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set status = 'succeeded', receipt_key = $2, finished_at = now(), lease_until = null,
              heartbeat_at = now(), error = null
        where run_id = $1 and status = 'finishing'`,
      [runId, receiptKey],
    );
  }

  /**
   * A retryable failure while finishing: the run stays `finishing` with its lease released, so the
   * next finisher (a retry, a worker, the next run of the account, the sweeper) takes over at once.
   */
  async finishPending(runId: string, error: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set lease_until = now() - interval '1 second', error = $2 where run_id = $1 and status = 'finishing'`,
      [runId, error],
    );
  }

  /**
   * Back to `running` — only while no receipt bytes were recorded (nothing can have been
   * published), e.g. when the run is stopped before it wrote anything.
   */
  async unfinish(runId: string, error: string | null): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.runs set status = 'running', lease_until = null, error = coalesce($2, error)
        where run_id = $1 and status = 'finishing' and receipt_body is null`,
      [runId, error],
    );
    return res.rowCount === 1;
  }

  /**
   * Fails a run that has published nothing: a `running` run, or a `finishing` one whose receipt was
   * refused for good before it could be stored (AccessDenied, contract violation). Never a run
   * whose receipt may be published. Pending and running tasks fail with it.
   */
  async failRun(
    runId: string,
    error: string,
    opts: { finishingRefused?: boolean; status?: 'failed' | 'cancelled' } = {},
  ): Promise<boolean> {
    return this.tx(async (c) => {
      // Lock order everywhere: task rows (in key order), then the run row — workers update a task
      // and then heartbeat its run in one statement; the other order would deadlock with them.
      await c.query('select 1 from dropship.run_tasks where run_id = $1 order by table_name, part for update', [runId]);
      const res = await c.query(
        `update dropship.runs set status = $3, finished_at = now(), error = $2, lease_until = null
          where run_id = $1 and (status = 'running' or ($4 and status = 'finishing'))`,
        [runId, error, opts.status ?? 'failed', opts.finishingRefused ?? false],
      );
      if (res.rowCount !== 1) return false;
      await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(),
                error = coalesce(error, $2)
          where run_id = $1 and status in ('pending', 'running')`,
        [runId, opts.status === 'cancelled' ? 'run cancelled' : 'run ended before this task finished'],
      );
      return true;
    });
  }

  /** Operators: `dropship runs cancel`. Only a `running` run can be cancelled (a finishing one may have published). */
  async cancelRun(runId: string, by: string): Promise<{ ok: true } | { ok: false; status: RunStatus | undefined }> {
    const ok = await this.failRun(runId, `cancelled by ${by}`, { status: 'cancelled' });
    if (ok) return { ok: true };
    return { ok: false, status: (await this.getRun(runId))?.status };
  }

  /**
   * Active runs (of one account, or all), each with its owner's liveness: whether its advisory
   * lock is gone, how long it has been silent, its task counts and finishing lease.
   */
  async activeRuns(accountId?: string): Promise<ActiveRun[]> {
    const res = await this.pool.query(
      `select r.*,
              r.owner_lock and not exists (
                select 1 from pg_catalog.pg_locks l
                 where l.locktype = 'advisory' and l.granted and l.objsubid = 2
                   and l.database = (select oid from pg_catalog.pg_database where datname = current_database())
                   and l.classid::bigint = $2
                   and l.objid::bigint = (hashtext(r.run_id)::bigint & 4294967295)) as owner_gone,
              extract(epoch from now() - r.heartbeat_at)::float8 as silent_seconds,
              (select count(*)::int from dropship.run_tasks t where t.run_id = r.run_id) as tasks_total,
              (select count(*)::int from dropship.run_tasks t where t.run_id = r.run_id and t.status = 'succeeded') as tasks_succeeded,
              coalesce(r.lease_until < now(), true) as finish_lease_expired
         from dropship.runs r
        where r.status in ${ACTIVE} and ($1::text is null or r.account_id = $1)
        order by r.started_at`,
      [accountId ?? null, RUN_LOCK_SPACE],
    );
    return res.rows.map((r) => ({
      ...toRun(r),
      ownerGone: r.owner_gone,
      silentSeconds: r.silent_seconds,
      tasksTotal: r.tasks_total,
      tasksSucceeded: r.tasks_succeeded,
      finishLeaseExpired: r.finish_lease_expired,
    }));
  }

  /**
   * A task message was dead-lettered (SQS gave up after maxReceiveCount receives): unless the task
   * already succeeded, it fails, and the run with it (never a `finishing` run).
   */
  async deadLetter(ref: TaskRef, detail: string): Promise<'failed' | 'ignored'> {
    return this.tx(async (c) => {
      // Lock order everywhere: task rows (in key order), then the run row — workers update a task
      // and then heartbeat its run in one statement; the other order would deadlock with them.
      await c.query('select 1 from dropship.run_tasks where run_id = $1 order by table_name, part for update', [
        ref.runId,
      ]);
      const t = await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(), error = $4
          where run_id = $1 and table_name = $2 and part = $3 and status in ('pending', 'running') returning 1`,
        [ref.runId, ref.table, ref.part ?? 0, detail],
      );
      if (t.rowCount !== 1) return 'ignored';
      const r = await c.query(
        `update dropship.runs set status = 'failed', finished_at = now(), lease_until = null, error = coalesce(error, $2)
          where run_id = $1 and status = 'running'`,
        [ref.runId, `table ${ref.table}: ${detail}`],
      );
      if (r.rowCount === 1)
        await c.query(
          `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(),
                  error = coalesce(error, 'run ended before this task finished')
            where run_id = $1 and status in ('pending', 'running')`,
          [ref.runId],
        );
      return 'failed';
    });
  }

  /** Fan-out tasks whose worker died: running with an expired lease. */
  async expiredTasks(runId: string): Promise<Task[]> {
    const res = await this.pool.query(
      `select * from dropship.run_tasks where run_id = $1 and status = 'running' and lease_until < now() order by table_name, part`,
      [runId],
    );
    return res.rows.map(toTask);
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

  /**
   * The destination's selection as the run opened, and the receipt's `selection` block: every task of
   * the run exports with this selection, even if the destination is updated meanwhile.
   */
  async noteSelection(runId: string, config: Selection, receipt: ReceiptSelection | undefined): Promise<void> {
    await this.pool.query('update dropship.runs set selection = $2 where run_id = $1', [
      runId,
      JSON.stringify({ config, ...(receipt ? { receipt } : {}) }),
    ]);
  }

  async selection(runId: string): Promise<{ config: Selection; receipt?: ReceiptSelection } | undefined> {
    const res = await this.pool.query('select selection from dropship.runs where run_id = $1', [runId]);
    return res.rows[0]?.selection ?? undefined;
  }

  /**
   * Shared snapshot of a fan-out run (src/run/shared-snapshot.ts): the first caller becomes the
   * run's snapshot holder (true); everyone else gets false.
   */
  async claimSnapshotHolder(runId: string, holder: string): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.runs set snapshot_holder = $2, snapshot_claimed_at = now()
        where run_id = $1 and status = 'running' and snapshot_holder is null`,
      [runId, holder],
    );
    return res.rowCount === 1;
  }

  /** A would-be holder that could not open the snapshot gives the role back (the next task may take it). */
  async releaseSnapshotHolder(runId: string, holder: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set snapshot_holder = null, snapshot_claimed_at = null
        where run_id = $1 and snapshot_holder = $2 and snapshot_export is null`,
      [runId, holder],
    );
  }

  /** The holder records the exported snapshot id (for SET TRANSACTION SNAPSHOT) and what it shows. */
  async recordSnapshot(runId: string, s: { exportId: string; id: string; at: string }): Promise<void> {
    await this.pool.query(
      'update dropship.runs set snapshot_export = $2, snapshot_id = $3, snapshot_at = $4 where run_id = $1',
      [runId, s.exportId, s.id, s.at],
    );
  }

  /** The holder closed its transaction: the snapshot can no longer be imported. */
  async snapshotReleased(runId: string): Promise<void> {
    await this.pool.query('update dropship.runs set snapshot_released_at = now() where run_id = $1', [runId]);
  }

  async runSnapshot(runId: string): Promise<
    | {
        holder: string | null;
        claimedSecondsAgo: number | null;
        exportId: string | null;
        id: string | null;
        at: string | null;
        released: boolean;
      }
    | undefined
  > {
    const res = await this.pool.query(
      `select snapshot_holder, extract(epoch from now() - snapshot_claimed_at)::float8 as claimed_ago,
              snapshot_export, snapshot_id, snapshot_at, snapshot_released_at is not null as released
         from dropship.runs where run_id = $1`,
      [runId],
    );
    const r = res.rows[0];
    if (!r) return undefined;
    return {
      holder: r.snapshot_holder,
      claimedSecondsAgo: r.claimed_ago,
      exportId: r.snapshot_export,
      id: r.snapshot_id,
      at: r.snapshot_at,
      released: r.released,
    };
  }
}
