import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from '../src/accounts/registry.js';
import type { Settings } from '../src/config/settings.js';
import type { Receipt } from '../src/contracts/receipt.js';
import { quoteLiteral } from '../src/contracts/sql.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import type { Ledger } from '../src/store/ledger/ledger.js';
import { compareTable, compareTableHyparquet, downloadReceiptFiles } from './compare.js';
import { duck } from './duck.js';
import { readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Every Postgres type family with its edge values goes through the real pipeline (snapshot,
 * binary COPY, Parquet writer, multipart upload) and is read back by DuckDB and by hyparquet;
 * every value must equal Postgres'.
 */
let stack: LocalStack;
let pool: pg.Pool;
let registry: Registry;
let ledger: Ledger;
let settings: Settings;
const dir = mkdtempSync(join(tmpdir(), 'dropship-fidelity-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
let h: Harness;

const FIDELITY_SQL = `
  create extension if not exists citext;
  create schema fid;
  create type fid.mood as enum ('sad', 'ok', 'happy', 'ünïcødé ☃');
  create domain fid.posint as integer check (value > 0);
  create domain fid.money2 as numeric(12,2);
  create type fid.pair as (a int, b text);

  create table fid.numbers (
    id int primary key, i2 smallint, i4 integer, i8 bigint not null, f4 real, f8 double precision,
    n9 numeric(9,2), n18 numeric(18,4), n38 numeric(38,10), n38i numeric(38,0), nfree numeric, b boolean,
    d fid.posint);
  insert into fid.numbers values
    (1, -32768, -2147483648, -9223372036854775808, -3.4028235e38, -1.7976931348623157e308, -9999999.99, -99999999999999.9999, -9999999999999999999999999999.9999999999, -99999999999999999999999999999999999999, 'NaN', false, 1),
    (2, 32767, 2147483647, 9223372036854775807, 3.4028235e38, 1.7976931348623157e308, 9999999.99, 99999999999999.9999, 9999999999999999999999999999.9999999999, 99999999999999999999999999999999999999, 'Infinity', true, 2147483647),
    (3, 0, 0, 0, '-0', '-0', 0, 0, 0, 0, '-Infinity', null, null),
    (4, null, null, 9007199254740993, 'NaN', 'NaN', 0.01, 0.0001, 0.0000000001, 1, 123456789012345678901234567890.123456789012345678901234567890, null, 7),
    (5, 1, 1, -9007199254740993, 'Infinity', 'Infinity', -0.01, -0.0001, -0.0000000001, -1, 0.000000000000000000000000000001, true, 8),
    (6, -1, -1, 1, '-Infinity', '-Infinity', null, null, null, null, null, false, 9),
    (7, 2, 2, 2, 1.17549435e-38, 4.9406564584124654e-324, 1.5, 3.14159, 2.718281828459045, 10, 1e-30, true, 10),
    (8, 3, 3, 3, 0.1, 0.1, 2.5, 2.5, 0.5, 100, 12.3400, false, 11);

  create table fid.texts (
    id int primary key, t text, vc varchar(10), c char(5), nm name, ci citext, e fid.mood, u uuid,
    j json, jb jsonb, by bytea, ch "char");
  insert into fid.texts values
    (1, '', '', '', '', '', 'sad', '00000000-0000-0000-0000-000000000000', '{}', '{}', '', 'a'),
    (2, 'héllo wörld — 中文 — 😀🚀', 'žluť', 'ab', 'name', 'CaseLess', 'ünïcødé ☃', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
       '{"a": [1, 2, {"b": null}], "u": "\\u00e9"}', '{"nested": {"deep": [1, 2.5, "x", true, null]}, "emoji": "😀"}', '\\x00ff10', 'z'),
    (3, null, null, null, null, null, null, null, null, null, null, null),
    (4, E'tab\\tnew\\nline "quotes" \\\\ back', 'x', 'abcde', 'n', 'x', 'happy', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
       '[1, "two", 3.0]', '[]', '\\x00', ' '),
    (5, repeat('long text ', 5000), 'y', 'x', 'm', 'y', 'ok', gen_random_uuid(), 'null', 'null', decode(repeat('ab', 3000), 'hex'), 'q');

  create table fid.times (
    id int primary key, d date, t time, ttz timetz, ts timestamp, tstz timestamptz not null, iv interval);
  insert into fid.times values
    (1, '1970-01-01', '00:00:00', '00:00:00+00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '0'),
    (2, '1969-12-31', '23:59:59.999999', '23:59:59.999999+14', '1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999+00', '-1 day -00:00:00.000001'),
    (3, '0001-01-01 BC', '24:00:00', '12:00:00-12', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', '178000000 years'),
    (4, '5874897-12-31', '12:34:56.000001', '01:02:03.456789+05:30', '292000-12-31 23:59:59.999999', '292000-12-31 23:59:59.999999+00', '1 year 2 mons 3 days 04:05:06.789012'),
    (5, 'infinity', null, null, 'infinity', 'infinity', null),
    (6, '-infinity', '00:00:00.000001', null, '-infinity', '-infinity', '-178000000 years'),
    (7, '2024-02-29', '15:04:05.123456', '15:04:05.123456-07', '2024-02-29 15:04:05.123456', '2024-02-29 15:04:05.123456+00', '1 microsecond'),
    (8, null, null, null, null, '2000-01-01 00:00:00.000001+00', null);

  create table fid.arrays (
    id int primary key, ai int[], ai8 bigint[], at text[], an numeric(10,2)[], af float8[], ab bool[],
    ats timestamptz[], ad date[], au uuid[], ajb jsonb[], ae fid.mood[], ainet inet[], aby bytea[]);
  insert into fid.arrays values
    (1, null, null, null, null, null, null, null, null, null, null, null, null, null),
    (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
    (3, '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}', '{null}'),
    (4, '{1,null,-2147483648}', '{9223372036854775807,null,-9223372036854775808}', '{"a",null,"","ü 😀","with,comma"}',
       '{1.25,null,-99999999.99}', '{NaN,Infinity,-Infinity,-0,1.5,null}', '{true,false,null}',
       '{"2024-01-01 00:00:00.000001+00",null,infinity}', '{2024-02-29,null,-infinity}',
       '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,null}', ARRAY['{"a":1}'::jsonb, null, '[]'::jsonb], '{sad,null,happy}',
       '{192.168.0.1/24,null,::1}', ARRAY['\\x00'::bytea, null, '\\xdeadbeef'::bytea]),
    (5, '[0:2]={7,8,9}', '{1}', '{x}', '{0.01}', '{0.1}', '{true}', '{"1900-01-01 00:00:00+00"}', '{1900-01-01}', '{}', '{}', '{ok}', '{}', '{}');

  create table fid.others (
    id int primary key, ip inet, net cidr, mac macaddr, m money, r int4range, tr tstzrange, p point,
    bits bit(8), vb varbit, ts tsvector, o oid, pair fid.pair, xmlish text, n2 fid.money2, d fid.posint not null);
  insert into fid.others values
    (1, '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', 1234.56, '[1,10)', '[2024-01-01 00:00:00+00,2024-02-01 00:00:00+00)', '(1.5,-2)',
       B'10101010', B'101', 'a fat cat', 4294967295, row(1, 'x'), '<a/>', 12.5, 1),
    (2, null, null, null, -0.01, 'empty', null, null, null, null, null, null, null, null, null, 2);

  create table fid."Mixed Case ""Quoted"" Ü" ("select" int not null, "Col With Space" text, "ünï" text, "UPPER" bigint);
  insert into fid."Mixed Case ""Quoted"" Ü" values (1, 'a', 'b', 3), (2, null, 'ü', null);

  create table fid.empty (id int not null, note text);

  create table fid.stats (id bigint not null, amount numeric(18,4), at timestamptz, label text);
  insert into fid.stats
    select i, (i * 1.5 - 100000)::numeric(18,4), timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute 0.000001 seconds',
           'label-' || lpad(i::text, 6, '0')
      from generate_series(1, 20000) i;
`;

let fidCustomer: Customer;

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool, registry, ledger } = h);
  settings = h.settings({ DROPSHIP_ROW_GROUP_ROWS: '1000', DROPSHIP_SHARD_TARGET_BYTES: String(1024 * 1024) });
  await pool.query(FIDELITY_SQL);
  fidCustomer = await setupCustomer(stack, registry, {
    accountId: 'fid',
    awsAccountId: '888888888888',
    bucket: 'fid-data',
    schema: 'fid',
    layout: 'portable',
  });
});

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let receipt: Receipt;
let files: Map<string, string[]>;

