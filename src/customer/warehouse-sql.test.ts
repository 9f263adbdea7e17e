import { describe, expect, it } from 'vitest';
import type { Receipt } from '../contracts/receipt.js';
import { caseFolded, columnType, loadManifests, warehouseSql } from './warehouse-sql.js';

const receipt: Receipt = {
  timestamp: '2023-03-14T04:03:07.963883Z',
  run_id: '20230314T040307Z-3f9a1c',
  format: 'parquet',
  compression: 'gzip',
  layout: 'dreamdata',
  tables: {
    events: {
      folder: '2023-03-14T04:03/events',
      total_file_count: 1,
      row_count: 2,
      bytes: 100,
      files: [
        {
          key: 'dd/2023-03-14T04:03/events/events_000000000000.parquet.gz',
          rows: 2,
          bytes: 100,
          sha256: 'a'.repeat(64),
        },
      ],
      columns: [
        { name: 'id', postgres_type: 'bigint', parquet_type: 'INT64', nullable: false, text_form: false },
        {
          name: 'revenue',
          postgres_type: 'numeric(18,4)',
          parquet_type: 'INT64 DECIMAL(18,4)',
          nullable: true,
          text_form: false,
        },
        {
          name: 'at',
          postgres_type: 'timestamp with time zone',
          parquet_type: 'INT64 TIMESTAMP(MICROS,UTC)',
          nullable: false,
          text_form: false,
        },
        {
          name: 'tags',
          postgres_type: 'text[]',
          parquet_type: 'LIST<BYTE_ARRAY STRING>',
          nullable: true,
          text_form: false,
        },
        { name: 'props', postgres_type: 'jsonb', parquet_type: 'BYTE_ARRAY JSON', nullable: true, text_form: false },
      ],
    },
  },
};

/** The receipt with `n` shards in the events folder (and a change set in its _changes/ subfolder). */
function manyFiles(n: number): Receipt {
  const t = receipt.tables.events!;
  const files = Array.from({ length: n }, (_, i) => ({
    key: `dd/2023-03-14T04:03/events/events_${String(i).padStart(12, '0')}.parquet.gz`,
    rows: 1,
    bytes: 1000 + i,
    sha256: 'b'.repeat(64),
  }));
  return {
    ...receipt,
    tables: {
      events: {
        ...t,
        files,
        total_file_count: n,
        changes: {
          available: true,
          since_run_id: 'x',
          full_refresh: false,
          key_columns: ['id'],
          inserted: 1,
          updated: 0,
          deleted: 0,
          folder: '2023-03-14T04:03/events/_changes',
          files: [
            {
              key: 'dd/2023-03-14T04:03/events/_changes/events_000000000000.parquet.gz',
              rows: 1,
              bytes: 9,
              sha256: 'c'.repeat(64),
            },
          ],
        },
      },
    },
  };
}

