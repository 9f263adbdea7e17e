import type { Pool } from 'pg';
import { type Destination, reviveDestination } from '../accounts/destination.js';
import { DestinationNotFound, Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { openTarget } from '../destinations/open.js';
import type { DestinationPort } from '../destinations/port.js';
import { createLogger, errorFields, type Logger } from '../log/logger.js';
import { describeFailure, errorText } from './reasons.js';
import { buildStatus, writeStatus } from './status.js';
import { StatusStore, webhookKey } from './store.js';
import { decryptSecret, deliverWithRetries, type EventType, type WebhookEvent } from './webhook.js';

/**
 * What happens when a run ends, on every path (CLI, Lambda fan-out): one call,
 *
 *   await recordRunOutcome({ pool, settings }, { accountId, runId, ok, receiptKey?, error? })
 *
 * made after the run's state is committed (receipt written, ledger closed). In order:
 *   1. the outcome is recorded once per run (the failure streak; an automatic pause when it reaches
 *      DROPSHIP_PAUSE_AFTER_FAILURES);
 *   2. `<prefix>/status.json` is rewritten;
 *   3. webhook events (`delivery.succeeded` | `delivery.failed`, and `destination.paused`) go to the
 *      outbox, then are POSTed, signed, with retries (bounded: attempts × timeout + backoff);
 *      undelivered ones stay in the outbox for the 15-minute sweep (handlers/check.ts);
 *   4. one CloudWatch embedded-metric-format line (rows, bytes, seconds, failures) on Lambda.
 * It never throws: a notification problem never turns a run's outcome around.
 */
export interface OutcomeDeps {
  pool: Pool;
  settings: Settings;
  log?: Logger;
  /** The run's destination port to reuse for status.json (otherwise one is opened). */
  port?: DestinationPort;
  /** Where EMF lines go; default: stdout on Lambda, nowhere elsewhere. */
  metrics?: (line: string) => void;
  now?: () => Date;
}

export interface RunOutcome {
  accountId: string;
  runId: string;
  ok: boolean;
  receiptKey?: string;
  error?: unknown;
}

export async function recordRunOutcome(deps: OutcomeDeps, o: RunOutcome): Promise<void> {
  const log = deps.log ?? createLogger({ level: deps.settings.DROPSHIP_LOG_LEVEL });
  try {
    await record(deps, o, log);
  } catch (e) {
    log.error({ accountId: o.accountId, runId: o.runId, ...errorFields(e) }, 'could not record the run outcome');
  }
}

async function record(deps: OutcomeDeps, o: RunOutcome, log: Logger): Promise<void> {
  const now = (deps.now ?? (() => new Date()))();
  const at = now.toISOString();
  let current: Destination;
  try {
    current = await new Registry(deps.pool).get(o.accountId);
  } catch (e) {
    if (e instanceof DestinationNotFound) return; // removed meanwhile: nobody to tell
    throw e;
  }
  const ran = await deps.pool.query<{ status: string; destination: unknown; destination_generation: string | null }>(
    'select status, destination, destination_generation from dropship.runs where run_id = $1',
    [o.runId],
  );
  const run = ran.rows[0];
  // A run of a removed destination generation tells nobody — least of all a new owner of the account id.
  if (run?.destination_generation != null && Number(run.destination_generation) !== current.generation) {
    log.info(
      { accountId: o.accountId, runId: o.runId },
      'run outcome not told: the run served a destination that was removed since',
    );
    return;
  }
  // status.json goes where the run delivered: the run's frozen destination (plan and pause as they are now).
  const frozen = reviveDestination(run?.destination);
  let dest: Destination = frozen ? { ...frozen, enabled: current.enabled, plan: current.plan } : current;
  if (!o.ok) {
    // A failure is told only for a run the ledger has failed (or one that never opened): a run still
    // running or finishing may yet publish its receipt (its finish records the success; the sweep
    // records a failure once the ledger says so), and an operator's cancel is not a failed delivery.
    const status = run?.status;
    if (status !== undefined && status !== 'failed') {
      log.info({ accountId: o.accountId, runId: o.runId, status }, 'run outcome not recorded as a failure');
      return;
    }
  }
  const store = new StatusStore(deps.pool);
  const failure = o.ok ? undefined : describeFailure(dest, o.error);
  const recorded = await store.recordOutcome(
    {
      accountId: o.accountId,
      runId: o.runId,
      ok: o.ok,
      ...(o.ok ? { success: { run_id: o.runId, receipt_key: o.receiptKey ?? '', finished_at: at } } : {}),
      ...(failure ? { failure: { run_id: o.runId, at, reason: failure.reason, fix: failure.fix } } : {}),
    },
    deps.settings.DROPSHIP_PAUSE_AFTER_FAILURES,
    // 3. webhook events, in the outbox in the same transaction (sent below, after status.json).
    (row, pausedNow) => {
      const base = { account: o.accountId, run_id: o.runId, occurred_at: at };
      const evs = [
        eventOf(
          o.ok ? 'delivery.succeeded' : 'delivery.failed',
          o.ok ? { ...base, receipt_key: o.receiptKey ?? '' } : { ...base, reason: failure!.reason, fix: failure!.fix },
        ),
      ];
      if (pausedNow)
        evs.push(
          eventOf('destination.paused', {
            ...base,
            reason: `deliveries are paused after ${row.consecutiveFailures} consecutive failed runs; the last one: ${failure!.reason}`,
            fix: `${failure!.fix}; then ask dropship to resume deliveries`,
          }),
        );
      return evs;
    },
  );
  if (!recorded) return; // another worker already recorded this run's end
  if (recorded.pausedNow) {
    dest = { ...dest, enabled: false };
    log.warn(
      { accountId: o.accountId, runId: o.runId, failures: recorded.row.consecutiveFailures },
      'destination paused after consecutive failed runs',
    );
  }

  // 2. status.json, with the destination's own credentials (best effort: a run that could not
  //    reach the bucket cannot write it either; the webhook still tells). Never into a bucket whose
  //    role does not require the external ID: it may not be this customer's (confused deputy).
  // Not attempted when the bucket is out of reach anyway (role, bucket, region).
  const unsafe =
    ['external_id_not_enforced', 'role_not_assumable', 'bucket_missing', 'bucket_wrong_region'].includes(
      failure?.code ?? '',
    ) || /could not verify that role/.test(errorText(o.error));
  let own: DestinationPort | undefined;
  if (!unsafe)
    try {
      own = deps.port ? undefined : openTarget(dest, o.runId, deps.settings);
      await writeStatus(deps.port ?? own!, dest, buildStatus(dest, recorded.row, deps.settings, now));
    } catch (e) {
      // Expected when the run failed for lack of write or KMS permission; unexpected otherwise.
      const expected = failure?.code === 'write_denied' || failure?.code === 'kms_denied';
      log[expected ? 'info' : 'warn'](
        { accountId: o.accountId, runId: o.runId, ...errorFields(e) },
        'status.json not written',
      );
    } finally {
      own?.close();
    }

  // 4. metrics.
  await emitRunMetrics(deps, o, now);

  if (recorded.eventIds.length > 0) await deliverPending(deps, { accountId: o.accountId, ids: recorded.eventIds }, log);
}

/**
 * Crash recovery: a run whose end was committed in the ledger but whose outcome was never recorded
 * (the process died in between) gets it now — status.json, webhook, streak. Only the latest ended
 * run of an account is recovered, and only if no later run was recorded, so status.json never goes
 * back in time. Runs younger than `settleSeconds` are left to the process that is finishing them.
 */
export async function recordMissedOutcomes(
  deps: Pick<OutcomeDeps, 'pool' | 'settings' | 'log'>,
  opts: { settleSeconds?: number } = {},
): Promise<string[]> {
  const res = await deps.pool.query<{
    run_id: string;
    account_id: string;
    status: string;
    receipt_key: string | null;
    error: string | null;
  }>(
    `select distinct on (r.account_id) r.run_id, r.account_id, r.status, r.receipt_key, r.error
       from dropship.runs r
      where r.status in ('succeeded', 'failed')
        and (r.destination_generation is null
             or r.destination_generation = (select d.generation from dropship.destinations d where d.account_id = r.account_id))
        and r.finished_at > now() - interval '1 day'
        and r.finished_at <= now() - make_interval(secs => $1)
        and not exists (
          select 1 from dropship.run_outcomes o join dropship.runs r2 using (run_id)
           where r2.account_id = r.account_id and (o.run_id = r.run_id or r2.started_at > r.started_at))
      order by r.account_id, r.started_at desc`,
    [opts.settleSeconds ?? 120],
  );
  for (const r of res.rows) {
    await recordRunOutcome(deps, {
      accountId: r.account_id,
      runId: r.run_id,
      ok: r.status === 'succeeded',
      ...(r.receipt_key ? { receiptKey: r.receipt_key } : {}),
      ...(r.error ? { error: r.error } : {}),
    });
  }
  return res.rows.map((r) => r.run_id);
}

/**
 * Rewrites status.json outside a run (after `destinations enable` resumes a paused destination), so
 * the customer does not read "paused" until the next slot. Best effort; returns whether it was written.
 */
export async function refreshStatus(
  deps: Pick<OutcomeDeps, 'pool' | 'settings' | 'log'>,
  accountId: string,
  now = new Date(),
): Promise<boolean> {
  const dest = await new Registry(deps.pool).get(accountId);
  const row = await new StatusStore(deps.pool).get(accountId);
  if (!row.lastSuccess && !row.lastFailure) return false; // never ran: nothing to correct
  let port: DestinationPort | undefined;
  try {
    port = openTarget(dest, `status-${now.getTime()}`, deps.settings);
    await writeStatus(port, dest, buildStatus(dest, row, deps.settings, now));
    return true;
  } catch (e) {
    deps.log?.warn({ accountId, ...errorFields(e) }, 'status.json not refreshed');
    return false;
  } finally {
    port?.close();
  }
}

function eventOf(type: EventType, fields: Omit<WebhookEvent, 'id' | 'type'>) {
  return { type, build: (id: string) => JSON.stringify({ id, type, ...fields }) };
}

export async function addEvent(
  store: StatusStore,
  type: EventType,
  fields: Omit<WebhookEvent, 'id' | 'type'>,
): Promise<string> {
  return store.addEvent(fields.account, type, (id) => JSON.stringify({ id, type, ...fields }));
}

/**
 * Sends undelivered outbox events (of one account, some ids, or all younger than a day), each with
 * up to DROPSHIP_WEBHOOK_ATTEMPTS signed POSTs. An event that exhausts its attempts stays pending
 * for the next sweep (every 15 minutes) until it is a day old; then it is given up.
 */
export async function deliverPending(
  deps: Pick<OutcomeDeps, 'pool' | 'settings'>,
  filter: { accountId?: string; ids?: string[] } = {},
  log?: Logger,
): Promise<{ delivered: number; failed: number }> {
  const store = new StatusStore(deps.pool);
  const s = deps.settings;
  let delivered = 0;
  let failed = 0;
  const pending = await store.pendingEvents(filter);
  if (pending.length === 0) return { delivered, failed };
  const key = await webhookKey(s);
  // Each event on its own: one that cannot be sent (a removed destination, an undecryptable secret, a
  // ledger hiccup) is noted and skipped; it never stops the events after it.
  for (const ev of pending) {
    const fields = { accountId: ev.accountId, eventId: ev.id, type: ev.type };
    try {
      if (!ev.current) {
        await store.noteDelivery(ev.id, 0, false, 'destination removed or re-registered before delivery', true);
        log?.warn(fields, 'webhook event dropped: its destination was removed (or re-registered) before delivery');
        continue;
      }
      const row = await store.get(ev.accountId);
      if (!row.webhookUrl || !row.webhookSecret) {
        await store.noteDelivery(ev.id, 0, false, 'webhook removed before delivery', true);
        continue;
      }
      const secret = decryptSecret(row.webhookSecret, key);
      const r = await deliverWithRetries(row.webhookUrl, secret, ev.body, {
        attempts: s.DROPSHIP_WEBHOOK_ATTEMPTS,
        backoffMs: s.DROPSHIP_WEBHOOK_BACKOFF_MS,
        timeoutMs: s.DROPSHIP_WEBHOOK_TIMEOUT_MS,
        allowLoopback: s.DROPSHIP_WEBHOOK_ALLOW_LOOPBACK,
      });
      const error = r.ok ? null : (r.error ?? `HTTP ${r.status}`);
      const old = (await store.pendingEvents({ ids: [ev.id], maxAgeHours: 24 })).length === 0;
      await store.noteDelivery(ev.id, r.attempts, r.ok, error, !r.ok && old);
      if (r.ok) delivered++;
      else {
        failed++;
        log?.warn(
          { ...fields, attempts: r.attempts, error },
          'webhook not delivered; it stays in the outbox for the next sweep',
        );
      }
    } catch (e) {
      failed++;
      log?.error({ ...fields, ...errorFields(e) }, 'webhook event could not be sent; it stays in the outbox');
      await store.noteDelivery(ev.id, 0, false, (e as Error).message ?? String(e), false).catch(() => {});
    }
  }
  return { delivered, failed };
}

/**
 * One CloudWatch embedded-metric-format line per run: Rows, Bytes, Seconds, FailedRuns and
 * SucceededRuns, by AccountId and across all accounts (an empty dimension set), in the
 * DROPSHIP_METRICS_NAMESPACE namespace. The FailedRuns alarm in serverless.yml watches the latter.
 */
export function runMetricsLine(
  namespace: string,
  o: { accountId: string; runId: string; ok: boolean; rows: number; bytes: number; seconds: number },
  now: Date,
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [['AccountId'], []],
          Metrics: [
            { Name: 'Rows', Unit: 'Count' },
            { Name: 'Bytes', Unit: 'Bytes' },
            { Name: 'Seconds', Unit: 'Seconds' },
            { Name: 'FailedRuns', Unit: 'Count' },
            { Name: 'SucceededRuns', Unit: 'Count' },
          ],
        },
      ],
    },
    AccountId: o.accountId,
    runId: o.runId,
    Rows: o.rows,
    Bytes: o.bytes,
    Seconds: Number(o.seconds.toFixed(3)),
    FailedRuns: o.ok ? 0 : 1,
    SucceededRuns: o.ok ? 1 : 0,
  });
}

async function emitRunMetrics(deps: OutcomeDeps, o: RunOutcome, now: Date): Promise<void> {
  const sink =
    deps.metrics ??
    (process.env.AWS_LAMBDA_FUNCTION_NAME ? (line: string) => process.stdout.write(`${line}\n`) : undefined);
  if (!sink) return;
  // Totals from the ledger (both paths record every run and task there).
  const res = await deps.pool.query<{ rows: string | null; bytes: string | null; seconds: number | null }>(
    `select (select sum(rows) from dropship.run_tasks where run_id = $1) as rows,
            (select sum(bytes) from dropship.run_tasks where run_id = $1) as bytes,
            (select extract(epoch from (coalesce(finished_at, now()) - started_at))::float8
               from dropship.runs where run_id = $1) as seconds`,
    [o.runId],
  );
  const r = res.rows[0];
  sink(
    runMetricsLine(
      deps.settings.DROPSHIP_METRICS_NAMESPACE,
      {
        accountId: o.accountId,
        runId: o.runId,
        ok: o.ok,
        rows: Number(r?.rows ?? 0),
        bytes: Number(r?.bytes ?? 0),
        seconds: r?.seconds ?? 0,
      },
      now,
    ),
  );
}
