import type { Pool, PoolClient } from 'pg';
import type { TableResult } from '../../contracts/result.js';
import { inTransaction } from '../db.js';
import { ACTIVE, type Claim, type ReleaseTask, SERVES_CURRENT, type Task, type TaskRef, toTask } from './rows.js';

/**
 * The ledger's table tasks (dropship.run_tasks): claims with a lease, results fenced by the
 * attempt number, releases for a retry or for good, dead letters, the shard high-water marks.
 * `Ledger` (src/store/ledger/ledger.ts) extends it with the runs themselves.
 */
export class TaskLedger {
  /** Public for modules that keep their own tables in the same database (src/notify, the receipt chain). */
  constructor(readonly pool: Pool) {}

  protected async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  /** Claims a task (a table, or one key range of it) for one attempt, with a lease longer than any worker lives. */
  async claimTask(q: TaskRef & { leaseSeconds: number }): Promise<Claim> {
    const { runId, table } = q;
    const part = q.part ?? 0;
    const res = await this.pool.query(
      `with claimed as (
         update dropship.run_tasks t
            set status = 'running', attempts = t.attempts + 1, lease_until = now() + make_interval(secs => $3),
                started_at = now(), error = null
           from dropship.runs r
          where t.run_id = $1 and t.table_name = $2 and t.part = $4 and r.run_id = t.run_id and r.status = 'running'
            and ${SERVES_CURRENT}
            and (t.status = 'pending' or (t.status = 'running' and t.lease_until < now()))
            and t.attempts < t.max_attempts
        returning t.attempts),
       hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and exists (select 1 from claimed))
       select attempts from claimed`,
      [runId, table, q.leaseSeconds, part],
    );
    if (res.rowCount === 1) return { claimed: true, attempt: res.rows[0].attempts };
    const cur = await this.pool.query(
      `select t.status, t.attempts, t.max_attempts, t.lease_until < now() as expired, r.status as run_status,
              ${SERVES_CURRENT} as serves
         from dropship.run_tasks t join dropship.runs r using (run_id)
        where t.run_id = $1 and t.table_name = $2 and t.part = $3`,
      [runId, table, part],
    );
    const row = cur.rows[0];
    if (!row) return { claimed: false, reason: 'unknown' };
    if (row.status === 'succeeded') return { claimed: false, reason: 'done' };
    if (row.status === 'failed') return { claimed: false, reason: 'failed' };
    // A run that no longer serves its destination's current version delivers nothing more (the
    // registry cancels such runs; one it did not — opened by an older release — is ended by the sweep).
    if (row.run_status !== 'running' || !row.serves) return { claimed: false, reason: 'run-closed' };
    if (row.attempts >= row.max_attempts && (row.status === 'pending' || row.expired)) {
      await this.failTask({
        runId,
        table,
        part,
        attempt: row.attempts,
        error: `gave up after ${row.attempts} attempts (the last one stopped without a result: its worker died or timed out)`,
        failRun: true,
      });
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

  async task(ref: TaskRef): Promise<Task | undefined> {
    const res = await this.pool.query(
      'select * from dropship.run_tasks where run_id = $1 and table_name = $2 and part = $3',
      [ref.runId, ref.table, ref.part ?? 0],
    );
    return res.rows[0] ? toTask(res.rows[0]) : undefined;
  }

  /** Raises the task's high-water mark of shard indexes ever started (across attempts); also a heartbeat. */
  async noteShardsStarted(q: TaskRef & { count: number }): Promise<number> {
    const res = await this.pool.query(
      `with t as (update dropship.run_tasks set shards_started = greatest(shards_started, $3)
                   where run_id = $1 and table_name = $2 and part = $4 returning shards_started),
            hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and status in ${ACTIVE})
       select shards_started from t`,
      [q.runId, q.table, q.count, q.part ?? 0],
    );
    return res.rows[0]?.shards_started ?? q.count;
  }

  async shardsStarted(ref: TaskRef): Promise<number> {
    return (await this.task(ref))?.shardsStarted ?? 0;
  }

  /** Records a result; only the attempt holding the claim may, and only while the run is running. */
  async completeTask(ref: TaskRef & { attempt: number; result: TableResult }): Promise<boolean> {
    const res = await this.pool.query(
      `with done as (
         update dropship.run_tasks t
            set status = 'succeeded', rows = $4, bytes = $5, result = $6, lease_until = null, finished_at = now()
           from dropship.runs r
          where t.run_id = $1 and t.table_name = $2 and t.part = $7 and t.status = 'running' and t.attempts = $3
            and r.run_id = t.run_id and r.status = 'running' and ${SERVES_CURRENT}
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
    await this.failTask({
      runId: r.runId,
      table: r.table,
      part,
      attempt: r.attempt,
      error: r.error,
      failRun: r.failRun,
    });
    return 'failed';
  }

  private async failTask(q: TaskRef & { attempt: number; error: string; failRun: boolean }): Promise<void> {
    await this.tx(async (c) => {
      const t = await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, error = $4, finished_at = now()
          where run_id = $1 and table_name = $2 and part = $5 and attempts = $3 and status in ('running', 'pending')`,
        [q.runId, q.table, q.attempt, q.error, q.part ?? 0],
      );
      // A late attempt (its claim taken over by a newer one) must not fail the run.
      if (!q.failRun || t.rowCount !== 1) return;
      await c.query(
        `update dropship.runs set status = 'failed', finished_at = now(), error = coalesce(error, $2)
          where run_id = $1 and status = 'running'`,
        [q.runId, `table ${q.table}: ${q.error}`],
      );
    });
  }

