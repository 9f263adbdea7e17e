import type { ColumnBuilder } from '../../parquet/column.js';
import { MappingError } from '../errors.js';
import { binaryCodec, DecodeKind, fixedEntry, selectAsIs, type TypeCodec, type TypeEntry } from './entry.js';
import { TEXT_FORM } from './text.js';

/** Numbers: bool, int2/4/8, float4/8, numeric(p,s) → DECIMAL for p ≤ 38 (unconstrained numeric, p > 38: text form). */
export const numericTypes: TypeEntry[] = [
  fixedEntry(
    'bool',
    16,
    binaryCodec({ physical: 'BOOLEAN' }, (b, s, _l, c) => c.boolean(b[s] !== 0), DecodeKind.BOOL),
  ),
  fixedEntry(
    'int2',
    21,
    binaryCodec(
      { physical: 'INT32', logical: { type: 'INTEGER', bitWidth: 16, signed: true } },
      (b, s, _l, c) => c.int32(b.readInt16BE(s)),
      DecodeKind.INT2,
    ),
  ),
  fixedEntry(
    'int4',
    23,
    binaryCodec({ physical: 'INT32' }, (b, s, _l, c) => c.int32(b.readInt32BE(s)), DecodeKind.INT4),
  ),
  fixedEntry(
    'int8',
    20,
    binaryCodec({ physical: 'INT64' }, (b, s, _l, c) => c.int64BE(b, s), DecodeKind.INT8),
  ),
  fixedEntry(
    'float4',
    700,
    binaryCodec({ physical: 'FLOAT' }, (b, s, _l, c) => c.float(b.readFloatBE(s)), DecodeKind.FLOAT4),
  ),
  fixedEntry(
    'float8',
    701,
    binaryCodec({ physical: 'DOUBLE' }, (b, s, _l, c) => c.double(b.readDoubleBE(s)), DecodeKind.FLOAT8),
  ),
  // Unconstrained numerics have no fixed scale (and may hold NaN, ±Infinity): their text. So has a precision above 38:
  // Parquet allows it, but Spark, Athena and BigQuery stop at DECIMAL(38), and DuckDB 1.5 read DECIMAL(50,0) 1 as
  // 16777216.0 (red-team finding; pyarrow-compatible readers read the bytes right).
  {
    name: 'numeric',
    oid: 1700,
    codec: (typmod, column) =>
      typmod < 0 || numericPrecision(typmod) > MAX_DECIMAL_PRECISION ? TEXT_FORM : decimalCodec(typmod, column),
  },
];

/** The widest DECIMAL written: what Spark, Athena, BigQuery and DuckDB all read. */
export const MAX_DECIMAL_PRECISION = 38;

const numericPrecision = (typmod: number): number => ((typmod - 4) >> 16) & 0xffff;

