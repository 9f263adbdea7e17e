import { describe, expect, it } from 'vitest';
import { databaseUrlProblem } from '../config/database-url.js';
import { ConfigError } from '../config/settings.js';
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

describe('a database URL pg cannot parse', () => {
  it('is told as one line naming the setting and what to do, never the URL or password; exit 2', async () => {
    // Prepare: what pg throws as it parses a URL when it connects — new URL's (a password with an unencoded `/`, a
    // port past 65535) and the error of reading a missing sslrootcert file.
    const slash = 'postgres://alice:ab/cdSECRET@127.0.0.1:5432/db';
    const port = 'postgres://alice:pwSECRET@127.0.0.1:99999/db';
    const cert = 'postgres://alice:pwSECRET@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=/nope';
    const invalid = () => Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL', input: '*****' });
    const missing = Object.assign(new Error("ENOENT: no such file or directory, open '/nope'"), {
      code: 'ENOENT',
      syscall: 'open',
      path: '/nope',
    });

    // Act
    const told = await Promise.all(
      (
        [
          [slash, 'DATABASE_URL', invalid()],
          [port, 'DROPSHIP_SOURCE_DATABASE_URL', invalid()],
          [cert, 'DATABASE_URL', missing],
        ] as const
      ).map(([url, setting, e]) =>
        connecting(
          () => url,
          setting,
          () => Promise.reject(e),
        ).catch((x: unknown) => x as Error),
      ),
    );

    // Assess
    for (const e of told) {
      expect(e).toBeInstanceOf(ConfigError);
      expect(exitCodeFor(e)).toBe(2);
      expect(e.message).not.toMatch(/SECRET|alice|postgres:/);
    }
    expect(told[0]!.message).toBe(
      'DATABASE_URL cannot be used: it is not a valid URL: percent-encode special characters in the user name and password (# as %23, / as %2F, ? as %3F, @ as %40, : as %3A, % as %25)',
    );
    expect(told[1]!.message).toBe(
      'DROPSHIP_SOURCE_DATABASE_URL cannot be used: its port "99999" is not a number from 1 to 65535',
    );
    expect(told[2]!.message).toBe(
      "DATABASE_URL cannot be used: a file it names (sslrootcert, sslcert or sslkey) cannot be read: ENOENT: no such file or directory, open '/nope'",
    );
    // A `#` parses (as a fragment), but pg would drop what follows it: refused before pg sees it.
    expect(databaseUrlProblem('postgres://alice:12#SECRET@db/x')).toMatch(/has a "#".*percent-encode/);
    expect(databaseWhere('postgres://alice:12#SECRET@db/x')).not.toContain('12');
    expect(databaseUrlProblem('postgres://alice:pw@db:5432/x')).toBeUndefined();
  });
});

describe('isDate', () => {
  it('takes real days only, and never throws', () => {
    expect(isDate('2026-12-04')).toBe(true);
    expect(isDate('2028-02-29')).toBe(true);
    for (const bad of ['2026-13-04', '2026-02-30', '2026-00-10', '2026-1-4', '']) expect(isDate(bad), bad).toBe(false);
  });
});
