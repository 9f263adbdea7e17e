import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import receiptSchema from '../../schemas/receipt.schema.json' with { type: 'json' };
import statusSchema from '../../schemas/status.schema.json' with { type: 'json' };
import { VALIDATORS_PATH, validatorsText } from './schema-validators.js';
import { MAX_RECEIPT_BYTES, parseReceiptJson, validateReceipt } from './validate.js';

describe('the published JSON Schemas', () => {
  // Validators compile them without checking them against the meta-schema (start-up cost): checked here instead.
  it.each([
    ['receipt', receiptSchema],
    ['status', statusSchema],
  ])('%s.schema.json is a valid JSON Schema', (_name, schema) => {
    // Act
    const ajv = new Ajv({ strict: false });
    const ok = ajv.validateSchema(schema);

    // Assess
    expect(ajv.errors ?? [], JSON.stringify(ajv.errors)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the precompiled validators are the ones the schemas give today (run npm run docs:validators after a change)', () => {
    expect(readFileSync(VALIDATORS_PATH, 'utf8')).toBe(validatorsText());
  });

  it('a schema that breaks the meta-schema is caught by that check', () => {
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema({ type: 'objekt' })).toBe(false);
  });
});

const valid = () => ({
  timestamp: '2023-03-14T04:03:07.963883Z',
  tables: {
    events: {
      folder: '2023-03-14T04:03/events',
      total_file_count: 2,
      row_count: 30,
      bytes: 300,
      files: [
        {
          key: 'p/2023-03-14T04:03/events/events_000000000000.parquet.gz',
          rows: 10,
          bytes: 100,
          sha256: 'a'.repeat(64),
        },
        {
          key: 'p/2023-03-14T04:03/events/events_000000000001.parquet.gz',
          rows: 20,
          bytes: 200,
          sha256: 'b'.repeat(64),
        },
      ],
      columns: [{ name: 'id', postgres_type: 'bigint', parquet_type: 'INT64', nullable: false, text_form: false }],
    },
  },
  run_id: '20230314T040307Z-3f9a1c',
  format: 'parquet',
  compression: 'gzip',
  layout: 'dreamdata',
});

