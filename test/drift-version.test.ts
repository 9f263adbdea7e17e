import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import { checkDestinations } from '../src/notify/drift.js';
import { StatusStore } from '../src/notify/store.js';
import { currentDestination } from '../src/schedule/checks.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * A drift check belongs to the destination version it checked (red team, notify): the check function reads the due
 * destinations once and checks them for up to 600 s; a destination fixed meanwhile (`destinations update --role-arn
 * <the right role>`) was checked as the stale copy, the customer told "dropship could not assume the role <the old
 * role>", and that failure stored as the fixed version's last check. Real Postgres, S3 and STS behind the local stack.
 */
let h: Harness;
let settings: Settings;
let c: Customer;

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({ DROPSHIP_LOG_LEVEL: 'silent' });
  await h.pool.query('create schema drifty; create table drifty.t (id bigint primary key)');
  c = await setupCustomer(h.stack, h.registry, {
    accountId: 'drifty',
    awsAccountId: '240000000301',
    bucket: 'drifty-data',
    prefix: 'exports',
    schema: 'drifty',
  });
  await new StatusStore(h.pool).setWebhook(
    'drifty',
    c.destination.generation,
    'https://hooks.example.com/x',
    'v1.x.y.z',
  );
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

async function lastCheck(): Promise<{ ok: boolean } | null> {
  const res = await h.pool.query<{ last_check: { ok: boolean } | null }>(
    `select last_check from dropship.destination_status where account_id = 'drifty'`,
  );
  return res.rows[0]!.last_check;
}

describe('a drift check of a destination version no longer in force', () => {
  it('records nothing and tells the customer nothing', async () => {
    // Prepare: version 2 has a wrong role (a typo), read by a check; version 3 fixes it and is checked first.
    const stale = await h.registry.update('drifty', { roleArn: 'arn:aws:iam::240000000301:role/typo' });
    const current = await h.registry.update('drifty', { roleArn: c.destination.roleArn });
    const [now] = await checkDestinations({ pool: h.pool, settings }, [current]);
    expect(now!.ok).toBe(true);

    // Act: the check of the stale copy ends after it.
    const [late] = await checkDestinations({ pool: h.pool, settings }, [stale]);

    // Assess: it failed (the typo role), but it is not the version in force: not the last check, no event (nor can
    // one be added for that version).
    expect(late!.ok).toBe(false);
    expect(await lastCheck()).toMatchObject({ ok: true });
    const store = new StatusStore(h.pool);
    expect(await store.events('drifty')).toEqual([]);
    expect(late!.superseded).toBe(true);
    expect(late!.events).toBeUndefined();
    const build = (id: string) => JSON.stringify({ id });
    expect(await store.addEventFor('drifty', stale.generation, 'destination.check_failed', build, stale.version)).toBe(
      undefined,
    );
  }, 90_000);

  it('the check function checks the destination as it is right before the check, not as listed', async () => {
    // Prepare: the list holds version 4 (a wrong role); version 5, the right role, is in force when its turn comes.
    const listed = await h.registry.update('drifty', { roleArn: 'arn:aws:iam::240000000301:role/typo-again' });
    await h.registry.update('drifty', { roleArn: c.destination.roleArn });

    // Act
    const [r] = await checkDestinations({ pool: h.pool, settings }, [listed], {
      reread: currentDestination(h.registry),
    });

    // Assess: the version in force was checked (and passed), recorded as the last check; nobody told anything.
    expect(r!.ok).toBe(true);
    expect(r!.superseded).toBeUndefined();
    expect(await lastCheck()).toMatchObject({ ok: true });
    expect(await new StatusStore(h.pool).events('drifty')).toEqual([]);
  }, 90_000);

  it('the check function skips a destination removed before its turn', async () => {
    // Prepare: listed, then removed.
    await h.pool.query('create schema gone; create table gone.t (id bigint primary key)');
    const g = await setupCustomer(h.stack, h.registry, {
      accountId: 'gone',
      awsAccountId: '240000000302',
      bucket: 'gone-data',
      prefix: 'exports',
      schema: 'gone',
    });
    await h.registry.remove('gone');

    // Act
    const [r] = await checkDestinations({ pool: h.pool, settings }, [g.destination], {
      reread: currentDestination(h.registry),
    });

    // Assess: not checked (no AWS call), nothing recorded.
    expect(r!.superseded).toBe(true);
    expect(r!.checks).toEqual([
      { name: 'check', status: 'fail', detail: 'not checked: removed or disabled before its turn' },
    ]);
  }, 90_000);
});
