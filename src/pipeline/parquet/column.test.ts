import fc from 'fast-check';
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

describe('ColumnBuilder values from big-endian bytes', () => {
  const spec = (physical: 'INT32' | 'INT64' | 'DOUBLE'): ColumnSpec => ({
    name: 'v',
    nullable: false,
    leaf: { physical },
  });
  /** The column's PLAIN values and its bounds after appending every value of `bytes` with `add`. */
  const run = (
    physical: 'INT32' | 'INT64' | 'DOUBLE',
    width: number,
    bytes: Buffer,
    add: (c: ColumnBuilder, at: number) => void,
  ) => {
    const col = new ColumnBuilder(spec(physical), { pageSize: 1 << 30, compression: 'none', pool });
    for (let at = 0; at < bytes.length; at += width) add(col, at);
    const values = Buffer.from(col.values.view());
    const { stats } = col.takeChunk();
    return { values, min: stats.min, max: stats.max };
  };

  it('int64BE, int64BEPlus, int32BE and doubleBE write what Buffer reads, with the same bounds', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { minLength: 1, maxLength: 40 }),
        (xs) => {
          // Prepare: the values as Postgres sends them (big-endian).
          const be = Buffer.alloc(8 * xs.length);
          xs.forEach((x, i) => {
            be.writeBigInt64BE(x, 8 * i);
          });

          // Act
          const got = run('INT64', 8, be, (c, at) => c.int64BE(be, at));

          // Assert
          const le = Buffer.alloc(8 * xs.length);
          xs.forEach((x, i) => {
            le.writeBigInt64LE(x, 8 * i);
          });
          expect(got.values.equals(le)).toBe(true);
          const sorted = [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          expect(got.min!.readBigInt64LE(0)).toBe(sorted[0]);
          expect(got.max!.readBigInt64LE(0)).toBe(sorted.at(-1));
        },
      ),
    );
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(2n ** 61n), max: 2n ** 61n }), { minLength: 1, maxLength: 40 }), (xs) => {
        // Prepare: a timestamp's shift to 1970 (the decoder's range check keeps the sum in range).
        const shift = 946_684_800_000_000n;
        const be = Buffer.alloc(8 * xs.length);
        xs.forEach((x, i) => {
          be.writeBigInt64BE(x, 8 * i);
        });

        // Act
        const got = run('INT64', 8, be, (c, at) =>
          c.int64BEPlus(be, at, Number(shift >> 32n), Number(shift & 0xffffffffn)),
        );

        // Assert
        xs.forEach((x, i) => {
          expect(got.values.readBigInt64LE(8 * i)).toBe(x + shift);
        });
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 40 }),
        (xs) => {
          const be = Buffer.alloc(4 * xs.length);
          xs.forEach((x, i) => {
            be.writeInt32BE(x, 4 * i);
          });
          const got = run('INT32', 4, be, (c, at) => c.int32BE(be, at));
          xs.forEach((x, i) => {
            expect(got.values.readInt32LE(4 * i)).toBe(x);
          });
          expect(got.min!.readInt32LE(0)).toBe(Math.min(...xs));
          expect(got.max!.readInt32LE(0)).toBe(Math.max(...xs));
        },
      ),
    );
    fc.assert(
      fc.property(fc.array(fc.double(), { minLength: 1, maxLength: 40 }), (xs) => {
        const be = Buffer.alloc(8 * xs.length);
        xs.forEach((x, i) => {
          be.writeDoubleBE(x, 8 * i);
        });
        const got = run('DOUBLE', 8, be, (c, at) => c.doubleBE(be, at));
        const le = Buffer.alloc(8 * xs.length);
        xs.forEach((x, i) => {
          le.writeDoubleLE(x, 8 * i);
        });
        expect(got.values.equals(le)).toBe(true); // NaN payloads and -0 bit for bit
        const real = xs.filter((x) => !Number.isNaN(x));
        // A chunk with a NaN has no bounds (DuckDB would prune NaN rows on them); none without a value either.
        if (real.length < xs.length || real.length === 0) {
          expect(got.min).toBeUndefined();
          expect(got.max).toBeUndefined();
        } else {
          // The spec's bounds: a zero lower bound as -0, a zero upper bound as +0.
          const lo = Math.min(...real);
          const hi = Math.max(...real);
          expect(Object.is(got.min!.readDoubleLE(0), lo === 0 ? -0 : lo)).toBe(true);
          expect(Object.is(got.max!.readDoubleLE(0), hi === 0 ? 0 : hi)).toBe(true);
        }
      }),
    );
  });
});

describe('ColumnBuilder dictionary', () => {
  it('adds each distinct value once while its lookup table grows', () => {
    // Prepare
    const col = new ColumnBuilder(
      { name: 'w', nullable: false, leaf: { physical: 'BYTE_ARRAY', logical: { type: 'STRING' } } },
      { pageSize: 1 << 30, compression: 'none', pool },
    );
    // Act: 700 distinct values, each seen about 8 times, in a scattered order.
    for (let r = 0; r < 6000; r++) {
      const b = Buffer.from(`v${(r * 7919) % 700}`);
      col.bytes(b, 0, b.length);
    }
    const chunk = col.takeChunk();
    // Assert
    expect(chunk.dictionary?.numValues).toBe(700);
  });
});
