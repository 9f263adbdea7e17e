import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStack } from '../src/devstack/stack.js';
import { dropship } from './kit/index.js';

/**
 * Issue 24 (found on the way): with DROPSHIP_SOURCE_DATABASE_URL set, the customers' data lives in
 * another database than the registry. `destinations add` and `update` must check the source schema
 * and the selection THERE — not in the registry's database, where the schema may not exist (or a
 * same-named one with other tables may).
 */
let stack: LocalStack;
let admin: pg.Pool;
let sourceUrl: string;

beforeAll(async () => {
  stack = await LocalStack.start();
  admin = new pg.Pool({ connectionString: stack.databaseUrl, max: 1 });
  // pool.end() resolves before its sockets close; the stack's Postgres stopping right after can still reach an idle
  // client with 57P01, which the pool emits as 'error' (uncaught without a listener: CI 2026-12-05, source-database).
  admin.on('error', () => {});
  await admin.query('create database customer_data');
  sourceUrl = stack.databaseUrl.replace(/\/dropship$/, '/customer_data');
  const source = new pg.Pool({ connectionString: sourceUrl, max: 1 });
  try {
    await source.query('create schema only_in_source; create table only_in_source.orders (id bigint primary key)');
    await source.query('create schema in_both; create table in_both.orders (id bigint primary key)');
  } finally {
    await source.end();
  }
  // The registry's database has `only_in_registry`, and an `in_both` without the `orders` table.
  await admin.query('create schema only_in_registry; create table only_in_registry.orders (id bigint primary key)');
  await admin.query('create schema in_both; create table in_both.customers (id bigint primary key)');
});

afterAll(async () => {
  await admin?.end();
  await stack?.stop();
});

const add = (account: string, schema: string, extra: string[] = [], env: Record<string, string> = {}) =>
  dropship(
    stack,
    [
      ...['destinations', 'add', '--account', account, '--plan', 'paid', '--bucket', `${account}-data`],
      ...['--region', 'us-east-1', '--role-arn', 'arn:aws:iam::555555555555:role/dropship'],
      ...['--source-schema', schema, ...extra],
    ],
    { env },
  );

describe('the registry checks a destination in the source database', () => {
  it('with DROPSHIP_SOURCE_DATABASE_URL, a schema that exists only there is accepted', async () => {
    const ok = await add('sourced', 'only_in_source', [], { DROPSHIP_SOURCE_DATABASE_URL: sourceUrl });
    expect(ok.code, ok.stderr).toBe(0);
    const row = await admin.query(`select source_schema from dropship.destinations where account_id = 'sourced'`);
    expect(row.rows).toEqual([{ source_schema: 'only_in_source' }]);
  });

  it('with DROPSHIP_SOURCE_DATABASE_URL, a schema that exists only in the registry database is refused', async () => {
    const refused = await add('registryonly', 'only_in_registry', [], { DROPSHIP_SOURCE_DATABASE_URL: sourceUrl });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('schema "only_in_registry" does not exist in the source database');
    const rows = await admin.query(`select 1 from dropship.destinations where account_id = 'registryonly'`);
    expect(rows.rowCount).toBe(0);
  });

  it('the selection is checked against the source catalog, not the registry database’s same-named schema', async () => {
    const env = { DROPSHIP_SOURCE_DATABASE_URL: sourceUrl };
    const wrong = await add('both', 'in_both', ['--include-tables', 'customers'], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('customers');
    const ok = await add('both', 'in_both', ['--include-tables', 'orders'], env);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('without it, the registry database is the source (as before)', async () => {
    const ok = await add('local', 'only_in_registry');
    expect(ok.code, ok.stderr).toBe(0);
    const refused = await add('local2', 'only_in_source');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('schema "only_in_source" does not exist in the source database');
  });
});