describe('fidelity: every type family, read back by two independent readers', () => {
  it('exports every table of the fidelity schema and writes a receipt that validates', async () => {
    const outcome = await exportAccount(fidCustomer.destination, {
      sourceUrl: stack.databaseUrl,
      settings,
      reporter: silent,
      ledger,
    });
    expect(outcome.ok, outcome.ok ? '' : JSON.stringify((outcome as { failures: unknown }).failures)).toBe(true);
    receipt = await readReceipt(stack, fidCustomer);
    expect(validateReceipt(receipt)).toEqual([]);
    files = await downloadReceiptFiles(
      stack.s3.endpoint,
      'us-east-1',
      fidCustomer.reader,
      'fid-data',
      receipt,
      join(dir, 'fid'),
    );
    expect(Object.keys(receipt.tables).sort()).toEqual(
      ['Mixed Case "Quoted" Ü', 'arrays', 'empty', 'numbers', 'others', 'stats', 'texts', 'times'].sort(),
    );
  });

  it.each(['numbers', 'texts', 'times', 'arrays', 'others', 'Mixed Case "Quoted" Ü', 'empty', 'stats'])(
    '%s: DuckDB reads back every value exactly',
    async (table) => {
      const client = await pool.connect();
      try {
        const t = receipt.tables[table]!;
        const d = await compareTable(client, 'fid', table, t.columns, files.get(table)!);
        expect(d.examples).toEqual([]);
        expect(d.pgRows).toBe(t.row_count);
        expect(d.parquetRows).toBe(t.row_count);
      } finally {
        client.release();
      }
    },
  );

  it.each(['numbers', 'texts', 'times', 'arrays', 'others', 'Mixed Case "Quoted" Ü', 'empty', 'stats'])(
    '%s: hyparquet (second reader) reads back every value',
    async (table) => {
      const client = await pool.connect();
      try {
        const t = receipt.tables[table]!;
        const d = await compareTableHyparquet(client, 'fid', table, t.columns, files.get(table)!);
        expect(d.examples).toEqual([]);
        expect(d.parquetRows).toBe(t.row_count);
      } finally {
        client.release();
      }
    },
  );

  it('records the mapping in the receipt: REQUIRED for NOT NULL, text form where Parquet has no exact type', async () => {
    const cols = (table: string) => Object.fromEntries(receipt.tables[table]!.columns.map((c) => [c.name, c]));
    const numbers = cols('numbers');
    expect(numbers.i8).toMatchObject({ parquet_type: 'INT64', nullable: false, text_form: false });
    expect(numbers.n38).toMatchObject({ parquet_type: 'FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,10)', text_form: false });
    expect(numbers.nfree).toMatchObject({
      postgres_type: 'numeric',
      parquet_type: 'BYTE_ARRAY STRING',
      text_form: true,
    });
    expect(numbers.d).toMatchObject({ postgres_type: 'fid.posint', parquet_type: 'INT32' });
    expect(cols('times').ttz).toMatchObject({ text_form: true });
    expect(cols('times').iv).toMatchObject({ text_form: true });
    expect(cols('times').tstz).toMatchObject({ parquet_type: 'INT64 TIMESTAMP(MICROS,UTC)', nullable: false });
    expect(cols('times').ts).toMatchObject({ parquet_type: 'INT64 TIMESTAMP(MICROS,LOCAL)' });
    expect(cols('texts').u).toMatchObject({ parquet_type: 'FIXED_LEN_BYTE_ARRAY(16) UUID' });
    // citext is the citext extension's type (found by extension membership, not by name): a plain string.
    expect(cols('texts').ci).toMatchObject({ parquet_type: 'BYTE_ARRAY STRING', text_form: false });
    expect(cols('texts').e).toMatchObject({ postgres_type: 'fid.mood', parquet_type: 'BYTE_ARRAY STRING' });
    expect(cols('arrays').ainet).toMatchObject({ parquet_type: 'LIST<BYTE_ARRAY STRING>', text_form: true });
    expect(cols('others').pair).toMatchObject({ text_form: true });
    // The Parquet schema itself says REQUIRED / OPTIONAL, as DuckDB reads it.
    const db = await duck();
    try {
      const schema = await db.all(
        `select name, repetition_type from parquet_schema(${quoteLiteral(files.get('numbers')![0]!, 'duckdb')})`,
      );
      const rep = Object.fromEntries(schema.map((r) => [r.name, r.repetition_type]));
      expect(rep.i8).toBe('REQUIRED');
      expect(rep.id).toBe('REQUIRED');
      expect(rep.f8).toBe('OPTIONAL');
    } finally {
      db.close();
    }
  });

  it('writes the portable layout: no colon in keys, .parquet files, deterministic names for odd table names', async () => {
    const keys = await stack.s3.keys('fid-data');
    expect(keys.filter((k) => k.includes(':'))).toEqual([]);
    expect(keys.filter((k) => !['receipt.json', 'status.json'].includes(k) && !k.endsWith('.parquet'))).toEqual([]);
    expect(receipt.layout).toBe('portable');
    const odd = receipt.tables['Mixed Case "Quoted" Ü']!;
    expect(odd.folder).toMatch(/^\d{8}T\d{4}Z\/Mixed_Case_Quoted_-[0-9a-f]{8}$/);
    expect(odd.files[0]!.key).toMatch(
      /^\d{8}T\d{4}Z\/Mixed_Case_Quoted_-[0-9a-f]{8}\/Mixed_Case_Quoted_-[0-9a-f]{8}_000000000000\.parquet$/,
    );
    const empty = receipt.tables.empty!;
    expect(empty).toMatchObject({ row_count: 0, total_file_count: 1 });
  });

  it('writes statistics that are exact per row group, so pruning never changes a result', async () => {
    const db = await duck();
    try {
      const paths = files.get('stats')!;
      const list = `[${paths.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]`;
      // Every row group's min/max equal the true min/max of its rows.
      const types: Record<string, string> = {
        id: 'BIGINT',
        amount: 'DECIMAL(18,4)',
        at: 'TIMESTAMPTZ',
        label: 'VARCHAR',
      };
      for (const path of paths) {
        const groups = await db.all(
          `select row_group_id, row_group_num_rows, path_in_schema, stats_min_value, stats_max_value from parquet_metadata(${quoteLiteral(path, 'duckdb')}) order by row_group_id`,
        );
        const sizes = new Map<number, number>();
        for (const g of groups) sizes.set(Number(g.row_group_id), Number(g.row_group_num_rows));
        expect(sizes.size).toBeGreaterThan(4);
        const starts = new Map<number, number>();
        let start = 0;
        for (const [id, n] of [...sizes].sort((a, b) => a[0] - b[0])) {
          starts.set(id, start);
          start += n;
        }
        for (const g of groups) {
          const col = String(g.path_in_schema);
          const from = starts.get(Number(g.row_group_id))!;
          const to = from + Number(g.row_group_num_rows) - 1;
          expect(g.stats_min_value, `${col} has statistics`).not.toBeNull();
          const [check] = await db.all(
            `select min("${col}") = cast(${quoteLiteral(String(g.stats_min_value), 'duckdb')} as ${types[col]}) as min_ok,
                    max("${col}") = cast(${quoteLiteral(String(g.stats_max_value), 'duckdb')} as ${types[col]}) as max_ok
               from read_parquet(${quoteLiteral(path, 'duckdb')}, file_row_number = true) where file_row_number between ${from} and ${to}`,
          );
          expect({ col, group: g.row_group_id, ...check }).toEqual({
            col,
            group: g.row_group_id,
            min_ok: true,
            max_ok: true,
          });
        }
      }
      // Filters on bigint, decimal, timestamp and text: same counts with pruning on and off.
      const filters = [
        'id > 12345',
        'id between 100 and 150',
        'amount < -50000.5',
        'amount >= 1000.0000 and amount < 1000.0001',
        `"at" >= timestamptz '2020-01-05 00:00:00+00'`,
        `"at" < timestamptz '2020-01-01 00:10:00.000010+00'`,
        "label > 'label-019990'",
        "label = 'label-000777'",
      ];
      for (const f of filters) {
        const q = `select count(*)::bigint as n from read_parquet(${list}) where ${f}`;
        const on = Number((await db.all(q))[0]!.n);
        await db.all("set disabled_optimizers = 'filter_pushdown,statistics_propagation'");
        const off = Number((await db.all(q))[0]!.n);
        await db.all("set disabled_optimizers = ''");
        const client = await pool.connect();
        const truth = Number(
          (await client.query(`select count(*) as n from fid.stats where ${f.replace(/timestamptz/g, 'timestamptz')}`))
            .rows[0].n,
        );
        client.release();
        expect({ f, on, off }).toEqual({ f, on: truth, off: truth });
      }
    } finally {
      db.close();
    }
  });
});

