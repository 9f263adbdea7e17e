import pLimit from 'p-limit';
import type { Pool } from 'pg';
import type { Destination } from '../accounts/destination.js';
import { DestinationNotFound, Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import type { CustomerFailure } from '../contracts/customer-failure.js';
import { openTarget } from '../destinations/open.js';
import type { DestinationPort } from '../destinations/port.js';
import { createLogger, errorFields, type Logger } from '../log/logger.js';
import { emfLine } from '../log/metrics.js';
import type { OutcomeEvent, OutcomeOutbox } from '../store/ledger/outbox.js';
import { deliverPending, eventOf, runMetricsLine } from './outcome.js';
import { describeFailure, errorText } from './reasons.js';
import { buildStatus, StatusPlaceTaken, writeStatus } from './status.js';
import { StatusStore, statusPlaces } from './store.js';

/**
 * One way a run's end reaches the customer (issue 24). Every ledger transition that ends a run writes
 * one outcome event in the same transaction (dropship.outcome_events, src/store/ledger/outbox.ts); this
 * dispatcher is the only thing that delivers it:
 *
 *   1. the outcome is recorded once per run: the failure streak, an automatic pause when it reaches
 *      DROPSHIP_PAUSE_AFTER_FAILURES, and the webhook events (delivery.succeeded | delivery.failed,
 *      destination.paused) put in the webhook outbox (dropship.webhook_events) in that transaction;
 *   2. `<prefix>/status.json` is rewritten, in the run's frozen destination;
 *   3. one CloudWatch embedded-metric-format line (rows, bytes, seconds, failures) on Lambda;
 *   4. the run's webhook events are POSTed (signed, with their own retries; undelivered ones stay in
 *      the webhook outbox for the periodic function).
 *
 * Events are claimed with a lease (FOR UPDATE SKIP LOCKED): concurrent dispatchers never deliver the
 * same event at once, and a dispatcher that dies mid-delivery leaves it to the next one once its lease
 * runs out. Every step is idempotent per event (1 happens once per run; 2 rewrites the same document;
 * 4 sends the same event ids), so a retry never tells the customer twice. A delivery that fails is
 * retried with backoff (`nextAttemptAt`); after `maxAttempts` the event is given up (final failure).
 *
 * Called right after a run ends by the process that ended it (best effort: the customer hears at
 * once), and by the periodic function (src/schedule/tidy.ts), so a dead owner's outcome still goes out.
 * The outbox's shape (`OutcomeEvent`, `OutcomeOutbox`) is the ledger's: src/store/ledger/outbox.ts.
 */
export interface DispatchDeps {
  pool: Pool;
  settings: Settings;
  outbox: OutcomeOutbox;
  log?: Logger;
  /** The run's destination port to reuse for status.json (the caller's own; otherwise one is opened). */
  port?: DestinationPort;
  /** Where EMF lines go; default: stdout on Lambda, nowhere elsewhere. */
  metrics?: (line: string) => void;
  now?: () => Date;
  /** Seconds a claim is held (default DROPSHIP_RUN_STALE_SECONDS: a silent dispatcher is presumed dead). */
  leaseSeconds?: number;
  maxAttempts?: number;
  /** The delivery of one event (default `deliverOutcome`): tests replace it. */
  deliver?: (deps: DispatchDeps, ev: OutcomeEvent, hint: unknown) => Promise<void>;
  /** Test-only fault hook, called after status.json is written and before the webhooks are sent. */
  fault?: (point: 'after-status', ev: OutcomeEvent) => Promise<void> | void;
}

/**
 * Accounts whose outcomes one dispatcher delivers at once. Each delivery waits on the customer's side (an AssumeRole,
 * the status.json PUT, the webhooks): one after another, a whole missed slot of 10,000 accounts took hours, with the
 * sweeper's later steps (webhooks, pruning, the gauges) waiting behind it.
 */
export const OUTCOME_CONCURRENCY = 8;

/** How long one call keeps claiming new rounds (the sweeper's function has 300 s for all its steps). */
export const OUTCOME_BUDGET_MS = 120_000;

/** Attempts before an event is given up (with the default backoff: about 9 hours in all). */
export const OUTCOME_MAX_ATTEMPTS = 8;

/** Backoff after `attempts` failed attempts: 30 s, 2 min, 8 min, 32 min, then hourly. */
export function nextAttemptAt(attempts: number, now: Date): Date {
  const seconds = Math.min(3600, 30 * 4 ** Math.max(0, attempts - 1));
  return new Date(now.getTime() + seconds * 1000);
}

export interface DispatchResult {
  delivered: string[];
  retried: string[];
  givenUp: string[];
}

/**
 * Delivers due outcome events: all of them (the periodic function), or one run's (`runId`, right
 * after it ended; `hint` is the error the ending process holds, which names the customer's failure
 * more precisely than the ledger's text). Never throws.
 */
export async function dispatchOutcomes(
  deps: DispatchDeps,
  opts: { runId?: string; hint?: unknown; limit?: number; concurrency?: number; budgetMs?: number } = {},
): Promise<DispatchResult> {
  const log = deps.log ?? createLogger({ level: deps.settings.DROPSHIP_LOG_LEVEL });
  const now = deps.now ?? (() => new Date());
  const out: DispatchResult = { delivered: [], retried: [], givenUp: [] };
  const leaseSeconds = deps.leaseSeconds ?? deps.settings.DROPSHIP_RUN_STALE_SECONDS;
  const maxAttempts = deps.maxAttempts ?? OUTCOME_MAX_ATTEMPTS;
  const deliver = deps.deliver ?? deliverOutcome;
  const concurrency = Math.max(1, opts.concurrency ?? OUTCOME_CONCURRENCY);
  const limit = opts.limit ?? Math.max(20, 4 * concurrency);
  const budgetMs = opts.budgetMs ?? OUTCOME_BUDGET_MS;
  const t0 = performance.now();
  const one = async (ev: OutcomeEvent): Promise<void> => {
    const fields = { accountId: ev.accountId, runId: ev.runId, attempt: ev.attempts };
    try {
      await deliver({ ...deps, log }, ev, ev.runId === opts.runId ? opts.hint : undefined);
      if (await deps.outbox.delivered(ev.runId, ev.attempts, now())) out.delivered.push(ev.runId);
    } catch (e) {
      const last = ev.attempts >= maxAttempts;
      const at = last ? null : nextAttemptAt(ev.attempts, now());
      // A dispatcher whose lease ran out (another one took the event over) changes nothing.
      const noted = await deps.outbox.failed(ev.runId, ev.attempts, errorText(e).slice(0, 1000), at).catch(() => false);
      if (!noted) return;
      (last ? out.givenUp : out.retried).push(ev.runId);
      log[last ? 'error' : 'warn'](
        { ...fields, ...errorFields(e), ...(at ? { nextAttemptAt: at.toISOString() } : {}) },
        last ? 'run outcome given up after its last attempt' : 'run outcome not delivered yet; retried later',
      );
    }
  };
  try {
    // A claimed event is delivered, or due again only later (backoff), so each round is new; rounds stop when the
    // budget is spent (the rest waits for the next call: a whole missed slot's outcomes are many rounds).
    for (;;) {
      const batch = await deps.outbox.claim({
        now: now(),
        leaseSeconds,
        limit,
        ...(opts.runId ? { runId: opts.runId } : {}),
      });
      // Accounts side by side, each account's events one after another in the order they ended (its status.json
      // is rewritten by each: the last one written is its newest).
      const byAccount = new Map<string, OutcomeEvent[]>();
      for (const ev of batch) byAccount.set(ev.accountId, [...(byAccount.get(ev.accountId) ?? []), ev]);
      const gate = pLimit(concurrency);
      await Promise.all(
        [...byAccount.values()].map((evs) =>
          gate(async () => {
            for (const ev of evs) await one(ev);
          }),
        ),
      );
      if (batch.length < limit || opts.runId || performance.now() - t0 >= budgetMs) break;
    }
  } catch (e) {
    log.error({ ...(opts.runId ? { runId: opts.runId } : {}), ...errorFields(e) }, 'outcome dispatch failed');
  }
  return out;
}

/**
 * Delivers one outcome event (see the steps above). Throws when it should be retried: a step that
 * failed unexpectedly (the ledger, status.json in a bucket that should take it).
 */
export async function deliverOutcome(deps: DispatchDeps, ev: OutcomeEvent, hint: unknown): Promise<void> {
  const log = deps.log ?? createLogger({ level: deps.settings.DROPSHIP_LOG_LEVEL });
  const base = { accountId: ev.accountId, runId: ev.runId };
  let current: Destination;
  try {
    current = await new Registry(deps.pool).get(ev.accountId);
  } catch (e) {
    if (e instanceof DestinationNotFound) {
      log.info(base, 'run outcome not told: the destination was removed');
      return;
    }
    throw e;
  }
  // A run of a removed destination generation tells nobody — least of all a new owner of the account id.
  if (ev.generation !== null && ev.generation !== current.generation) {
    log.info(base, 'run outcome not told: the run served a destination that was removed since');
    return;
  }
  // status.json goes where the run delivered: its frozen destination (plan and pause as they are now).
  const frozen = ev.destination;
  let dest: Destination = frozen ? { ...frozen, enabled: current.enabled, plan: current.plan } : current;
  const ok = ev.status === 'succeeded';
  const at = ev.endedAt.toISOString();
  const failure = ok ? undefined : (ev.notice ?? (await deps.outbox.fixNotice(ev.runId, noticeOf(dest, ev, hint))));

  const store = new StatusStore(deps.pool);
  const recorded = await store.recordOutcome(
    {
      accountId: ev.accountId,
      runId: ev.runId,
      ok,
      endedAt: ev.endedAt,
      // An operator's cancel (or a change of the destination) is told, but it is not the customer's
      // failure: it never counts toward the pause.
      countsTowardPause: ev.status === 'failed',
      ...(ok ? { success: { run_id: ev.runId, receipt_key: ev.receiptKey ?? '', finished_at: at } } : {}),
      ...(failure ? { failure: { run_id: ev.runId, at, reason: failure.reason, fix: failure.fix } } : {}),
      generation: ev.generation,
    },
    deps.settings.DROPSHIP_PAUSE_AFTER_FAILURES,
    // Webhook events, in the webhook outbox in the same transaction (sent below, after status.json).
    (row, pausedNow) => {
      const fields = { account: ev.accountId, run_id: ev.runId, occurred_at: at };
      const evs = [
        eventOf(
          ok ? 'delivery.succeeded' : 'delivery.failed',
          ok
            ? { ...fields, receipt_key: ev.receiptKey ?? '' }
            : { ...fields, reason: failure!.reason, fix: failure!.fix },
        ),
      ];
      if (pausedNow)
        evs.push(
          eventOf('destination.paused', {
            ...fields,
            reason: `deliveries are paused after ${row.consecutiveFailures} consecutive failed runs; the last one: ${failure!.reason}`,
            fix: `${failure!.fix}; then ask dropship to resume deliveries`,
          }),
        );
      return evs;
    },
  );
  // Removed (and perhaps added again for someone else) since the look above: nobody is told.
  if (recorded === 'removed') {
    log.info(base, 'run outcome not told: the run served a destination that was removed since');
    return;
  }
  if (recorded?.pausedNow) {
    log.warn(
      { ...base, failures: recorded.row.consecutiveFailures },
      'destination paused after consecutive failed runs',
    );
  }
  const row = recorded?.row ?? (await store.get(ev.accountId));
  if (row.pausedAt !== null) dest = { ...dest, enabled: false };

  // status.json, with the destination's own credentials. Never into a bucket whose role does not
  // require the external ID (it may not be this customer's: confused deputy), nor when the bucket is
  // out of reach anyway (role, bucket, region). An outcome delivered late (a newer run's was recorded
  // first) leaves status.json to the newer one.
  const unsafe =
    ['external_id_not_enforced', 'role_not_assumable', 'bucket_missing', 'bucket_wrong_region'].includes(
      failure?.code ?? '',
    ) || /could not verify that role/.test(errorText(hint ?? ev.error));
  if (!unsafe && !recorded?.late) {
    const own = deps.port ? undefined : openTarget(dest, ev.runId, deps.settings);
    try {
      // Under the account's status.json lock, and re-read right before the PUT: a newer run's outcome recorded since
      // (its dispatcher writes status.json after us, or has already) leaves status.json to it — the PUT that lands
      // last is never older than the newest recorded outcome (red team, notify: rt-status-order).
      await store.underStatusLock(ev.accountId, async (c) => {
        if (await store.newerOutcome(c, ev.accountId, ev.runId, ev.endedAt)) {
          log.info(base, 'status.json left to a newer run: its outcome was recorded meanwhile');
          return;
        }
        await writeStatus(
          deps.port ?? own!,
          dest,
          buildStatus(dest, row, deps.settings, deps.now?.() ?? new Date()),
          statusPlaces(c),
        );
      });
    } catch (e) {
      // The customer's own status.json is at the place: left alone, the outcome told by the webhook (not retried).
      if (e instanceof StatusPlaceTaken) log.warn({ ...base, ...errorFields(e) }, 'status.json not written');
      // Expected when the run failed for lack of write or KMS permission: told by the webhook only.
      else if (failure?.code !== 'write_denied' && failure?.code !== 'kms_denied') throw e;
      else log.info({ ...base, ...errorFields(e) }, 'status.json not written');
    } finally {
      own?.close();
    }
  }
  await deps.fault?.('after-status', ev);

  // Metrics: once, with the outcome's first recording (a cancel is neither a delivery nor a failed one).
  if (recorded && ev.status !== 'cancelled') emitRunMetrics(deps, ev);
  // The run's webhook events (on a retry: whatever of the account is still pending).
  await deliverPending(deps, recorded ? { ids: recorded.eventIds } : { accountId: ev.accountId }, log);
}

/**
 * The outbox's gauge as one CloudWatch embedded-metric-format line (the sweeper logs it every 5
 * minutes): `OutcomesUndelivered` — runs whose customer was not told within 15 minutes, or whose
 * outcome was given up in the last day, and webhook events given up undelivered after a day of attempts in the last
 * day (`WebhooksGivenUp`). The OutcomesUndeliveredAlarm in serverless.yml watches it.
 */
export function outboxMetricsLine(
  namespace: string,
  b: { late: number; givenUp: number; webhooksGivenUp?: number },
  now: Date,
): string {
  const webhooks = b.webhooksGivenUp ?? 0;
  return emfLine(
    namespace,
    now,
    [
      { name: 'OutcomesUndelivered', unit: 'Count' },
      { name: 'OutcomesGivenUp', unit: 'Count' },
      { name: 'WebhooksGivenUp', unit: 'Count' },
    ],
    { OutcomesUndelivered: b.late + b.givenUp + webhooks, OutcomesGivenUp: b.givenUp, WebhooksGivenUp: webhooks },
  );
}

function noticeOf(dest: Destination, ev: OutcomeEvent, hint: unknown): CustomerFailure {
  return describeFailure(dest, hint ?? ev.error ?? `run ${ev.status}`);
}

function emitRunMetrics(deps: DispatchDeps, ev: OutcomeEvent): void {
  const sink =
    deps.metrics ??
    (process.env.AWS_LAMBDA_FUNCTION_NAME ? (line: string) => process.stdout.write(`${line}\n`) : undefined);
  if (!sink) return;
  sink(
    runMetricsLine(
      deps.settings.DROPSHIP_METRICS_NAMESPACE,
      {
        accountId: ev.accountId,
        runId: ev.runId,
        ok: ev.status === 'succeeded',
        rows: ev.rows,
        bytes: ev.bytes,
        seconds: ev.seconds,
      },
      deps.now?.() ?? new Date(),
    ),
  );
}
