import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry, SourceBusy } from '../src/accounts/registry.js';
import { createDemoSchema } from '../src/devstack/demo.js';
import { sourceConnect } from '../src/run/wiring.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * A registration checks the account's source schema in the source database within the registry write's budget (red
 * team, API: with DROPSHIP_SOURCE_DATABASE_URL set, a customer's lock on one partition held POST /destinations past 45 s,
 * and a bulk import's every later line behind it; in one database it ended after 20 s as "a receipt is being
 * published"). Both now end within the budget as SourceBusy, naming the schema; nothing is registered.
 */
let h: Harness;
const BUDGET_SECONDS = 2;
const input = (accountId: string) => ({
  accountId,
  plan: 'paid' as const,
  bucket: `${accountId}-data`,
  prefix: 'dropship',
  region: 'us-east-1',
  roleArn: `arn:aws:iam::222222222222:role/x-${accountId}`,
  sourceSchema: 'srcp',
  selection: { excludeTables: ['parted*'] },
});

beforeAll(async () => {
  h = await startHarness();
  const c = new pg.Client({ connectionString: h.stack.databaseUrl });
  await c.connect();
  await createDemoSchema(c, 'srcp', 10);
  await c.query('create table srcp.parted (id int, at date) partition by range (at)');
  await c.query(
    `create table srcp.parted_2026 partition of srcp.parted for values from ('2026-01-01') to ('2027-01-01')`,
  );
  await c.end();
}, 180_000);

afterAll(async () => {
  await h?.stop();
});

describe('the source check of a registration is bounded', () => {
  it('a customer’s lock on a partition: SourceBusy within the budget, in one database and with a separate source URL; registered once it is released', async () => {
    // Prepare: the customer's session holds an ACCESS EXCLUSIVE lock on one partition of its schema.
    const locker = new pg.Client({ connectionString: h.stack.databaseUrl });
    await locker.connect();
    await locker.query('begin');
    await locker.query('lock table srcp.parted_2026 in access exclusive mode');
    const registries = {
      'one database': new Registry(h.pool, undefined, BUDGET_SECONDS),
      'a separate source URL': new Registry(
        h.pool,
        sourceConnect(h.stack.databaseUrl, 'dropship-test'),
        BUDGET_SECONDS,
      ),
    };
    try {
      for (const [label, registry] of Object.entries(registries)) {
        // Act
        const t0 = Date.now();
        const e = await registry.add(input(label === 'one database' ? 'rsa' : 'rsb')).catch((x: unknown) => x);
        const seconds = (Date.now() - t0) / 1000;
        // Assess: the schema's lock, named; within the budget (plus the connection and the statements before it).
        expect(e, label).toBeInstanceOf(SourceBusy);
        expect((e as Error).message).toContain('the source schema "srcp" of account');
        expect((e as SourceBusy).retryable).toBe(true);
        expect(seconds, label).toBeLessThan(BUDGET_SECONDS + 5);
      }
      expect(
        (await h.pool.query(`select 1 from dropship.destinations where account_id in ('rsa', 'rsb')`)).rowCount,
      ).toBe(0);
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
    // Released: the same registrations go through.
    expect((await registries['one database'].add(input('rsa'))).accountId).toBe('rsa');
    await h.pool.query(`delete from dropship.destinations where account_id = 'rsa'`);
    expect((await registries['a separate source URL'].add(input('rsb'))).accountId).toBe('rsb');
  }, 120_000);
});
