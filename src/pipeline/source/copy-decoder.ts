import { constants as bufferConstants } from 'node:buffer';
import type { ColumnBuilder } from '../parquet/column.js';
import { MappingError, RowTooLarge, SourceError } from './errors.js';
import type { ColumnPlan } from './typemap.js';
import { DecodeKind, type Decoder } from './types/entry.js';
import { numericInto } from './types/numeric.js';
import { EPOCH_HI, EPOCH_LO } from './types/temporal.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * The largest single value the decoder accepts: Postgres' own limit for one field (1 GB). A Parquet
 * page's sizes are 32-bit, and a page holds whole rows, so a value near 2 GiB could not be written
 * at all; a larger length can only come from a corrupt stream.
 */
export const MAX_VALUE_BYTES = 2 ** 30;

/** Where the decoder reads from, for errors that must name a table and a column. */
export interface DecoderSource {
  /** The table, when the caller's errors do not name it already. */
  table?: string;
  /** Column names, in COPY order. */
  columns: string[];
  /**
   * The largest row read (its fields' bytes as Postgres sends them): a longer one fails, naming the table, the
   * column that crossed the bound and the setting, before the decoder buffers it. DROPSHIP_MAX_ROW_BYTES; none
   * but MAX_VALUE_BYTES per value when absent.
   */
  maxRowBytes?: number;
}

/**
 * Decoder for PostgreSQL's binary COPY stream (https://www.postgresql.org/docs/current/sql-copy.html,
 * "Binary Format"). Tuples are decoded straight into Parquet column builders: no JS object per
 * row, no text parsing. Chunks may split tuples anywhere; a tuple is only applied once all of
 * its bytes are here, so a partial tuple never reaches the columns.
 *
 * Lengths and fixed-width values are read with inline byte arithmetic and handed to the columns as
 * (buffer, offset), not as numbers through Buffer#read*: this loop is too large for V8 to inline
 * those calls, and every double, unsigned 32-bit half or large int64 returned or passed across one
 * was a heap object (~100 MB per 2M rows of the bench's table in a heap profile). Measured (issue 27):
 * test/bench/decode.ts --rows 300000 --runs 11 --baseline <before>: 0.914 → 0.865 µs/row; the
 * bench's 2M-row export with codec none (A/B, alternating), with page reuse (PageBuffers.reuse):
 * 2.32 → 1.94 µs/row of process CPU.
 */
export class BinaryCopyDecoder {
  /**
   * The bytes not decoded yet are `buf[pos, stop)`. `buf` is either the last chunk itself (nothing
   * was pending), a small concatenation (a tuple's tail plus the next chunk), or — while a tuple
   * larger than a chunk is pending — the decoder's own store, which chunks are appended to and
   * which grows geometrically (at once to the tuple's size when its field lengths say how large it
   * is). Every byte is thus copied a bounded number of times: decoding is linear in value size,
   * where concatenating the pending bytes with every chunk was quadratic (a 64 MiB value in 64 KiB
   * chunks copied 32 GiB).
   */
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private stop = 0;
  /** `buf` is the decoder's own store (may be appended to), not a chunk or a concatenation. */
  private owned = false;
  /** Bytes from `pos` the pending tuple is known to need (from the field lengths read so far). */
  private wanted = 0;
  /** The largest chunk seen (slack kept in the store, so a tuple's last chunk fits without growing). */
  private maxChunk = 0;
  /**
   * The chunk whose start was joined to the pending tuple's tail (`buf` is then the small join): once the join is
   * decoded past its first `carry` bytes (the tail), decoding goes on in `next` itself, from `pos - carry`.
   */
  private next: Buffer | undefined;
  private carry = 0;
  /** How much of `next` the join holds. */
  private joined = 0;
  /** The size of the tuple decoded last (a join takes twice that of the next chunk, or what the pending one needs). */
  private lastTuple = 0;
  private headerDone = false;
  private trailerSeen = false;
  rows = 0;
  /** Bytes copied to join chunks (for tests: linear means a small multiple of the bytes fed). */
  copiedBytes = 0;
  private readonly decoders: Decoder[];
  private readonly kinds: Uint8Array;
  private readonly scales: Int8Array;
  /**
   * The one bound checked per field, on the row's bytes so far: DROPSHIP_MAX_ROW_BYTES (at most 1 GiB), or 1 GiB
   * without it — a value above Postgres' limit makes its row longer than that too. One comparison per field, as the
   * decoder had before the row bound.
   */
  private readonly maxRowBytes: number;

  /**
   * `plans`: how each column's values decode (src/pipeline/source/typemap.ts); `columns`: the builders they
   * go to; `source`: the table and column names errors name.
   */
  constructor(
    plans: Pick<ColumnPlan, 'decode' | 'kind' | 'scale'>[],
    private readonly columns: () => ColumnBuilder[],
    private readonly source?: DecoderSource,
  ) {
    this.decoders = plans.map((c) => c.decode);
    this.kinds = Uint8Array.from(plans.map((c) => c.kind));
    this.scales = Int8Array.from(plans.map((c) => c.scale));
    this.maxRowBytes = Math.min(source?.maxRowBytes ?? MAX_VALUE_BYTES, MAX_VALUE_BYTES);
  }

