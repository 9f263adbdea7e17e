import pLimit from 'p-limit';
import type { Pool } from 'pg';
import { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { openTarget } from '../destinations/open.js';
import { errorFields, type Logger } from '../log/logger.js';
import { emfLine } from '../log/metrics.js';
import { buildStatus, writeStatus } from './status.js';
import { StatusStore, statusPlaces, webhookKey } from './store.js';
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
  const ran = await store.get(accountId);
  if (!ran.lastSuccess && !ran.lastFailure) return false; // never ran: nothing to correct
  const port = openTarget(dest, `status-${now.getTime()}`, deps.settings);
  try {
    // Under the account's status.json lock, the row read right before the PUT: never older than a run's write.
    await store.underStatusLock(accountId, async (c) =>
      writeStatus(port, dest, buildStatus(dest, await store.get(accountId, c), deps.settings, now), statusPlaces(c)),
    );
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
 * Sends the outbox events due now (of one account, some ids — due at once —, or all), each with up to
 * DROPSHIP_WEBHOOK_ATTEMPTS signed POSTs (red team, notify: a few endpoints that accept and never answer filled every
 * lane for the whole budget at every pass, so a healthy customer's events were never sent, and were lost a day later):
 *   - an event not delivered waits before its next send (4 min, doubling, at most hourly: `StatusStore.noteDelivery`),
 *     so a pass sends only due events, first attempts before retries, the accounts whose webhook did not fail recently
 *     first;
 *   - an account stops for the pass at its first failed event, and an account whose webhook failed recently (one of
 *     its pending events is a retry) starts with one event, its lane after the healthy accounts': a dead endpoint
 *     costs one event's attempts × timeout per pass, never its whole backlog; once that event is delivered (the
 *     endpoint recovered) the account's other due events follow in the same pass, within the budget;
 *   - a pass of all accounts (the sweeper, src/schedule/tidy.ts, every 5 minutes; the check function) first gives up
 *     the events a day old (`givenUp`, counted by the outbox gauge): none is silently never selected again.
 * Accounts go side by side (`concurrency`), each account's events one after another, and no delivery starts once
 * `budgetMs` has passed (`left` counts those).
 */
export async function deliverPending(
  deps: Pick<OutcomeDeps, 'pool' | 'settings'>,
  filter: { accountId?: string; ids?: string[] } = {},
  log?: Logger,
  opts: { concurrency?: number; budgetMs?: number } = {},
): Promise<{ delivered: number; failed: number; left?: number; givenUp?: number }> {
  const store = new StatusStore(deps.pool);
  const s = deps.settings;
  let delivered = 0;
  let failed = 0;
  let left = 0;
  const givenUp = filter.accountId === undefined && filter.ids === undefined ? await store.expireEvents() : 0;
  if (givenUp > 0) log?.error({ givenUp }, 'webhook events given up: not delivered within a day');
  const tally = () => ({ delivered, failed, ...(left > 0 ? { left } : {}), ...(givenUp > 0 ? { givenUp } : {}) });
  const pending = await store.dueEvents(filter);
  if (pending.length === 0) return tally();
  const key = await webhookKey(s);
  const t0 = performance.now();
  const budgetMs = opts.budgetMs ?? WEBHOOK_BUDGET_MS;
  // Each event on its own: one that cannot be sent (a removed destination, an undecryptable secret, a
  // ledger hiccup) is noted and skipped; it never stops the events of other accounts. Returns whether it was delivered
  // (or settled: nothing more to send).
  const one = async (ev: (typeof pending)[number]): Promise<boolean> => {
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
        return true;
      }
      const error = r.ok ? null : (r.error ?? `HTTP ${r.status}`);
      // Not delivered: due again after its pause, or given up when a day old (noteDelivery).
      const noted = await store.noteDelivery(ev.id, r.attempts, r.ok, error, false);
      if (!noted) {
        log?.warn({ ...fields, ok: r.ok }, 'webhook event given up (or delivered elsewhere) while it was being sent');
        return true;
      }
      if (r.ok) delivered++;
      else {
        failed++;
        log?.warn(
          { ...fields, attempts: r.attempts, error },
          'webhook not delivered; it stays in the outbox, retried later',
        );
      }
      return r.ok;
    } catch (e) {
      failed++;
      log?.error({ ...fields, ...errorFields(e) }, 'webhook event could not be sent; it stays in the outbox');
      await store.noteDelivery(ev.id, 0, false, (e as Error).message ?? String(e), false).catch(() => {});
      return false;
    }
  };
  // Each account's due events in the pass's order (`pending` puts the accounts whose webhook did not fail recently
  // first, so their lanes start first). Every account — one whose webhook failed recently too — starts with one event
  // and goes on only while its events are delivered: a dead endpoint costs one event per pass, and one that has
  // recovered drains its due backlog in the pass (within the budget), where it was held to one event per pass
  // until none of its events had a failed send left — 12 an hour, the rest given up after a day (review).
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
          // The account's webhook failed now: its other events wait for the next pass.
          if (!(await one(ev))) return;
        }
      }),
    ),
  );
  if (left > 0) log?.warn({ left, budgetMs }, 'webhook outbox: out of time for this call; the rest is sent next');
  return tally();
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
