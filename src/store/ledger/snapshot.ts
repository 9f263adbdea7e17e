import type { Pool } from 'pg';

/** What the ledger knows of a fan-out run's shared snapshot (see SnapshotHolderLedger). */
export interface RunSnapshot {
  holder: string | null;
  claimedSecondsAgo: number | null;
  exportId: string | null;
  id: string | null;
  at: string | null;
  released: boolean;
}

/**
 * The shared snapshot of a fan-out run (src/run/lifecycle/shared-snapshot.ts), as the ledger records it on
 * the run's row: who holds it, the exported snapshot id, whether it was released. `ledger.snapshot`.
 */
export class SnapshotHolderLedger {
  constructor(private readonly pool: Pool) {}

  /** The first caller becomes the run's snapshot holder (true); everyone else gets false. */
  async claimHolder(q: { runId: string; holder: string }): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.runs set snapshot_holder = $2, snapshot_claimed_at = now()
        where run_id = $1 and status = 'running' and snapshot_holder is null`,
      [q.runId, q.holder],
    );
    return res.rowCount === 1;
  }

  /** A would-be holder that could not open the snapshot gives the role back (the next task may take it). */
  async releaseHolder(q: { runId: string; holder: string }): Promise<void> {
    await this.pool.query(
      `update dropship.runs set snapshot_holder = null, snapshot_claimed_at = null
        where run_id = $1 and snapshot_holder = $2 and snapshot_export is null`,
      [q.runId, q.holder],
    );
  }

  /** The holder records the exported snapshot id (for SET TRANSACTION SNAPSHOT) and what it shows. */
  async record(q: { runId: string; exportId: string; id: string; at: string }): Promise<void> {
    await this.pool.query(
      'update dropship.runs set snapshot_export = $2, snapshot_id = $3, snapshot_at = $4 where run_id = $1',
      [q.runId, q.exportId, q.id, q.at],
    );
  }

  /** The holder closed its transaction: the snapshot can no longer be imported. */
  async released(runId: string): Promise<void> {
    await this.pool.query('update dropship.runs set snapshot_released_at = now() where run_id = $1', [runId]);
  }

  async get(runId: string): Promise<RunSnapshot | undefined> {
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
