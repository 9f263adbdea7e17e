import type { ColumnBuilder } from '../parquet/column.js';
import { SourceError } from './errors.js';
import { type ColumnPlan, DecodeKind, type Decoder, EPOCH_HI, EPOCH_LO, numericUnscaledNumber } from './typemap.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * Decoder for PostgreSQL's binary COPY stream (https://www.postgresql.org/docs/current/sql-copy.html,
 * "Binary Format"). Tuples are decoded straight into Parquet column builders: no JS object per
 * row, no text parsing. Chunks may split tuples anywhere; a tuple is only applied once all of
 * its bytes are here, so a partial tuple never reaches the columns.
 */
export class BinaryCopyDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private headerDone = false;
  private trailerSeen = false;
  rows = 0;
  private readonly decoders: Decoder[];
  private readonly kinds: Uint8Array;
  private readonly scales: Int8Array;

  /** `plans`: how each column's values decode (src/source/typemap.ts); `columns`: the builders they go to. */
  constructor(
    plans: Pick<ColumnPlan, 'decode' | 'kind' | 'scale'>[],
    private readonly columns: () => ColumnBuilder[],
  ) {
    this.decoders = plans.map((c) => c.decode);
    this.kinds = Uint8Array.from(plans.map((c) => c.kind));
    this.scales = Int8Array.from(plans.map((c) => c.scale));
  }

  feed(chunk: Buffer): void {
    if (this.pos < this.buf.length) {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    } else {
      this.buf = chunk;
    }
    this.pos = 0;
  }

  /**
   * Decodes buffered tuples until the input runs out or `full()` says the row group is full.
   * Returns true when it stopped because of `full()` (call again after flushing).
   */
  run(endRow: () => void, full: () => boolean): boolean {
    const buf = this.buf;
    if (!this.headerDone) {
      if (buf.length - this.pos < 19) return false;
      if (!buf.subarray(this.pos, this.pos + 11).equals(SIGNATURE)) {
        throw new SourceError('COPY stream does not start with the binary COPY signature');
      }
      const extension = buf.readUInt32BE(this.pos + 15);
      if (buf.length - this.pos < 19 + extension) return false;
      this.pos += 19 + extension;
      this.headerDone = true;
    }
    const n = this.decoders.length;
    const cols = this.columns();
    const kinds = this.kinds;
    while (this.pos + 2 <= buf.length) {
      if (full()) return true;
      const start = this.pos;
      const fields = buf.readInt16BE(start);
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
        if (p + 4 > buf.length) {
          complete = false;
          break;
        }
        const len = buf.readInt32BE(p);
        p += 4 + Math.max(len, 0);
        if (p > buf.length) {
          complete = false;
          break;
        }
      }
      if (!complete) return false;
      // Second pass: decode.
      p = start + 2;
      for (let i = 0; i < n; i++) {
        const len = buf.readInt32BE(p);
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
              col.int32(buf.readInt32BE(p));
              break;
            case DecodeKind.INT8:
              col.int64Parts(buf.readInt32BE(p), buf.readUInt32BE(p + 4));
              break;
            case DecodeKind.FLOAT8:
              col.double(buf.readDoubleBE(p));
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
              const hi = buf.readInt32BE(p);
              if (hi > -0x7ff00000 && hi < 0x7ff00000) {
                // µs since 2000 → since 1970 on 32-bit halves with carry (exact).
                const lo = buf.readUInt32BE(p + 4) + EPOCH_LO;
                const carry = lo >= 0x100000000 ? 1 : 0;
                col.int64Parts(hi + EPOCH_HI + carry, carry ? lo - 0x100000000 : lo);
              } else this.decoders[i]!(buf, p, len, col);
              break;
            }
            case DecodeKind.JSONB:
              if (buf[p] === 1) col.bytes(buf, p + 1, p + len);
              else this.decoders[i]!(buf, p, len, col);
              break;
            case DecodeKind.DECIMAL64: {
              const v = numericUnscaledNumber(buf, p, this.scales[i]!);
              if (v === undefined) this.decoders[i]!(buf, p, len, col);
              else {
                const hi = Math.floor(v / 0x100000000);
                col.int64Parts(hi, v - hi * 0x100000000);
              }
              break;
            }
            case DecodeKind.LIST_BYTES: {
              const ndim = buf.readInt32BE(p);
              if (ndim > 1) {
                this.decoders[i]!(buf, p, len, col); // throws the mapping error
                break;
              }
              col.beginList();
              if (ndim === 1) {
                const count = buf.readInt32BE(p + 12);
                let q = p + 20;
                for (let e = 0; e < count; e++) {
                  const elen = buf.readInt32BE(q);
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
      this.pos = p;
      this.rows++;
      endRow();
    }
    return false;
  }

  /** Throws unless the stream ended exactly after the trailer. */
  end(): void {
    if (!this.trailerSeen || this.pos !== this.buf.length) {
      throw new SourceError('COPY stream ended before its trailer (truncated data)');
    }
  }
}
