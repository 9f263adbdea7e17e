import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStack } from '../../src/devstack/stack.js';

/**
 * Under `npm run test:clock` (test/clock/run.mjs): the moved clock reaches this process and the
 * embedded PostgreSQL the local stack starts — the two clocks dropship compares (now() in the
 * ledger, Date in Node). Skipped in a plain `npm test` (no moved clock to check).
 */
const expected = process.env.TEST_CLOCK_AT;

describe.runIf(expected)('the moved clock', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await LocalStack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is what Node and PostgreSQL both read, ticking from the instant test:clock chose', async () => {
    const target = Date.parse(expected!);
    // The run started at the instant; startup and this stack take seconds, not minutes.
    expect(Date.now() - target).toBeGreaterThanOrEqual(0);
    expect(Date.now() - target).toBeLessThan(5 * 60_000);
    const client = new pg.Client({ connectionString: stack.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ now: Date }>('select clock_timestamp() as now');
      expect(Math.abs(rows[0]!.now.getTime() - Date.now())).toBeLessThan(5_000);
    } finally {
      await client.end();
    }
  });
});
