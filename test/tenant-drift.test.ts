import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import type { SelectionInput } from '../src/contracts/selection.js';
import { quoteLiteral } from '../src/contracts/sql.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { downloadReceiptFiles } from './compare.js';
import { duck } from './duck.js';
import { readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Tenant isolation after registration (red-team pass on tenants, 2026-12-06): registration makes a tenant value
 * canonical in the tenant column's types as the schema has them then; the schema goes on changing. A table added
 * later, or a column whose type changes, must never let one tenant's filter match another's rows; two accounts of
 * one schema use one tenant column; and the filter's equality is pg_catalog's, whatever a search_path holds.
 * Every delivered file is read back with DuckDB.
 */
let h: Harness;
let settings: Settings;
const dir = mkdtempSync(join(tmpdir(), 'dropship-tenant-drift-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
let aws = 700_000_000_100;

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings();
}, 120_000);

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function tenant(accountId: string, schema: string, selection: SelectionInput): Promise<Customer> {
  return setupCustomer(h.stack, h.registry, {
    accountId,
    awsAccountId: String(aws++),
    bucket: `${accountId}-data`,
    schema,
    selection,
  });
}

const run = (c: Customer) =>
  exportAccount(c.destination, { sourceUrl: h.stack.databaseUrl, settings, reporter: silent, ledger: h.ledger });

/** The `note` values of `table` in `c`'s last delivery, read with DuckDB. */
async function notes(c: Customer, table: string): Promise<string[]> {
  const receipt = await readReceipt(h.stack, c);
  const d = c.destination;
  const files = await downloadReceiptFiles(
    h.stack.s3.endpoint,
    d.region,
    c.reader,
    d.bucket,
    receipt,
    join(dir, receipt.run_id),
  );
  const db = await duck();
  try {
    const paths = files.get(table) ?? [];
    if (paths.length === 0) return [];
    const rows = await db.all(
      `select note from read_parquet([${paths.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]) order by note`,
    );
    return rows.map((r) => String(r.note));
  } finally {
    db.close();
  }
}

describe('a tenant filter stays the tenant’s own as the schema changes', () => {
  it("a table added later whose tenant column reads the value otherwise (007 in an integer column) refuses that tenant's run; the other tenant gets its row", async () => {
    // Prepare: text tenant column; "007" and "7" are two tenants there
    await h.pool.query(`create schema tdrift;
      create table tdrift.orders (id int primary key, org text not null, note text);
      insert into tdrift.orders values (1, '007', 'a-order'), (2, '7', 'b-order');`);
    const a = await tenant('tda', 'tdrift', { tenantColumn: 'org', tenantValue: '007' });
    const b = await tenant('tdb', 'tdrift', { tenantColumn: 'org', tenantValue: '7' });
    expect((await run(a)).ok).toBe(true);
    expect(await notes(a, 'orders')).toEqual(['a-order']);
    // Act: an integer table arrives, with b's row (7)
    await h.pool.query(`create table tdrift.invoices (id int primary key, org int not null, note text);
      insert into tdrift.invoices values (10, 7, 'b-invoice-secret');`);
    const refused = await run(a);
    const delivered = await run(b);
    // Assess: a's run exports nothing and says why; b receives its invoice
    expect(refused.ok).toBe(false);
    expect(String((refused as { error: unknown }).error)).toContain(
      'table(s) "invoices": tenant column "org" is int4, in which the tenant value "007" reads as "7"',
    );
    expect(delivered.ok).toBe(true);
    expect(await notes(b, 'invoices')).toEqual(['b-invoice-secret']);
    expect(await notes(a, 'orders')).toEqual(['a-order']); // a's last delivery is still the one before
  });

  it('a char(n) table (trailing spaces) and a uuid table (case) added later are refused the same way', async () => {
    await h.pool.query(`create schema tdrift2;
      create table tdrift2.orders (id int primary key, org text not null, note text);
      insert into tdrift2.orders values (1, 'abc ', 'space-order'), (2, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'upper-order');`);
    const spaced = await tenant('tds', 'tdrift2', { tenantColumn: 'org', tenantValue: 'abc ' });
    const upper = await tenant('tdu', 'tdrift2', {
      tenantColumn: 'org',
      tenantValue: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
    });
    await h.pool.query(`create table tdrift2.labels (id int primary key, org char(5) not null, note text);
      insert into tdrift2.labels values (20, 'abc', 'abc-label-secret');
      create table tdrift2.devices (id int primary key, org uuid not null, note text);
      insert into tdrift2.devices values (30, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'lower-device-secret');`);
    const s = await run(spaced);
    const u = await run(upper);
    expect(s.ok).toBe(false);
    expect(String((s as { error: unknown }).error)).toContain(
      'table(s) "labels": tenant column "org" is bpchar, in which the tenant value "abc " reads as "abc"',
    );
    expect(u.ok).toBe(false);
    expect(String((u as { error: unknown }).error)).toContain(
      'table(s) "devices": tenant column "org" is uuid, in which the tenant value "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11" reads as "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"',
    );
  });

  it('two accounts of one schema are told apart by one tenant column: a second column is refused at registration', async () => {
    await h.pool.query(`create schema tdrift3;
      create table tdrift3.orders (id int primary key, org int not null, note text);
      insert into tdrift3.orders values (1, 1, 'one'), (2, 2, 'two');
      create table tdrift3.regions (id int primary key, region_id int not null);`);
    await tenant('tdc1', 'tdrift3', { tenantColumn: 'org', tenantValue: '1' });
    await expect(
      tenant('tdc2', 'tdrift3', { tenantColumn: 'region_id', tenantValue: '1', globalTables: ['orders'] }),
    ).rejects.toThrow(
      'tenantColumn: the accounts sharing schema "tdrift3" are told apart by column "org"; every account of a shared schema uses the same tenant column',
    );
  });

  it('a shared tenant column renamed: the accounts are updated one after the other, each then delivers its own rows', async () => {
    await h.pool.query(`create schema tdrift5;
      create table tdrift5.orders (id int primary key, org int not null, note text);
      insert into tdrift5.orders values (1, 1, 'one'), (2, 2, 'two');`);
    const one = await tenant('tdr1', 'tdrift5', { tenantColumn: 'org', tenantValue: '1' });
    const two = await tenant('tdr2', 'tdrift5', { tenantColumn: 'org', tenantValue: '2' });
    await h.pool.query('alter table tdrift5.orders rename column org to org_id');
    // The first update is not refused for the second account's column: no table has it any more.
    const sel = (v: string) => ({ selection: { tenantColumn: 'org_id', tenantValue: v } });
    one.destination = await h.registry.update('tdr1', sel('1'));
    two.destination = await h.registry.update('tdr2', sel('2'));
    expect((await run(one)).ok).toBe(true);
    expect((await run(two)).ok).toBe(true);
    expect(await notes(one, 'orders')).toEqual(['one']);
    expect(await notes(two, 'orders')).toEqual(['two']);
  });

  it("the filter's equality is pg_catalog's: an `=` for the column's domain elsewhere on the search_path cannot widen it", async () => {
    await h.pool.query(`create schema tdrift4;
      create domain tdrift4.orgid as int;
      create table tdrift4.orders (id int primary key, org tdrift4.orgid not null, note text);
      insert into tdrift4.orders values (1, 1, 'mine'), (2, 2, 'another-tenant-secret');
      create function public.tdrift4_eq(tdrift4.orgid, int) returns boolean language sql immutable as 'select true';
      create operator public.= (leftarg = tdrift4.orgid, rightarg = int, function = public.tdrift4_eq);`);
    try {
      const c = await tenant('tdop', 'tdrift4', { tenantColumn: 'org', tenantValue: '1' });
      expect((await run(c)).ok).toBe(true);
      expect(await notes(c, 'orders')).toEqual(['mine']);
    } finally {
      await h.pool.query(
        'drop operator public.= (tdrift4.orgid, int); drop function public.tdrift4_eq(tdrift4.orgid, int)',
      );
    }
  });
});
