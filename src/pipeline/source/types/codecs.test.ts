import { describe, expect, it } from 'vitest';
import { ColumnBuilder } from '../../parquet/column.js';
import type { CompressionPool } from '../../parquet/compression.js';
import { BinaryCopyDecoder } from '../copy-decoder.js';
import { type ColumnPlan, DecodeKind, planColumn } from '../typemap.js';
import { pgTypeInfo as pgType } from './entry.js';

/**
 * The COPY decoder decodes some wire formats inline (DecodeKind) and calls the codec's closure for
 * the rest; a codec with an inline kind keeps a complete closure too (list elements, edge values).
 * Both must write the same bytes: every type with an inline kind is decoded both ways here, over
 * ordinary and edge values, and the column buffers, levels and statistics compared.
 */
const TYPES = new Map(
  [
    pgType(16, 'bool'),
    pgType(17, 'bytea'),
    pgType(20, 'int8'),
    pgType(21, 'int2'),
    pgType(23, 'int4'),
    pgType(25, 'text'),
    pgType(114, 'json'),
    pgType(700, 'float4'),
    pgType(701, 'float8'),
    pgType(1007, '_int4', { typcategory: 'A', typelem: 23 }),
    pgType(1009, '_text', { typcategory: 'A', typelem: 25 }),
    pgType(1114, 'timestamp'),
    pgType(1184, 'timestamptz'),
    pgType(1700, 'numeric'),
    pgType(2950, 'uuid'),
    pgType(3802, 'jsonb'),
    pgType(90001, 'mood', { nspname: 'public', typtype: 'e', typcategory: 'E' }),
  ].map((t) => [t.oid, t]),
);

const be = (size: number, write: (b: Buffer) => void): Buffer => {
  const b = Buffer.alloc(size);
  write(b);
  return b;
};
const int8 = (v: bigint): Buffer => be(8, (b) => b.writeBigInt64BE(v));
const text = (s: string): Buffer => Buffer.from(s);
/** numeric_send of `digits` (base 10000, most significant first) with `weight` and sign. */
const numeric = (digits: number[], weight: number, sign = 0, dscale = 4): Buffer =>
  be(8 + 2 * digits.length, (b) => {
    b.writeInt16BE(digits.length, 0);
    b.writeInt16BE(weight, 2);
    b.writeUInt16BE(sign, 4);
    b.writeInt16BE(dscale, 6);
    for (const [i, d] of digits.entries()) b.writeInt16BE(d, 8 + 2 * i);
  });
/** array_send of a one-dimensional array (null elements as null). */
const array = (elemOid: number, elems: (Buffer | null)[]): Buffer => {
  const head = be(20, (b) => {
    b.writeInt32BE(1, 0);
    b.writeInt32BE(elems.some((e) => e === null) ? 1 : 0, 4);
    b.writeInt32BE(elemOid, 8);
    b.writeInt32BE(elems.length, 12);
    b.writeInt32BE(1, 16);
  });
  const parts = elems.flatMap((e) => [be(4, (b) => b.writeInt32BE(e === null ? -1 : e.length)), e ?? Buffer.alloc(0)]);
  return Buffer.concat([head, ...parts]);
};
const emptyArray = (elemOid: number): Buffer =>
  be(12, (b) => {
    b.writeInt32BE(0, 0);
    b.writeInt32BE(0, 4);
    b.writeInt32BE(elemOid, 8);
  });

const NUMERIC_18_4 = ((18 << 16) | 4) + 4;
/** Per type: its column, and values (null = SQL NULL) that reach every branch of its inline path. */
const CASES: { type: number; typmod?: number; kind: DecodeKind; values: (Buffer | null)[] }[] = [
  { type: 16, kind: DecodeKind.BOOL, values: [Buffer.from([1]), Buffer.from([0]), null] },
  { type: 21, kind: DecodeKind.INT2, values: [-32768, 0, 32767].map((v) => be(2, (b) => b.writeInt16BE(v))) },
  {
    type: 23,
    kind: DecodeKind.INT4,
    values: [-(2 ** 31), -1, 0, 2 ** 31 - 1].map((v) => be(4, (b) => b.writeInt32BE(v))),
  },
  { type: 20, kind: DecodeKind.INT8, values: [-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n].map(int8) },
  {
    type: 700,
    kind: DecodeKind.FLOAT4,
    values: [0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY].map((v) => be(4, (b) => b.writeFloatBE(v))),
  },
  {
    type: 701,
    kind: DecodeKind.FLOAT8,
    values: [0, -0, Math.PI, Number.NaN, Number.NEGATIVE_INFINITY].map((v) => be(8, (b) => b.writeDoubleBE(v))),
  },
  { type: 25, kind: DecodeKind.BYTES, values: [text(''), text('héllo'), null, text('héllo')] },
  { type: 17, kind: DecodeKind.BYTES, values: [Buffer.from([0, 255, 10]), Buffer.alloc(0)] },
  { type: 114, kind: DecodeKind.BYTES, values: [text('{"a": [1, 2]}'), text('null')] },
  { type: 90001, kind: DecodeKind.BYTES, values: [text('happy'), text('sad')] },
  {
    type: 2950,
    kind: DecodeKind.UUID,
    values: [Buffer.alloc(16), Buffer.alloc(16, 0xff), Buffer.from('0123456789abcdef')],
  },
  ...[1114, 1184].map((type) => ({
    type,
    kind: DecodeKind.TIMESTAMP,
    values: [
      0n, // 2000-01-01
      -946_684_800_000_000n, // 1970-01-01: carry across the 32-bit halves
      1n,
      -1n,
      725_846_400_000_000n + 123_456n,
      -63_000_000_000_000_000n, // the year 4: a negative high half
      -(2n ** 63n) + 5n, // the int64 low edge: outside the inline range, BigInt path
      9_223_371_331_200_000_000n - 946_684_800_000_001n, // near the int64 end, still storable
      2n ** 63n - 1n, // infinity
      -(2n ** 63n), // -infinity
    ].map(int8),
  })),
  { type: 3802, kind: DecodeKind.JSONB, values: [Buffer.concat([Buffer.from([1]), text('{"a": 1}')]), null] },
  {
    type: 1700,
    typmod: NUMERIC_18_4,
    kind: DecodeKind.DECIMAL64,
    values: [
      numeric([], 0), // 0
      numeric([12, 3400], 0), // 12.34
      numeric([1, 2345], 0, 0x4000), // -1.2345
      numeric([99, 9999, 9999, 9999, 9999], 3), // 99999999999999.9999: beyond 2^53, BigInt path
      numeric([5], 3, 0x4000), // -5000000000000
      numeric([1], -1), // 0.0001
    ],
  },
  {
    type: 1009,
    kind: DecodeKind.LIST_BYTES,
    values: [array(25, [text('a'), null, text('bc')]), emptyArray(25), null, array(25, [null]), array(25, [text('')])],
  },
  {
    type: 1007,
    kind: DecodeKind.CLOSURE,
    values: [array(23, [be(4, (b) => b.writeInt32BE(-5)), null]), emptyArray(23), null],
  },
];

