import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { outboxMetricsLine } from '../src/notify/dispatch.js';
import { deliverPending, eventOf } from '../src/notify/outcome.js';
import { StatusStore, WEBHOOK_EXPIRED, WEBHOOK_RETRY_BASE_SECONDS } from '../src/notify/store.js';
import { encryptSecret } from '../src/notify/webhook.js';
import { addDestination } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The webhook outbox is fair (red team, notify: rt-outbox-starvation): endpoints that accept and never answer filled all
 * lanes for the whole budget at every pass, so a healthy customer's queued event was never sent, and a day later it was
 * never selected again nor given up. Now each event waits for its next attempt time after a failed send, a pass sends
 * due events only (first attempts before retries, accounts whose webhook failed recently one event each, an account
 * stops at its first failure), and a day-old event is given up and counted.
 */
let h: Harness;
let settings: Settings;
let store: StatusStore;
const key = randomBytes(32).toString('base64');
const sealed = () => encryptSecret('whsec_test', Buffer.from(key, 'base64'));
const servers: Server[] = [];

/**
 * A webhook receiver: `hang` accepts and never answers; otherwise it answers `status`, or 200 to the first `okFirst`
 * POSTs and 503 to the rest.
 */
async function receiver(mode: 'hang' | number | { okFirst: number }): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      if (mode === 'hang') return;
      res.statusCode = typeof mode === 'number' ? mode : bodies.length <= mode.okFirst ? 200 : 503;
      res.end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, bodies };
}

async function withWebhook(accountId: string, url: string) {
  const d = await addDestination(h, accountId);
  await store.setWebhook(d.accountId, d.generation, url, sealed());
  return d;
}

async function queue(d: { accountId: string; generation: number }, runId: string): Promise<string> {
  const ev = eventOf('delivery.failed', {
    account: d.accountId,
    run_id: runId,
    occurred_at: new Date().toISOString(),
    reason: 'r',
    fix: 'f',
  });
  return (await store.addEventFor(d.accountId, d.generation, ev.type, ev.build))!;
}

async function row(id: string) {
  const res = await h.pool.query(
    `select attempts, failed_sends, next_attempt_at, next_attempt_at > now() as waiting,
            extract(epoch from next_attempt_at - now()) as wait_s, delivered_at, given_up_at, last_error
       from dropship.webhook_events where id = $1`,
    [id],
  );
  return res.rows[0];
}

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({
    DROPSHIP_WEBHOOK_KEY: key,
    DROPSHIP_WEBHOOK_BACKOFF_MS: '1',
    DROPSHIP_WEBHOOK_ATTEMPTS: '2',
    DROPSHIP_WEBHOOK_TIMEOUT_MS: '300',
    DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
    DROPSHIP_LOG_LEVEL: 'silent',
  });
  store = new StatusStore(h.pool);
}, 120_000);
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await h?.stop();
});