describe('warehouse SQL from a receipt', () => {
  it('Redshift: table with mapped types, then COPY … FORMAT AS PARQUET from a MANIFEST of exactly the receipt’s files', () => {
    const sql = warehouseSql(receipt, 'redshift', {
      bucket: 'acme',
      prefix: 'dd',
      redshiftIamRole: 'arn:aws:iam::1:role/rs',
      manifestUrl: 's3://acme-etl/manifests',
    });
    expect(sql).toContain('"id" bigint NOT NULL');
    expect(sql).toContain('"revenue" DECIMAL(18,4)');
    expect(sql).toContain('"at" TIMESTAMPTZ NOT NULL');
    expect(sql).toContain('"props" SUPER');
    const [m] = loadManifests(receipt, 'redshift', { bucket: 'acme', prefix: 'dd' });
    expect(sql).toContain(
      `COPY "events" FROM 's3://acme-etl/manifests/${m!.name}'\n  IAM_ROLE 'arn:aws:iam::1:role/rs'\n  FORMAT AS PARQUET SERIALIZETOJSON\n  MANIFEST;`,
    );
    // Never the folder prefix (it would pick up _changes/ files and stale shards).
    expect(sql).not.toContain("FROM 's3://acme/dd/2023-03-14T04:03/events/'");
    expect(JSON.parse(m!.body)).toEqual({
      entries: [
        {
          url: 's3://acme/dd/2023-03-14T04:03/events/events_000000000000.parquet.gz',
          mandatory: true,
          meta: { content_length: 100 },
        },
      ],
    });
  });

  it('Snowflake: COPY INTO from the stage folder with FILES = exactly the receipt’s files, 1,000 per statement', () => {
    const sql = warehouseSql(receipt, 'snowflake', { bucket: 'acme', prefix: 'dd', snowflakeStage: 'dropship_stage' });
    expect(sql).toContain('"revenue" NUMBER(18,4)');
    expect(sql).toContain('"at" TIMESTAMP_TZ NOT NULL');
    expect(sql).toContain(
      "COPY INTO \"events\" FROM '@dropship_stage/2023-03-14T04:03/events/'\n  FILES = ('events_000000000000.parquet.gz')",
    );
    expect(sql).toContain('MATCH_BY_COLUMN_NAME = CASE_SENSITIVE');
    const many = manyFiles(2500);
    const big = warehouseSql(many, 'snowflake', { bucket: 'acme', prefix: 'dd', snowflakeStage: 's' });
    const statements = big.split('COPY INTO').slice(1);
    expect(statements).toHaveLength(3);
    const listed = statements.flatMap((st) => [...st.matchAll(/'([^']+\.parquet\.gz)'/g)].map((x) => x[1]));
    expect(listed).toEqual(many.tables.events!.files.map((f) => f.key.split('/').pop()));
    expect(big.match(/TRUNCATE/g)).toHaveLength(1);
  });

  it('Athena/Glue: an external table over a symlink manifest of exactly the receipt’s files, arrays as array<…>', () => {
    const sql = warehouseSql(receipt, 'athena', { bucket: 'acme', prefix: '', manifestUrl: 's3://acme-etl/m/' });
    expect(sql).toContain('`tags` array<string>');
    expect(sql).toContain('`id` bigint');
    const [m] = loadManifests(receipt, 'athena', { bucket: 'acme', prefix: '' });
    expect(sql).toContain(
      `STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'\nOUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\nLOCATION 's3://acme-etl/m/${m!.name.replace(/\/manifest$/, '')}/';`,
    );
    expect(sql).not.toContain("LOCATION 's3://acme/");
    expect(m!.body).toBe('s3://acme/dd/2023-03-14T04:03/events/events_000000000000.parquet.gz\n');
    expect(
      columnType(
        { name: 'd', postgres_type: 'date', parquet_type: 'INT32 DATE', nullable: true, text_form: false },
        'athena',
      ),
    ).toBe('date');
  });

  it('every dialect loads exactly the receipt’s files: not a _changes/ file, not a stale shard in the folder', () => {
    const many = manyFiles(3);
    for (const d of ['redshift', 'athena'] as const) {
      const ms = loadManifests(many, d, { bucket: 'acme', prefix: 'dd' });
      expect(ms).toHaveLength(1);
      const urls =
        d === 'redshift'
          ? JSON.parse(ms[0]!.body).entries.map((e: { url: string }) => e.url)
          : ms[0]!.body.trim().split('\n');
      expect(urls).toEqual(many.tables.events!.files.map((f) => `s3://acme/${f.key}`));
    }
    const snow = warehouseSql(many, 'snowflake', { bucket: 'acme', prefix: 'dd', snowflakeStage: 's' });
    expect([...snow.matchAll(/'([^']+\.parquet\.gz)'/g)].map((x) => x[1])).toEqual(
      many.tables.events!.files.map((f) => f.key.split('/').pop()),
    );
    expect(snow).not.toContain('_changes');
  });

  it('a receipt with a selection block (tenant mode) gives the same SQL', () => {
    const withSelection: Receipt = {
      ...receipt,
      selection: {
        tenant_column: 'org_id',
        tenant_column_exported: false,
        global_tables: [],
        include_tables: [],
        exclude_tables: [],
        exclude_columns: ['events.secret'],
        left_out: [{ table: 'tenants', reason: 'no tenant column' }],
      },
    };
    for (const dialect of ['redshift', 'snowflake', 'athena'] as const) {
      const opts = {
        bucket: 'acme',
        prefix: 'dd',
        redshiftIamRole: 'arn:aws:iam::1:role/r',
        snowflakeStage: 's',
        manifestUrl: 's3://m/x',
      };
      expect(warehouseSql(withSelection, dialect, opts)).toBe(warehouseSql(receipt, dialect, opts));
    }
  });

  it('names a case-folding warehouse would take for one are found (Redshift, Athena), not for Snowflake', () => {
    const t = receipt.tables.events!;
    const folded = {
      ...receipt,
      tables: {
        Users: t,
        users: { ...t, columns: [...t.columns!, { ...t.columns![0]!, name: t.columns![0]!.name.toUpperCase() }] },
      },
    } as Receipt;
    const col = t.columns![0]!.name;
    const expected = [
      'tables "Users" and "users" differ only in case',
      `table "users": columns ${JSON.stringify(col)} and ${JSON.stringify(col.toUpperCase())} differ only in case`,
    ];
    expect(caseFolded(folded, 'redshift')).toEqual(expected);
    expect(caseFolded(folded, 'athena')).toEqual(expected);
    expect(caseFolded(folded, 'snowflake')).toEqual([]);
    expect(caseFolded(receipt, 'redshift')).toEqual([]);
  });
});