describe('fidelity: seeded property-based rows', () => {
  it('random rows of every family survive the pipeline exactly (seed 20261123)', async () => {
    await pool.query(`create schema prop;
      create table prop.r (id int primary key, i8 bigint, n numeric(38,9), f float8, t text, ts timestamptz, d date, b boolean, u uuid, j jsonb, a text[], ai int[])`);
    const c = await setupCustomer(stack, registry, {
      accountId: 'prop',
      awsAccountId: '999999999999',
      bucket: 'prop-data',
      schema: 'prop',
    });
    const row = fc.record({
      i8: fc.option(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
      n: fc.option(
        fc.tuple(
          fc.bigInt({ min: -(10n ** 29n) + 1n, max: 10n ** 29n - 1n }),
          fc.bigInt({ min: 0n, max: 10n ** 9n - 1n }),
        ),
      ),
      f: fc.option(fc.double()),
      t: fc.option(fc.string({ unit: 'grapheme', maxLength: 40 })),
      ts: fc.option(fc.bigInt({ min: -210_000_000_000_000_000n, max: 9_000_000_000_000_000_000n })),
      d: fc.option(fc.integer({ min: -2_000_000, max: 2_000_000 })),
      b: fc.option(fc.boolean()),
      u: fc.option(fc.uuid()),
      j: fc.option(fc.jsonValue({ maxDepth: 3 })),
      a: fc.option(fc.array(fc.option(fc.string({ unit: 'grapheme', maxLength: 8 })), { maxLength: 5 })),
      ai: fc.option(fc.array(fc.option(fc.integer()), { maxLength: 5 })),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 120 }), async (rows) => {
        await pool.query('truncate prop.r');
        for (const [i, r] of rows.entries()) {
          const text = (s: string | null) => (s === null ? null : s.replace(/\u0000/g, ''));
          await pool.query(
            `insert into prop.r values ($1, $2, $3::numeric, $4, $5, to_timestamp(0) + ($6::bigint / 1000000) * interval '1 second' + ($6::bigint % 1000000) * interval '1 microsecond', date '1970-01-01' + $7::int, $8, $9, $10::jsonb, $11::text[], $12::int[])`,
            [
              i,
              r.i8 === null ? null : r.i8.toString(),
              r.n === null ? null : `${r.n[0]}.${r.n[1].toString().padStart(9, '0')}`,
              r.f,
              text(r.t),
              r.ts === null ? null : r.ts.toString(),
              r.d,
              r.b,
              r.u,
              r.j === null ? null : JSON.stringify(r.j).replace(/\\u0000/g, ''),
              r.a === null ? null : r.a.map((x) => (x === null ? null : x.replace(/\u0000/g, ''))),
              r.ai,
            ],
          );
        }
        const outcome = await exportAccount(c.destination, {
          sourceUrl: stack.databaseUrl,
          settings,
          reporter: silent,
          ledger,
        });
        if (!outcome.ok) throw new Error(JSON.stringify((outcome as { failures: unknown }).failures));
        const rc = await readReceipt(stack, c);
        const got = await downloadReceiptFiles(
          stack.s3.endpoint,
          'us-east-1',
          c.reader,
          'prop-data',
          rc,
          join(dir, `prop-${Date.now()}`),
        );
        const client = await pool.connect();
        try {
          const d = await compareTable(client, 'prop', 'r', rc.tables.r!.columns, got.get('r')!);
          if (d.examples.length > 0 || d.parquetRows !== rows.length) throw new Error(d.examples.join('\n'));
          const h = await compareTableHyparquet(client, 'prop', 'r', rc.tables.r!.columns, got.get('r')!);
          if (h.examples.length > 0) throw new Error(`hyparquet: ${h.examples.join('\n')}`);
        } finally {
          client.release();
        }
      }),
      { seed: 20261123, numRuns: 6, endOnFailure: true },
    );
  });
});

