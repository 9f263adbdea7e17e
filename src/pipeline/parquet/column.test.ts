import { describe, expect, it } from 'vitest';
import { ColumnBuilder } from './column.js';
import { type CompressionPool, PageBuffers } from './compression.js';
import type { ColumnSpec } from './schema.js';

/** Pages come back uncompressed (codec none): only the chunk's statistics matter here. */
const pool = {
  buffers: new PageBuffers(),
  compress: (raw: Buffer) => Promise.resolve(raw),
} as unknown as CompressionPool;

describe('ColumnBuilder statistics', () => {
  const cases: [string, ColumnSpec, (c: ColumnBuilder, i: number) => void][] = [
    [
      'string',
      { name: 's', nullable: true, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
      (c, i) => {
        const b = Buffer.from(`v${i}`);
        c.bytes(b, 0, b.length);
      },
    ],
    ['int32', { name: 'i', nullable: true, leaf: { physical: 'INT32' } }, (c, i) => c.int32(i)],
    ['int64', { name: 'l', nullable: true, leaf: { physical: 'INT64' } }, (c, i) => c.int64Parts(0, i)],
    ['double', { name: 'd', nullable: true, leaf: { physical: 'DOUBLE' } }, (c, i) => c.double(i / 3)],
  ];
  for (const [name, spec, add] of cases) {
    it(`${name}: the bounds a row group keeps for the footer hold memory of their own size`, () => {
      // Prepare
      const col = new ColumnBuilder(spec, { pageSize: 1 << 20, compression: 'none', pool });
      for (let i = 0; i < 100; i++) add(col, i);

      // Act
      const { stats } = col.takeChunk();

      // Assert: not a few bytes of Node's 64 KiB buffer pool, which they would keep alive until the footer.
      expect(stats.min).toBeDefined();
      expect(stats.min!.buffer.byteLength).toBe(stats.min!.length);
      expect(stats.max!.buffer.byteLength).toBe(stats.max!.length);
    });
  }
});
