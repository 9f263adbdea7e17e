import type pg from 'pg';
import type { Destination } from '../../src/accounts/destination.js';
import type { Registry } from '../../src/accounts/registry.js';
import type { OpenRun } from '../../src/run/ledger-rows.js';
import { newRunId } from '../../src/run/lifecycle.js';

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