describe.each(['zstd', 'snappy', 'none'] as const)('fidelity with the %s codec', (codec) => {
  it(`every table is read back exactly by DuckDB and hyparquet from ${codec} files`, async () => {
    // Prepare
    await pool.query(`update dropship.destinations set compression = $1 where account_id = 'fid'`, [codec]);
    const dest = await registry.get('fid');
    // Act
    const outcome = await exportAccount(dest, { sourceUrl: stack.databaseUrl, settings, reporter: silent, ledger });
    // Assess
    expect(outcome.ok, outcome.ok ? '' : JSON.stringify((outcome as { failures: unknown }).failures)).toBe(true);
    const r = await readReceipt(stack, fidCustomer);
    expect(validateReceipt(r)).toEqual([]);
    expect(r.compression).toBe(codec);
    const got = await downloadReceiptFiles(
      stack.s3.endpoint,
      'us-east-1',
      fidCustomer.reader,
      'fid-data',
      r,
      join(dir, codec),
    );
    const db = await duck();
    const client = await pool.connect();
    try {
      for (const [table, t] of Object.entries(r.tables)) {
        const paths = got.get(table)!;
        expect(t.compression).toBe(codec);
        for (const p of paths) expect(p.endsWith('.parquet') && !p.endsWith('.gz')).toBe(true);
        const meta = await db.all(
          `select distinct compression from parquet_metadata(${quoteLiteral(paths[0]!, 'duckdb')})`,
        );
        if (t.row_count > 0)
          expect(meta.map((m) => m.compression)).toEqual([codec === 'none' ? 'UNCOMPRESSED' : codec.toUpperCase()]);
        const d = await compareTable(client, 'fid', table, t.columns, paths);
        expect(d.examples, `${table} (DuckDB)`).toEqual([]);
        expect(d.parquetRows).toBe(t.row_count);
        const hy = await compareTableHyparquet(client, 'fid', table, t.columns, paths);
        expect(hy.examples, `${table} (hyparquet)`).toEqual([]);
        expect(hy.parquetRows).toBe(t.row_count);
      }
    } finally {
      client.release();
      db.close();
      await pool.query(`update dropship.destinations set compression = 'gzip' where account_id = 'fid'`);
    }
  });
});

