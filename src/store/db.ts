import type { Pool, PoolClient } from 'pg';

/**
 * One transaction on a client of dropship's own database (registry, ledger, status, change-set
 * state): begin, `fn`, commit; on any error roll back and rethrow. The client always goes back to
 * the pool outside a transaction.
 */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    const out = await fn(c);
    await c.query('commit');
    return out;
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}
