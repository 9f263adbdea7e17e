import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { ByteSink, LevelSink } from './bytes.js';
import { bitWidth, encodeHybrid, packBooleans } from './rle.js';
import { type ColumnSpec, type Levels, levelsOf } from './schema.js';
import { type BigIntStats, type BytesStats, type NumberStats, type Stats, statsFor } from './stats.js';

const gzip = promisify(gzipCb);

export interface EncodedPage {
  /** Level entries in the page (values plus nulls and empty lists). */
  numValues: number;
  uncompressedSize: number;
  data: Promise<Buffer>;
}

export interface PageOptions {
  /** Uncompressed bytes at which a page is cut (at a row boundary). */
  pageSize: number;
  gzipLevel: number;
}

/**
 * Buffers one column of the current row group: PLAIN-encoded values and Dremel levels,
 * cut into data pages (V1) at row boundaries. Each page is gzip-compressed in libuv's
 * thread pool as soon as it is cut, so compression overlaps decoding on the main thread.
 */
export class ColumnBuilder {
  readonly spec: ColumnSpec;
  readonly levels: Levels;
  readonly stats: Stats;
  readonly values = new ByteSink(64 * 1024);
  /** Boolean columns keep one byte per value and bit-pack when a page is cut. */
  private readonly bools: LevelSink | undefined;
  private readonly def: LevelSink | undefined;
  private readonly rep: LevelSink | undefined;
  private readonly defWidth: number;
  private readonly repWidth: number;
  /** Level entries in the current page (equals values for REQUIRED flat columns). */
  private entries = 0;
  pages: EncodedPage[] = [];
  /** Uncompressed bytes buffered for this row group (finished pages plus current page). */
  bufferedBytes = 0;
  private listFirst = true;
  private readonly typeLength: number;

  constructor(
    spec: ColumnSpec,
    private readonly opts: PageOptions,
  ) {
    this.spec = spec;
    this.levels = levelsOf(spec);
    this.stats = statsFor(spec.leaf);
    this.defWidth = bitWidth(this.levels.maxDef);
    this.repWidth = bitWidth(this.levels.maxRep);
    if (this.levels.maxDef > 0) this.def = new LevelSink(8192);
    if (this.levels.maxRep > 0) this.rep = new LevelSink(8192);
    if (spec.leaf.physical === 'BOOLEAN') this.bools = new LevelSink(8192);
    this.typeLength = spec.leaf.typeLength ?? 0;
  }

  // ---- row structure -------------------------------------------------------------------

  /** A NULL column value (NULL list for list columns). */
  nullValue(): void {
    this.rep?.push(0);
    this.def!.push(this.levels.defNull);
    this.entries++;
    this.stats.nulls++;
  }

  /** Starts a list value; follow with elements, then `endList()`. */
  beginList(): void {
    this.listFirst = true;
  }

  endList(): void {
    if (this.listFirst) {
      // No element was written: an empty list.
      this.rep!.push(0);
      this.def!.push(this.levels.defEmpty);
      this.entries++;
      this.stats.nulls++;
    }
  }

  nullElement(): void {
    this.rep!.push(this.listFirst ? 0 : 1);
    this.listFirst = false;
    this.def!.push(this.levels.defNullElement);
    this.entries++;
    this.stats.nulls++;
  }

  /** Records the levels of a present value (flat or list element). */
  private present(): void {
    if (this.rep) {
      this.rep.push(this.listFirst ? 0 : 1);
      this.listFirst = false;
    }
    this.def?.push(this.levels.maxDef);
    this.entries++;
  }

  // ---- values (source bytes are big-endian, as Postgres sends them) ---------------------

  int32(v: number): void {
    this.present();
    this.values.int32LE(v);
    (this.stats as NumberStats).add(v);
  }

  int64(v: bigint): void {
    this.present();
    const out = this.values;
    out.ensure(8);
    out.buf.writeBigInt64LE(v, out.pos);
    out.pos += 8;
    (this.stats as BigIntStats).add(v);
  }

  float(v: number): void {
    this.present();
    const out = this.values;
    out.ensure(4);
    out.buf.writeFloatLE(v, out.pos);
    out.pos += 4;
    (this.stats as NumberStats).add(v);
  }

  double(v: number): void {
    this.present();
    const out = this.values;
    out.ensure(8);
    out.buf.writeDoubleLE(v, out.pos);
    out.pos += 8;
    (this.stats as NumberStats).add(v);
  }

  boolean(v: boolean): void {
    this.present();
    this.bools!.push(v ? 1 : 0);
    (this.stats as NumberStats).add(v ? 1 : 0);
  }

  /** BYTE_ARRAY value copied from `src[start, end)`. */
  bytes(src: Buffer, start: number, end: number): void {
    this.present();
    const out = this.values;
    out.uint32LE(end - start);
    out.bytes(src, start, end);
    (this.stats as BytesStats).add(src, start, end);
  }

  /** FIXED_LEN_BYTE_ARRAY value; `src[start, start + typeLength)`. */
  fixed(src: Buffer, start: number): void {
    this.present();
    const end = start + this.typeLength;
    this.values.bytes(src, start, end);
    (this.stats as BytesStats).add(src, start, end);
  }

  // ---- pages ----------------------------------------------------------------------------

  /** Bytes in the page being filled. */
  get pageBytes(): number {
    return this.values.pos + (this.bools?.length ?? 0) / 8 + this.entries / 4;
  }

  /** Called at row boundaries: cuts a page once it reached the page size. */
  maybeCutPage(): void {
    if (this.pageBytes >= this.opts.pageSize) this.cutPage();
  }

  cutPage(): void {
    if (this.entries === 0) return;
    const body = new ByteSink(this.values.pos + (this.entries >> 1) + 64);
    if (this.rep) writeLevels(this.rep, this.entries, this.repWidth, body);
    if (this.def) writeLevels(this.def, this.entries, this.defWidth, body);
    if (this.bools) packBooleans(this.bools.data, this.bools.length, body);
    else body.bytes(this.values.buf, 0, this.values.pos);
    const raw = body.view();
    this.pages.push({
      numValues: this.entries,
      uncompressedSize: raw.length,
      data: gzip(raw, { level: this.opts.gzipLevel }),
    });
    this.bufferedBytes += raw.length;
    this.entries = 0;
    this.values.reset();
    this.rep?.reset();
    this.def?.reset();
    this.bools?.reset();
  }

  /** Hands over the row group's pages and statistics, and starts a fresh chunk. */
  takeChunk(): { pages: EncodedPage[]; stats: { nulls: number; min?: Buffer; max?: Buffer } } {
    this.cutPage();
    const pages = this.pages;
    const min = this.stats.encodeMin();
    const max = this.stats.encodeMax();
    const stats = { nulls: this.stats.nulls, ...(min && max ? { min, max } : {}) };
    this.pages = [];
    this.bufferedBytes = 0;
    this.stats.reset();
    return { pages, stats };
  }
}

function writeLevels(levels: LevelSink, count: number, width: number, out: ByteSink): void {
  const lenAt = out.pos;
  out.uint32LE(0);
  encodeHybrid(levels.data, count, width, out);
  out.buf.writeUInt32LE(out.pos - lenAt - 4, lenAt);
}