  feed(chunk: Buffer): void {
    if (this.next) throw new Error('BinaryCopyDecoder: feed() before run() decoded the previous chunk');
    if (chunk.length > this.maxChunk) this.maxChunk = chunk.length;
    const rest = this.stop - this.pos;
    if (rest <= 0) {
      // Nothing pending: decode straight from the chunk.
      this.buf = chunk;
      this.pos = 0;
      this.stop = chunk.length;
      this.owned = false;
      return;
    }
    const need = rest + chunk.length;
    if (rest <= chunk.length && (!this.owned || this.buf.length > 4 * need)) {
      // A tuple's tail and the start of the next chunk (rows split at chunk boundaries): the tuple across the
      // boundary is decoded from a small join of the two, the rest of the chunk in place (see run). Joining the
      // whole chunk copied every byte of the stream once more: 4 % of a 1M-row export's busy CPU; the decoding
      // bench (test/bench/decode.ts --rows 300000 --runs 11 --baseline <before>) 1.26 → 1.04 µs/row (issue 27).
      const head = Math.min(chunk.length, Math.max(1, Math.max(this.wanted, 2 * this.lastTuple) - rest + 64));
      this.buf = Buffer.concat([this.buf.subarray(this.pos, this.stop), chunk.subarray(0, head)], rest + head);
      this.copiedBytes += rest + head;
      this.pos = 0;
      this.stop = rest + head;
      this.owned = false;
      if (head < chunk.length) {
        this.next = chunk;
        this.carry = rest;
        this.joined = head;
      }
      return;
    }
    if (this.owned && this.stop + chunk.length <= this.buf.length) {
      // Room in the store: append.
    } else if (this.owned && need <= this.buf.length && rest <= this.buf.length / 2) {
      // The decoded front frees at least half the store: move the pending bytes to its start.
      this.buf.copy(this.buf, 0, this.pos, this.stop);
      this.copiedBytes += rest;
      this.pos = 0;
      this.stop = rest;
    } else {
      // Grow: to the pending tuple's known size plus slack for its last chunk, at least ×1.5.
      const size = Math.max(
        need + 2 * this.maxChunk,
        this.wanted + 2 * this.maxChunk,
        this.owned ? Math.ceil(this.buf.length * 1.5) : 0,
      );
      const next = Buffer.allocUnsafe(Math.min(size, bufferConstants.MAX_LENGTH));
      this.buf.copy(next, 0, this.pos, this.stop);
      this.copiedBytes += rest;
      this.buf = next;
      this.pos = 0;
      this.stop = rest;
      this.owned = true;
    }
    chunk.copy(this.buf, this.stop);
    this.copiedBytes += chunk.length;
    this.stop += chunk.length;
  }

  private tooLarge(column: number, len: number, row: number): never {
    const name = this.source?.columns[column] ?? `#${column + 1}`;
    const where = this.source?.table ? `table ${this.source.table}, column ${name}` : `column ${name}`;
    if (len > MAX_VALUE_BYTES)
      throw new MappingError(
        `${where}: a value of ${len.toLocaleString('en-US')} bytes is larger than the largest value dropship exports (${MAX_VALUE_BYTES.toLocaleString('en-US')} bytes: Postgres' limit for one value; a Parquet page holds at most 2 GiB)`,
      );
    throw new RowTooLarge(
      `${where}: a row of at least ${row.toLocaleString('en-US')} bytes (this column's value: ${len.toLocaleString('en-US')}) is larger than DROPSHIP_MAX_ROW_BYTES (${this.maxRowBytes.toLocaleString('en-US')}), the largest row dropship reads — the exporter holds several copies of a row while it writes it (about 7× its size at peak), so one row cannot exhaust its memory. Raise DROPSHIP_MAX_ROW_BYTES together with the function's memory, or leave the column out (--exclude-columns)`,
    );
  }

  /**
   * Decodes buffered tuples until the input runs out or `full()` says the row group is full.
   * Returns true when it stopped because of `full()` (call again after flushing).
   */
  run(endRow: () => void, full: () => boolean): boolean {
    for (;;) {
      if (this.decode(endRow, full)) return true;
      const next = this.next;
      if (!next) return false;
      this.next = undefined;
      if (this.pos >= this.carry) {
        // The tuple across the boundary is decoded: on in the chunk itself (join byte carry + j is next[j]).
        this.pos -= this.carry;
        this.buf = next;
      } else {
        // It is longer than what was joined: join the rest of the chunk too (what feed() did for every chunk).
        this.buf = Buffer.concat([this.buf.subarray(this.pos, this.stop), next.subarray(this.joined)]);
        this.copiedBytes += this.buf.length;
        this.pos = 0;
      }
      this.stop = this.buf.length;
      this.owned = false;
      if (this.trailerSeen) return false;
    }
  }

