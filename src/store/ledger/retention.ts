import type { Pool } from 'pg';

/**
 * Ledger retention (issue 25): what the periodic function (src/schedule/tidy.ts) prunes, so the ledger
 * does not grow with every slot forever. Rows older than the cutoff (`now` − DROPSHIP_LEDGER_RETENTION_DAYS):
 *
 *   - ended runs (succeeded, failed, cancelled) that ended before the cutoff, with everything keyed by
 *     the run through `on delete cascade`: its tasks (dropship.run_tasks), its change states and their
 *     rows (dropship.change_states → change_rows); its selection, receipt bytes and frozen destination
 *     are columns of the run. KEPT: every active run (running, finishing) whatever its age, and per
 *     account and destination generation the last succeeded run — the base of the next change set
 *     (`Ledger.lastSucceededRun`) and the run its states belong to;
 *   - receipt-chain links published before the cutoff. KEPT per account and generation: the last link
 *     (the next receipt's sequence and previous_receipt_sha256: src/receipt/chain.ts `nextLink`), and
 *     per bucket and receipt key the last published link (the ETag the next receipt's conditional PUT
 *     names: `expectedReceiptEtag`);
 *   - outcome events delivered or given up (never a pending one), webhook events, recorded outcomes;
 *   - the HTTP API's Idempotency-Key rows (dropship.api_idempotency, migration 16) older than
 *     API_IDEMPOTENCY_KEEP_HOURS — their own cutoff, not the retention's: a key answers again for 24 h only.
 *
 * Deletes go in batches of `batch` rows (`= any(array(select … limit n))`: the batch is found through the
 * cutoff's index and deleted by key; `in (select …)` let the planner hash-join the whole table), each its own statement (short locks, no long transaction),
 * until a table has nothing older or `budgetMs` has passed: a tidy call takes bounded time, and a
 * backlog (the first prune after an upgrade) is worked off over several calls.
 */
export interface PruneOptions {
  /** The clock's now: the cutoff is `now` − `retentionDays`. */
  now: Date;
  retentionDays: number;
  /** Rows per delete statement (default 1,000). */
  batch?: number;
  /** Stop starting new batches after this long (default 20 s). */
  budgetMs?: number;
  /** Milliseconds for the budget (default performance.now). */
  elapsed?: () => number;
}

/** How long an Idempotency-Key answers again (src/api/idempotency.ts); older rows are pruned here. */
export const API_IDEMPOTENCY_KEEP_HOURS = 24;

export interface PruneResult {
  runs: number;
  receiptLinks: number;
  outcomeEvents: number;
  webhookEvents: number;
  runOutcomes: number;
  apiIdempotency: number;
  /** False when the budget ran out with rows still to prune (the next call goes on). */
  complete: boolean;
}

const ENDED = `('succeeded', 'failed', 'cancelled')`;

/** $1 = cutoff, $2 = batch. Each returns the number of rows it deleted (cascades not counted). */
type Step = Exclude<keyof PruneResult, 'complete'>;
const STEPS: Record<Step, string> = {
  runs: `
    delete from dropship.runs where run_id = any(array(
      select r.run_id from dropship.runs r
       where r.status in ${ENDED} and coalesce(r.finished_at, r.started_at) < $1
         and not (r.status = 'succeeded' and not exists (
               select 1 from dropship.runs n
                where n.account_id = r.account_id and n.status = 'succeeded'
                  and n.destination_generation is not distinct from r.destination_generation
                  and (n.finished_at > r.finished_at
                       or (n.finished_at = r.finished_at and n.started_micros > r.started_micros))))
       limit $2
       for update skip locked))`,
  receiptLinks: `
    delete from dropship.receipt_chain where ctid = any(array(
      select c.ctid from dropship.receipt_chain c
       where c.published_at < $1
         and exists (select 1 from dropship.receipt_chain n
                      where n.account_id = c.account_id and n.generation = c.generation and n.sequence > c.sequence)
         and (not c.published or exists (
               select 1 from dropship.receipt_chain n
                where n.account_id = c.account_id and n.generation = c.generation and n.sequence > c.sequence
                  and n.published and n.receipt_key = c.receipt_key and n.bucket is not distinct from c.bucket))
       limit $2
       for update skip locked))`,
  outcomeEvents: `
    delete from dropship.outcome_events where run_id = any(array(
      select run_id from dropship.outcome_events
       where (delivered_at is not null or given_up_at is not null) and ended_at < $1
       limit $2
       for update skip locked))`,
  webhookEvents: `
    delete from dropship.webhook_events where id = any(array(
      select id from dropship.webhook_events where created_at < $1 limit $2 for update skip locked))`,
  runOutcomes: `
    delete from dropship.run_outcomes where run_id = any(array(
      select run_id from dropship.run_outcomes where recorded_at < $1 limit $2 for update skip locked))`,
  apiIdempotency: `
    delete from dropship.api_idempotency where ctid = any(array(
      select ctid from dropship.api_idempotency where created_at < $1 limit $2 for update skip locked))`,
};

export async function pruneLedger(pool: Pool, o: PruneOptions): Promise<PruneResult> {
  const retained = new Date(o.now.getTime() - o.retentionDays * 86_400_000);
  const cutoffOf = (step: Step): Date =>
    step === 'apiIdempotency' ? new Date(o.now.getTime() - API_IDEMPOTENCY_KEEP_HOURS * 3_600_000) : retained;
  const batch = o.batch ?? 1000;
  const budget = o.budgetMs ?? 20_000;
  const elapsed = o.elapsed ?? (() => performance.now());
  const start = elapsed();
  const out: PruneResult = {
    runs: 0,
    receiptLinks: 0,
    outcomeEvents: 0,
    webhookEvents: 0,
    runOutcomes: 0,
    apiIdempotency: 0,
    complete: true,
  };
  for (const [name, sql] of Object.entries(STEPS) as [Step, string][]) {
    for (;;) {
      if (elapsed() - start >= budget) return { ...out, complete: false };
      const n = (await pool.query(sql, [cutoffOf(name), batch])).rowCount ?? 0;
      out[name] += n;
      if (n < batch) break;
    }
  }
  return out;
}
