import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InspectError, openDelivery, sampleRows } from './inspect.js';

/**
 * `dropship inspect` on a local copy of a delivery (red team, customer tools): it printed a replaced file's rows as
 * the delivery's, and a file that is not Parquet crashed it with a stack trace. Real Parquet written by DuckDB.
 */
const dir = mkdtempSync(join(tmpdir(), 'dropship-inspect-test-'));
const folder = '2026-12-06T09:00/t';
const key = `dropship/${folder}/t_000000000000.parquet.gz`;
let good: Buffer;
let other: Buffer;

async function parquet(sql: string, path: string): Promise<Buffer> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`copy (${sql}) to '${path}' (format parquet)`);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  return readFileSync(path);
}

/** A delivery folder whose receipt lists `listed` and whose table folder holds `held`. */
function delivery(name: string, listed: Buffer, held: Buffer): string {
  const root = join(dir, name);
  mkdirSync(join(root, folder), { recursive: true });
  writeFileSync(join(root, folder, 't_000000000000.parquet.gz'), held);
  const receipt = {
    timestamp: '2026-12-06T09:00:00.000000Z',
    run_id: '20261206T090000Z-abcdef',
    format: 'parquet',
    compression: 'none',
    tables: {
      t: {
        folder,
        total_file_count: 1,
        row_count: 2,
        bytes: listed.length,
        files: [{ key, rows: 2, bytes: listed.length, sha256: createHash('sha256').update(listed).digest('hex') }],
        columns: [{ name: 'id', postgres_type: 'integer', parquet_type: 'INT32', nullable: true }],
      },
    },
  };
  writeFileSync(join(root, 'receipt.json'), JSON.stringify(receipt));
  return root;
}

beforeAll(async () => {
  good = await parquet('select * from (values (1), (2)) v(id)', join(dir, 'good.parquet'));
  other = await parquet(`select * from (values ('company1.example'), ('x')) v(id)`, join(dir, 'other.parquet'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inspect checks what it reads against the receipt', () => {
  it('samples a file that is the one the receipt lists', async () => {
    const d = await openDelivery(delivery('good', good, good));
    expect((await sampleRows(d, 't', 2)).rows).toEqual([['1'], ['2']]);
  });

  it('refuses a replaced file (it printed another table’s rows as this one’s)', async () => {
    const d = await openDelivery(delivery('replaced', good, other));
    const err = await sampleRows(d, 't', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InspectError);
    expect((err as Error).message).toMatch(/is not the file the receipt lists/);
  });

  it('a listed file that is not Parquet is a clear error, not a crash', async () => {
    const junk = Buffer.from('this is not parquet at all');
    const d = await openDelivery(delivery('junk', junk, junk));
    const err = await sampleRows(d, 't', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InspectError);
    expect((err as Error).message).toMatch(/table t: its files cannot be read as Parquet/);
  });
});
