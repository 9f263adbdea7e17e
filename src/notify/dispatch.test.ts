import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../config/settings.js';
import type { CustomerFailure } from '../contracts/customer-failure.js';
import { createLogger } from '../log/logger.js';
import type { OutcomeEvent, OutcomeOutbox } from '../store/ledger/outbox.js';
import { type DispatchDeps, dispatchOutcomes, nextAttemptAt, OUTCOME_MAX_ATTEMPTS } from './dispatch.js';

/**
 * The dispatcher's claims, retries, backoff and final failure, on an in-memory outbox with the same
 * contract as the ledger's (src/store/ledger/outbox.ts; the real one is exercised in test/outcome.test.ts)
 * and a fake clock: no time passes but the clock's.
 */
interface Row {
  ev: OutcomeEvent;
  next: number;
  leaseUntil: number | null;
  deliveredAt: Date | null;
  givenUp: boolean;
  lastError: string | null;
}

class MemoryOutbox implements OutcomeOutbox {
  readonly rows = new Map<string, Row>();

  add(runId: string, endedAt: Date, accountId = 'acme'): void {
    this.rows.set(runId, {
      ev: {
        runId,
        accountId,
        status: 'failed',
        generation: 1,
        destination: null,
        receiptKey: null,
        error: 'boom',
        rows: 0,
        bytes: 0,
        seconds: 0,
        endedAt,
        attempts: 0,
        notice: null,
      },
      next: endedAt.getTime(),
      leaseUntil: null,
      deliveredAt: null,
      givenUp: false,
      lastError: null,
    });
  }

  async claim(q: { now: Date; leaseSeconds: number; limit: number; runId?: string }): Promise<OutcomeEvent[]> {
    const now = q.now.getTime();
    const due = [...this.rows.values()]
      .filter(
        (r) =>
          !r.deliveredAt &&
          !r.givenUp &&
          r.next <= now &&
          (r.leaseUntil === null || r.leaseUntil < now) &&
          (!q.runId || r.ev.runId === q.runId),
      )
      .sort((a, b) => a.ev.endedAt.getTime() - b.ev.endedAt.getTime())
      .slice(0, q.limit);
    for (const r of due) {
      r.ev = { ...r.ev, attempts: r.ev.attempts + 1 };
      r.leaseUntil = now + q.leaseSeconds * 1000;
    }
    return due.map((r) => ({ ...r.ev }));
  }

  async fixNotice(runId: string, notice: CustomerFailure): Promise<CustomerFailure> {
    const r = this.rows.get(runId)!;
    r.ev.notice ??= notice;
    return r.ev.notice;
  }

  async delivered(runId: string, attempt: number, now: Date): Promise<boolean> {
    const r = this.rows.get(runId)!;
    if (r.ev.attempts !== attempt || r.deliveredAt) return false;
    r.deliveredAt = now;
    r.leaseUntil = null;
    return true;
  }

  async failed(runId: string, attempt: number, error: string, at: Date | null): Promise<boolean> {
    const r = this.rows.get(runId)!;
    if (r.ev.attempts !== attempt || r.deliveredAt) return false;
    r.leaseUntil = null;
    r.lastError = error;
    if (at) r.next = at.getTime();
    else r.givenUp = true;
    return true;
  }
}

const t0 = new Date('2030-01-01T00:00:00Z');
const settings = loadSettings({ DROPSHIP_LOG_LEVEL: 'silent', DROPSHIP_RUN_STALE_SECONDS: '120' });

function harness(deliver: DispatchDeps['deliver']) {
  const outbox = new MemoryOutbox();
  let now = t0.getTime();
  const deps: DispatchDeps = {
    pool: {} as Pool,
    settings,
    outbox,
    log: createLogger({ level: 'silent' }),
    now: () => new Date(now),
    ...(deliver ? { deliver } : {}),
  };
  return {
    outbox,
    deps,
    at: (seconds: number) => {
      now = t0.getTime() + seconds * 1000;
    },
  };
}

