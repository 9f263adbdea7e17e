import { describe, expect, it } from 'vitest';
import { useHarness } from '../../../test/kit/harness.js';
import { addDestination } from '../../../test/kit/runs.js';
import { holdDestination, publicationSessionName } from './publication.js';

/**
 * The publication's hold on the destination row (src/store/ledger/publication.ts) against a real
 * Postgres: an update waits for it, and neither an abandoned hold nor an update in progress keeps
 * anyone waiting for ever.
 */
const h = useHarness();

/** An update's lock on the destination row, as the registry takes it; resolves once granted and committed. */
async function lockForUpdate(accountId: string): Promise<void> {
  const c = await h.pool.connect();
  try {
    await c.query('begin');
    await c.query('select 1 from dropship.destinations where account_id = $1 for update', [accountId]);
    await c.query('commit');
  } finally {
    c.release();
  }
}

async function holdSessions(accountId: string): Promise<number> {
  const res = await h.pool.query('select 1 from pg_stat_activity where application_name = $1', [
    publicationSessionName(accountId),
  ]);
  return res.rowCount ?? 0;
}

describe('the publication hold', () => {
  it('an update waits while the hold is kept and goes on once it is released; the session closes', async () => {
    // Prepare
    const d = await addDestination(h, 'pub-held');
    const hold = await holdDestination(h.pool, d.accountId);
    expect(await holdSessions(d.accountId)).toBe(1);
    // Act
    let updated = false;
    const update = lockForUpdate(d.accountId).then(() => {
      updated = true;
    });
    let waiting = 0;
    for (let i = 0; i < 200 && waiting === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const res = await h.pool.query(
        `select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%destinations%for update%'`,
      );
      waiting = res.rowCount ?? 0;
    }
    // Assess
    expect(waiting).toBe(1);
    expect(updated).toBe(false);
    await hold.release();
    await update;
    expect(updated).toBe(true);
    expect(await holdSessions(d.accountId)).toBe(0);
  });

  it('a hold left by a frozen finisher (never released) is ended by Postgres after its bound: the update goes on', async () => {
    const d = await addDestination(h, 'pub-frozen');
    await holdDestination(h.pool, d.accountId, { holdSeconds: 1 }); // abandoned: release() is never called
    await lockForUpdate(d.accountId);
    // The lock went with the session Postgres ended (its row in pg_stat_activity may outlive the lock by a moment).
    let left = 1;
    for (let i = 0; i < 100 && left > 0; i++) {
      left = await holdSessions(d.accountId);
      if (left > 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(left).toBe(0);
  });

  it('a hold waiting behind an update in progress gives up after its bound, with the lock-timeout error', async () => {
    const d = await addDestination(h, 'pub-wait');
    const c = await h.pool.connect();
    try {
      await c.query('begin');
      await c.query('select 1 from dropship.destinations where account_id = $1 for update', [d.accountId]);
      const err = await holdDestination(h.pool, d.accountId, { lockWaitSeconds: 1 }).then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
      expect(err?.code).toBe('55P03'); // lock_not_available
      expect(await holdSessions(d.accountId)).toBe(0);
    } finally {
      await c.query('rollback');
      c.release();
    }
  });
});
