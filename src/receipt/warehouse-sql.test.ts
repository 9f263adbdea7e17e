import { describe, expect, it } from 'vitest';
import type { Receipt } from '../contracts/receipt.js';
import { columnType, warehouseSql } from './warehouse-sql.js';

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

describe('warehouse SQL from a receipt', () => {
  it('Redshift: table with mapped types, then COPY … FORMAT AS PARQUET from the run folder', () => {
    const sql = warehouseSql(receipt, 'redshift', {
      bucket: 'acme',
      prefix: 'dd',
      redshiftIamRole: 'arn:aws:iam::1:role/rs',
    });
    expect(sql).toContain('"id" bigint NOT NULL');
    expect(sql).toContain('"revenue" DECIMAL(18,4)');
    expect(sql).toContain('"at" TIMESTAMPTZ NOT NULL');
    expect(sql).toContain('"props" SUPER');
    expect(sql).toContain(
      `COPY "events" FROM 's3://acme/dd/2023-03-14T04:03/events/'\n  IAM_ROLE 'arn:aws:iam::1:role/rs'\n  FORMAT AS PARQUET`,
    );
  });

  it('Snowflake: COPY INTO from the stage folder, matching columns by name', () => {
    const sql = warehouseSql(receipt, 'snowflake', { bucket: 'acme', prefix: 'dd', snowflakeStage: 'dropship_stage' });
    expect(sql).toContain('"revenue" NUMBER(18,4)');
    expect(sql).toContain('"at" TIMESTAMP_TZ NOT NULL');
    expect(sql).toContain('COPY INTO "events" FROM @dropship_stage/2023-03-14T04:03/events/');
    expect(sql).toContain('MATCH_BY_COLUMN_NAME = CASE_SENSITIVE');
  });

  it('Athena/Glue: an external Parquet table on the run folder, arrays as array<…>', () => {
    const sql = warehouseSql(receipt, 'athena', { bucket: 'acme', prefix: '' });
    expect(sql).toContain('`tags` array<string>');
    expect(sql).toContain('`id` bigint');
    expect(sql).toContain("STORED AS PARQUET\nLOCATION 's3://acme/2023-03-14T04:03/events/';");
    expect(
      columnType(
        { name: 'd', postgres_type: 'date', parquet_type: 'INT32 DATE', nullable: true, text_form: false },
        'athena',
      ),
    ).toBe('date');
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
      const opts = { bucket: 'acme', prefix: 'dd', redshiftIamRole: 'arn:aws:iam::1:role/r', snowflakeStage: 's' };
      expect(warehouseSql(withSelection, dialect, opts)).toBe(warehouseSql(receipt, dialect, opts));
    }
  });
});
