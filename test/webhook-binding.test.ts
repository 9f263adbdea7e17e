import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { deliverPending, eventOf } from '../src/notify/outcome.js';
import { StatusStore } from '../src/notify/store.js';
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
  /** Resolves at the next request (before it is answered). */
  next(): Promise<void>;
  /** Answers the requests held so far (and every later one at once). */
  release(): void;
}

/** A receiver that answers `status`; with `hold`, only once `release()` is called. */
async function receiver(status: number, hold = false): Promise<Receiver> {
  const bodies: string[] = [];
  let waiters: (() => void)[] = [];
  let held: (() => void)[] = [];
  let released = !hold;
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
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
