import { describe, expect, it } from 'vitest';
import { isDate } from './commands/slot.js';
import { connecting, DatabaseConnectionError, databaseWhere, isConnectionFailure } from './database-error.js';
import { exitCodeFor } from './main.js';

describe('a database connection that fails', () => {
  it('is told as one line naming host, port and database, never the password; exit 2', async () => {
    // Prepare: pg's answer to a wrong password (SQLSTATE 28P01), and a query error that is not a connection's.
    const url = 'postgres://dropship:hunter2@db.internal:6432/registry';
    const refused = Object.assign(new Error('password authentication failed for user "dropship"'), { code: '28P01' });
    const syntax = Object.assign(new Error('syntax error at or near "x"'), { code: '42601' });

    // Act
    const told = await connecting(
      () => url,
      'DATABASE_URL',
      () => Promise.reject(refused),
    ).catch((e: unknown) => e);
    const other = await connecting(
      () => url,
      'DATABASE_URL',
      () => Promise.reject(syntax),
    ).catch((e: unknown) => e);

    // Assess
    expect(told).toBeInstanceOf(DatabaseConnectionError);
    expect((told as Error).message).toBe(
      'cannot connect to database "registry" on db.internal:6432 (DATABASE_URL): password authentication failed for user "dropship"',
    );
    expect((told as Error).message).not.toContain('hunter2');
    expect(exitCodeFor(told)).toBe(2);
    expect(other).toBe(syntax);
    expect(databaseWhere('not a url')).not.toContain('not a url');
    expect(
      isConnectionFailure(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(isConnectionFailure(new AggregateError([Object.assign(new Error('x'), { code: 'ETIMEDOUT' })]))).toBe(true);
  });
});

describe('isDate', () => {
  it('takes real days only, and never throws', () => {
    expect(isDate('2026-12-04')).toBe(true);
    expect(isDate('2028-02-29')).toBe(true);
    for (const bad of ['2026-13-04', '2026-02-30', '2026-00-10', '2026-1-4', '']) expect(isDate(bad), bad).toBe(false);
  });
});