describe('the webhook outbox', () => {
  it('hung endpoints cost one event each per pass: a healthy account queued after them is sent in the same pass', async () => {
    // Prepare: 8 accounts whose webhook accepts and never answers, 3 events each, then a healthy account's event.
    const hung = await receiver('hang');
    const hungEvents: string[][] = [];
    for (let i = 0; i < 8; i++) {
      const d = await withWebhook(`hung${i}`, hung.url);
      hungEvents.push([await queue(d, 'a'), await queue(d, 'b'), await queue(d, 'c')]);
    }
    const good = await receiver(200);
    const healthyId = await queue(await withWebhook('healthy', good.url), 'h');

    // Act: one pass of all accounts, 8 lanes (its budget is no limit here: what is sent is decided by the order).
    const first = await deliverPending({ pool: h.pool, settings }, {}, undefined, { budgetMs: 600_000 });

    // Assess: the healthy event is delivered; each hung account's first event was tried once and now waits for its
    // next attempt time, its other events were not tried in this pass.
    expect(good.bodies.filter((b) => b.includes(healthyId))).toHaveLength(1);
    expect(first).toEqual({ delivered: 1, failed: 8 });
    for (const [a, b, c] of hungEvents) {
      expect(await row(a!)).toMatchObject({ attempts: 2, failed_sends: 1, waiting: true, given_up_at: null });
      expect(await row(b!)).toMatchObject({ attempts: 0, failed_sends: 0, next_attempt_at: null });
      expect(await row(c!)).toMatchObject({ attempts: 0, failed_sends: 0, next_attempt_at: null });
    }

    // Act 2: the next pass.
    await deliverPending({ pool: h.pool, settings }, {}, undefined, { budgetMs: 600_000 });

    // Assess 2: a recently failed account gets one event per pass — a first attempt (its second event), not the
    // retry, which is not due yet.
    for (const [a, b, c] of hungEvents) {
      expect(await row(a!)).toMatchObject({ attempts: 2, failed_sends: 1 });
      expect(await row(b!)).toMatchObject({ attempts: 2, failed_sends: 1, waiting: true });
      expect(await row(c!)).toMatchObject({ attempts: 0, failed_sends: 0 });
    }
    for (let i = 0; i < 8; i++) await h.registry.remove(`hung${i}`);
  }, 60_000);

  it('an account whose endpoint recovered drains its due backlog in one pass, stopping only at its first failure', async () => {
    // Prepare: three accounts left with due retries by an outage (each event sent once and failed, its pause over):
    // one whose endpoint is healthy again (10 events), one that answers 3 POSTs and then fails again (6 events), one
    // still down (3 events). Before, each got one event per pass (a backlog drained at 12 an hour).
    const recovered = await receiver(200);
    const relapse = await receiver({ okFirst: 3 });
    const down = await receiver(503);
    const backlog = async (accountId: string, url: string, n: number) => {
      const d = await withWebhook(accountId, url);
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push(await queue(d, `${accountId}-${i}`));
      await h.pool.query(
        `update dropship.webhook_events set attempts = 2, failed_sends = 1, next_attempt_at = now() - interval '1 second'
          where id = any($1::uuid[])`,
        [ids],
      );
      return ids;
    };
    const recoveredIds = await backlog('recovered', recovered.url, 10);
    const relapseIds = await backlog('relapse', relapse.url, 6);
    const downIds = await backlog('stilldown', down.url, 3);

    // Act: one pass of all accounts.
    const r = await deliverPending({ pool: h.pool, settings }, {}, undefined, { budgetMs: 600_000 });

    // Assess: the recovered account's whole backlog is delivered, each event once; the relapsing one delivers its
    // first three and stops at the fourth (failed again, waiting), its last two untouched; the account still down
    // costs one event (its two attempts), as before.
    expect(r).toEqual({ delivered: 13, failed: 2 });
    expect(recovered.bodies).toHaveLength(10);
    for (const id of recoveredIds) {
      expect((await row(id)).delivered_at).not.toBeNull();
      expect(recovered.bodies.filter((b) => b.includes(id))).toHaveLength(1);
    }
    expect(relapse.bodies).toHaveLength(5);
    for (const id of relapseIds.slice(0, 3)) expect((await row(id)).delivered_at).not.toBeNull();
    expect(await row(relapseIds[3]!)).toMatchObject({ failed_sends: 2, waiting: true, delivered_at: null });
    for (const id of relapseIds.slice(4))
      expect(await row(id)).toMatchObject({ failed_sends: 1, waiting: false, delivered_at: null });
    expect(down.bodies).toHaveLength(2);
    expect(await row(downIds[0]!)).toMatchObject({ failed_sends: 2, waiting: true });
    for (const id of downIds.slice(1)) expect(await row(id)).toMatchObject({ failed_sends: 1, waiting: false });
    for (const a of ['recovered', 'relapse', 'stilldown']) await h.registry.remove(a);
  }, 60_000);

  it('a failed event waits for its next attempt time, growing with each failed send, then is retried', async () => {
    // Prepare: an endpoint that answers 503.
    const down = await receiver(503);
    const d = await withWebhook('backoff', down.url);
    const id = await queue(d, 'x');

    // Act: a pass fails; an immediate second pass.
    expect(await deliverPending({ pool: h.pool, settings }, { accountId: 'backoff' })).toEqual({
      delivered: 0,
      failed: 1,
    });
    const afterFirst = await row(id);
    expect(await deliverPending({ pool: h.pool, settings }, { accountId: 'backoff' })).toEqual({
      delivered: 0,
      failed: 0,
    });

    // Assess: not sent again before its time (2 POSTs: one pass).
    expect(down.bodies).toHaveLength(2);
    expect(afterFirst).toMatchObject({ failed_sends: 1, waiting: true, given_up_at: null });
    expect(Number(afterFirst.wait_s)).toBeLessThanOrEqual(WEBHOOK_RETRY_BASE_SECONDS);

    // Act 2: its time comes; the pass sends it again (and it fails again).
    await h.pool.query(
      `update dropship.webhook_events set next_attempt_at = now() - interval '1 second' where id = $1`,
      [id],
    );
    await deliverPending({ pool: h.pool, settings }, { accountId: 'backoff' });

    // Assess 2: retried, and the next pause is longer than the first.
    expect(down.bodies).toHaveLength(4);
    const afterSecond = await row(id);
    expect(afterSecond).toMatchObject({ failed_sends: 2, waiting: true, given_up_at: null });
    expect(Number(afterSecond.wait_s)).toBeGreaterThan(WEBHOOK_RETRY_BASE_SECONDS);
  }, 60_000);

  it('an event a day old is given up by the next pass and counted by the outbox gauge, never silently kept', async () => {
    // Prepare: an event that failed and was queued 25 hours ago.
    const down = await receiver(503);
    const d = await withWebhook('dayold', down.url);
    const id = await queue(d, 'old');
    await h.pool.query(
      `update dropship.webhook_events set created_at = now() - interval '25 hours', attempts = 3, failed_sends = 20,
              last_error = 'HTTP 503' where id = $1`,
      [id],
    );
    const before = await store.webhooksGivenUp(new Date());

    // Act: the sweeper's pass of all accounts.
    const r = await deliverPending({ pool: h.pool, settings }, {});

    // Assess: given up (not sent), with the reason and its last error; the gauge counts it.
    expect(r.givenUp).toBe(1);
    expect(down.bodies).toHaveLength(0);
    const gone = await row(id);
    expect(gone.given_up_at).not.toBeNull();
    expect(gone.delivered_at).toBeNull();
    expect(gone.last_error).toBe(`${WEBHOOK_EXPIRED} (last error: HTTP 503)`);
    const now = new Date();
    expect(await store.webhooksGivenUp(now)).toBe(before + 1);
    const gauge = JSON.parse(outboxMetricsLine('ns', { late: 0, givenUp: 0, webhooksGivenUp: before + 1 }, now));
    expect(gauge).toMatchObject({ OutcomesUndelivered: before + 1, WebhooksGivenUp: before + 1 });
  }, 60_000);
});
