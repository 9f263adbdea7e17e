import type { Pool } from 'pg';
import { type Destination, reviveDestination } from '../../accounts/destination.js';
import type { CustomerFailure } from '../../contracts/customer-failure.js';

export type OutcomeStatus = 'succeeded' | 'failed' | 'cancelled';

export interface OutcomeEvent {
  runId: string;
  accountId: string;
  status: OutcomeStatus;
  /** The destination generation the run served (null: a run opened before generations). */
  generation: number | null;
  /** The destination as the run froze it: where status.json goes (never the registry's current row). */
  destination: Destination | null;
  receiptKey: string | null;
  error: string | null;
  rows: number;
  bytes: number;
  seconds: number;
  endedAt: Date;
  /** Attempts so far, this claim included (fences a late dispatcher whose lease ran out). */
  attempts: number;
  /** The customer's words for the failure, fixed at the first attempt. */
  notice: CustomerFailure | null;
}

/** The ledger's outbox of outcome events, as the dispatcher (src/notify/dispatch.ts) needs it. */
export interface OutcomeOutbox {
  /** Claims due, undelivered events (oldest first), each for `leaseSeconds`; `runId`: only that run's. */
  claim(q: { now: Date; leaseSeconds: number; limit: number; runId?: string }): Promise<OutcomeEvent[]>;
  /** Fixes the customer's words of a failure (only if none were fixed yet); returns the fixed ones. */
  fixNotice(runId: string, notice: CustomerFailure): Promise<CustomerFailure>;
  /** Delivered (only by the claim holding `attempt`). */
  delivered(runId: string, attempt: number, now: Date): Promise<boolean>;
  /** Not delivered: due again at `at`, or given up for good when `at` is null. */
  failed(runId: string, attempt: number, error: string, at: Date | null): Promise<boolean>;
}

/**
 * The ledger's outbox of run outcomes (dropship.outcome_events, migration 14): one event per ended
 * run, unique on the run. It is written by the ledger's own transitions — a trigger on dropship.runs
 * inserts it in the very transaction that moves a run to `succeeded`, `failed` or `cancelled` (every
 * path: finishing, a failed task, a dead letter, the sweeper, a missed slot, an operator's cancel, a
 * change or removal of the destination) — plus `failedBeforeOpening` for a run that failed before the
 * ledger had it. The dispatcher (src/notify/dispatch.ts) claims and delivers them. `ledger.outcomes`.
 */
export class OutcomeOutboxLedger implements OutcomeOutbox {
  constructor(private readonly pool: Pool) {}

  async claim(q: { now: Date; leaseSeconds: number; limit: number; runId?: string }): Promise<OutcomeEvent[]> {
    const res = await this.pool.query(
      `update dropship.outcome_events e
          set attempts = e.attempts + 1, lease_until = $1::timestamptz + make_interval(secs => $2)
        where e.run_id in (
          select run_id from dropship.outcome_events
           where delivered_at is null and given_up_at is null and next_attempt_at <= $1
             and (lease_until is null or lease_until < $1) and ($4::text is null or run_id = $4)
           order by ended_at, run_id limit $3
           for update skip locked)
      returning e.*`,
      [q.now, q.leaseSeconds, q.limit, q.runId ?? null],
    );
    return res.rows.map(toEvent).sort((a, b) => a.endedAt.getTime() - b.endedAt.getTime());
  }

  async fixNotice(runId: string, notice: CustomerFailure): Promise<CustomerFailure> {
    const res = await this.pool.query<{ notice: CustomerFailure }>(
      `update dropship.outcome_events set notice = coalesce(notice, $2::jsonb) where run_id = $1 returning notice`,
      [runId, JSON.stringify(notice)],
    );
    return res.rows[0]?.notice ?? notice;
  }

  async delivered(runId: string, attempt: number, now: Date): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.outcome_events set delivered_at = $3, lease_until = null, last_error = null
        where run_id = $1 and attempts = $2 and delivered_at is null`,
      [runId, attempt, now],
    );
    return res.rowCount === 1;
  }

  async failed(runId: string, attempt: number, error: string, at: Date | null): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.outcome_events
          set lease_until = null, last_error = $3, next_attempt_at = coalesce($4, next_attempt_at),
              given_up_at = case when $4::timestamptz is null then now() end
        where run_id = $1 and attempts = $2 and delivered_at is null`,
      [runId, attempt, error, at],
    );
    return res.rowCount === 1;
  }

  /**
   * A run that failed before the ledger opened it (its role could not be assumed, its source schema
   * is gone): there is no run row, so its outcome event is written here, with the destination the
   * process held. False when the run id already has one.
   */
  async failedBeforeOpening(q: { runId: string; destination: Destination; error: string }): Promise<boolean> {
    const res = await this.pool.query(
      `insert into dropship.outcome_events (run_id, account_id, status, generation, destination, error, rows, bytes, seconds)
       values ($1, $2, 'failed', $3, $4, $5, 0, 0, 0) on conflict (run_id) do nothing`,
      [q.runId, q.destination.accountId, q.destination.generation, JSON.stringify(q.destination), q.error],
    );
    return res.rowCount === 1;
  }

  /** The event of a run (tests, `runs show`). */
  async get(runId: string): Promise<(OutcomeEvent & { deliveredAt: Date | null; givenUpAt: Date | null }) | undefined> {
    const res = await this.pool.query('select * from dropship.outcome_events where run_id = $1', [runId]);
    const r = res.rows[0];
    return r ? { ...toEvent(r), deliveredAt: r.delivered_at, givenUpAt: r.given_up_at } : undefined;
  }

  /**
   * For the `OutcomesUndelivered` gauge: events of runs that ended over `lateSeconds` ago and are not
   * delivered yet, and events given up within the last day.
   */
  async backlog(now: Date, lateSeconds = 900): Promise<{ late: number; givenUp: number }> {
    const res = await this.pool.query<{ late: number; given_up: number }>(
      `select count(*) filter (where given_up_at is null and ended_at < $1::timestamptz - make_interval(secs => $2))::int as late,
              count(*) filter (where given_up_at > $1::timestamptz - interval '1 day')::int as given_up
         from dropship.outcome_events where delivered_at is null`,
      [now, lateSeconds],
    );
    return { late: res.rows[0]?.late ?? 0, givenUp: res.rows[0]?.given_up ?? 0 };
  }
  // Delivered and given-up events are pruned by src/store/ledger/retention.ts (the periodic function).
}

// biome-ignore lint/suspicious/noExplicitAny: rows come from pg untyped
function toEvent(r: any): OutcomeEvent {
  return {
    runId: r.run_id,
    accountId: r.account_id,
    status: r.status,
    generation: r.generation === null ? null : Number(r.generation),
    destination: reviveDestination(r.destination),
    receiptKey: r.receipt_key,
    error: r.error,
    rows: Number(r.rows ?? 0),
    bytes: Number(r.bytes ?? 0),
    seconds: r.seconds ?? 0,
    endedAt: r.ended_at,
    attempts: r.attempts,
    notice: r.notice ?? null,
  };
}
