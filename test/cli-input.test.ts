import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropship } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Bad input and configuration (docs/operations/cli.md: exit 2 = bad input or configuration): one
 * `error:` line a person can act on, never a stack, never a password.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

function cli(args: string[], env: Record<string, string> = {}) {
  return dropship(h.stack, args, { env: { DROPSHIP_LOG_LEVEL: 'silent', ...env } });
}

/** The stack's DATABASE_URL with another password, host or database. */
function databaseUrl(over: { password?: string; host?: string; port?: string; database?: string }): string {
  const u = new URL(h.stack.databaseUrl);
  if (over.password !== undefined) u.password = over.password;
  if (over.host !== undefined) u.hostname = over.host;
  if (over.port !== undefined) u.port = over.port;
  if (over.database !== undefined) u.pathname = `/${over.database}`;
  return u.toString();
}

function expectOneErrorLine(r: { code: number; stdout: string; stderr: string }, ...contains: string[]): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(r.stderr).not.toMatch(/\bat .*\.(js|ts):\d+/);
  for (const c of contains) expect(lines[0]).toContain(c);
}

describe('a database the configuration cannot reach', () => {
  it('a wrong password: one line naming host, port and database, never the password; exit 2', async () => {
    // Prepare
    const url = databaseUrl({ password: 'wrong-pw-s3cret' });
    const { hostname, port } = new URL(url);
    const database = new URL(url).pathname.slice(1);

    // Act
    const list = await cli(['runs', 'list'], { DATABASE_URL: url });
    const check = await cli(['migrate', '--check'], { DATABASE_URL: url });

    // Assess
    for (const r of [list, check]) {
      expectOneErrorLine(r, `${hostname}:${port}`, `"${database}"`, 'password authentication failed');
      expect(r.stderr).not.toContain('wrong-pw-s3cret');
    }
  });

  it('a host that refuses or does not resolve, a database that does not exist: one line each, exit 2', async () => {
    // Prepare
    const refused = databaseUrl({ host: '127.0.0.1', port: '1' });
    const unknown = databaseUrl({ host: 'no-such-host.invalid' });
    const missing = databaseUrl({ database: 'no_such_db' });

    // Act
    const results = await Promise.all(
      [refused, unknown, missing].map((u) => cli(['runs', 'list'], { DATABASE_URL: u })),
    );

    // Assess
    expectOneErrorLine(results[0]!, '127.0.0.1:1', 'ECONNREFUSED');
    expectOneErrorLine(results[1]!, 'no-such-host.invalid');
    expectOneErrorLine(results[2]!, '"no_such_db"');
  });
});

describe('a database URL that cannot be parsed', () => {
  it('a password with # or /, a port past 65535, a missing sslrootcert: one line naming the setting, exit 2', async () => {
    // Prepare: URLs pg throws on as it connects (before: a Node stack and exit 1); the source database's too.
    const { host, pathname } = new URL(h.stack.databaseUrl);
    const bad = [
      `postgres://alice:ab#cdSECRET@${host}${pathname}`,
      `postgres://alice:ab/cdSECRET@${host}${pathname}`,
      `postgres://alice:pwSECRET@127.0.0.1:99999${pathname}`,
      `postgres://alice:pwSECRET@${host}${pathname}?sslmode=verify-full&sslrootcert=/nope`,
    ];

    // Act
    const results = await Promise.all([
      ...bad.map((u) => cli(['destinations', 'list'], { DATABASE_URL: u })),
      cli(['migrate', '--check'], { DATABASE_URL: bad[1]! }),
      cli(['capacity', '--slot', '04:00'], { DROPSHIP_SOURCE_DATABASE_URL: bad[2]! }),
      cli(
        [
          ...['destinations', 'add', '--account', 'badsource', '--plan', 'paid', '--bucket', 'badsource-data'],
          ...[
            '--region',
            'us-east-1',
            '--role-arn',
            'arn:aws:iam::555555555555:role/dropship',
            '--source-schema',
            'public',
          ],
        ],
        { DROPSHIP_SOURCE_DATABASE_URL: bad[0]! },
      ),
    ]);

    // Assess
    const encode = 'percent-encode special characters in the user name and password';
    expectOneErrorLine(results[0]!, 'DATABASE_URL cannot be used: it has a "#"', encode);
    expectOneErrorLine(results[1]!, 'DATABASE_URL cannot be used: it is not a valid URL', encode);
    expectOneErrorLine(results[2]!, 'DATABASE_URL cannot be used: its port "99999" is not a number from 1 to 65535');
    expectOneErrorLine(results[3]!, 'DATABASE_URL cannot be used', 'sslrootcert', "open '/nope'");
    expectOneErrorLine(results[4]!, 'DATABASE_URL cannot be used: it is not a valid URL', encode);
    expectOneErrorLine(results[5]!, 'DROPSHIP_SOURCE_DATABASE_URL cannot be used: its port "99999"');
    expectOneErrorLine(results[6]!, 'DROPSHIP_SOURCE_DATABASE_URL cannot be used: it has a "#"', encode);
    for (const r of results) expect(r.stderr).not.toMatch(/SECRET|alice/);
  });
});

describe('dates that are not days', () => {
  it('slot status and runs list refuse 2026-13-04 and 2026-02-30 with one line, exit 2', async () => {
    for (const date of ['2026-13-04', '2026-02-30']) {
      // Act
      const status = await cli(['slot', 'status', '--slot', '04:00', '--date', date]);
      const runs = await cli(['runs', 'list', '--slot', '04:00', '--date', date]);
      // Assess
      expectOneErrorLine(status, `--date takes YYYY-MM-DD, not "${date}"`);
      expectOneErrorLine(runs, `--date takes YYYY-MM-DD, not "${date}"`);
    }
  });
});

describe('a slot that is not configured', () => {
  it('is refused by every command that takes --slot, listing the configured slots; exit 2', async () => {
    // Prepare: the default slots (paid 04:00 and 15:00, free 04:00); 05:00 is none of them.
    const commands = [
      ['export', '--due', '--slot', '05:00'],
      ['slot', 'status', '--slot', '05:00'],
      ['capacity', '--slot', '05:00'],
      ['destinations', 'check', '--slot', '05:00'],
    ];

    // Act
    const results = await Promise.all(commands.map((args) => cli(args)));

    // Assess
    for (const r of results)
      expectOneErrorLine(
        r,
        'slot 05:00 is not configured: the configured slots are 04:00, 15:00',
        'DROPSHIP_PAID_SLOTS',
      );
  });

  it('is taken once configured; runs list takes any HH:MM (the history of a slot configured before)', async () => {
    // Act
    const configured = await cli(['slot', 'status', '--slot', '05:00'], { DROPSHIP_FREE_SLOTS: '04:00,05:00' });
    const history = await cli(['runs', 'list', '--slot', '05:00']);
    const malformed = await cli(['runs', 'list', '--slot', '5am']);

    // Assess
    expect(configured.code, configured.stderr).toBe(0);
    expect(configured.stdout).toContain('slot 05:00 of');
    expect(history.code, history.stderr).toBe(0);
    expectOneErrorLine(malformed, '--slot takes HH:MM (UTC), not "5am"');
  });
});
