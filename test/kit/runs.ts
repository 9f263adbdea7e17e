import type pg from 'pg';
import type { Destination } from '../../src/accounts/destination.js';
import type { Registry } from '../../src/accounts/registry.js';
import type { TableResult } from '../../src/pipeline/table.js';
import { newRunId } from '../../src/run/lifecycle/lifecycle.js';
import type { Ledger } from '../../src/store/ledger/ledger.js';
import type { OpenRun, Run } from '../../src/store/ledger/rows.js';

/**
 * A registered destination for ledger-level tests: its source schema is created (empty) in the same
 * database, its bucket and role are names only (nothing talks to S3). Account ids must be unique
 * within a test file's database.
 */
export async function addDestination(
  h: { pool: pg.Pool; registry: Registry },
  accountId: string,
): Promise<Destination> {
  await h.pool.query(`create schema if not exists "${accountId}"`);
  return h.registry.add({
    accountId,
    plan: 'paid',
    bucket: `${accountId}-data`,
    region: 'us-east-1',
    roleArn: `arn:aws:iam::123456789012:role/dropship-export-${accountId}`,
    sourceSchema: accountId,
  });
}

/** What `Ledger.openRun` needs for a run of `d` (a fan-out run of tables a and b unless overridden). */
export function runOf(d: Destination, over: Partial<OpenRun> = {}): OpenRun {
  const start = new Date();
  return {
    runId: newRunId(start),
    accountId: d.accountId,
    trigger: 'cli',
    layout: d.layout,
    folder: start.toISOString().slice(0, 16),
    startedMicros: BigInt(start.getTime()) * 1000n,
    tables: ['a', 'b'],
    owner: 'fan-out',
    destination: d,
    ...over,
  };
}

/**
 * Time moves past every bound of the run: its heartbeat, its finishing lease and its tasks' leases
 * (moved a day back, so every stale and lease bound has passed).
 */
export async function pastTheBound(pool: pg.Pool, runId: string): Promise<void> {
  await pool.query(
    `update dropship.runs set heartbeat_at = heartbeat_at - interval '1 day', lease_until = lease_until - interval '1 day' where run_id = $1`,
    [runId],
  );
  await pool.query(
    `update dropship.run_tasks set lease_until = lease_until - interval '1 day' where run_id = $1 and lease_until is not null`,
    [runId],
  );
}

/**
 * Drops an owner-lock connection the way a dying process does, and waits (bounded) until Postgres has
 * ended that session: closing the socket returns at once, but the server releases the session's
 * advisory locks only when its backend exits, a moment later (under load, long enough for a sweep
 * issued right after to still see the lock held).
 */
export async function dropOwnerConnection(
  pool: pg.Pool,
  lock: { client: pg.PoolClient; release: () => void },
): Promise<void> {
  const pid = (await lock.client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  lock.release();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const alive = await pool.query('select 1 from pg_stat_activity where pid = $1', [pid]);
    if (alive.rowCount === 0) return;
    if (Date.now() > deadline) throw new Error(`the owner's session (pid ${pid}) did not end within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A task's result as a worker records it (at the ledger level nothing reads its files). */
export function taskResult(table: string, rows = 10): TableResult {
  return {
    table,
    objectName: table,
    folder: `f/${table}`,
    rows,
    bytes: rows * 100,
    files: [],
    columns: [],
    seconds: 0.1,
  };
}

/**
 * Opens a run of `d` and completes each of its tasks at attempt 1 (the run stays `running`); with
 * `finishing`, also takes the finish (the run is `finishing`, as its receipt is about to be written).
 */
export async function runWithTasksDone(
  ledger: Ledger,
  d: Destination,
  over: Partial<OpenRun> = {},
  opts: { finishing?: boolean } = {},
): Promise<Run> {
  const run = await ledger.openRun(runOf(d, over));
  for (const t of await ledger.tasks(run.runId)) {
    const ref = { runId: run.runId, table: t.table, part: t.part };
    const claim = await ledger.claimTask({ ...ref, leaseSeconds: 600 });
    if (!claim.claimed || !(await ledger.completeTask({ ...ref, attempt: claim.attempt, result: taskResult(t.table) })))
      throw new Error(`task ${t.table}#${t.part} of run ${run.runId} could not be completed`);
  }
  if (opts.finishing && !(await ledger.tryFinish({ runId: run.runId, leaseSeconds: 600 })))
    throw new Error(`run ${run.runId} could not be finished`);
  return (await ledger.getRun(run.runId))!;
}