  private decode(endRow: () => void, full: () => boolean): boolean {
    const buf = this.buf;
    const end = this.stop;
    if (!this.headerDone) {
      if (end - this.pos < 19) return false;
      if (!buf.subarray(this.pos, this.pos + 11).equals(SIGNATURE)) {
        throw new SourceError('COPY stream does not start with the binary COPY signature');
      }
      const extension = buf.readUInt32BE(this.pos + 15);
      if (end - this.pos < 19 + extension) return false;
      this.pos += 19 + extension;
      this.headerDone = true;
    }
    const n = this.decoders.length;
    const cols = this.columns();
    const kinds = this.kinds;
    while (this.pos + 2 <= end) {
      if (full()) return true;
      const start = this.pos;
      const fields = ((buf[start]! << 24) >> 16) | buf[start + 1]!;
      if (fields === -1) {
        this.trailerSeen = true;
        this.pos += 2;
        return false;
      }
      if (fields !== n) throw new SourceError(`COPY tuple has ${fields} fields, expected ${n}`);
      // First pass: is the whole tuple here?
      let p = start + 2;
      let complete = true;
      for (let i = 0; i < n; i++) {
        if (p + 4 > end) {
          complete = false;
          p += 4;
          break;
        }
        const len = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
        p += 4 + Math.max(len, 0);
        if (p - start > this.maxRowBytes) this.tooLarge(i, len, p - start);
        if (p > end) {
          complete = false;
          break;
        }
      }
      if (!complete) {
        // What the pending tuple needs at least, so the store grows once to hold it.
        this.wanted = p - start;
        if (this.wanted > bufferConstants.MAX_LENGTH)
          throw new MappingError(
            `${this.source?.table ? `table ${this.source.table}: ` : ''}one row is larger than the ${bufferConstants.MAX_LENGTH.toLocaleString('en-US')} bytes a Node.js Buffer holds`,
          );
        return false;
      }
      this.wanted = 0;
      // Second pass: decode.
      p = start + 2;
      for (let i = 0; i < n; i++) {
        const len = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
        p += 4;
        const col = cols[i]!;
        if (len < 0) {
          if (!col.spec.nullable) throw new SourceError(`NULL in NOT NULL column ${col.spec.name}`);
          col.nullValue();
        } else {
          switch (kinds[i]) {
            case DecodeKind.BYTES:
              col.bytes(buf, p, p + len);
              break;
            case DecodeKind.INT4:
              col.int32BE(buf, p);
              break;
            case DecodeKind.INT8:
              col.int64BE(buf, p);
              break;
            case DecodeKind.FLOAT8:
              col.doubleBE(buf, p);
              break;
            case DecodeKind.BOOL:
              col.boolean(buf[p] !== 0);
              break;
            case DecodeKind.UUID:
              col.fixed(buf, p);
              break;
            case DecodeKind.INT2:
              col.int32(buf.readInt16BE(p));
              break;
            case DecodeKind.FLOAT4:
              col.float(buf.readFloatBE(p));
              break;
            case DecodeKind.TIMESTAMP: {
              const hi = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
              // µs since 2000 → since 1970 on 32-bit halves with carry (exact); ±infinity and the far ends: the codec.
              if (hi > -0x7ff00000 && hi < 0x7ff00000) col.int64BEPlus(buf, p, EPOCH_HI, EPOCH_LO);
              else this.decoders[i]!(buf, p, len, col);
              break;
            }
            case DecodeKind.JSONB:
              if (buf[p] === 1) col.bytes(buf, p + 1, p + len);
              else this.decoders[i]!(buf, p, len, col);
              break;
            case DecodeKind.DECIMAL64:
              if (!numericInto(buf, p, this.scales[i]!, col)) this.decoders[i]!(buf, p, len, col);
              break;
            case DecodeKind.LIST_BYTES: {
              const ndim = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
              if (ndim > 1 || (ndim === 1 && len < 20) || len < 12) {
                // A multidimensional array (the codec throws the mapping error), or a header shorter than its
                // fields (the codec's checked reads refuse it): the inline reads below assume a well-formed one.
                this.decoders[i]!(buf, p, len, col);
                break;
              }
              col.beginList();
              if (ndim === 1) {
                const count = (buf[p + 12]! << 24) | (buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!;
                let q = p + 20;
                for (let e = 0; e < count; e++) {
                  const elen = (buf[q]! << 24) | (buf[q + 1]! << 16) | (buf[q + 2]! << 8) | buf[q + 3]!;
                  q += 4;
                  if (elen < 0) col.nullElement();
                  else {
                    col.bytes(buf, q, q + elen);
                    q += elen;
                  }
                }
              }
              col.endList();
              break;
            }
            default:
              this.decoders[i]!(buf, p, len, col);
          }
          p += len;
        }
      }
      this.lastTuple = p - start;
      this.pos = p;
      this.rows++;
      endRow();
    }
    return false;
  }

  /** Throws unless the stream ended exactly after the trailer. */
  end(): void {
    if (!this.trailerSeen || this.pos !== this.stop) {
      throw new SourceError('COPY stream ended before its trailer (truncated data)');
    }
  }
}