describe('validateReceipt', () => {
  it('accepts a receipt in the contract, and the model format without additive fields', () => {
    expect(validateReceipt(valid())).toEqual([]);
    expect(
      validateReceipt({
        timestamp: '2023-03-14T04:03:07.963883Z',
        tables: { companies: { folder: '2023-03-14T04:03/companies', total_file_count: 58 } },
        run_id: '20230314T040307Z-3f9a1c',
        format: 'parquet',
        compression: 'gzip',
      }),
    ).toEqual([]);
  });

  it('reports schema violations with their JSON paths', () => {
    const r = valid() as Record<string, unknown>;
    r.timestamp = '2023-03-14T04:03:07Z';
    r.format = 'csv';
    delete r.run_id;
    (r.tables as { events: { files: { sha256: string }[] } }).events.files[1]!.sha256 = 'nope';
    const v = validateReceipt(r);
    expect(v).toEqual(
      expect.arrayContaining([
        { path: '$.timestamp', message: expect.stringContaining('must match pattern') },
        { path: '$.format', message: 'must be "parquet"' },
        { path: '$.run_id', message: expect.stringContaining('required') },
        { path: '$.tables.events.files[1].sha256', message: expect.stringContaining('must match pattern') },
      ]),
    );
  });

  it('reports totals and keys that disagree with the files', () => {
    const r = valid();
    r.tables.events.total_file_count = 3;
    r.tables.events.row_count = 31;
    r.tables.events.files[0]!.key = 'p/elsewhere/x.parquet.gz';
    expect(validateReceipt(r)).toEqual([
      { path: '$.tables.events.total_file_count', message: 'is 3 but files lists 2' },
      { path: '$.tables.events.row_count', message: 'is 31 but the files hold 30 rows' },
      { path: '$.tables.events.files[0].key', message: `is not inside the table's folder "2023-03-14T04:03/events"` },
    ]);
  });

  it('refuses counts a number cannot hold exactly (2^53 + 1, 1e400 parsed as Infinity)', () => {
    const r = valid();
    r.tables.events.row_count = 2 ** 53 + 1;
    r.tables.events.files[0]!.rows = Number.POSITIVE_INFINITY;
    const v = validateReceipt(r).filter((x) => x.message.startsWith('is larger than a count'));
    expect(v.map((x) => x.path)).toEqual(['$.tables.events.row_count', '$.tables.events.files[0].rows']);
  });

  it('refuses a key holding a control character (a newline split the Athena manifest)', () => {
    const r = valid();
    r.tables.events.files[1]!.key = 'p/2023-03-14T04:03/events/events_000000000001\n.parquet.gz';
    expect(validateReceipt(r)).toContainEqual({
      path: '$.tables.events.files[1].key',
      message: 'holds a control character',
    });
  });

  it('refuses names and keys longer than Postgres and S3 allow: a table or column name over 63, a key over 1,024 (noticed: the schema had no bounds)', () => {
    const r = valid() as unknown as { tables: Record<string, ReturnType<typeof valid>['tables']['events']> };
    const events = r.tables.events!;
    events.columns![0]!.name = 'c'.repeat(64);
    events.files[1]!.key = `p/2023-03-14T04:03/events/${'k'.repeat(1000)}.parquet.gz`;
    r.tables['t'.repeat(64)] = { folder: '2023-03-14T04:03/t', total_file_count: 1 } as never;
    const v = validateReceipt(r);
    expect(v).toContainEqual({
      path: '$.tables.events.columns[0].name',
      message: 'must NOT have more than 63 characters',
    });
    expect(v).toContainEqual({
      path: '$.tables.events.files[1].key',
      message: 'must NOT have more than 1024 characters',
    });
    expect(v.some((x) => x.path === '$.tables' && x.message.includes('property name must be valid'))).toBe(true);
    // At the bounds: valid.
    const ok = valid();
    ok.tables.events.columns![0]!.name = 'c'.repeat(63);
    expect(validateReceipt(ok)).toEqual([]);
  });

  it('refuses a key listed twice (its rows would load twice), even when the counts agree with the copy', () => {
    const r = valid();
    const first = r.tables.events.files[0]!;
    r.tables.events.files[1] = { ...first };
    r.tables.events.row_count = 20;
    r.tables.events.bytes = 200;
    expect(validateReceipt(r)).toEqual([
      {
        path: '$.tables.events.files[1].key',
        message: `lists "${first.key}" again (first at $.tables.events.files[0].key)`,
      },
    ]);
  });

  it('names tables with odd characters in bracket notation', () => {
    const r = valid() as unknown as { tables: Record<string, unknown> };
    r.tables['Mixed "Case"'] = { folder: 'x/y', total_file_count: 0 };
    expect(validateReceipt(r)).toEqual([
      { path: '$.tables["Mixed \\"Case\\""].total_file_count', message: 'must be >= 1' },
    ]);
  });

  it('checks the selection block of a tenant-mode or filtered receipt', () => {
    const selection = {
      tenant_column: 'org_id',
      tenant_column_exported: false,
      global_tables: ['countries'],
      include_tables: [],
      exclude_tables: ['internal_*'],
      exclude_columns: ['contacts.email'],
      left_out: [{ table: 'audit_log', reason: 'no tenant column "org_id" and not listed in --global-tables' }],
    };
    expect(validateReceipt({ ...valid(), selection })).toEqual([]);
    expect(
      validateReceipt({ ...valid(), selection: { ...selection, tenant_column: '', left_out: [{ table: 'x' }] } }),
    ).toEqual([
      { path: '$.selection.tenant_column', message: 'must NOT have fewer than 1 characters' },
      { path: '$.selection.left_out[0].reason', message: "must have required property 'reason' (reason)" },
    ]);
  });
});

describe('validateReceipt: the chain fields', () => {
  it('accepts a first and a later link; refuses a broken pairing or a half-present chain', () => {
    expect(validateReceipt({ ...valid(), sequence: 1, previous_receipt_sha256: null })).toEqual([]);
    expect(validateReceipt({ ...valid(), sequence: 7, previous_receipt_sha256: 'c'.repeat(64) })).toEqual([]);
    expect(validateReceipt({ ...valid(), sequence: 1, previous_receipt_sha256: 'c'.repeat(64) })).toEqual([
      { path: '$.previous_receipt_sha256', message: 'must be null for the first receipt (sequence 1)' },
    ]);
    expect(validateReceipt({ ...valid(), sequence: 2, previous_receipt_sha256: null })[0]?.path).toBe(
      '$.previous_receipt_sha256',
    );
    expect(validateReceipt({ ...valid(), sequence: 2 }).length).toBeGreaterThan(0);
    expect(validateReceipt({ ...valid(), sequence: 0, previous_receipt_sha256: null }).length).toBeGreaterThan(0);
    expect(validateReceipt({ ...valid(), sequence: 3, previous_receipt_sha256: 'XYZ' }).length).toBeGreaterThan(0);
  });
});

