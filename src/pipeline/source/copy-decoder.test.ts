import { describe, expect, it } from 'vitest';
import { ColumnBuilder } from '../parquet/column.js';
import type { ColumnSpec } from '../parquet/schema.js';
import { BinaryCopyDecoder } from './copy-decoder.js';
import { DecodeKind } from './typemap.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** A binary COPY stream (header, tuples of (int4, bytea), trailer), as Postgres sends it. */
function copyStream(rows: { id: number; value: Buffer }[]): Buffer {
  const header = Buffer.alloc(19);
  SIGNATURE.copy(header, 0);
  const parts: Buffer[] = [header];
  for (const r of rows) {
    const t = Buffer.alloc(2 + 8 + 4);
    t.writeInt16BE(2, 0);
    t.writeInt32BE(4, 2);
    t.writeInt32BE(r.id, 6);
    t.writeInt32BE(r.value.length, 10);
    parts.push(t, r.value);
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  parts.push(trailer);
  return Buffer.concat(parts);
}

const specs: ColumnSpec[] = [
  { name: 'id', nullable: false, leaf: { physical: 'INT32' } },
  { name: 'payload', nullable: true, leaf: { physical: 'BYTE_ARRAY' } },
];

function decode(stream: Buffer, chunkSize: number): { decoder: BinaryCopyDecoder; cols: ColumnBuilder[] } {
  const cols = specs.map((s) => new ColumnBuilder(s, { pageSize: 1 << 30 }));
  const decoder = new BinaryCopyDecoder(
    [
      { decode: () => {}, kind: DecodeKind.INT4, scale: 0 },
      { decode: () => {}, kind: DecodeKind.BYTES, scale: 0 },
    ],
    () => cols,
    { table: 't', columns: ['id', 'payload'] },
  );
  for (let i = 0; i < stream.length; i += chunkSize) {
    // Postgres' chunks are views into pg's socket buffers: copies, like the real ones.
    decoder.feed(Buffer.from(stream.subarray(i, i + chunkSize)));
    decoder.run(
      () => {},
      () => false,
    );
  }
  decoder.end();
  return { decoder, cols };
}

describe('binary COPY decoding is linear in value size (issue 22, finding 8)', () => {
  it('one 16 MiB value in 64 KiB chunks: each byte is copied a bounded number of times (not once per chunk)', () => {
    const value = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < value.length; i += 4096) value[i] = i % 251;
    const stream = copyStream([{ id: 7, value }]);
    const { decoder, cols } = decode(stream, 64 * 1024);
    expect(decoder.rows).toBe(1);
    // The value arrived whole: its length prefix, then its bytes (PLAIN BYTE_ARRAY).
    const out = cols[1]!.values;
    expect(out.buf.readUInt32LE(0)).toBe(value.length);
    expect(out.buf.subarray(4, 4 + value.length).equals(value)).toBe(true);
    // Concatenating the pending bytes on every chunk copies ~n²/(2·chunk) bytes: 2 GiB here.
    expect(decoder.copiedBytes).toBeLessThanOrEqual(3 * stream.length);
  });

  it('many small rows split across chunks anywhere: copies stay linear too', () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => ({ id: i, value: Buffer.alloc(i % 300, i % 256) }));
    const stream = copyStream(rows);
    for (const chunk of [3, 7, 1000, 65_536]) {
      const { decoder, cols } = decode(stream, chunk);
      expect(decoder.rows).toBe(rows.length);
      expect(cols[0]!.values.pos).toBe(4 * rows.length);
      expect(decoder.copiedBytes).toBeLessThanOrEqual(3 * stream.length);
    }
  });

  it('rows across chunk boundaries are joined alone: the chunks themselves are not copied, and every value arrives', () => {
    // Prepare: rows of 14–313 bytes; now and then one far larger than any before it (its join falls short)
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      id: i,
      value: Buffer.alloc(i % 997 === 500 ? 9_000 + i : i % 300, i % 256),
    }));
    const stream = copyStream(rows);
    for (const chunk of [1000, 4096, 65_536]) {
      // Act
      const { decoder, cols } = decode(stream, chunk);
      // Assess: every row, every value's bytes in order (PLAIN BYTE_ARRAY: length, bytes)
      expect(decoder.rows).toBe(rows.length);
      const out = cols[1]!.values.buf;
      let at = 0;
      for (const r of rows) {
        expect(out.readUInt32LE(at), `row ${r.id}`).toBe(r.value.length);
        expect(out.subarray(at + 4, at + 4 + r.value.length).equals(r.value), `row ${r.id}`).toBe(true);
        at += 4 + r.value.length;
      }
      // Joining a row's tail with the whole next chunk copied the stream once more (copiedBytes ≈ its length).
      expect(decoder.copiedBytes, `chunks of ${chunk}`).toBeLessThan(
        chunk === 65_536 ? 0.05 * stream.length : chunk === 4096 ? 0.5 * stream.length : 1.5 * stream.length,
      );
    }
  });

  /** A decoder of (id int4, payload bytea) with this row bound, its builders, and what one feed + run does. */
  function bounded(maxRowBytes?: number) {
    const cols = specs.map((s) => new ColumnBuilder(s, { pageSize: 1 << 30 }));
    const decoder = new BinaryCopyDecoder(
      [
        { decode: () => {}, kind: DecodeKind.INT4, scale: 0 },
        { decode: () => {}, kind: DecodeKind.BYTES, scale: 0 },
      ],
      () => cols,
      { table: 'docs', columns: ['id', 'payload'], ...(maxRowBytes !== undefined ? { maxRowBytes } : {}) },
    );
    let rows = 0;
    const feed = (bytes: Buffer) => {
      decoder.feed(bytes);
      decoder.run(
        () => rows++,
        () => false,
      );
      return rows;
    };
    return { feed };
  }

  it('a value too large for one Parquet page names the table and the column (refused from its length alone)', () => {
    // Only the row's header and the length of its second value: 1 GiB + 1 bytes announced.
    const head = copyStream([{ id: 1, value: Buffer.alloc(0) }]).subarray(0, 19 + 14);
    head.writeInt32BE(2 ** 30 + 1, 19 + 10);
    expect(() => bounded().feed(head)).toThrow(
      /^table docs, column payload: a value of 1,073,741,825 bytes is larger than the largest value dropship exports \(1,073,741,824 bytes/,
    );
  });

  it('a row longer than DROPSHIP_MAX_ROW_BYTES is refused before it is buffered, naming table, column and setting; one at the bound is read', () => {
    // A row is 2 + (4 + 4) + (4 + value) bytes: a 986-byte value makes a row of exactly 1,000.
    const atBound = copyStream([{ id: 1, value: Buffer.alloc(986, 1) }]);
    const ok = bounded(1000);
    for (let i = 0; i < atBound.length; i += 64) ok.feed(atBound.subarray(i, i + 64));
    // One byte more: refused as soon as the value's length is seen (only the first 40 bytes were fed).
    const over = copyStream([{ id: 1, value: Buffer.alloc(987, 1) }]);
    expect(() => bounded(1000).feed(over.subarray(0, 40))).toThrow(
      /^table docs, column payload: a row of at least 1,001 bytes \(this column's value: 987\) is larger than DROPSHIP_MAX_ROW_BYTES \(1,000\), the largest row dropship reads.*Raise DROPSHIP_MAX_ROW_BYTES together with the function's memory, or leave the column out \(--exclude-columns\)$/,
    );
    expect(ok.feed(Buffer.alloc(0))).toBe(1);
  });
});
