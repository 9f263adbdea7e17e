import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidDestination, type Registry } from '../src/accounts/registry.js';
import type { Settings } from '../src/config/settings.js';
import type { Receipt } from '../src/contracts/receipt.js';
import type { SelectionInput } from '../src/contracts/selection.js';
import { quoteLiteral } from '../src/contracts/sql.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { loadReceipt } from '../src/customer/loader.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { listTables } from '../src/pipeline/source/catalog.js';
import { selectTables, tenantLiteral, whereClause } from '../src/pipeline/source/select.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { runTask } from '../src/run/drivers/task.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import type { Ledger } from '../src/store/ledger/ledger.js';
import { compareTable, downloadReceiptFiles } from './compare.js';
import { duck } from './duck.js';
import { dropship, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Tenant mode and table/column selection on the real stack: three schemas of shared tables (tenant
 * column integer, uuid, text; 100 tenants each), three destinations per schema. Every file is read
 * back with DuckDB and compared with that tenant's rows, selected in Postgres through a bind
 * parameter (independent of the exporter's literal quoting).
 */
let h: Harness;
let stack: LocalStack;
let pool: pg.Pool;
let registry: Registry;
let ledger: Ledger;
let settings: Settings;
const dir = mkdtempSync(join(tmpdir(), 'dropship-tenant-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));

type Kind = 'integer' | 'uuid' | 'text';
const HOSTILE = `o'hare\\'); drop table t_text.events; --`;
const UNICODE = 'Ünïcødé 🚀 "quoted"';
/** 100 tenants per schema; the first three get destinations. */
const TENANTS: Record<Kind, string[]> = {
  integer: Array.from({ length: 100 }, (_, k) => String((k + 1) * 7)),
  uuid: Array.from({ length: 100 }, (_, k) => `00000000-0000-4000-8000-${String(k + 1).padStart(12, '0')}`),
  text: [
    HOSTILE,
    UNICODE,
    'acme',
    'acme ',
    'ACME',
    '%',
    '_',
    'acme\\',
    ...Array.from({ length: 92 }, (_, k) => `t${k}`),
  ],
};
/** What each destination registers: integer tenant 14 spelled "014", uuid in upper case. */
const GIVEN: Record<Kind, string[]> = {
  integer: ['7', '014', '700'],
  uuid: TENANTS.uuid.slice(0, 3).map((u) => u.toUpperCase()),
  text: TENANTS.text.slice(0, 3),
};
const SCHEMA: Record<Kind, string> = { integer: 't_int', uuid: 't_uuid', text: 't_text' };
const customers = new Map<string, { c: Customer; kind: Kind; tenant: string; drop: boolean }>();

const TYPE: Record<Kind, string> = { integer: 'integer', uuid: 'uuid', text: 'text' };

async function createShared(client: pg.ClientBase, kind: Kind): Promise<void> {
  const s = SCHEMA[kind];
  const t = TYPE[kind];
  await client.query(`create schema ${s}`);
  await client.query(`create table ${s}.tenants (k int primary key, v ${t} not null)`);
  for (const [k, v] of TENANTS[kind].entries())
    await client.query(`insert into ${s}.tenants values ($1, $2::${t})`, [k, v]);
  await client.query(`
    create table ${s}.events (id bigint primary key, org_id ${t} not null, kind text, amount numeric(12,2),
      secret text, at timestamptz not null);
    insert into ${s}.events
      select i, (select v from ${s}.tenants where k = i % 100), (array['view','click','buy'])[1 + i % 3],
             case when i % 10 = 0 then null else (i % 1000) * 1.25 end, 'secret-' || i,
             timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
        from generate_series(1, 20000) i;
    create index on ${s}.events (org_id);
    create table ${s}.contacts (id int primary key, org_id ${t}, name text, email text, secret text);
    insert into ${s}.contacts
      select i, case when i % 97 = 0 then null else (select v from ${s}.tenants where k = i % 100) end,
             'Name ' || i, 'p' || i || '@example.com', 's' || i
        from generate_series(1, 2000) i;
    create index on ${s}.contacts (org_id);
    create table ${s}.countries (code char(2) primary key, name text not null);
    insert into ${s}.countries values ('DK', 'Denmark'), ('DE', 'Germany'), ('FR', 'France');
    create table ${s}.audit_log (id int, note text);
    insert into ${s}.audit_log select i, 'every tenant ' || i from generate_series(1, 50) i;
    create table ${s}.internal_notes (id int, org_id ${t}, note text);
    insert into ${s}.internal_notes select i, (select v from ${s}.tenants where k = i % 100), 'n' from generate_series(1, 100) i;
    analyze ${s}.events; analyze ${s}.contacts;`);
}

const selectionFor = (tenant: string, drop: boolean): SelectionInput => ({
  tenantColumn: 'org_id',
  tenantValue: tenant,
  dropTenantColumn: drop,
  globalTables: 'countries',
  excludeTables: 'internal_*',
  excludeColumns: 'contacts.email,*.secret',
});

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool, registry, ledger } = h);
  settings = h.settings({ DROPSHIP_ROW_GROUP_ROWS: '5000' });
  const client = await pool.connect();
  try {
    for (const kind of ['integer', 'uuid', 'text'] as const) await createShared(client, kind);
  } finally {
    client.release();
  }
  let n = 0;
  for (const kind of ['integer', 'uuid', 'text'] as const) {
    for (const [i, given] of GIVEN[kind].entries()) {
      n++;
      const id = `${kind.slice(0, 3)}-${i}`;
      const drop = i === 1; // the second tenant of each schema leaves the tenant column out
      const c = await setupCustomer(stack, registry, {
        accountId: id,
        awsAccountId: String(500000000000 + n),
        bucket: `tenant-${id}`,
        schema: SCHEMA[kind],
        selection: selectionFor(given, drop),
      });
      const tenant = kind === 'integer' ? String(Number(given)) : kind === 'uuid' ? given.toLowerCase() : given;
      customers.set(id, { c, kind, tenant, drop });
    }
  }
}, 120_000);

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Views of one tenant's rows, selected with a bind parameter, for compareTable. */
async function tenantViews(client: pg.ClientBase, kind: Kind, tenant: string, name: string): Promise<string> {
  const v = `chk_${name.replace(/-/g, '_')}`;
  const s = SCHEMA[kind];
  await client.query(`drop schema if exists ${v} cascade; create schema ${v};
    create table ${v}.param (v ${TYPE[kind]} not null)`);
  await client.query(`insert into ${v}.param values ($1::${TYPE[kind]})`, [tenant]);
  await client.query(`create view ${v}.events as select * from ${s}.events where org_id = (select v from ${v}.param);
    create view ${v}.contacts as select * from ${s}.contacts where org_id = (select v from ${v}.param);
    create view ${v}.countries as select * from ${s}.countries`);
  return v;
}

