import pLimit from 'p-limit';
import type { Pool } from 'pg';
import { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { openTarget } from '../destinations/open.js';
import { errorFields, type Logger } from '../log/logger.js';
import { emfLine } from '../log/metrics.js';
import { buildStatus, writeStatus } from './status.js';
import { StatusStore, webhookKey } from './store.js';
import { decryptSecret, deliverToCurrent, type EventType, type WebhookEvent } from './webhook.js';

/**
 * Helpers of the run outcome (src/notify/dispatch.ts delivers it): the webhook events and their
 * outbox, status.json outside a run, the metrics line.
 */
export interface OutcomeDeps {
  pool: Pool;
  settings: Settings;
  log?: Logger;
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
  const store = new StatusStore(deps.pool);
  const row = await store.get(accountId);
  if (!row.lastSuccess && !row.lastFailure) return false; // never ran: nothing to correct
  const port = openTarget(dest, `status-${now.getTime()}`, deps.settings);
  try {
    await writeStatus(port, dest, buildStatus(dest, row, deps.settings, now), store);
    return true;
  } catch (e) {
    deps.log?.warn({ accountId, ...errorFields(e) }, 'status.json not refreshed');
    return false;
  } finally {
    port.close();
  }
}

export function eventOf(type: EventType, fields: Omit<WebhookEvent, 'id' | 'type'>) {
  return { type, build: (id: string) => JSON.stringify({ id, type, ...fields }) };
}

/**
 * An event about the registration `of.generation` at destination version `of.version` (none when that registration is
 * gone, or the destination was changed since: see `addEventFor`).
 */
export async function addEvent(
  store: StatusStore,
  of: { generation: number; version: number },
  type: EventType,
  fields: Omit<WebhookEvent, 'id' | 'type'>,
): Promise<string | undefined> {
  return store.addEventFor(
    fields.account,
    of.generation,
    type,
    (id) => JSON.stringify({ id, type, ...fields }),
    of.version,
  );
}

/** Accounts whose webhook events are sent side by side (each account's in order). */
export const WEBHOOK_CONCURRENCY = 8;
/** How long one call keeps starting deliveries: the rest stay pending for the next (the sweeper, every 5 minutes). */
export const WEBHOOK_BUDGET_MS = 120_000;

/**
 * Sends undelivered outbox events (of one account, some ids, or all younger than a day), each with
 * up to DROPSHIP_WEBHOOK_ATTEMPTS signed POSTs. An event that exhausts its attempts stays pending
 * for the periodic function (src/schedule/tidy.ts, every 5 minutes) until it is a day old; then it is given up.
 * Accounts go side by side (`concurrency`), each account's events one after another in their order, and no delivery
 * starts once `budgetMs` has passed (`left` counts those): one endpoint that accepts and never answers costs its own
 * events attempts × DROPSHIP_WEBHOOK_TIMEOUT_MS, never everyone else's (red team, API: the drift checks and the
 * sweeper sent every event one after another, so ~17 dead endpoints used up the check function's 600 s).
 */
export async function deliverPending(
  deps: Pick<OutcomeDeps, 'pool' | 'settings'>,
  filter: { accountId?: string; ids?: string[] } = {},
  log?: Logger,
  opts: { concurrency?: number; budgetMs?: number } = {},
): Promise<{ delivered: number; failed: number; left?: number }> {
  const store = new StatusStore(deps.pool);
  const s = deps.settings;
  let delivered = 0;
  let failed = 0;
  let left = 0;
  const pending = await store.pendingEvents(filter);
  if (pending.length === 0) return { delivered, failed };
  const key = await webhookKey(s);
  const t0 = performance.now();
  const budgetMs = opts.budgetMs ?? WEBHOOK_BUDGET_MS;
  // Each event on its own: one that cannot be sent (a removed destination, an undecryptable secret, a
  // ledger hiccup) is noted and skipped; it never stops the events after it.
  const one = async (ev: (typeof pending)[number]): Promise<void> => {
    const fields = { accountId: ev.accountId, eventId: ev.id, type: ev.type };
    try {
      // The URL and secret are read right before each POST, of the event's own registration: `pending` was read
      // before, and the account may have been removed (and registered again) since (src/notify/store.ts sendTarget).
      let stop: { settled: true } | { withdrawn: string } | undefined;
      const r = await deliverToCurrent(
        async () => {
          const to = await store.sendTarget(ev.id);
          if ('url' in to) return { url: to.url, secret: decryptSecret(to.secret, key) };
          stop = to;
          return undefined;
        },
        ev.body,
        {
          attempts: s.DROPSHIP_WEBHOOK_ATTEMPTS,
          backoffMs: s.DROPSHIP_WEBHOOK_BACKOFF_MS,
          timeoutMs: s.DROPSHIP_WEBHOOK_TIMEOUT_MS,
          allowLoopback: s.DROPSHIP_WEBHOOK_ALLOW_LOOPBACK,
        },
      );
      if (stop !== undefined) {
        if ('withdrawn' in stop) {
          await store.noteDelivery(ev.id, r.attempts, false, stop.withdrawn, true);
          log?.warn({ ...fields, reason: stop.withdrawn }, 'webhook event given up before delivery');
        }
        return;
      }
      const error = r.ok ? null : (r.error ?? `HTTP ${r.status}`);
      const old = (await store.pendingEvents({ ids: [ev.id], maxAgeHours: 24 })).length === 0;
      const noted = await store.noteDelivery(ev.id, r.attempts, r.ok, error, !r.ok && old);
      if (!noted) {
        log?.warn({ ...fields, ok: r.ok }, 'webhook event given up (or delivered elsewhere) while it was being sent');
        return;
      }
      if (r.ok) delivered++;
      else {
        failed++;
        log?.warn(
          { ...fields, attempts: r.attempts, error },
          'webhook not delivered; it stays in the outbox for the next tidy',
        );
      }
    } catch (e) {
      failed++;
      log?.error({ ...fields, ...errorFields(e) }, 'webhook event could not be sent; it stays in the outbox');
      await store.noteDelivery(ev.id, 0, false, (e as Error).message ?? String(e), false).catch(() => {});
    }
  };
  const byAccount = new Map<string, typeof pending>();
  for (const ev of pending) {
    const evs = byAccount.get(ev.accountId);
    if (evs) evs.push(ev);
    else byAccount.set(ev.accountId, [ev]);
  }
  const gate = pLimit(Math.max(1, opts.concurrency ?? WEBHOOK_CONCURRENCY));
  await Promise.all(
    [...byAccount.values()].map((evs) =>
      gate(async () => {
        for (const [i, ev] of evs.entries()) {
          if (performance.now() - t0 >= budgetMs) {
            left += evs.length - i;
            return;
          }
          await one(ev);
        }
      }),
    ),
  );
  if (left > 0) log?.warn({ left, budgetMs }, 'webhook outbox: out of time for this call; the rest is sent next');
  return { delivered, failed, ...(left > 0 ? { left } : {}) };
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
  return emfLine(
    namespace,
    now,
    [
      { name: 'Rows', unit: 'Count' },
      { name: 'Bytes', unit: 'Bytes' },
      { name: 'Seconds', unit: 'Seconds' },
      { name: 'FailedRuns', unit: 'Count' },
      { name: 'SucceededRuns', unit: 'Count' },
    ],
    {
      AccountId: o.accountId,
      runId: o.runId,
      Rows: o.rows,
      Bytes: o.bytes,
      Seconds: Number(o.seconds.toFixed(3)),
      FailedRuns: o.ok ? 0 : 1,
      SucceededRuns: o.ok ? 1 : 0,
    },
    [['AccountId'], []],
  );
}
