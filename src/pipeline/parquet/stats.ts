import type { LeafType } from './schema.js';

/**
 * Min/max statistics in the column's sort order, as the Parquet spec defines it:
 * signed for INT32/INT64 (and DECIMAL stored in them), IEEE for floats — no bounds at all for a chunk with a NaN
 * (the spec leaves NaN out of the bounds, but DuckDB, which orders NaN above every number as Postgres does, then
 * prunes on them: `f = 'NaN'` and `f > 100` skipped the chunks holding NaN; DuckDB's own writer writes no bounds for
 * them either) — and zero bounds written as -0 / +0, unsigned bytewise for strings, JSON, UUID and bytea,
 * signed two's complement for DECIMAL in FIXED_LEN_BYTE_ARRAY.
 *
 * Byte-array bounds longer than MAX_BOUND_BYTES are not written at all (rather than
 * truncated), so a reader never prunes on an inexact bound.
 */
const MAX_BOUND_BYTES = 512;

export abstract class Stats {
  nulls = 0;
  abstract encodeMin(): Buffer | undefined;
  abstract encodeMax(): Buffer | undefined;
  abstract reset(): void;
}

export class NumberStats extends Stats {
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  seen = false;
  /** A NaN was added: the chunk gets no bounds (see above). */
  nan = false;
  constructor(private readonly physical: 'INT32' | 'FLOAT' | 'DOUBLE' | 'BOOLEAN') {
    super();
  }
  add(v: number): void {
    if (Number.isNaN(v)) {
      this.nan = true;
      return;
    }
    this.seen = true;
    if (v < this.min || (v === 0 && this.min === 0 && Object.is(v, -0))) this.min = v;
    if (v > this.max || (v === 0 && this.max === 0 && Object.is(this.max, -0))) this.max = v;
  }
  private enc(v: number): Buffer {
    switch (this.physical) {
      case 'INT32': {
        const b = Buffer.allocUnsafe(4);
        b.writeInt32LE(v);
        return b;
      }
      case 'FLOAT': {
        const b = Buffer.allocUnsafe(4);
        b.writeFloatLE(v);
        return b;
      }
      case 'DOUBLE': {
        const b = Buffer.allocUnsafe(8);
        b.writeDoubleLE(v);
        return b;
      }
      case 'BOOLEAN':
        return Buffer.from([v ? 1 : 0]);
    }
  }
  encodeMin(): Buffer | undefined {
    if (!this.seen || this.nan) return undefined;
    // Spec: a zero lower bound is written as -0.0 for floating point.
    return this.enc(this.min === 0 && this.physical !== 'INT32' && this.physical !== 'BOOLEAN' ? -0 : this.min);
  }
  encodeMax(): Buffer | undefined {
    if (!this.seen || this.nan) return undefined;
    return this.enc(this.max === 0 && this.physical !== 'INT32' && this.physical !== 'BOOLEAN' ? 0 : this.max);
  }
  reset(): void {
    this.nulls = 0;
    this.seen = false;
    this.nan = false;
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
  }
}

/**
 * INT64 bounds kept as 32-bit halves, each a signed int32 (`lo`'s bits are the unsigned low half: compared with
 * the sign bit flipped): no BigInt and no boxed number on the hot path.
 */
export class Int64Stats extends Stats {
  minHi = 0;
  minLo = 0;
  maxHi = 0;
  maxLo = 0;
  seen = false;
  /** `hi`, `lo`: signed int32s (`lo | 0` of the unsigned low half). */
  add(hi: number, lo: number): void {
    if (!this.seen) {
      this.minHi = this.maxHi = hi;
      this.minLo = this.maxLo = lo;
      this.seen = true;
      return;
    }
    if (hi < this.minHi || (hi === this.minHi && (lo ^ 0x80000000) < (this.minLo ^ 0x80000000))) {
      this.minHi = hi;
      this.minLo = lo;
    }
    if (hi > this.maxHi || (hi === this.maxHi && (lo ^ 0x80000000) > (this.maxLo ^ 0x80000000))) {
      this.maxHi = hi;
      this.maxLo = lo;
    }
  }
  private enc(hi: number, lo: number): Buffer {
    const b = Buffer.allocUnsafe(8);
    b.writeInt32LE(lo | 0, 0);
    b.writeInt32LE(hi | 0, 4);
    return b;
  }
  encodeMin(): Buffer | undefined {
    return this.seen ? this.enc(this.minHi, this.minLo) : undefined;
  }
  encodeMax(): Buffer | undefined {
    return this.seen ? this.enc(this.maxHi, this.maxLo) : undefined;
  }
  reset(): void {
    this.nulls = 0;
    this.seen = false;
  }
}

/** Bytewise comparison of src[start, end) with other: <0, 0, >0 (unsigned, then length). */
function compareBytes(src: Buffer, start: number, end: number, other: Buffer): number {
  const n = Math.min(end - start, other.length);
  for (let i = 0; i < n; i++) {
    const d = src[start + i]! - other[i]!;
    if (d !== 0) return d;
  }
  return end - start - other.length;
}

/** No bounds, only the null count (JSON: readers do not prune on it; saves a compare per value). */
class NullCountStats extends Stats {
  add(_src: Buffer, _start: number, _end: number): void {}
  encodeMin(): Buffer | undefined {
    return undefined;
  }
  encodeMax(): Buffer | undefined {
    return undefined;
  }
  reset(): void {
    this.nulls = 0;
  }
}

/** Bytewise bounds; `signed` compares as big-endian two's complement (DECIMAL). */
export class BytesStats extends Stats {
  min: Buffer | undefined;
  max: Buffer | undefined;
  tooLong = false;
  constructor(private readonly signed: boolean) {
    super();
  }
  add(src: Buffer, start: number, end: number): void {
    if (end - start > MAX_BOUND_BYTES) {
      this.tooLong = true;
      return;
    }
    if (this.min === undefined || this.compare(src, start, end, this.min) < 0) {
      this.min = Buffer.from(src.subarray(start, end));
    }
    if (this.max === undefined || this.compare(src, start, end, this.max) > 0) {
      this.max = Buffer.from(src.subarray(start, end));
    }
  }
  private compare(src: Buffer, start: number, end: number, other: Buffer): number {
    if (this.signed && end > start && other.length > 0) {
      // Same length (fixed width); the first byte decides the sign.
      const a = (src[start]! << 24) >> 24;
      const b = (other[0]! << 24) >> 24;
      if (a !== b) return a < b ? -1 : 1;
    }
    return compareBytes(src, start, end, other);
  }
  encodeMin(): Buffer | undefined {
    return this.tooLong ? undefined : this.min;
  }
  encodeMax(): Buffer | undefined {
    return this.tooLong ? undefined : this.max;
  }
  reset(): void {
    this.nulls = 0;
    this.min = undefined;
    this.max = undefined;
    this.tooLong = false;
  }
}

export function statsFor(leaf: LeafType): Stats {
  switch (leaf.physical) {
    case 'INT64':
      return new Int64Stats();
    case 'BYTE_ARRAY':
      return leaf.logical?.type === 'JSON' ? new NullCountStats() : new BytesStats(false);
    case 'FIXED_LEN_BYTE_ARRAY':
      return new BytesStats(leaf.logical?.type === 'DECIMAL');
    default:
      return new NumberStats(leaf.physical);
  }
}