describe('fidelity: user types named like built-ins (issue 22, finding 7)', () => {
  it('a composite myschema.uuid / myschema.int8, a table named date used as a type, and domains over them export as their text form', async () => {
    // Types are resolved by OID and namespace, never by bare name: each of these would decode as
    // the built-in of the same name (a UUID, an INT64, a DATE) — silently wrong values.
    await pool.query(`create schema myschema;
      create type myschema.uuid as (a int, b int);
      create type myschema.int8 as (s text);
      create table myschema.date (y int, m int);
      create type myschema.timestamptz as enum ('x', 'y');
      create domain myschema.uuid_d as myschema.uuid;
      create domain myschema.text as pg_catalog.int8;
      create table myschema.holder (id int primary key, u myschema.uuid, i myschema.int8, d myschema.date,
        e myschema.timestamptz, ud myschema.uuid_d, dt myschema.text, au myschema.uuid[], real_uuid pg_catalog.uuid);
      insert into myschema.holder values
        (1, row(1, 2), row('hello'), row(2024, 2), 'x', row(3, 4), 42, array[row(5, 6)::myschema.uuid, null],
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
        (2, row(null, -7), row(''), row(null, null), 'y', null, -1, '{}', null),
        (3, null, null, null, null, null, null, null, null);`);
    const c = await setupCustomer(stack, registry, {
      accountId: 'shadow',
      awsAccountId: '777777777701',
      bucket: 'shadow-data',
      schema: 'myschema',
    });
    const outcome = await exportAccount(c.destination, {
      sourceUrl: stack.databaseUrl,
      settings,
      reporter: silent,
      ledger,
    });
    expect(outcome.ok, outcome.ok ? '' : JSON.stringify((outcome as { failures: unknown }).failures)).toBe(true);
    const rc = await readReceipt(stack, c);
    const t = rc.tables.holder!;
    const cols = Object.fromEntries(t.columns.map((col) => [col.name, col]));
    for (const name of ['u', 'i', 'd', 'ud', 'au']) expect(cols[name], name).toMatchObject({ text_form: true });
    expect(cols.u!.parquet_type).toBe('BYTE_ARRAY STRING');
    expect(cols.i!.parquet_type).toBe('BYTE_ARRAY STRING');
    expect(cols.d!.parquet_type).toBe('BYTE_ARRAY STRING');
    expect(cols.au!.parquet_type).toBe('LIST<BYTE_ARRAY STRING>');
    // An enum is a string whatever its name; a domain over a built-in exports as its base type.
    expect(cols.e!.parquet_type).toBe('BYTE_ARRAY STRING');
    expect(cols.dt).toMatchObject({ parquet_type: 'INT64', text_form: false });
    expect(cols.real_uuid!.parquet_type).toBe('FIXED_LEN_BYTE_ARRAY(16) UUID');
    const got = await downloadReceiptFiles(
      stack.s3.endpoint,
      'us-east-1',
      c.reader,
      'shadow-data',
      rc,
      join(dir, 'shadow'),
    );
    const client = await pool.connect();
    try {
      const d = await compareTable(client, 'myschema', 'holder', t.columns, got.get('holder')!);
      expect(d.examples).toEqual([]);
      expect(d.parquetRows).toBe(3);
      // And spelled out: DuckDB's strings are exactly Postgres' text output.
      const text = (c: string) => `case when num_nulls(${c}) = 1 then null else format('%s', ${c}) end as ${c}`;
      const pgRows = (
        await client.query(`select id, ${['u', 'i', 'd', 'ud'].map(text).join(', ')} from myschema.holder order by id`)
      ).rows;
      // A composite whose fields are all NULL is a value ('(,)'), not NULL.
      expect(pgRows).toEqual([
        { id: 1, u: '(1,2)', i: '(hello)', d: '(2024,2)', ud: '(3,4)' },
        { id: 2, u: '(,-7)', i: '("")', d: '(,)', ud: null },
        { id: 3, u: null, i: null, d: null, ud: null },
      ]);
      const db = await duck();
      try {
        const list = `[${got
          .get('holder')!
          .map((p) => quoteLiteral(p, 'duckdb'))
          .join(', ')}]`;
        expect(await db.all(`select id, u, i, d, ud from read_parquet(${list}) order by id`)).toEqual(pgRows);
      } finally {
        db.close();
      }
    } finally {
      client.release();
    }
  });
});
