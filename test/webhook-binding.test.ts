import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { deliverPending, eventOf } from '../src/notify/outcome.js';
import { StatusStore } from '../src/notify/store.js';
import { encryptSecret, generateSecret, verify } from '../src/notify/webhook.js';
import { updateDestination } from '../src/operations/destinations.js';
import { addDestination } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Ground rule of the outbox: an event is sent only to the webhook of the registration it was created for, signed with
 * that webhook's secret — never to a later registration of the same account id (red team, notify: a removal and a new
 * registration during a delivery sent the old events to the new owner's URL, signed with the new owner's secret).
 * Real Postgres, real HTTP receivers on 127.0.0.1 whose answers the test holds and releases.
 */
let h: Harness;
let settings: Settings;
const key = randomBytes(32).toString('base64');
const servers: Server[] = [];

interface Receiver {
  url: string;
  /** Bodies received, in order. */
  bodies: string[];
  /** Their Dropship-Signature headers. */
  signatures: string[];
  /** Resolves at the next request (before it is answered). */
  next(): Promise<void>;
  /** Answers the requests held so far (and every later one at once). */
  release(): void;
}

/** A receiver that answers `status`; with `hold`, only once `release()` is called. */
async function receiver(status: number, hold = false): Promise<Receiver> {
  const bodies: string[] = [];
  const signatures: string[] = [];
  let waiters: (() => void)[] = [];
  let held: (() => void)[] = [];
  let released = !hold;
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      signatures.push(String(req.headers['dropship-signature']));
      const answer = () => res.writeHead(status).end();
      if (released) answer();
      else held.push(answer);
      for (const w of waiters) w();
      waiters = [];
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`,
    bodies,
    signatures,
    next: () => new Promise<void>((r) => waiters.push(r)),
    release: () => {
      released = true;
      for (const a of held) a();
      held = [];
    },
  };
}

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({
    DROPSHIP_WEBHOOK_KEY: key,
    DROPSHIP_WEBHOOK_BACKOFF_MS: '1',
    DROPSHIP_WEBHOOK_ATTEMPTS: '1',
    DROPSHIP_WEBHOOK_TIMEOUT_MS: '10000',
    DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
    DROPSHIP_LOG_LEVEL: 'silent',
  });
}, 120_000);

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await h?.stop();
});

function failedEvent(accountId: string, runId: string) {
  return eventOf('delivery.failed', {
    account: accountId,
    run_id: runId,
    occurred_at: new Date().toISOString(),
    reason: 'the old registration: not the new owner’s business',
    fix: 'f',
  });
}

/** A settings copy with `attempts` POSTs per delivery. */
function withAttempts(attempts: number): Settings {
  return { ...settings, DROPSHIP_WEBHOOK_ATTEMPTS: attempts };
}

async function eventRow(id: string) {
  const res = await h.pool.query<{ delivered_at: Date | null; given_up_at: Date | null; last_error: string | null }>(
    'select delivered_at, given_up_at, last_error from dropship.webhook_events where id = $1',
    [id],
  );
  return res.rows[0]!;
}

describe('the outbox sends an event to its own registration only', () => {
  it('a removal and a new registration during a delivery: the old events never reach the new owner', async () => {
    // Prepare: the old registration with a webhook that takes its time, and two of its events queued.
    const deps = { settings, pool: h.pool, registry: h.registry };
    const old = await addDestination(h, 'reused');
    const slowOld = await receiver(200, true);
    await updateDestination(deps, 'reused', {}, slowOld.url);
    const store = new StatusStore(h.pool);
    const ids: string[] = [];
    for (const run of ['old-run-1', 'old-run-2']) {
      const ev = failedEvent('reused', run);
      ids.push((await store.addEventFor('reused', old.generation, ev.type, ev.build))!);
    }

    // Act: the outbox sends event 1; while its POST is under way, the account id is removed and registered again
    // (another customer) with its own webhook; then the old endpoint answers 200.
    const arrived = slowOld.next();
    const sweeping = deliverPending({ pool: h.pool, settings });
    await arrived;
    await h.registry.remove('reused');
    await addDestination(h, 'reused');
    const fresh = await receiver(200);
    await updateDestination(deps, 'reused', {}, fresh.url);
    slowOld.release();
    const result = await sweeping;

    // Assess: nothing of the old registration at the new owner's URL; event 1 stays given up (the removal's
    // end, not overwritten as delivered by its late 200), event 2 was never sent.
    expect(fresh.bodies.filter((b) => b.includes('old-run'))).toEqual([]);
    expect(slowOld.bodies).toHaveLength(1);
    expect(result.delivered).toBe(0);
    const [first, second] = [await eventRow(ids[0]!), await eventRow(ids[1]!)];
    expect(first.delivered_at).toBeNull();
    expect(first.given_up_at).not.toBeNull();
    expect(first.last_error).toBe('destination removed before delivery');
    expect(second.delivered_at).toBeNull();
    expect(second.given_up_at).not.toBeNull();
  }, 60_000);
});

describe('the outbox sends an event to the webhook version it was queued for only', () => {
  it('a webhook URL change gives up the events queued for the old URL: none reaches the new one', async () => {
    // Prepare: webhook A is down; an event queued for it was tried once and stays pending.
    const deps = { settings, pool: h.pool, registry: h.registry };
    const d = await addDestination(h, 'newurl');
    const a = await receiver(503);
    const b = await receiver(200);
    await updateDestination(deps, 'newurl', {}, a.url);
    const store = new StatusStore(h.pool);
    const ev = failedEvent('newurl', 'queued-for-a');
    const id = (await store.addEventFor('newurl', d.generation, ev.type, ev.build))!;
    await deliverPending({ pool: h.pool, settings }, { accountId: 'newurl' });
    expect(a.bodies).toHaveLength(1);

    // Act: the webhook now points at B (a new secret with it); the outbox runs again, then an event of B's time.
    await updateDestination(deps, 'newurl', {}, b.url);
    await deliverPending({ pool: h.pool, settings }, { accountId: 'newurl' });
    const later = failedEvent('newurl', 'queued-for-b');
    const laterId = (await store.addEventFor('newurl', d.generation, later.type, later.build))!;
    await deliverPending({ pool: h.pool, settings }, { accountId: 'newurl' });

    // Assess: the old event was given up at the change, with the reason, and never sent to B; B's own event is.
    expect(b.bodies.filter((body) => body.includes(id))).toEqual([]);
    expect(b.bodies.filter((body) => body.includes(laterId))).toHaveLength(1);
    expect(a.bodies).toHaveLength(1);
    const row = await eventRow(id);
    expect(row.delivered_at).toBeNull();
    expect(row.given_up_at).not.toBeNull();
    expect(row.last_error).toMatch(/^webhook changed .* before delivery/);
  });

  it('a secret rotation gives up the events queued under the old secret: none is signed with the new one', async () => {
    // Prepare: webhook A is down; an event queued under the first secret was tried once and stays pending.
    const deps = { settings, pool: h.pool, registry: h.registry };
    const d = await addDestination(h, 'rotated');
    const a = await receiver(503);
    await updateDestination(deps, 'rotated', {}, a.url);
    const store = new StatusStore(h.pool);
    const ev = failedEvent('rotated', 'queued-under-old-secret');
    const id = (await store.addEventFor('rotated', d.generation, ev.type, ev.build))!;
    await deliverPending({ pool: h.pool, settings }, { accountId: 'rotated' });
    expect(a.bodies).toHaveLength(1);

    // Act: rotate-webhook-secret (same URL, a new secret); the outbox runs again.
    const fresh = generateSecret();
    expect(await store.setSecret('rotated', d.generation, encryptSecret(fresh, Buffer.from(key, 'base64')))).toBe(true);
    await deliverPending({ pool: h.pool, settings }, { accountId: 'rotated' });

    // Assess: no second POST of it (signed with either secret); given up at the rotation, with the reason.
    expect(a.bodies).toHaveLength(1);
    expect(a.signatures.some((sig, i) => verify(fresh, sig, a.bodies[i]!).ok)).toBe(false);
    const row = await eventRow(id);
    expect(row.given_up_at).not.toBeNull();
    expect(row.last_error).toMatch(/^webhook secret rotated before delivery/);
  });

  it('a URL change during a delivery: its next attempt is not made to the new URL', async () => {
    // Prepare: webhook A answers 503, held; two attempts per delivery; one event queued for A.
    const deps = { settings, pool: h.pool, registry: h.registry };
    const d = await addDestination(h, 'midway');
    const a = await receiver(503, true);
    const b = await receiver(200);
    await updateDestination(deps, 'midway', {}, a.url);
    const store = new StatusStore(h.pool);
    const ev = failedEvent('midway', 'queued-for-a');
    const id = (await store.addEventFor('midway', d.generation, ev.type, ev.build))!;

    // Act: the first attempt reaches A; the webhook is changed to B before A answers 503.
    const arrived = a.next();
    const sending = deliverPending({ pool: h.pool, settings: withAttempts(2) }, { accountId: 'midway' });
    await arrived;
    await updateDestination(deps, 'midway', {}, b.url);
    a.release();
    const result = await sending;

    // Assess: no second attempt anywhere; the event stays given up (the change's reason).
    expect(b.bodies).toEqual([]);
    expect(a.bodies).toHaveLength(1);
    expect(result.delivered).toBe(0);
    const row = await eventRow(id);
    expect(row.given_up_at).not.toBeNull();
    expect(row.last_error).toMatch(/^webhook changed .* before delivery/);
  });

  it('an event inserted with a version a change has already replaced is given up when its turn comes', async () => {
    // Prepare: an event whose insert raced a webhook change (stamped with the version before it; the change's
    // give-up did not see it).
    const deps = { settings, pool: h.pool, registry: h.registry };
    const d = await addDestination(h, 'raced');
    const b = await receiver(200);
    await updateDestination(deps, 'raced', {}, b.url);
    const store = new StatusStore(h.pool);
    const ev = failedEvent('raced', 'raced-the-change');
    const id = (await store.addEventFor('raced', d.generation, ev.type, ev.build))!;
    await h.pool.query('update dropship.webhook_events set webhook_version = webhook_version - 1 where id = $1', [id]);

    // Act
    await deliverPending({ pool: h.pool, settings }, { accountId: 'raced' });

    // Assess
    expect(b.bodies).toEqual([]);
    const row = await eventRow(id);
    expect(row.given_up_at).not.toBeNull();
    expect(row.last_error).toMatch(/^webhook changed or its secret rotated before delivery/);
  });

  it("an event inserted by a previous release's code (no webhook version) gets the version in force", async () => {
    // Prepare: a destination whose webhook was set twice (version 2).
    const deps = { settings, pool: h.pool, registry: h.registry };
    const d = await addDestination(h, 'oldcode');
    const b = await receiver(200);
    await updateDestination(deps, 'oldcode', {}, b.url);
    await updateDestination(deps, 'oldcode', {}, b.url);

    // Act: the insert of the code before migration 24 (the outbox's columns then).
    const res = await h.pool.query<{ webhook_version: string }>(
      `insert into dropship.webhook_events (account_id, type, body, generation) values ($1, 'delivery.failed', '{}', $2)
       returning webhook_version`,
      [d.accountId, d.generation],
    );

    // Assess
    const status = await new StatusStore(h.pool).get('oldcode');
    expect(status.webhookVersion).toBe(2);
    expect(Number(res.rows[0]!.webhook_version)).toBe(2);
  });
});
