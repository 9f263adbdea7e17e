import type { Chunk, EncodedPage } from '../parquet/column.js';

/**
 * A row group on its way from the thread that read it to the thread that writes the file, transferred between
 * threads, not copied: a page whose memory is its own ArrayBuffer (a page buffer, a compression worker's output)
 * travels as that buffer (`pages`), everything else —
 * small pages that may share Node's buffer pool, statistics bounds, which the writer keeps until the footer — is
 * copied into one buffer (`bytes`).
 *
 * Measured (issue 27; `npm run bench -- --rows 2000000 --codecs none`, a V8 profile of the second thread): copying
 * every page into one buffer took 8.4 % of that thread's time, most of it faulting in fresh memory.
 */
export interface WireGroup {
  rows: number;
  chunks: WireChunk[];
  bytes: ArrayBuffer;
  /** Buffers that each hold one page, transferred; `at[0]` of a page indexes them (−1: `bytes`). */
  pages: ArrayBuffer[];
}

/** `[buffer, offset, length]`: buffer −1 is `bytes`, else an index into `pages`. */
type At = [number, number, number];

interface WirePage {
  numValues: number;
  uncompressedSize: number;
  encoding: number;
  at: At;
}

interface WireChunk {
  pages: WirePage[];
  dictionary?: WirePage;
  nulls: number;
  min?: At;
  max?: At;
}

/**
 * A page travels in its own buffer when it is that buffer's only content and not small (the pages given here own their
 * memory: page buffers, compression outputs, copies; a buffer two of the group's pages share is copied). Page buffers are cut to an
 * estimate of the page (values, indices at two bytes each), so a dictionary page's buffer may be mostly empty: slack up
 * to the page's own size (or 64 KiB) is accepted, held only until the page is written.
 */
const OWN_BUFFER_MIN = 16 * 1024;
const OWN_BUFFER_SLACK = 64 * 1024;

/**
 * Waits for a row group's pages to be compressed and packs them. `transfer` lists what is to be transferred with it
 * (`bytes` and `pages`); with `copyAll` every page is copied (for a buffer that turned out not to be transferable).
 */
export async function packGroup(
  chunks: Chunk[],
  rows: number,
  copyAll = false,
): Promise<{ group: WireGroup; transfer: ArrayBuffer[] }> {
  const data = await Promise.all(
    chunks.map(async (c) => ({
      pages: await Promise.all(c.pages.map((p) => p.data)),
      dictionary: c.dictionary ? await c.dictionary.data : undefined,
    })),
  );
  const pages: ArrayBuffer[] = [];
  // How many of the group's buffers (pages, dictionaries, bounds) view each ArrayBuffer: one viewed twice is copied.
  const views = new Map<ArrayBufferLike, number>();
  const count = (b: Uint8Array | undefined): void => {
    if (b) views.set(b.buffer, (views.get(b.buffer) ?? 0) + 1);
  };
  for (let i = 0; i < chunks.length; i++) {
    for (const b of data[i]!.pages) count(b);
    count(data[i]!.dictionary);
    count(chunks[i]!.stats.min);
    count(chunks[i]!.stats.max);
  }
  const own = (b: Buffer): boolean =>
    !copyAll &&
    b.byteOffset === 0 &&
    b.length >= OWN_BUFFER_MIN &&
    b.buffer instanceof ArrayBuffer &&
    b.buffer.byteLength <= 2 * b.length + OWN_BUFFER_SLACK &&
    views.get(b.buffer) === 1;
  const owned = new Set<Buffer>();
  let total = 0;
  for (let i = 0; i < chunks.length; i++) {
    const d = data[i]!;
    for (const b of d.dictionary ? [d.dictionary, ...d.pages] : d.pages) {
      if (own(b)) owned.add(b);
      else total += b.length;
    }
    total += (chunks[i]!.stats.min?.length ?? 0) + (chunks[i]!.stats.max?.length ?? 0);
  }
  const bytes = new ArrayBuffer(total);
  const out = new Uint8Array(bytes);
  let offset = 0;
  const put = (b: Uint8Array): At => {
    if (owned.has(b as Buffer)) {
      pages.push(b.buffer as ArrayBuffer);
      return [pages.length - 1, 0, b.length];
    }
    out.set(b, offset);
    offset += b.length;
    return [-1, offset - b.length, b.length];
  };
  const page = (p: EncodedPage, b: Buffer): WirePage => ({
    numValues: p.numValues,
    uncompressedSize: p.uncompressedSize,
    encoding: p.encoding,
    at: put(b),
  });
  const wire = chunks.map((c, i): WireChunk => {
    const d = data[i]!;
    return {
      ...(c.dictionary && d.dictionary ? { dictionary: page(c.dictionary, d.dictionary) } : {}),
      pages: c.pages.map((p, j) => page(p, d.pages[j]!)),
      nulls: c.stats.nulls,
      ...(c.stats.min && c.stats.max ? { min: put(c.stats.min), max: put(c.stats.max) } : {}),
    };
  });
  return { group: { rows, chunks: wire, bytes, pages }, transfer: [bytes, ...pages] };
}

/** A copy in memory of its own. */
function own(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

/** The chunks of a packed row group, as the writer takes them (`ParquetWriter.appendRowGroup`). */
export function unpackGroup(group: WireGroup): Chunk[] {
  const slice = ([buffer, offset, length]: At): Buffer =>
    Buffer.from(buffer < 0 ? group.bytes : group.pages[buffer]!, offset, length);
  const page = (p: WirePage): EncodedPage => ({
    numValues: p.numValues,
    uncompressedSize: p.uncompressedSize,
    encoding: p.encoding,
    data: Promise.resolve(slice(p.at)),
  });
  return group.chunks.map((c) => ({
    pages: c.pages.map(page),
    ...(c.dictionary ? { dictionary: page(c.dictionary) } : {}),
    // Bounds stay until the shard's footer: copies of their own, or each would keep the whole `bytes` alive.
    stats: { nulls: c.nulls, ...(c.min && c.max ? { min: own(slice(c.min)), max: own(slice(c.max)) } : {}) },
  }));
}
