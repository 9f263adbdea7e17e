import type { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import type { OpenSender } from '../contracts/open.js';
import { allSlots, slotsByPlan } from '../contracts/slots.js';
import type { MessageSender } from '../contracts/task.js';
import { errorFields, type Logger } from '../log/logger.js';
import { type DispatchDeps, type DispatchResult, dispatchOutcomes, outboxMetricsLine } from '../notify/dispatch.js';
import { deliverPending } from '../notify/outcome.js';
import { StatusStore } from '../notify/store.js';
import { type SweepResult, sweepRuns } from '../run/liveness/sweep.js';
import type { Ledger } from '../store/ledger/ledger.js';
import { type PruneResult, pruneLedger } from '../store/ledger/retention.js';
import { currentSlot, slotMetricsLine, slotStatus } from './slot-status.js';
import { catchUpSlots, type SlotRun } from './slots.js';

/**
 * The one periodic function (handlers/sweeper.ts, every 5 minutes) — all of dropship's tidying:
 *   1. sweep: ends or finishes runs whose owner died, re-sends stranded tasks (src/run/liveness/sweep.ts);
 *   2. catch-up: accounts of a scheduled slot without its run are sent to the open queue, or recorded as
 *      missed past the window (src/schedule/slots.ts);
 *   3. the slot's gauges as one EMF line (the alarms in serverless.yml);
 *   4. the outbox: every outcome event not delivered yet (a dead owner's, one whose delivery failed and
 *      is due again: src/notify/dispatch.ts), then webhook events still pending (their own retries);
 *   5. pruning (src/store/ledger/retention.ts): ended runs with their tasks and change states, receipt-chain
 *      links, delivered outcome events, webhook events and recorded outcomes older than
 *      DROPSHIP_LEDGER_RETENTION_DAYS — never an active run, the chain's last link or a change-set base —
 *      and the API's Idempotency-Key rows older than 24 h; in batches, for at most `pruneBudgetMs` per call;
 *   6. the outbox's gauge (`OutcomesUndelivered`, the OutcomesUndeliveredAlarm; webhook events given up after a
 *      day undelivered count in it) as one EMF line.
 * Each step runs even when an earlier one failed (logged).
 */
export interface TidyDeps {
  ledger: Ledger;
  registry: Registry;
  settings: Settings;
  log: Logger;
  queue: MessageSender;
  /** Where the catch-up sends a slot's accounts not opened yet (the open queue). */
  opens: OpenSender;
  sourceUrl: string;
  now?: () => Date;
  /** Passed to the dispatcher (tests: a fault hook, a metrics sink). */
  dispatch?: Partial<Pick<DispatchDeps, 'fault' | 'metrics' | 'leaseSeconds'>>;
  /** Time the pruning step may take per call (default 20 s; the rest waits for the next call). */
  pruneBudgetMs?: number;
  /** Where the slot and outbox gauges go (default stdout). */
  gauges?: (line: string) => void;
}

export interface TidyResult {
  runs: SweepResult[];
  slots: SlotRun[];
  outcomes: DispatchResult;
  webhooks: { delivered: number; failed: number; left?: number; givenUp?: number };
  pruned?: PruneResult;
}

export async function tidy(deps: TidyDeps): Promise<TidyResult> {
  const { ledger, registry, settings, log } = deps;
  const now = deps.now ?? (() => new Date());
  const step = async <T>(name: string, fallback: T, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      log.error({ step: name, ...errorFields(e) }, `tidy: ${name} failed`);
      return fallback;
    }
  };
  const swept = await step('sweep', [] as SweepResult[], () =>
    sweepRuns({
      ledger,
      settings,
      log,
      destination: (accountId) => registry.get(accountId),
      resend: (m) => deps.queue.send(m),
      by: 'sweeper',
      tell: false, // the outcomes go out with dispatchOutcomes below
    }),
  );
  const slots = await step('slot catch-up', [] as SlotRun[], () => catchUpSlots(deps, now()));
  await step('slot status', undefined, async () => {
    const at = now();
    const status = await slotStatus(deps, { ...currentSlot(allSlots(slotsByPlan(settings)), at), now: at });
    const line = slotMetricsLine(status, settings.DROPSHIP_METRICS_NAMESPACE, at);
    (deps.gauges ?? ((l: string) => process.stdout.write(`${l}\n`)))(line);
  });
  const outcomes = await dispatchOutcomes({
    pool: ledger.pool,
    settings,
    outbox: ledger.outcomes,
    log,
    now,
    ...deps.dispatch,
  });
  const webhooks = await step('webhook outbox', { delivered: 0, failed: 0 }, () =>
    deliverPending({ pool: ledger.pool, settings }, {}, log),
  );
  const pruned = await step('pruning', undefined, () =>
    pruneLedger(ledger.pool, {
      now: now(),
      retentionDays: settings.DROPSHIP_LEDGER_RETENTION_DAYS,
      ...(deps.pruneBudgetMs !== undefined ? { budgetMs: deps.pruneBudgetMs } : {}),
    }),
  );
  if (pruned && (pruned.runs > 0 || pruned.receiptLinks > 0 || !pruned.complete))
    log.info({ pruned, retentionDays: settings.DROPSHIP_LEDGER_RETENTION_DAYS }, 'ledger pruned');
  await step('outbox gauge', undefined, async () => {
    const at = now();
    const backlog = await ledger.outcomes.backlog(at);
    const webhooksGivenUp = await new StatusStore(ledger.pool).webhooksGivenUp(at);
    const line = outboxMetricsLine(settings.DROPSHIP_METRICS_NAMESPACE, { ...backlog, webhooksGivenUp }, at);
    (deps.gauges ?? ((l: string) => process.stdout.write(`${l}\n`)))(line);
  });
  const runs = swept.filter((s) => s.action !== 'alive');
  if (runs.length > 0 || slots.length > 0 || outcomes.delivered.length + outcomes.retried.length > 0)
    log.info({ runs, slots, outcomes }, 'tidy done');
  return { runs, slots, outcomes, webhooks, ...(pruned ? { pruned } : {}) };
}
