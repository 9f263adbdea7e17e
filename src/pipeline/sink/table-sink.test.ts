import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalDestination } from '../../destinations/local/adapter.js';
import type { ColumnSpec } from '../parquet/schema.js';
import { rowGroupBytes, TableSink, WIDE_TABLE_COLUMNS } from './table-sink.js';

const MiB = 1024 * 1024;
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'dropship-sink-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Rows a sink of `columns` INT64 columns takes before its first row group is full. */
async function rowsInFirstGroup(columns: number): Promise<number> {
  const specs: ColumnSpec[] = Array.from({ length: columns }, (_, i) => ({
    name: `c${i}`,
    nullable: false,
    leaf: { physical: 'INT64' as const },
  }));
  const sink = await TableSink.open({
    port: new LocalDestination({ kind: 'local', root, prefix: 'p' }),
    dest: { prefix: 'p', layout: 'dreamdata', compression: 'none' },
    folder: '2026-01-01T00:00',
    objectName: 't',
    specs,
    settings: {
      DROPSHIP_SHARD_TARGET_BYTES: 64 * MiB,
      DROPSHIP_ROW_GROUP_ROWS: 1_000_000,
      DROPSHIP_ROW_GROUP_BYTES: 2 * MiB,
      DROPSHIP_PAGE_BYTES: MiB,
      DROPSHIP_GZIP_LEVEL: 6,
      DROPSHIP_ZSTD_LEVEL: 3,
      DROPSHIP_PART_SIZE_BYTES: 5 * MiB,
      DROPSHIP_UPLOAD_QUEUE_SIZE: 2,
    },
  });
  let rows = 0;
  try {
    while (!sink.full) {
      for (const c of sink.columns) c.int64(BigInt(rows));
      sink.endRow();
      rows++;
    }
  } finally {
    await sink.fail(new Error('test over'));
  }
  return rows;
}

describe('row groups of wide tables', () => {
  it(`halves the row-group bytes above ${WIDE_TABLE_COLUMNS} columns`, async () => {
    // Act: 8 bytes a value; the same configured 2 MiB for a table at the limit and one column over it
    const narrow = await rowsInFirstGroup(WIDE_TABLE_COLUMNS);
    const wide = await rowsInFirstGroup(WIDE_TABLE_COLUMNS + 1);

    // Assess: the narrow table's group holds about twice the rows of the wide one's, which stops near 1 MiB
    // (the byte bound is checked every 256 rows)
    expect(narrow * 8 * WIDE_TABLE_COLUMNS).toBeGreaterThan(1.5 * MiB);
    expect(wide * 8 * (WIDE_TABLE_COLUMNS + 1)).toBeLessThan(1.5 * MiB);
    expect(narrow).toBeGreaterThanOrEqual(1.5 * wide);
    expect(rowGroupBytes(16 * MiB, 1000)).toBe(8 * MiB);
    expect(rowGroupBytes(16 * MiB, 9)).toBe(16 * MiB);
  });
});
