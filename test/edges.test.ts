import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidDestination, type Registry } from '../src/accounts/registry.js';
import { loadSettings, type Settings } from '../src/config/settings.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import type { Ledger } from '../src/store/ledger/ledger.js';
import { assertExact, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Bad and unusual input: tenant isolation, very wide values, very wide tables, schema changes
 * between runs — and that no secret or row value ever reaches a log line.
 */
let stack: LocalStack;
let pool: pg.Pool;
let registry: Registry;
let ledger: Ledger;
let settings: Settings;
let wide: Customer;
const logLines: string[] = [];
let h: Harness;
const SENTINEL = 'ROWDATA-SENTINEL-7731';

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool } = h);
  settings = loadSettings({ ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' });
  registry = h.registry;
  ledger = h.ledger;
  const cols = Array.from(
    { length: 1000 },
    (_, i) => `c${i} ${['int', 'text', 'numeric(12,3)', 'timestamptz', 'boolean'][i % 5]}`,
  ).join(', ');
  const vals = Array.from(
    { length: 1000 },
    (_, i) =>
      [
        'g',
        `'v' || g || '-${i}'`,
        `g * 1.5 + ${i}`,
        `timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'`,
        `g % 2 = 0`,
      ][i % 5],
  ).join(', ');
  await pool.query(`create schema wide;
    create table wide.many (${cols});
    insert into wide.many select ${vals} from generate_series(1, 50) g;
    create table wide.big_json (id int primary key, doc jsonb, note text);
    insert into wide.big_json values (1, (select jsonb_agg(jsonb_build_object('i', g, 's', repeat('x', 90))) from generate_series(1, 100000) g), '${SENTINEL}');`);
  wide = await setupCustomer(stack, registry, {
    accountId: 'wide',
    awsAccountId: '260000000001',
    bucket: 'wide-data',
    schema: 'wide',
  });
});

afterAll(async () => {
  await h?.stop();
});

function capturingReporter(): LogReporter {
  return new LogReporter(
    createLogger({ level: 'debug', destination: { write: (s: string) => void logLines.push(s) } }),
    0,
  );
}

describe('edges', () => {
  it('a 10 MB jsonb value and a 1,000-column table export exactly', async () => {
    const size = Number((await pool.query('select octet_length(doc::text) as n from wide.big_json')).rows[0].n);
    expect(size).toBeGreaterThan(10_000_000);
    const outcome = await exportAccount(wide.destination, {
      sourceUrl: stack.databaseUrl,
      settings,
      reporter: capturingReporter(),
      ledger,
    });
    expect(outcome.ok, JSON.stringify((outcome as { failures?: unknown }).failures)).toBe(true);
    const receipt = await readReceipt(stack, wide);
    expect(receipt.tables.many!.columns).toHaveLength(1000);
    await assertExact({ stack, pool }, wide);
  });

  it('a schema change between runs shows in the next receipt', async () => {
    await pool.query(
      `alter table wide.big_json add column added_later date default '2024-02-29'; alter table wide.big_json drop column note`,
    );
    const outcome = await exportAccount(wide.destination, {
      sourceUrl: stack.databaseUrl,
      settings,
      reporter: capturingReporter(),
      ledger,
    });
    expect(outcome.ok).toBe(true);
    const cols = (await readReceipt(stack, wide)).tables.big_json!.columns.map((c) => `${c.name}:${c.postgres_type}`);
    expect(cols).toEqual(['id:integer', 'doc:jsonb', 'added_later:date']);
  });

  it('a destination cannot be pointed at another account’s source schema', async () => {
    const attempt = registry.add({
      accountId: 'intruder',
      plan: 'free',
      bucket: 'intruder-data',
      region: 'us-east-1',
      roleArn: 'arn:aws:iam::260000000009:role/x',
      sourceSchema: 'wide',
    });
    await expect(attempt).rejects.toBeInstanceOf(InvalidDestination);
    await expect(attempt).rejects.toThrow('schema "wide" already belongs to another account');
  });

  it('no credential, session token, external ID or row value ever reaches a log line', async () => {
    // A failing run too: its errors are logged.
    stack.s3.faults.push((r) =>
      r.bucket === 'wide-data' ? { status: 403, code: 'AccessDenied', message: 'Access Denied' } : undefined,
    );
    try {
      const failed = await exportAccount(wide.destination, {
        sourceUrl: stack.databaseUrl,
        settings,
        reporter: capturingReporter(),
        ledger,
      });
      expect(failed.ok).toBe(false);
    } finally {
      stack.s3.faults.length = 0;
    }
    const logs = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(5);
    const tableLines = logLines.filter((l) => l.includes('"table":'));
    expect(tableLines.length).toBeGreaterThan(2);
    for (const l of tableLines) expect(l).toMatch(/"accountId":"wide".*"runId":"\d{8}T\d{6}Z-[0-9a-f]{6}"/);
    const secrets = [
      ...[...stack.iam.principals.values()].flatMap((p) => [
        p.secretAccessKey,
        ...(p.sessionToken ? [p.sessionToken] : []),
      ]),
      wide.destination.externalId,
      SENTINEL,
    ];
    for (const secret of secrets)
      expect(logs.includes(secret), `log contains a secret (${secret.slice(0, 4)}…)`).toBe(false);
  });
});
