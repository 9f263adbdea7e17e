import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { receiptPrefix } from '../receipt/validate.js';
import { LoadError, loadReceipt, unloadable } from './loader.js';

/** A receipt published at `p/receipt.json` whose file lies in another customer's prefix `other/`. */
const elsewhere = {
  timestamp: '2023-03-14T04:03:07.963883Z',
  tables: {
    events: {
      folder: '2023-03-14T04:03/events',
      total_file_count: 1,
      row_count: 10,
      bytes: 100,
      files: [
        {
          key: 'other/2023-03-14T04:03/events/events_000000000000.parquet.gz',
          rows: 10,
          bytes: 100,
          sha256: 'a'.repeat(64),
        },
      ],
      columns: [{ name: 'id', postgres_type: 'bigint', parquet_type: 'INT64', nullable: false, text_form: false }],
    },
  },
  run_id: '20230314T040307Z-3f9a1c',
  format: 'parquet',
  compression: 'gzip',
  layout: 'dreamdata',
};

describe('loadReceipt (unit, a fake S3 that records what is asked of it)', () => {
  it('refuses a receipt listing a key outside its own prefix, and fetches nothing but the receipt', async () => {
    // Prepare
    const asked: string[] = [];
    const s3 = {
      send: async (cmd: { input: { Key: string } }) => {
        asked.push(cmd.input.Key);
        return { Body: { transformToString: async () => JSON.stringify(elsewhere) } };
      },
    } as unknown as S3Client;
    // Act
    const err = await loadReceipt({ s3, receiptUri: 's3://b/p/receipt.json', into: 'duckdb::memory:' }).catch(
      (e: unknown) => e,
    );
    // Assess
    expect(err).toBeInstanceOf(LoadError);
    expect(String((err as Error).message)).toMatch(/is not a valid receipt: .*files\[0\]\.key/);
    expect(asked).toEqual(['p/receipt.json']);
  });

  it("a receipt's prefix is its key's folder", () => {
    expect(receiptPrefix('dropship/receipt.json')).toBe('dropship');
    expect(receiptPrefix('a/b/receipt.json')).toBe('a/b');
    expect(receiptPrefix('receipt.json')).toBe('');
  });

  it('refuses, before loading anything, names the target would confuse: case, 63 bytes, its own tables', () => {
    const col = (name: string) => ({
      name,
      postgres_type: 'int',
      parquet_type: 'INT32',
      nullable: true,
      text_form: false,
    });
    const table = (...columns: string[]) => ({
      folder: 'f',
      total_file_count: 0,
      files: [],
      columns: columns.map(col),
    });
    const receipt = {
      ...elsewhere,
      tables: {
        Users: table('id'),
        users: table('Id', 'id'),
        dropship_loads: table('x'),
        [`${'a'.repeat(63)}_delivered`]: table('y'),
      },
    } as never;
    expect(unloadable(receipt, 'duckdb')).toEqual([
      'tables "Users" and "users" differ only in case: DuckDB holds them as one',
      'table "users": columns "Id" and "id" differ only in case (DuckDB, which reads the files, cannot tell them apart)',
      'table "dropship_loads": the name of dropship\'s own table in the target',
    ]);
    expect(unloadable(receipt, 'postgres')).toEqual([
      'table "users": columns "Id" and "id" differ only in case (DuckDB, which reads the files, cannot tell them apart)',
      'table "dropship_loads": the name of dropship\'s own table in the target',
      `table "${'a'.repeat(63)}_delivered": longer than Postgres' 63 bytes (it would be cut, and meet another name)`,
    ]);
    expect(unloadable(elsewhere as never, 'postgres')).toEqual([]);
  });
});