describe('outcome dispatcher: retries, backoff, final failure (fake clock)', () => {
  it('backs off 30 s, 2 min, 8 min, 32 min, then hourly, and gives up after the last attempt', async () => {
    const calls: number[] = [];
    let clock = 0;
    const h = harness(async () => {
      calls.push(clock);
      throw new Error('S3 is down');
    });
    h.outbox.add('r1', t0);
    const tick = async (s: number) => {
      clock = s;
      h.at(s);
      return dispatchOutcomes(h.deps);
    };
    expect((await tick(0)).retried).toEqual(['r1']);
    // Not due one second before its backoff ends; due at the second.
    expect(await tick(29)).toEqual({ delivered: [], retried: [], givenUp: [] });
    expect((await tick(30)).retried).toEqual(['r1']);
    expect((await tick(30 + 119)).retried).toEqual([]);
    let s = 30 + 120;
    for (const gap of [480, 1920, 3600, 3600, 3600]) {
      expect((await tick(s)).retried).toEqual(['r1']);
      s += gap;
    }
    const last = await tick(s);
    expect(last).toEqual({ delivered: [], retried: [], givenUp: ['r1'] });
    expect(calls).toEqual([0, 30, 150, 630, 2550, 6150, 9750, 13350]);
    expect(calls).toHaveLength(OUTCOME_MAX_ATTEMPTS);
    const row = h.outbox.rows.get('r1')!;
    expect(row).toMatchObject({ givenUp: true, deliveredAt: null, lastError: 'S3 is down' });
    // Given up is final: a day later nothing is attempted again.
    await tick(s + 86_400);
    expect(calls).toHaveLength(OUTCOME_MAX_ATTEMPTS);
  });

  it('a delivery that fails twice, then succeeds, is delivered once and never again', async () => {
    let n = 0;
    const h = harness(async () => {
      n++;
      if (n <= 2) throw new Error('bucket unreachable');
    });
    h.outbox.add('r1', t0);
    h.at(0);
    await dispatchOutcomes(h.deps);
    h.at(30);
    await dispatchOutcomes(h.deps);
    h.at(150);
    expect(await dispatchOutcomes(h.deps)).toEqual({ delivered: ['r1'], retried: [], givenUp: [] });
    h.at(10_000);
    expect(await dispatchOutcomes(h.deps)).toEqual({ delivered: [], retried: [], givenUp: [] });
    expect(n).toBe(3);
    expect(h.outbox.rows.get('r1')!.deliveredAt).toEqual(new Date(t0.getTime() + 150_000));
  });

  it('a claim is held for its lease: a second dispatcher skips it; after the lease it takes over, fencing the first', async () => {
    let release: (e?: Error) => void = () => {};
    const seen: number[] = [];
    const h = harness(async (_d, ev) => {
      seen.push(ev.attempts);
      if (ev.attempts === 1)
        await new Promise<void>((resolve, reject) => {
          release = (e) => (e ? reject(e) : resolve());
        });
    });
    h.outbox.add('r1', t0);
    h.at(0);
    const stuck = dispatchOutcomes(h.deps);
    await new Promise((r) => setImmediate(r));
    h.at(119); // inside the 120 s lease (DROPSHIP_RUN_STALE_SECONDS)
    expect(await dispatchOutcomes(h.deps)).toEqual({ delivered: [], retried: [], givenUp: [] });
    h.at(121);
    expect(await dispatchOutcomes(h.deps)).toEqual({ delivered: ['r1'], retried: [], givenUp: [] });
    // The first dispatcher finishes late, either way: its attempt is no longer the row's, nothing changes.
    release(new Error('late failure'));
    expect(await stuck).toEqual({ delivered: [], retried: [], givenUp: [] });
    expect(seen).toEqual([1, 2]);
    expect(h.outbox.rows.get('r1')).toMatchObject({ givenUp: false, lastError: null });
    expect(h.outbox.rows.get('r1')!.deliveredAt).not.toBeNull();
  });

  it('one run at a time when asked (the process that ended it), with its hint; the oldest first otherwise', async () => {
    const got: [string, unknown][] = [];
    const h = harness(async (_d, ev, hint) => void got.push([ev.runId, hint]));
    h.outbox.add('newer', new Date(t0.getTime() + 1000));
    h.outbox.add('older', t0);
    h.at(5);
    const hint = new Error('AccessDenied');
    expect((await dispatchOutcomes(h.deps, { runId: 'newer', hint })).delivered).toEqual(['newer']);
    expect((await dispatchOutcomes(h.deps)).delivered).toEqual(['older']);
    expect(got).toEqual([
      ['newer', hint],
      ['older', undefined],
    ]);
  });

  it('a backlog of many accounts (a whole missed slot): accounts side by side, each account’s outcomes in the order they ended', async () => {
    // Prepare: 10 accounts with 4 outcomes each; every delivery waits a little on "the customer's side".
    let inFlight = 0;
    let most = 0;
    const order = new Map<string, string[]>();
    const h = harness(async (_d, ev) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      order.set(ev.accountId, [...(order.get(ev.accountId) ?? []), ev.runId]);
      inFlight--;
    });
    for (let k = 0; k < 4; k++)
      for (let a = 0; a < 10; a++) h.outbox.add(`a${a}-r${k}`, new Date(t0.getTime() + (k * 10 + a) * 1000), `a${a}`);
    h.at(3600);
    // Act
    const out = await dispatchOutcomes(h.deps, { concurrency: 4, limit: 20 });
    // Assess: all 40 in one call (two rounds), at most 4 at once but more than one, each account in order.
    expect(out.delivered).toHaveLength(40);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    for (let a = 0; a < 10; a++) expect(order.get(`a${a}`)).toEqual([0, 1, 2, 3].map((k) => `a${a}-r${k}`));
  });

  it('a call stops claiming new rounds once its time budget is spent; the rest waits for the next call', async () => {
    const h = harness(async () => {});
    for (let i = 0; i < 50; i++) h.outbox.add(`r${i}`, new Date(t0.getTime() + i * 1000), `acct-${i}`);
    h.at(3600);
    // A budget of nothing: one round of `limit` events.
    expect((await dispatchOutcomes(h.deps, { limit: 20, budgetMs: 0 })).delivered).toHaveLength(20);
    // The default budget: the rest in one call.
    expect((await dispatchOutcomes(h.deps, { limit: 20 })).delivered).toHaveLength(30);
  });

  it('nextAttemptAt never waits more than an hour', () => {
    expect(nextAttemptAt(1, t0).getTime() - t0.getTime()).toBe(30_000);
    expect(nextAttemptAt(20, t0).getTime() - t0.getTime()).toBe(3_600_000);
  });
});
