/**
 * A growable byte buffer used for Parquet pages and Thrift metadata.
 * Writes little-endian values directly, so column values land in their PLAIN encoding
 * as they are decoded and are never held as one JS object per value.
 */
export class ByteSink {
  buf: Buffer;
  pos = 0;

  /**
   * `owned`: never in Node's shared buffer pool, so the memory can be transferred to a worker.
   * `buf`: start in this buffer (an owned one from a free list) rather than a fresh one.
   */
  constructor(
    initial = 1024,
    private readonly owned = false,
    buf?: Buffer,
  ) {
    this.buf = buf ?? (owned ? Buffer.allocUnsafeSlow(initial) : Buffer.allocUnsafe(initial));
  }

  ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = this.owned ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  bytes(src: Uint8Array, start = 0, end = src.length): void {
    const len = end - start;
    this.ensure(len);
    if (len < 48) {
      // Short values: a loop beats the native copy's call overhead.
      const buf = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) buf[p++] = src[i]!;
    } else if (src instanceof Buffer) src.copy(this.buf, this.pos, start, end);
    else this.buf.set(src.subarray(start, end), this.pos);
    this.pos += len;
  }

  /**
   * A 32-bit integer, little-endian (`v` signed or unsigned: the same bits). Byte stores rather than
   * Buffer#writeInt32LE, whose argument checks cost more than the write (a value and a length per row and column).
   */
  int32LE(v: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >> 8;
    b[p + 2] = v >> 16;
    b[p + 3] = v >> 24;
    this.pos = p + 4;
  }

  /** An unsigned 32-bit integer, little-endian (the same bytes as int32LE). */
  uint32LE(v: number): void {
    this.int32LE(v);
  }

  /** Unsigned LEB128 of a non-negative number below 2^53. */
  varint(v: number): void {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  varintBig(v: bigint): void {
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** A copy of what was written (safe to keep after reset). */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  /** A view of what was written (valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }
}

/** A growable array of small integers (definition and repetition levels). */
export class LevelSink {
  data: Uint8Array;
  length = 0;

  constructor(initial = 1024) {
    this.data = new Uint8Array(initial);
  }

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint8Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  reset(): void {
    this.length = 0;
  }
}