/** numeric(p,s) → DECIMAL(p,s) in INT32 (p ≤ 9), INT64 (p ≤ 18) or FIXED_LEN_BYTE_ARRAY. */
function decimalCodec(typmod: number, column: string): TypeCodec {
  const precision = numericPrecision(typmod);
  // The scale is an 11-bit signed value since Postgres 15 (negative scales are allowed).
  const scale = (((typmod - 4) & 0x7ff) << 21) >> 21;
  if (scale < 0 || scale > precision) {
    throw new MappingError(`column ${column}: numeric(${precision},${scale}) has no Parquet DECIMAL equivalent`);
  }
  const logical = { type: 'DECIMAL' as const, precision, scale };
  const unscaled = (b: Buffer, s: number): bigint => numericUnscaled(b, s, scale, column);
  if (precision <= 9) {
    return binaryCodec({ physical: 'INT32', logical }, (b, s, _l, c) => {
      const v = numericUnscaledNumber(b, s, scale);
      c.int32(v !== undefined ? v : Number(unscaled(b, s)));
    });
  }
  if (precision <= 18) {
    return {
      leaf: { physical: 'INT64', logical },
      select: selectAsIs,
      decode: (b, s, _l, c) => {
        if (!numericInto(b, s, scale, c)) c.int64(unscaled(b, s));
      },
      kind: DecodeKind.DECIMAL64,
      scale,
      textForm: false,
    };
  }
  const bytes = decimalBytes(precision);
  const scratch = Buffer.alloc(bytes);
  return binaryCodec({ physical: 'FIXED_LEN_BYTE_ARRAY', typeLength: bytes, logical }, (b, s, _l, c) => {
    let v = BigInt.asUintN(bytes * 8, unscaled(b, s));
    for (let i = bytes - 1; i >= 0; i--) {
      scratch[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    c.fixed(scratch, 0);
  });
}

/** Smallest byte width whose signed range holds every value of `precision` digits. */
function decimalBytes(precision: number): number {
  const max = 10n ** BigInt(precision) - 1n;
  let bytes = 1;
  while (max >= 1n << BigInt(bytes * 8 - 1)) bytes++;
  return bytes;
}

const POW10: bigint[] = Array.from({ length: 200 }, (_, i) => 10n ** BigInt(i));

const POW10_NUM: number[] = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** numericUnscaledTo's result: a typed array slot, so the number is never boxed on its way out of the call. */
const UNSCALED = new Float64Array(1);

/**
 * Postgres binary numeric → unscaled integer at `scale` in UNSCALED[0], when every step is exact (all intermediate
 * values below 2^53): false otherwise (and for NaN/±Infinity), so the caller takes the BigInt path.
 */
function numericUnscaledTo(b: Buffer, s: number, scale: number): boolean {
  const ndigits = ((b[s]! << 24) >> 16) | b[s + 1]!;
  const sign = (b[s + 4]! << 8) | b[s + 5]!;
  if (sign !== 0 && sign !== 0x4000) return false;
  let acc = 0;
  for (let i = 0; i < ndigits; i++) {
    if (acc > 900_719_925_473) return false; // acc * 10000 + 9999 could pass 2^53
    const at = s + 8 + 2 * i;
    acc = acc * 10000 + (((b[at]! << 24) >> 16) | b[at + 1]!);
  }
  const exp = 4 * ((((b[s + 2]! << 24) >> 16) | b[s + 3]!) - ndigits + 1) + scale;
  let v: number;
  if (exp >= 0) {
    if (exp > 22) return false;
    v = acc * POW10_NUM[exp]!;
    if (v > Number.MAX_SAFE_INTEGER) return false;
  } else {
    if (-exp > 22) return false;
    const d = POW10_NUM[-exp]!;
    v = Math.trunc(acc / d);
    // Only digits below the scale are dropped; they are zero (dscale ≤ scale), so the division is exact.
    if (v * d !== acc) return false;
  }
  UNSCALED[0] = sign === 0x4000 ? -v : v;
  return true;
}

/**
 * Postgres binary numeric → unscaled integer at `scale` as a JS number, when every step is exact
 * (all intermediate values below 2^53); undefined otherwise (and for NaN/±Infinity), so the caller
 * takes the BigInt path.
 */
export function numericUnscaledNumber(b: Buffer, s: number, scale: number): number | undefined {
  return numericUnscaledTo(b, s, scale) ? UNSCALED[0] : undefined;
}

/**
 * A numeric appended to an INT64 column: false (nothing appended) when the caller must take the exact path. The
 * number does not cross a call (a number returned across a call V8 does not inline is a heap object unless it is a
 * 32-bit integer: 23 MB per 2M rows of the bench's numeric(18,4) in a heap profile); its halves go as int32s.
 */
export function numericInto(b: Buffer, s: number, scale: number, col: ColumnBuilder): boolean {
  if (!numericUnscaledTo(b, s, scale)) return false;
  const v = UNSCALED[0]!;
  const hi = Math.floor(v / 0x100000000);
  col.int64Parts(hi, (v - hi * 0x100000000) | 0);
  return true;
}

/** Postgres binary numeric → unscaled integer at `scale` (exact). */
export function numericUnscaled(b: Buffer, s: number, scale: number, column: string): bigint {
  const ndigits = b.readInt16BE(s);
  const weight = b.readInt16BE(s + 2);
  const sign = b.readUInt16BE(s + 4);
  if (sign === 0xc000) throw new MappingError(`column ${column}: numeric NaN has no Parquet DECIMAL value`);
  if (sign === 0xd000 || sign === 0xf000) {
    throw new MappingError(`column ${column}: numeric ±Infinity has no Parquet DECIMAL value`);
  }
  let acc = 0n;
  for (let i = 0; i < ndigits; i++) acc = acc * 10000n + BigInt(b.readInt16BE(s + 8 + 2 * i));
  const exp = 4 * (weight - ndigits + 1) + scale;
  const v = exp >= 0 ? acc * POW10[exp]! : acc / POW10[-exp]!;
  return sign === 0x4000 ? -v : v;
}