/** A binary COPY stream of one column. */
function copyStream(values: (Buffer | null)[]): Buffer {
  const header = Buffer.alloc(19);
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1').copy(header, 0);
  const tuples = values.map((v) =>
    Buffer.concat([
      be(6, (b) => {
        b.writeInt16BE(1, 0);
        b.writeInt32BE(v === null ? -1 : v.length, 2);
      }),
      v ?? Buffer.alloc(0),
    ]),
  );
  return Buffer.concat([header, ...tuples, be(2, (b) => b.writeInt16BE(-1))]);
}

const noPool = { compress: () => Promise.reject(new Error('no page is cut here')) } as unknown as CompressionPool;

function decode(plan: ColumnPlan, kind: DecodeKind, stream: Buffer) {
  const col = new ColumnBuilder(plan.spec, { pageSize: 2 ** 30, pool: noPool });
  const decoder = new BinaryCopyDecoder([{ decode: plan.decode, kind, scale: plan.scale }], () => [col], {
    columns: [plan.name],
  });
  decoder.feed(stream);
  decoder.run(
    () => {},
    () => false,
  );
  decoder.end();
  const view = (s: { buf: Buffer; pos: number } | undefined) => (s ? Buffer.from(s.buf.subarray(0, s.pos)) : null);
  const levels = col as unknown as Record<'def' | 'rep' | 'bools', { data: Uint8Array; length: number } | undefined>;
  const lv = (s: { data: Uint8Array; length: number } | undefined) => (s ? [...s.data.subarray(0, s.length)] : null);
  return {
    rows: decoder.rows,
    values: view(col.values),
    def: lv(levels.def),
    rep: lv(levels.rep),
    bools: lv(levels.bools),
    nulls: col.stats.nulls,
    min: col.stats.encodeMin() ?? null,
    max: col.stats.encodeMax() ?? null,
  };
}

describe('every inline decoding path writes what the codec’s own decoder writes', () => {
  it.each(CASES.map((c) => [TYPES.get(c.type)!.typname, c] as const))('%s', (_name, c) => {
    const plan = planColumn({ name: 'c', notNull: false, typeOid: c.type, typmod: c.typmod ?? -1, pgType: 'x' }, TYPES);
    expect(plan.kind).toBe(c.kind);
    const stream = copyStream(c.values);
    const inline = decode(plan, plan.kind, stream);
    const closure = decode(plan, DecodeKind.CLOSURE, stream);
    expect(inline.rows).toBe(c.values.length);
    expect(inline).toEqual(closure);
  });

  it('an unsupported jsonb version fails the same way on both paths', () => {
    const plan = planColumn({ name: 'doc', notNull: false, typeOid: 3802, typmod: -1, pgType: 'jsonb' }, TYPES);
    const stream = copyStream([Buffer.concat([Buffer.from([2]), text('{}')])]);
    for (const kind of [plan.kind, DecodeKind.CLOSURE])
      expect(() => decode(plan, kind, stream)).toThrow('column doc: unsupported jsonb binary version 2');
  });

  it('a multi-dimensional text[] fails the same way on both paths', () => {
    const plan = planColumn({ name: 'tags', notNull: false, typeOid: 1009, typmod: -1, pgType: 'text[]' }, TYPES);
    const twoDims = be(28, (b) => {
      b.writeInt32BE(2, 0);
      b.writeInt32BE(25, 8);
    });
    for (const kind of [plan.kind, DecodeKind.CLOSURE])
      expect(() => decode(plan, kind, copyStream([twoDims]))).toThrow(
        'column tags: multi-dimensional arrays are not supported yet',
      );
  });
});