async function exportAndRead(id: string): Promise<{ receipt: Receipt; files: Map<string, string[]> }> {
  const { c } = customers.get(id)!;
  const outcome = await exportAccount(c.destination, {
    sourceUrl: stack.databaseUrl,
    settings,
    reporter: silent,
    ledger,
  });
  expect(outcome.ok, outcome.ok ? '' : String((outcome as { error: unknown }).error)).toBe(true);
  const receipt = await readReceipt(stack, c);
  const files = await downloadReceiptFiles(
    stack.s3.endpoint,
    'us-east-1',
    c.reader,
    c.destination.bucket,
    receipt,
    join(dir, id, receipt.run_id),
  );
  return { receipt, files };
}

describe('tenant mode and selection', () => {
  it('stores canonical tenant values: 014 is tenant 14, an upper-case uuid is the uuid', () => {
    expect(customers.get('int-1')!.c.destination.selection.tenantValue).toBe('14');
    expect(customers.get('uui-0')!.c.destination.selection.tenantValue).toBe(TENANTS.uuid[0]);
    expect(customers.get('tex-0')!.c.destination.selection.tenantValue).toBe(HOSTILE);
  });

  it('each destination receives exactly its own rows; excluded tables and columns are absent', async () => {
    const client = await pool.connect();
    try {
      for (const [id, { kind, tenant, drop }] of customers) {
        const { receipt, files } = await exportAndRead(id);
        expect(validateReceipt(receipt), id).toEqual([]);
        // audit_log has no tenant column and is not global; internal_notes is excluded.
        expect(Object.keys(receipt.tables), id).toEqual(['contacts', 'countries', 'events']);
        expect(receipt.selection, id).toEqual({
          tenant_column: 'org_id',
          tenant_column_exported: !drop,
          global_tables: ['countries'],
          include_tables: [],
          exclude_tables: ['internal_*'],
          exclude_columns: ['contacts.email', '*.secret'],
          // `tenants` lists every tenant: without the tenant column it never goes out.
          left_out: ['audit_log', 'tenants'].map((table) => ({
            table,
            reason: 'no tenant column "org_id" and not listed in --global-tables',
          })),
        });
        const cols = (t: string) => receipt.tables[t]!.columns.map((c) => c.name);
        expect(cols('contacts'), id).toEqual(drop ? ['id', 'name'] : ['id', 'org_id', 'name']);
        expect(cols('events'), id).toEqual(
          drop ? ['id', 'kind', 'amount', 'at'] : ['id', 'org_id', 'kind', 'amount', 'at'],
        );
        const v = await tenantViews(client, kind, tenant, id);
        const expected = Number(
          (await client.query(`select count(*) from ${SCHEMA[kind]}.events where org_id = $1::${TYPE[kind]}`, [tenant]))
            .rows[0].count,
        );
        expect(expected, id).toBe(200);
        expect(receipt.tables.events!.row_count, id).toBe(expected);
        for (const table of ['events', 'contacts', 'countries']) {
          const d = await compareTable(client, v, table, receipt.tables[table]!.columns, files.get(table)!);
          expect(d.examples, `${id} ${table}`).toEqual([]);
          expect(d.parquetRows, `${id} ${table}`).toBe(d.pgRows);
        }
        // Column names absent from every file, not only from the receipt.
        const db = await duck();
        try {
          const names = await db.all(
            `select distinct name from parquet_schema([${[...files.values()]
              .flat()
              .map((p) => quoteLiteral(p, 'duckdb'))
              .join(', ')}])`,
          );
          const all = names.map((r) => String(r.name));
          expect(all).not.toContain('secret');
          expect(all).not.toContain('email');
          if (drop) expect(all).not.toContain('org_id');
          else {
            // Statistics of the tenant column: every row group holds only this tenant.
            const stats = await db.all(
              `select distinct stats_min_value as lo, stats_max_value as hi from parquet_metadata([${files
                .get('events')!
                .map((p) => quoteLiteral(p, 'duckdb'))
                .join(', ')}]) where path_in_schema = 'org_id'`,
            );
            expect(stats.length, id).toBe(1);
            if (kind !== 'uuid') expect([stats[0]!.lo, stats[0]!.hi], id).toEqual([tenant, tenant]);
          }
        } finally {
          db.close();
        }
      }
    } finally {
      client.release();
    }
  }, 120_000);

  it('the tenant filter reads through the index on the tenant column', async () => {
    const client = await pool.connect();
    try {
      for (const kind of ['integer', 'uuid', 'text'] as const) {
        const schema = SCHEMA[kind];
        const sel = await selectTables(
          client,
          schema,
          await listTables(client, schema),
          customers.get(`${kind.slice(0, 3)}-0`)!.c.destination.selection,
        );
        const filter = sel.filters.get('events')!;
        const plan = JSON.stringify(
          (await client.query(`explain (format json) select * from ${schema}.events${whereClause(filter)}`)).rows[0],
        );
        expect(plan, kind).toMatch(/"Index Name":"events_org_id_idx"/);
        expect(plan, kind).not.toMatch(/"Node Type":"Seq Scan"/);
      }
    } finally {
      client.release();
    }
  });

  it('registration checks the selection against the catalog, one line per problem', async () => {
    await pool.query(`create schema t_bad;
      create table t_bad.a (id int, org_id numeric);
      create table t_bad.b (id int, org_id int);
      create table t_bad.ref (code text);
      create collation t_bad.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
      create table t_bad.c (id int, org_id text collate t_bad.ci);
      create extension if not exists citext;
      create table t_bad.d (id int, org_id citext);
      create type t_bad.int8 as (v bigint);
      create table t_bad.e (id int, org_id t_bad.int8);`);
    const base = {
      plan: 'paid' as const,
      bucket: 'nobody-data',
      region: 'us-east-1',
      roleArn: 'arn:aws:iam::599999999999:role/x',
    };
    const problems = async (accountId: string, sourceSchema: string, selection: SelectionInput): Promise<string[]> => {
      const e = await registry.add({ ...base, accountId, sourceSchema, selection }).catch((x: unknown) => x);
      expect(e, accountId).toBeInstanceOf(InvalidDestination);
      return (e as InvalidDestination).problems;
    };
    expect(
      await problems('bad-names', 't_int', {
        includeTables: 'events,nope*',
        excludeColumns: 'contacts.nope,nope.x,events.amount',
      }),
    ).toEqual([
      '--include-tables: no table of schema "t_int" matches "nope*"',
      '--exclude-columns: no column of "contacts" matches "nope"',
      '--exclude-columns: no table of schema "t_int" matches "nope"',
    ]);
    const typeProblems = await problems('bad-type', 't_bad', {
      tenantColumn: 'org_id',
      tenantValue: '1',
      globalTables: 'ref',
    });
    // numeric; a case-insensitive collation; citext (equality ignoring case could match another tenant).
    // … and a composite named like a built-in (t_bad.int8): types are told apart by namespace, not name.
    expect(typeProblems).toHaveLength(4);
    expect(typeProblems[0]).toMatch(/^table "a": tenant column "org_id" is numeric; a tenant column must be/);
    expect(typeProblems[1]).toBe(
      `table "c": tenant column "org_id" has a nondeterministic collation; its equality could match another tenant's values`,
    );
    expect(typeProblems[2]).toMatch(/^table "d": tenant column "org_id" is citext; a tenant column must be/);
    expect(typeProblems[3]).toMatch(/^table "e": tenant column "org_id" is t_bad\.int8; a tenant column must be/);
    expect(
      await problems('bad-empty', 't_int', { tenantColumn: 'org_id', tenantValue: '7', includeTables: 'audit_log' }),
    ).toEqual(['the selection leaves no table of schema "t_int" to export']);
    const uuid = await problems('bad-uuid', 't_uuid', { tenantColumn: 'org_id', tenantValue: 'not-a-uuid' });
    expect(uuid).toHaveLength(1);
    expect(uuid[0]).toMatch(/^--tenant-value: "not-a-uuid" is not a valid uuid/);
    expect(await problems('bad-col', 't_int', { tenantColumn: 'tenant', tenantValue: '7' })).toEqual([
      '--tenant-column: no table of schema "t_int" has a column "tenant"',
    ]);
    expect(await problems('bad-global', 't_int', { globalTables: 'countries' })).toEqual([
      'selection.globalTables: --global-tables only applies in tenant mode (--tenant-column)',
    ]);
    expect(await problems('bad-overflow', 't_int', { tenantColumn: 'org_id', tenantValue: '99999999999' })).toEqual([
      expect.stringMatching(/^--tenant-value: "99999999999" is not a valid int4 .*out of range/),
    ]);
    // Tenants never shared, schema-per-account never mixed with tenant mode.
    expect(await problems('dup-tenant', 't_int', { tenantColumn: 'org_id', tenantValue: '+14' })).toEqual([
      'tenantValue: tenant org_id = "14" of schema "t_int" is already exported by another account',
    ]);
    expect(await problems('whole-schema', 't_int', {})).toEqual([
      'sourceSchema: schema "t_int" already belongs to another account',
    ]);
    expect(
      (await registry.list()).map((d) => d.accountId).filter((a) => a.startsWith('bad') || a.startsWith('dup')),
    ).toEqual([]);
  });

  it('update changes the selection and other fields, never the external ID; an invalid update changes nothing', async () => {
    const before = await registry.get('int-2');
    const after = await registry.update('int-2', {
      plan: 'free',
      prefix: 'exports/tenant',
      selection: { excludeTables: 'internal_*,audit_log', excludeColumns: '', globalTables: 'countries' },
    });
    expect(after.externalId).toBe(before.externalId);
    expect(after.plan).toBe('free');
    expect(after.prefix).toBe('exports/tenant');
    expect(after.selection).toEqual({
      ...before.selection,
      excludeTables: ['internal_*', 'audit_log'],
      excludeColumns: [],
      globalTables: ['countries'],
    });
    const bad = await registry
      .update('int-2', { selection: { tenantValue: 'seven' }, plan: 'paid' })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidDestination);
    expect((bad as InvalidDestination).problems[0]).toMatch(/^--tenant-value: "seven" is not a valid int4/);
    expect(await registry.get('int-2')).toEqual({ ...after, updatedAt: expect.any(Date) });
    const back = await registry.update('int-2', {
      plan: 'paid',
      prefix: '',
      selection: { excludeTables: 'internal_*', excludeColumns: 'contacts.email,*.secret', globalTables: 'countries' },
    });
    expect(back.selection).toEqual(before.selection);
  });

  it('the fan-out path splits a tenant’s rows into key ranges of that tenant and delivers exactly them', async () => {
    const { c, tenant, kind } = customers.get('tex-0')!;
    // Below the setting's minimum, so that a 200-row tenant splits (settings are plain values).
    const fanout: Settings = { ...h.settings({ DROPSHIP_ROW_GROUP_ROWS: '5000' }), DROPSHIP_SPLIT_ROWS: 60 };
    const messages: TaskMessage[] = [];
    const { run } = await startFanOutRun(c.destination, {
      sourceUrl: stack.databaseUrl,
      ledger,
      settings: fanout,
      trigger: 'manual',
      queue: { send: async (batch) => void messages.push(...batch) },
    });
    const tasks = await ledger.tasks(run.runId);
    const parts = tasks.filter((t) => t.table === 'events');
    // The planner estimates the tenant's 200 rows (not the table's 20,000): a few parts, not hundreds.
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts.length).toBeLessThanOrEqual(6);
    const bounds = (
      await pool.query(
        `select min(id)::text as lo, max(id)::text as hi from ${SCHEMA[kind]}.events where org_id = $1`,
        [tenant],
      )
    ).rows[0];
    expect(parts[0]!.rangeLo).toBe(BigInt(bounds.lo));
    expect(parts.at(-1)!.rangeHi).toBe(BigInt(bounds.hi));
    // An update while the run is in flight cancels it (issue 22: a delivery belongs to exactly one
    // destination version): its tasks do nothing more, and the next run exports with the new selection
    // (parts of a table never differ in columns).
    await registry.update('tex-0', { selection: { excludeColumns: 'contacts.email,*.secret,events.kind' } });
    const cancelled = await ledger.getRun(run.runId);
    expect(cancelled?.status).toBe('cancelled');
    expect(cancelled?.error).toMatch(/^the destination was changed \(selection\) while this run was open/);
    for (const m of messages) {
      const o = await runTask(m, { sourceUrl: stack.databaseUrl, ledger, registry, settings: fanout });
      expect(o.status, JSON.stringify(o)).toBe('skipped');
    }
    const nextMessages: TaskMessage[] = [];
    const { run: next } = await startFanOutRun(await registry.get('tex-0'), {
      sourceUrl: stack.databaseUrl,
      ledger,
      settings: fanout,
      trigger: 'manual',
      queue: { send: async (batch) => void nextMessages.push(...batch) },
    });
    // The first message's worker holds the run's snapshot and exports the pending tasks itself
    // (src/run/lifecycle/shared-snapshot.ts); the later messages find their tasks done.
    for (const m of nextMessages) {
      const o = await runTask(m, { sourceUrl: stack.databaseUrl, ledger, registry, settings: fanout });
      expect(
        o.status === 'succeeded' || (o.status === 'skipped' && o.reason === 'already done'),
        JSON.stringify(o),
      ).toBe(true);
    }
    expect((await ledger.getRun(next.runId))?.receiptKey).toBe('receipt.json');
    const receipt = await readReceipt(stack, c);
    expect(receipt.run_id).toBe(next.runId);
    expect(receipt.selection?.left_out.map((l) => l.table)).toEqual(['audit_log', 'tenants']);
    expect(receipt.tables.events!.columns.map((col) => col.name)).toEqual(['id', 'org_id', 'amount', 'at']);
    await registry.update('tex-0', { selection: { excludeColumns: 'contacts.email,*.secret' } });
    const files = await downloadReceiptFiles(
      stack.s3.endpoint,
      'us-east-1',
      c.reader,
      c.destination.bucket,
      receipt,
      join(dir, 'fanout'),
    );
    const client = await pool.connect();
    try {
      const v = await tenantViews(client, kind, tenant, 'fanout');
      const d = await compareTable(client, v, 'events', receipt.tables.events!.columns, files.get('events')!);
      expect(d.examples).toEqual([]);
      expect(d.parquetRows).toBe(200);
    } finally {
      client.release();
    }
    // The customer's loader reads the filtered receipt as any other.
    const s3 = customerS3(stack.s3.endpoint, 'us-east-1', c.reader);
    try {
      const loaded = await loadReceipt({
        s3,
        receiptUri: `s3://${c.destination.bucket}/receipt.json`,
        into: `duckdb:${join(dir, 'loaded.duckdb')}`,
      });
      expect(loaded).toEqual([
        { table: 'contacts', rows: receipt.tables.contacts!.row_count },
        { table: 'countries', rows: 3 },
        { table: 'events', rows: 200 },
      ]);
    } finally {
      s3.destroy();
    }
  }, 60_000);

  it('property: with random tenant ids, no file ever holds another tenant’s row', async () => {
    const alphabet = ["'", '\\', '"', ';', ' ', 'a', 'A', 'Ü', '🚀', '%', '_', '*', '\n', '$$', ')', '-'];
    const tenantId = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 6 }).map((xs) => xs.join(''));
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(tenantId, { minLength: 3, maxLength: 6 }), async (ids) => {
        round++;
        const s = `prop_${round}`;
        await pool.query(
          `create schema ${s}; create table ${s}.rows (id int primary key, tenant text not null, v text)`,
        );
        for (const [i, t] of ids.entries())
          await pool.query(
            `insert into ${s}.rows select $1 * 100 + g, $2, $2 || '#' || g from generate_series(1, $1 + 1) g`,
            [i, t],
          );
        // Two of the tenants get destinations.
        for (const [j, t] of [ids[0]!, ids[ids.length - 1]!].entries()) {
          const id = `prop-${round}-${j}`;
          const c = await setupCustomer(stack, registry, {
            accountId: id,
            awsAccountId: String(510000000000 + round * 10 + j),
            bucket: `prop-${round}-${j}`,
            schema: s,
            selection: { tenantColumn: 'tenant', tenantValue: t },
          });
          customers.set(id, { c, kind: 'text', tenant: t, drop: false });
          const { receipt, files } = await exportAndRead(id);
          const db = await duck();
          try {
            const rows = await db.all(
              `select tenant, count(*)::int as n from read_parquet([${files
                .get('rows')!
                .map((p) => quoteLiteral(p, 'duckdb'))
                .join(', ')}]) group by tenant`,
            );
            expect(rows).toEqual([{ tenant: t, n: ids.indexOf(t) + 1 }]);
            expect(receipt.tables.rows!.row_count).toBe(ids.indexOf(t) + 1);
          } finally {
            db.close();
          }
        }
      }),
      { seed: 1414, numRuns: 4 },
    );
  }, 120_000);

  it('property: with random bigint tenant ids in any spelling, no file holds another tenant’s row', async () => {
    const INT8 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(INT8, { minLength: 2, maxLength: 5 }), fc.nat(3), async (ids, zeros) => {
        round++;
        const s = `propint_${round}`;
        await pool.query(`create schema ${s}; create table ${s}.rows (id int primary key, tenant bigint not null)`);
        for (const [i, t] of ids.entries())
          await pool.query(`insert into ${s}.rows select $1 * 100 + g, $2 from generate_series(1, $1 + 1) g`, [
            i,
            t.toString(),
          ]);
        const t = ids[ids.length - 1]!;
        // "-0042" / "0042": the registry stores the canonical form, the export matches the number.
        const spelled = `${t < 0n ? '-' : ''}${'0'.repeat(zeros)}${(t < 0n ? -t : t).toString()}`;
        const id = `propint-${round}`;
        const c = await setupCustomer(stack, registry, {
          accountId: id,
          awsAccountId: String(520000000000 + round),
          bucket: id,
          schema: s,
          selection: { tenantColumn: 'tenant', tenantValue: spelled },
        });
        expect(c.destination.selection.tenantValue).toBe(t.toString());
        customers.set(id, { c, kind: 'integer', tenant: t.toString(), drop: false });
        const { files } = await exportAndRead(id);
        const db = await duck();
        try {
          const rows = await db.all(
            `select tenant::varchar as tenant, count(*)::int as n from read_parquet([${files
              .get('rows')!
              .map((p) => quoteLiteral(p, 'duckdb'))
              .join(', ')}]) group by tenant`,
          );
          expect(rows).toEqual([{ tenant: t.toString(), n: ids.length }]);
        } finally {
          db.close();
        }
      }),
      { seed: 1414, numRuns: 3 },
    );
  }, 120_000);

  it('property: the tenant literal in the COPY text reads back as exactly the value, for any string', async () => {
    const value = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((v) => !v.includes('\u0000'));
    const hostile = fc.constantFrom("'", "''", '\\', "\\'", "E'\\x41'", '$$', '$x$', '"', ';--', '\n', ' ');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(value, hostile), { minLength: 1, maxLength: 4 }), async (parts) => {
        const v = parts.join('');
        const lit = tenantLiteral({ column: 'x', value: v, castType: 'pg_catalog.text' });
        const r = await pool.query(`select ${lit} as v, 1 as one`);
        expect(r.rows).toEqual([{ v, one: 1 }]);
      }),
      { seed: 1414, numRuns: 200 },
    );
    // Integers and uuids only in their own type: anything else is an error, never another row.
    await expect(
      pool.query(`select ${tenantLiteral({ column: 'x', value: '1 or true', castType: 'pg_catalog.int4' })}`),
    ).rejects.toThrow(/invalid input syntax for type integer/);
  });

  it('CLI: destinations update prints the selection; the export summary says which tables were left out and why', async () => {
    const cli = (args: string[]) => dropship(stack, args);
    const before = await registry.get('uui-2');
    const upd = await cli([
      'destinations',
      'update',
      'uui-2',
      '--exclude-tables',
      'internal_*,audit_log',
      '--drop-tenant-column',
    ]);
    expect(upd.stderr).toBe('');
    expect(upd.code).toBe(0);
    expect(upd.stdout).toContain(`tenant        org_id = "${TENANTS.uuid[2]}"  (column left out of the files)`);
    expect(upd.stdout).toContain('exclude       internal_*, audit_log');
    expect((await registry.get('uui-2')).externalId).toBe(before.externalId);
    const list = await cli(['destinations', 'list']);
    expect(list.stdout).toContain(`t_uuid (org_id = "${TENANTS.uuid[2]}")`);
    const bad = await cli(['destinations', 'update', 'uui-2', '--include-tables', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--include-tables: no table of schema "t_uuid" matches "nope"');
    const exp = await cli(['export', '--account', 'uui-2']);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stdout).toContain('left out: uui-2/audit_log — excluded by --exclude-tables "audit_log"');
    expect(exp.stdout).toContain(
      'left out: uui-2/tenants — no tenant column "org_id" and not listed in --global-tables',
    );
    const receipt = await readReceipt(stack, customers.get('uui-2')!.c);
    expect(receipt.selection?.left_out).toEqual([
      { table: 'tenants', reason: 'no tenant column "org_id" and not listed in --global-tables' },
    ]);
    expect(receipt.tables.events!.columns.map((c) => c.name)).toEqual(['id', 'kind', 'amount', 'at']);
    // The doctor checks the selection against the source as it is now.
    const doc = await cli(['doctor', '--account', 'uui-2']);
    expect(doc.stdout).toContain(
      '✓ selection: 3 table(s) of schema "t_uuid" exported (2 filtered on org_id, 1 global), 3 left out',
    );
    expect(doc.code, doc.stdout).toBe(0);
    await pool.query('alter table t_uuid.audit_log rename to audit_old');
    try {
      const drift = await cli(['doctor', '--account', 'uui-2']);
      expect(drift.code).toBe(1);
      expect(drift.stdout).toContain('✗ selection:');
      expect(drift.stdout).toContain('fix: --exclude-tables: no table of schema "t_uuid" matches "audit_log"');
    } finally {
      await pool.query('alter table t_uuid.audit_old rename to audit_log');
    }
  }, 60_000);
});
