import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { createLogger } from '../src/log/logger.js';
import { refreshStatus } from '../src/notify/outcome.js';
import { StatusStore } from '../src/notify/store.js';
import { addDestination } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The account's status.json lock (src/notify/store.ts underStatusLock) is bounded both ways (review): a holder frozen
 * with it — a Lambda torn down without FIN, a suspended laptop — kept its session and the lock for Postgres's TCP
 * keepalive (~2 h), and every later status write of the account waited without end, each holding one of the pool's
 * connections (the Lambdas' pool has 3), the sweeper's dispatch with them.
 */
let h: Harness;
let settings: Settings;
let small: pg.Pool;
beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({ DROPSHIP_LOG_LEVEL: 'silent' });
  small = new pg.Pool({ connectionString: h.stack.databaseUrl, max: 3 });
  small.on('error', () => {});
}, 120_000);
afterAll(async () => {
  await small?.end();
  await h?.stop();
});

describe("the account's status.json lock", () => {
  it("held by a frozen holder: the next writes give up after the wait bound, and another account's write goes through", async () => {
    // Prepare: a session holding the account's lock and never letting go (frozen).
    await addDestination(h, 'lkstuck');
    await addDestination(h, 'lkother');
    const frozen = new pg.Client({ connectionString: h.stack.databaseUrl });
    await frozen.connect();
    await frozen.query(`select pg_advisory_lock(hashtext('dropship.status_json'), hashtext($1))`, ['lkstuck']);
    const log = createLogger({ level: 'silent' });
    try {
      // Act: three writes of the stuck account (the pool of 3 all theirs), then another account's.
      const stuck = [1, 2, 3].map(() =>
        new StatusStore(small).underStatusLock('lkstuck', async () => 'written').catch((e: Error) => e),
      );
      const other = refreshStatus({ pool: small, settings, log }, 'lkother').then(
        () => 'done',
        (e: Error) => e,
      );
      const results = await Promise.all(stuck);
      // Assess: each stuck write ended with a lock timeout (nothing hangs), and the other account's went through.
      for (const r of results) expect((r as { code?: string }).code).toBe('55P03');
      expect(await other).toBe('done');
    } finally {
      await frozen.end();
    }
  }, 120_000);

  it("its holder's session ends once idle past the bound; the connection goes back to the pool without it", async () => {
    // Prepare: a pool of one connection, so the next query runs on the connection that held the lock.
    const one = new pg.Pool({ connectionString: h.stack.databaseUrl, max: 1 });
    one.on('error', () => {});
    try {
      // Act
      const inside = await new StatusStore(one).underStatusLock(
        'lkidle',
        async (c) =>
          (
            await c.query<{ idle: string; wait: string }>(
              `select current_setting('idle_session_timeout') as idle, current_setting('lock_timeout') as wait`,
            )
          ).rows[0]!,
      );
      const after = (
        await one.query<{ idle: string; wait: string }>(
          `select current_setting('idle_session_timeout') as idle, current_setting('lock_timeout') as wait`,
        )
      ).rows[0]!;
      // Assess
      expect(inside).toEqual({ idle: '2min', wait: '0' });
      expect(after).toEqual({ idle: '0', wait: '0' });
    } finally {
      await one.end();
    }
  }, 60_000);
});
