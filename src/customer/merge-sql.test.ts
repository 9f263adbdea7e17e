import { describe, expect, it } from 'vitest';
import type { Receipt } from '../contracts/receipt.js';
import { changeManifests, changesSql } from './merge-sql.js';

const columns = [
  { name: 'region', postgres_type: 'text', parquet_type: 'BYTE_ARRAY STRING', nullable: false, text_form: false },
  { name: 'id', postgres_type: 'integer', parquet_type: 'INT32', nullable: false, text_form: false },
  {
    name: 'amount',
    postgres_type: 'numeric(12,2)',
    parquet_type: 'INT64 DECIMAL(12,2)',
    nullable: true,
    text_form: false,
  },
];
const file = {
  key: 'p/2026-01-01T04:00/items/_changes/_changes_000000000000.parquet.gz',
  rows: 3,
  bytes: 900,
  sha256: 'a'.repeat(64),
};
const receipt = {
  timestamp: '2026-01-01T04:00:00.000000Z',
  run_id: 'R2',
  format: 'parquet',
  compression: 'gzip',
  layout: 'dreamdata',
  tables: {
    items: {
      folder: '2026-01-01T04:00/items',
      total_file_count: 1,
      files: [],
      columns,
      changes: {
        available: true,
        since_run_id: 'R1',
        full_refresh: false,
        key_columns: ['region', 'id'],
        inserted: 1,
        updated: 1,
        deleted: 1,
        folder: '2026-01-01T04:00/items/_changes',
        files: [file],
      },
    },
    log: {
      folder: 'x/log',
      total_file_count: 1,
      files: [],
      columns,
      changes: { available: false, reason: 'no primary key' },
    },
    fresh: {
      folder: 'x/fresh',
      total_file_count: 1,
      files: [],
      columns,
      changes: {
        available: true,
        since_run_id: null,
        full_refresh: true,
        full_refresh_reason: 'first delivery',
        key_columns: ['id'],
        inserted: 5,
        updated: 0,
        deleted: 0,
        folder: 'x/fresh/_changes',
        files: [],
      },
    },
  },
} as unknown as Receipt;

describe('change-set MERGE SQL', () => {
  it('Snowflake: the listed change files (FILES = …) into a temporary table, DELETE the deleted keys, MERGE the rest', () => {
    const sql = changesSql(receipt, 'snowflake', { bucket: 'b', prefix: 'p', snowflakeStage: 'acme_stage' });
    expect(sql).toContain(`CREATE TEMPORARY TABLE "items_dropship_changes" (
  "region" VARCHAR,
  "id" NUMBER(10,0),
  "amount" NUMBER(12,2),
  "_op" VARCHAR
);
COPY INTO "items_dropship_changes" FROM '@acme_stage/2026-01-01T04:00/items/_changes/'
  FILES = ('_changes_000000000000.parquet.gz')
  FILE_FORMAT = (TYPE = PARQUET)
  MATCH_BY_COLUMN_NAME = CASE_SENSITIVE;
DELETE FROM "items" t USING "items_dropship_changes" s WHERE t."region" = s."region" AND t."id" = s."id" AND s."_op" = 'delete';
DELETE FROM "items_dropship_changes" WHERE "_op" = 'delete';
MERGE INTO "items" t
USING "items_dropship_changes" s
ON t."region" = s."region" AND t."id" = s."id"
WHEN MATCHED THEN UPDATE SET "amount" = s."amount"
WHEN NOT MATCHED THEN INSERT ("region", "id", "amount") VALUES (s."region", s."id", s."amount");
DROP TABLE "items_dropship_changes";`);
    // Never the change folder as a prefix (a stale change file there would be applied too).
    expect(sql).not.toMatch(/FROM '@acme_stage\/[^\n]*\/' \(/);
    expect(sql).toContain('-- log: no change set (no primary key): reload it from the snapshot');
    expect(sql).toContain('-- fresh: full refresh (first delivery): reload it from the snapshot');
    expect(sql).toContain('since run R1');
  });

  it('Redshift: COPY into a temp table, DELETE the deleted keys, MERGE the rest', () => {
    const target = {
      bucket: 'b',
      prefix: 'p',
      redshiftIamRole: 'arn:aws:iam::1:role/r',
      manifestUrl: 's3://etl/m',
    };
    const sql = changesSql(receipt, 'redshift', target);
    const manifests = changeManifests(receipt, target);
    expect(manifests).toHaveLength(1);
    expect(JSON.parse(manifests[0]!.body)).toEqual({
      entries: [{ url: `s3://b/${file.key}`, mandatory: true, meta: { content_length: 900 } }],
    });
    expect(sql).toContain(`CREATE TEMP TABLE "items_dropship_changes" (
  "region" VARCHAR(65535),
  "id" INTEGER,
  "amount" DECIMAL(12,2),
  "_op" VARCHAR(6)
);
COPY "items_dropship_changes" FROM 's3://etl/m/${manifests[0]!.name}'
  IAM_ROLE 'arn:aws:iam::1:role/r'
  FORMAT AS PARQUET SERIALIZETOJSON
  MANIFEST;
DELETE FROM "items" USING "items_dropship_changes" s WHERE "items"."region" = s."region" AND "items"."id" = s."id" AND s."_op" = 'delete';
DELETE FROM "items_dropship_changes" WHERE "_op" = 'delete';
MERGE INTO "items" USING "items_dropship_changes" s ON "items"."region" = s."region" AND "items"."id" = s."id"
WHEN MATCHED THEN UPDATE SET "amount" = s."amount"
WHEN NOT MATCHED THEN INSERT ("region", "id", "amount") VALUES (s."region", s."id", s."amount");
DROP TABLE "items_dropship_changes";`);
  });

  it('a receipt cannot inject SQL: names and free text in comments are escaped, stage folders are one quoted literal', () => {
    const evil = {
      ...receipt,
      tables: {
        'evil\nDROP TABLE customers; --': {
          ...receipt.tables.log!,
          changes: { available: false, reason: 'x\r\nDELETE FROM orders; --\u2028y' },
        },
        items: {
          ...receipt.tables.items!,
          changes: {
            ...(receipt.tables.items!.changes as object),
            since_run_id: 'R1\nDROP TABLE a;',
            folder: "2026/x'; DROP TABLE customers; --",
          },
        },
      },
    } as unknown as Receipt;
    const sql = changesSql(evil, 'snowflake', { bucket: 'b', prefix: 'p', snowflakeStage: 'st' });
    // Every line that is not a comment is dropship's own statement text: no injected one starts a line.
    for (const line of sql.split(/\r\n|\r|\n|\u2028|\u2029/))
      expect(line, line).not.toMatch(/^\s*(DROP TABLE (customers|a)|DELETE FROM orders)/);
    expect(sql).toContain(
      '-- evil\\u000aDROP TABLE customers; --: no change set (x\\u000d\\u000aDELETE FROM orders; --\\u2028y)',
    );
    expect(sql).toContain("FROM '@st/2026/x''; DROP TABLE customers; --/'");
  });
});