describe('validateReceipt: snapshot and consistency', () => {
  const snapshot = { id: '1841:1845:1842,1843', at: '2023-03-14T04:03:07.971220Z' };
  it('accepts a consistent delivery, and a mixed one that lists every table’s snapshots', () => {
    expect(validateReceipt({ ...valid(), snapshot, consistency: 'delivery' })).toEqual([]);
    const mixed = valid();
    Object.assign(mixed.tables.events, { snapshots: [{ ...snapshot, parts: [0] }] });
    expect(validateReceipt({ ...mixed, snapshot, consistency: 'table' })).toEqual([]);
  });

  it('refuses a mixed delivery without per-table snapshots, a bad snapshot id, an unknown consistency', () => {
    expect(validateReceipt({ ...valid(), snapshot, consistency: 'table' })).toEqual([
      { path: '$.tables.events.snapshots', message: "is required when consistency is 'table'" },
    ]);
    expect(validateReceipt({ ...valid(), snapshot: { ...snapshot, id: 'now' }, consistency: 'delivery' })).toHaveLength(
      1,
    );
    expect(validateReceipt({ ...valid(), snapshot, consistency: 'mostly' })[0]?.path).toBe('$.consistency');
  });
});

describe('validateReceipt: every key under the receipt’s own prefix and folder (issue 22)', () => {
  type Files = { key: string }[];
  const withKeys = (...keys: string[]) => {
    const r = valid();
    (r.tables.events.files as Files).forEach((f, i) => {
      f.key = keys[i] ?? f.key;
    });
    return r;
  };
  it('accepts keys directly in the table folder under one prefix (and no prefix at all)', () => {
    expect(validateReceipt(valid(), { prefix: 'p' })).toEqual([]);
    expect(validateReceipt(valid(), { prefix: '/p/' })).toEqual([]);
    const bare = withKeys(
      '2023-03-14T04:03/events/events_000000000000.parquet.gz',
      '2023-03-14T04:03/events/events_000000000001.parquet.gz',
    );
    expect(validateReceipt(bare)).toEqual([]);
    expect(validateReceipt(bare, { prefix: '' })).toEqual([]);
  });

  it('refuses a key that merely contains the folder, one in a subfolder, one under another prefix', () => {
    const contains = withKeys('p/x2023-03-14T04:03/events/events_000000000000.parquet.gz');
    expect(validateReceipt(contains).map((v) => v.path)).toContain('$.tables.events.files[0].key');
    const nested = withKeys('p/2023-03-14T04:03/events/deeper/events_000000000000.parquet.gz');
    expect(validateReceipt(nested).map((v) => v.path)).toContain('$.tables.events.files[0].key');
    const dotdot = withKeys('p/../2023-03-14T04:03/events/events_000000000000.parquet.gz');
    expect(validateReceipt(dotdot).map((v) => v.path)).toContain('$.tables.events.files[0].key');
    // Two prefixes in one receipt: one of them is not the receipt's.
    const split = withKeys('q/2023-03-14T04:03/events/events_000000000000.parquet.gz');
    expect(validateReceipt(split).map((v) => v.path)).toContain('$.tables.events.files[1].key');
    // The receipt sits under `p`, the keys under `other`.
    const elsewhere = withKeys(
      'other/2023-03-14T04:03/events/events_000000000000.parquet.gz',
      'other/2023-03-14T04:03/events/events_000000000001.parquet.gz',
    );
    expect(validateReceipt(elsewhere, { prefix: 'p' })).toEqual([
      { path: '$.tables.events.files[0].key', message: 'is not under the receipt’s prefix "p"' },
      { path: '$.tables.events.files[1].key', message: 'is not under the receipt’s prefix "p"' },
    ]);
  });

  it('checks the change files of a table entry that lists no files of its own (the model format)', () => {
    const r = {
      ...valid(),
      tables: {
        events: {
          folder: '2023-03-14T04:03/events',
          total_file_count: 1,
          changes: {
            available: true,
            since_run_id: '20230313T040307Z-3f9a1c',
            full_refresh: false,
            key_columns: ['id'],
            inserted: 1,
            updated: 0,
            deleted: 0,
            folder: '2023-03-14T04:03/events/_changes',
            files: [{ key: 'other-customer/secret/payroll.parquet', rows: 1, bytes: 900, sha256: 'c'.repeat(64) }],
          },
        },
      },
    };
    expect(validateReceipt(r, { prefix: 'p' }).map((v) => v.path)).toContain('$.tables.events.changes.files[0].key');
  });
});

describe('parseReceiptJson', () => {
  it('parses a receipt, and refuses one nested too deep before JSON.parse sees it (a 40 MB one took 27.6 s and 2.2 GB)', () => {
    expect(parseReceiptJson(JSON.stringify(valid()))).toEqual(valid());
    // Brackets inside strings are text, not depth.
    expect(parseReceiptJson(JSON.stringify({ note: '[[[[['.repeat(100), q: 'a\\"[' }))).toMatchObject({ q: 'a\\"[' });
    const deep = `{"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect(() => parseReceiptJson(deep)).toThrow(/nested deeper than a receipt may be \(32 levels\)/);
  });

  it('refuses a receipt larger than 64 MiB', () => {
    const big = `{"pad":"${'x'.repeat(MAX_RECEIPT_BYTES)}"}`;
    expect(() => parseReceiptJson(big)).toThrow(/larger than a receipt may be/);
  });
});