  /**
   * A task message was dead-lettered (SQS gave up after maxReceiveCount receives): unless the task
   * already succeeded, it fails, and the run with it (never a `finishing` run).
   */
  async deadLetter(q: TaskRef & { detail: string }): Promise<'failed' | 'ignored'> {
    return this.tx(async (c) => {
      // Lock order everywhere: task rows (in key order), then the run row — workers update a task
      // and then heartbeat its run in one statement; the other order would deadlock with them.
      await c.query('select 1 from dropship.run_tasks where run_id = $1 order by table_name, part for update', [
        q.runId,
      ]);
      const t = await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(), error = $4
          where run_id = $1 and table_name = $2 and part = $3 and status in ('pending', 'running') returning 1`,
        [q.runId, q.table, q.part ?? 0, q.detail],
      );
      if (t.rowCount !== 1) return 'ignored';
      const r = await c.query(
        `update dropship.runs set status = 'failed', finished_at = now(), lease_until = null, error = coalesce(error, $2)
          where run_id = $1 and status = 'running'`,
        [q.runId, `table ${q.table}: ${q.detail}`],
      );
      if (r.rowCount === 1)
        await c.query(
          `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(),
                  error = coalesce(error, 'run ended before this task finished')
            where run_id = $1 and status in ('pending', 'running')`,
          [q.runId],
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

  /**
   * Of these tasks, the ones not sent again within `withinSeconds`, marked sent now (one statement: two sweepers
   * never both take a task). The sweeper sends a dead worker's task — and the run's pending tables, which were
   * perhaps packed with it — again at most once per task lease: a re-sent message waits in a backed-up queue for
   * longer than a sweep's 5 minutes, and every sweep sent all of them again (50 tables: 150 messages in 15 minutes;
   * red team, fan-out).
   */
  async takeForResend(
    runId: string,
    tasks: { table: string; part: number }[],
    withinSeconds: number,
  ): Promise<{ table: string; part: number }[]> {
    if (tasks.length === 0) return [];
    const res = await this.pool.query<{ table_name: string; part: number }>(
      `update dropship.run_tasks t set resent_at = now()
         from unnest($2::text[], $3::int[]) as x(table_name, part)
        where t.run_id = $1 and t.table_name = x.table_name and t.part = x.part
          and (t.resent_at is null or t.resent_at < now() - make_interval(secs => $4))
        returning t.table_name, t.part`,
      [runId, tasks.map((t) => t.table), tasks.map((t) => t.part), withinSeconds],
    );
    const taken = new Set(res.rows.map((r) => `${r.table_name}\u0000${r.part}`));
    return tasks.filter((t) => taken.has(`${t.table}\u0000${t.part}`));
  }

  /** Forgets that these tasks were sent again (the send failed): the next sweep sends them. */
  async untakeResend(runId: string, tasks: { table: string; part: number }[]): Promise<void> {
    if (tasks.length === 0) return;
    await this.pool.query(
      `update dropship.run_tasks t set resent_at = null
         from unnest($2::text[], $3::int[]) as x(table_name, part)
        where t.run_id = $1 and t.table_name = x.table_name and t.part = x.part`,
      [runId, tasks.map((t) => t.table), tasks.map((t) => t.part)],
    );
  }

  async tasks(runId: string): Promise<Task[]> {
    const res = await this.pool.query('select * from dropship.run_tasks where run_id = $1 order by table_name, part', [
      runId,
    ]);
    return res.rows.map(toTask);
  }
}
