import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { crc32 } from 'node:zlib';

/**
 * Page compression: the codecs a destination can choose, and a pool of worker threads that
 * compresses Parquet pages off the main thread (the main thread decodes COPY rows; on two cores
 * both are busy, as DuckDB's two threads are).
 *
 * Implementations, measured side by side on 1 MiB Parquet pages of the bench's columns (JSON
 * text, random UUIDs, doubles, increasing int64; Node 20, this machine, one run):
 *
 * | codec   | implementation                      | MB/s | ratio  | note                                  |
 * | ------- | ----------------------------------- | ---- | ------ | ------------------------------------- |
 * | GZIP 6  | `node:zlib` gzipSync                |   43 | 1.447  | what dropship used before             |
 * | GZIP 6  | `libdeflate` 0.1.0 (wasm)           |   59 | 1.457  | **kept**: 1.37× faster, smaller output |
 *   (libdeflate 0.1.0 declares `engines: node >= 24`: tests, CLI and Lambda all run Node 24.)
 * | GZIP 1  | `node:zlib` / `libdeflate`          | 76 / 107 | 1.438 / 1.444 |                               |
 *
 * libdeflate's levels by CPU time (`process.cpuUsage`, so less sensitive to the shared machine's
 * load), output bytes of four 1 MiB pages (JSON, doubles, decimals, timestamps):
 *   zlib 6: 34 MB/s, 2,540,330 B · libdeflate 4: 71 MB/s, 2,529,489 B · libdeflate 6: 53 MB/s, 2,522,062 B.
 * So the default `DROPSHIP_GZIP_LEVEL` is 4: smaller pages than zlib's (and DuckDB's) level 6, 2.1× faster.
 *
 * | SNAPPY  | `snappy` 7.4.3 (native) / `hysnappy` 1.1.1 (wasm) | 231 / 268 | 1.194 | hysnappy used until issue 27's seventh pass |
 * | ZSTD 3  | `@mongodb-js/zstd` 1.2.2 (native, napi-rs prebuilt per platform) | 350 | 1.494 | was used on Node 20; removed with Node 24 |
 * | ZSTD 3  | `@hpcc-js/wasm-zstd` 1.12.5 (wasm)  |   22 | 1.494  | rejected: 16× slower                   |
 *
 * SNAPPY again (issue 27, seventh pass; Node 24, CPU time, the 160 pages of a 1M-row bench export, 114 MB, third of
 * three rounds; each implementation over all pages in turn):
 * `hysnappy` 1.1.1 289–333 MB/s, `snappy` 7.4.3 (napi-rs) 243–264, `snappyjs` 0.7.0 166, **`snappy-wasm` 0.3.0 (Rust's
 * `snap` crate in wasm) 589 MB/s: kept** (1.8×); all but hysnappy write 66.27 % of the input (hysnappy 65.93 %).
 * Google's C++ snappy 1.1.9 (native, g++ -O2) does 812 MB/s on the same pages. Per kind of page, hysnappy →
 * snappy-wasm: JSON text 307 → 546 MB/s, incompressible (UUIDs) 365 → 2,390 (`snap` skips ahead where nothing
 * matches; hysnappy tries every byte). In the export (`test/bench/ab.ts --codec snappy --rounds 3`, 2M rows, against
 * hysnappy, medians): process CPU 2.34 → 2.10 µs/row, the export call 2.12 → 1.89.
 *
 * ZSTD levels (issue 27, seventh pass; Node 24, `node:zlib`, CPU time of the same 160 pages, third of three rounds):
 * level 3 312 MB/s, 45.87 % of the input; level 2 493 MB/s, 47.04 %; **level 1 612 MB/s, 46.49 %: the default**
 * (`DROPSHIP_ZSTD_LEVEL`), as Apache Arrow's C++ writer (pyarrow) has it; level 3 with a 1 MiB window 332 MB/s. In the
 * export (`test/bench/ab.ts --codec zstd --rounds 3`, 2M rows, `DROPSHIP_ZSTD_LEVEL` 3 against 1): process CPU 2.31 →
 * 2.18 µs/row, files 108.4 → 109.9 MB (+1.4 %; DuckDB's level 3 wrote 108.5 MB).
 *
 * ZSTD uses `node:zlib`'s own zstd (Node ≥ 22.15; the project runs Node 24 everywhere, tests and
 * Lambda's nodejs24.x alike, so tests run the Lambda's code path). All outputs are standard frames: GZIP members
 * (RFC 1952), raw Snappy blocks, ZSTD frames, as the Parquet spec requires.
 *
 * Pages that do not compress (random UUIDs, hashes: compressed ≥ 98% of raw) are written, for the
 * rest of their column chunk, as GZIP members of stored DEFLATE blocks (RFC 1951 §3.2.4): the
 * same codec and valid for every reader, without spending CPU on bytes that will not shrink.
 */
export const COMPRESSIONS = ['gzip', 'zstd', 'snappy', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** Parquet `CompressionCodec` codes. */
export const CODEC_CODE: Record<Compression, number> = { none: 0, snappy: 1, gzip: 2, zstd: 6 };

/**
 * Levels when a caller names none (the export passes `DROPSHIP_GZIP_LEVEL` / `DROPSHIP_ZSTD_LEVEL`, defaults 4 and 1):
 * GZIP 6 (DuckDB's and zlib's default), ZSTD 1 (Apache Arrow's default for Parquet).
 */
export const DEFAULT_LEVEL: Record<Compression, number> = { gzip: 6, zstd: 1, snappy: 0, none: 0 };

export interface CompressJob {
  codec: Compression;
  level: number;
  /** `stored`: GZIP with stored blocks only (incompressible data). */
  stored?: boolean;
}

type Pending = { resolve: (b: Buffer) => void; reject: (e: unknown) => void };

interface Slot {
  worker: Worker;
  inFlight: number;
}

// Dynamic imports only: the source runs as CommonJS or as an ES module (a parent started with
// --input-type=module evaluates worker source as a module).
const WORKER_SOURCE = `
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const zlib = await import('node:zlib');
  const libdeflate = await import(workerData.libdeflate);
  // snappy-wasm's ES build, instantiated from its wasm file (see snappyWasm()), compiled once. Its wasm memory grows to
  // the largest page it compressed (~2.6 × the page) and never shrinks: after a page above 4 MiB (one huge value), or
  // a failure (a trap leaves the instance's allocator in doubt), a fresh instance; the old memory becomes garbage.
  const snappyModule = await import(workerData.snappy);
  const snappyCompiled = new WebAssembly.Module((await import('node:fs')).readFileSync(workerData.snappyWasm));
  let snappyWasm = snappyModule.initSync(snappyCompiled);
  let snappyMemory = new Uint8Array(0);
  // snappy-wasm 0.3.0's compress_raw as its wasm-bindgen glue calls it (es/snappy.js: the input copied into wasm
  // memory, the export called, its result read from the stack), except that the result is copied into \`out\` — a page
  // buffer the main thread sent along, which comes back as the compressed page and serves again as a page once that is
  // written — instead of a fresh ArrayBuffer per page (the glue's .slice()): every page's output was new external
  // memory, ~6 more full collections on the main thread per 2M rows than with no codec. Returns the output's length
  // in \`out\`, or the output itself when it does not fit (incompressible bytes grow by a few bytes).
  const snappyInto = (input, out) => {
    const w = snappyWasm;
    const ret = w.__wbindgen_add_to_stack_pointer(-16);
    try {
      const at = w.__wbindgen_malloc(input.length);
      if (snappyMemory.buffer !== w.memory.buffer) snappyMemory = new Uint8Array(w.memory.buffer);
      snappyMemory.set(input, at);
      w.compress_raw(ret, at, input.length);
      if (snappyMemory.buffer !== w.memory.buffer) snappyMemory = new Uint8Array(w.memory.buffer);
      const r = new Int32Array(w.memory.buffer, ret, 4);
      // An error (Snappy's only one: an input above its maximum, ~4 GiB): the glue's own call runs it again and throws
      // it with its message (the error object lives in the glue's table, where this path leaves it: a few bytes, once).
      if (r[3] !== 0) return snappyModule.compress_raw(input);
      const ptr = r[0];
      const len = r[1];
      let result;
      if (out && len <= out.length) {
        out.set(snappyMemory.subarray(ptr, ptr + len));
        result = len;
      } else result = snappyMemory.slice(ptr, ptr + len);
      w.__wbindgen_free(ptr, len);
      return result;
    } finally {
      w.__wbindgen_add_to_stack_pointer(16);
    }
  };
  const snappy = (input, out) => {
    let fresh = input.length > 4 * 1024 * 1024;
    try {
      return snappyInto(input, out);
    } catch (e) {
      fresh = true;
      throw e;
    } finally {
      if (fresh) {
        snappyWasm = snappyModule.initSync(snappyCompiled);
        snappyMemory = new Uint8Array(0);
      }
    }
  };
  // The whole frame in one output chunk (the input's size plus zstd's worst-case overhead): no
  // concatenation of 64 KiB pieces, and a buffer of its own that goes back to the main thread
  // (where it dies young, or serves as the next page buffer) instead of staying in this worker's
  // heap as garbage until its rare GC (~60 MiB of dead zstd output per thread otherwise).
  const zstdCompress = (input, level) =>
    zlib.zstdCompressSync(input, {
      chunkSize: input.length + (input.length >> 7) + 4096,
      params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
    });
  // One page at a time per worker (an async codec would otherwise run every queued page at once,
  // each with its own native context and output buffer).
  let queue = Promise.resolve();
  parentPort.on('message', (m) => {
    queue = queue.then(() => handle(m));
  });
  // The output's whole ArrayBuffer goes (libdeflate and snappy-wasm return exact copies; zstd's
  // is its one output chunk); one that cannot be transferred (Node's buffer pool) is copied.
  const reply = (m, out) => {
    const send = (bytes) =>
      parentPort.postMessage({ id: m.id, buf: bytes.buffer, length: bytes.byteLength, input: m.buf }, [bytes.buffer, m.buf]);
    if (out.byteOffset !== 0) out = new Uint8Array(out);
    try {
      send(out);
    } catch {
      send(new Uint8Array(out));
    }
  };
  const handle = async (m) => {
    try {
      const input = new Uint8Array(m.buf, m.offset, m.length);
      // The page goes back too, for the next page to be cut into (no dead pages left in this
      // worker's heap until its rare GC, and no fresh allocation per page on the main thread).
      if (m.codec === 'snappy') {
        const r = snappy(input, m.out ? new Uint8Array(m.out) : undefined);
        if (typeof r === 'number') {
          parentPort.postMessage({ id: m.id, buf: m.out, length: r, input: m.buf }, [m.out, m.buf]);
          return;
        }
        if (m.out) parentPort.postMessage({ id: 0, spare: m.out }, [m.out]);
        return reply(m, r);
      }
      let out;
      if (m.codec === 'gzip') out = libdeflate.gzip(input, m.level);
      else if (m.codec === 'zstd') out = zstdCompress(input, m.level);
      else throw new Error('unknown codec ' + m.codec);
      reply(m, out);
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
    }
  };
})().catch(async (e) => {
  const { parentPort } = await import('node:worker_threads');
  parentPort.postMessage({ id: -1, error: String((e && e.stack) || e) });
});
`;

/**
 * A small pool of worker threads (default: one per core, at most 4; the fast codecs start one of them: `workersFor`).
 * Pages are transferred to a worker (no copy) and the compressed bytes transferred back (SNAPPY's into a page buffer
 * sent along, ZSTD's in its output chunk: both kept whole, to serve as page buffers once written). Workers are
 * unreferenced while idle, so an idle pool never keeps a process alive; they are created on first use (or by
 * `prewarm`) and live for the process (a Lambda container reuses them across invocations).
 */
export class CompressionPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly urls: Record<string, string>;
  /**
   * Page buffers for the next pages (ColumnBuilder.cutPage): coming back from compression, and written pages given
   * back by the Parquet writer (`reusePages`).
   */
  readonly buffers = new PageBuffers();

  /**
   * `size`: workers at most (default: one per core, at most 4). `reuseOutputs` (default true): outputs are kept in
   * buffers of about their page's size, which become page buffers again once the Parquet writer wrote them
   * (`reusePages`); false where written pages never come back (the second reading thread's pool: its pages travel to
   * the main thread) — outputs are then exact-sized, as the memory they hold is all that matters there.
   */
  constructor(
    private readonly size = Math.max(1, Math.min(4, availableParallelism())),
    private readonly reuseOutputs = true,
  ) {
    const require = createRequire(import.meta.url);
    const resolve = (name: string): string => pathToFileURL(require.resolve(name)).href;
    const snappy = snappyWasm();
    this.urls = {
      libdeflate: resolve('libdeflate'),
      snappy: pathToFileURL(snappy.module).href,
      snappyWasm: snappy.wasm,
    };
  }

  /**
   * Starts the pool's first worker now when a run's pages will need one (any codec but none), so that its start
   * (~65 ms of CPU, ~100 ms of wall: an isolate, the codecs' modules and wasm) overlaps the run's opening — the
   * registry, the assumed role, the ledger, the catalog, the snapshot, where the main thread mostly waits on others —
   * instead of holding up the first pages. A CPU profile of a 1,000-row SNAPPY export had the main thread idle ~110 ms
   * waiting on the worker's start. Measured (`test/bench/ab.ts`, SNAPPY, alternating rounds): 2M rows, 5 rounds,
   * 450,725 → 477,388 rows/s (4 of 5 pairs faster), process CPU 2.07 → 2.02 µs/row; 1,000 rows, 4 rounds, the export
   * 0.46 → 0.39 s. A run whose pages all stay in this thread (tables of a few hundred rows: pages ≤ 16 KiB) pays the
   * start for nothing, once per process (a Lambda container keeps its workers).
   */
  prewarm(codec: Compression): void {
    if (codec !== 'none' && this.slots.length === 0) this.slot({ codec, level: DEFAULT_LEVEL[codec] });
  }

  /** Worker threads running. */
  get workers(): number {
    return this.slots.length;
  }

  /**
   * The least busy worker; a new one when all are busy and the codec may have more (`workersFor`).
   */
  private slot(job: CompressJob): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.inFlight < best.inFlight) best = s;
    if (best && (best.inFlight === 0 || this.slots.length >= workersFor(job, this.size))) return best;
    // Pages and codec buffers live outside the JS heap (transferred ArrayBuffers, wasm memory):
    // a small heap per worker is enough, and keeps each worker's resident memory small.
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: this.urls,
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 48 },
    });
    const slot: Slot = { worker, inFlight: 0 };
    worker.on(
      'message',
      (m: {
        id: number;
        buf?: ArrayBuffer;
        length?: number;
        input?: ArrayBuffer;
        spare?: ArrayBuffer;
        error?: string;
      }) => {
        if (m.id === -1) return this.failAll(new Error(`compression worker failed to start: ${m.error}`));
        if (m.input) this.buffers.give(m.input);
        if (m.spare) this.buffers.give(m.spare);
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (--slot.inFlight === 0) worker.unref();
        if (m.error) p.reject(new Error(`page compression failed: ${m.error}`));
        else {
          const buf = m.buf!;
          const out = Buffer.from(buf, 0, m.length);
          // Kept whole, an output's buffer is the next page's once the page is written (SNAPPY's is a page buffer this
          // thread sent along; ZSTD's is its one output chunk, the page's size plus zstd's bound): a copy of the
          // compressed bytes only for a large chunk mostly empty (a page of one huge value that compressed well), not
          // held at the chunk's size until its row group is written. Copying every ZSTD page (as before) made two
          // fresh buffers per page: 2M rows, 5 rounds alternating, 2.29 → 2.18 µs/row, peak RSS within 2 MiB.
          const whole = this.reuseOutputs && buf.byteLength <= WHOLE_OUTPUT_BYTES;
          if (whole || buf.byteLength - out.length < 4096) p.resolve(this.buffers.own(out));
          else {
            const exact = Buffer.allocUnsafeSlow(out.length);
            out.copy(exact);
            p.resolve(this.buffers.own(exact));
            this.buffers.give(buf);
          }
        }
      },
    );
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', () => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
    });
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private failAll(e: unknown): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const s of this.slots.splice(0)) void s.worker.terminate();
  }

  /**
   * Compresses `raw`. Its memory is transferred to the worker: `raw` must own its ArrayBuffer
   * (see `ownedCopy`) and must not be used afterwards.
   */
  compress(raw: Buffer, job: CompressJob): Promise<Buffer> {
    if (job.codec === 'none') return Promise.resolve(raw);
    if (job.stored && job.codec === 'gzip') {
      const out = storedGzip(raw);
      this.buffers.give(raw.buffer as ArrayBuffer);
      return Promise.resolve(out);
    }
    // A small page costs less to compress here than a round trip to a worker (wide tables cut
    // many small pages at the end of each row group).
    if (raw.length <= IN_THREAD_BYTES)
      return compressInThread(raw, job).then((out) => {
        this.buffers.give(raw.buffer as ArrayBuffer);
        return out;
      });
    // SNAPPY's output is written into a page buffer sent along (see the worker's snappyInto): of the page's size, which
    // holds the output unless the page does not compress (then the worker returns a fresh one, and this one back). Not
    // for a page above WHOLE_OUTPUT_BYTES (one huge value): its output is kept exact-sized anyway.
    const out =
      job.codec === 'snappy' && this.reuseOutputs && raw.length <= WHOLE_OUTPUT_BYTES
        ? (this.buffers.take(raw.length).buffer as ArrayBuffer)
        : undefined;
    const slot = this.slot(job);
    const id = this.nextId++;
    if (slot.inFlight++ === 0) slot.worker.ref();
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.worker.postMessage(
        { id, codec: job.codec, level: job.level, buf: raw.buffer, offset: raw.byteOffset, length: raw.length, out },
        out ? [raw.buffer as ArrayBuffer, out] : [raw.buffer as ArrayBuffer],
      );
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}

/**
 * How many workers a codec's pages may start, of the pool's `size`. GZIP: all of them — libdeflate compresses ~50–100
 * MB/s, slower than the main thread cuts pages. SNAPPY and ZSTD (level 1): one — at ~550–600 MB/s a worker
 * compresses the ~50 MB/s of pages a table's main thread cuts (the bench's 2M rows: ~230 MB of pages in ~4.5 s) with
 * time to spare, and a second worker is an isolate of its own (~65 ms CPU to start, its own JIT and wasm instance)
 * that only takes pages the first would have had moments later. Measured (`test/bench/ab.ts --rows 2000000`, Node
 * 24, alternating, medians): SNAPPY process CPU 2.32 → 2.20 µs/row (4 rounds) and 2.13 → 2.09 (5 rounds, 4 of 5
 * pairs lower), peak RSS −7 to −14 MiB; ZSTD 2.10 → 2.10 µs/row, −7 MiB (5 rounds). A pool that GZIP pages already
 * grew (one process, several tables) lends its workers to every codec. ZSTD above level 3 is GZIP's case.
 */
function workersFor(job: CompressJob, size: number): number {
  // ZSTD above level 3 (DROPSHIP_ZSTD_LEVEL goes to 19) is no longer fast: level 3 does ~310 MB/s, level 9 and up
  // tens of MB/s — those pages get every worker, as GZIP's do.
  return job.codec === 'gzip' || (job.codec === 'zstd' && job.level > 3) ? size : 1;
}

/** Output chunks up to this size are kept whole (as PageBuffers' `maxBufferBytes`: the list takes them back). */
const WHOLE_OUTPUT_BYTES = 4 * 1024 * 1024;

/** Pages up to this size are compressed on the calling thread. */
const IN_THREAD_BYTES = 16 * 1024;

let inThread:
  | Promise<{ gzip: (b: Uint8Array, level: number) => Uint8Array; snappy: (b: Uint8Array) => Uint8Array }>
  | undefined;

/**
 * A free list of page buffers (ArrayBuffers of their own, so transferable to a worker): a page is
 * cut into one (`take`), compressed, and given back (`give`) when its bytes are no longer needed —
 * by the worker, which transfers it back with the compressed page, or after in-thread compression —
 * and, through `reuse`, once a page (uncompressed, or a worker's output) is written. Pages are pre-sized (the page
 * size plus a row) and reused across pages, columns and row groups, so an export allocates a handful of page buffers
 * rather than one per page.
 *
 * The list is bounded by bytes (`maxBytes`), not by a count: a 1,000-column table cuts ~1,000 pages of ~10 KiB per
 * row group, which a list of eight buffers could not hold, so every page was fresh memory — 23,150 buffers, 262 MB for
 * 30,000 rows (counted in the bench's export child), external memory V8 counts toward its next full collection. Free
 * buffers are kept by size class (powers of two), so `take` looks at a few of them, not the whole list.
 */
export class PageBuffers {
  /** Free buffers by size class: class c holds those of (2^(c-1), 2^c] bytes. */
  private readonly classes: ArrayBuffer[][] = Array.from({ length: CLASSES }, () => []);
  /** Bytes on the list per class. */
  private readonly classBytes: number[] = new Array<number>(CLASSES).fill(0);
  private held = 0;
  private count = 0;
  /**
   * ArrayBuffers that belong to one page alone (handed out by `take`, or a worker's output transferred here): only
   * these go back to the list through `reuse`. A page compressed on this thread may be a view of a codec's own
   * memory (WebAssembly's, zlib's chunk), which must never be reused as a page.
   */
  private readonly exclusive = new WeakSet<ArrayBuffer>();
  /** Buffers allocated because none on the list was large enough (for tests and benches). */
  allocated = 0;

  /**
   * `maxBytes`: the bytes the list keeps at most (the process's: a warm Lambda container keeps them); `maxBufferBytes`:
   * the largest buffer it keeps (a page of a huge value is not pinned). 4 MiB holds the default 1 MiB pages and
   * their codecs' outputs; pages of a larger DROPSHIP_PAGE_BYTES are fresh memory each, as before. 16 MiB of list:
   * a wide table's row group of pages (half of DROPSHIP_ROW_GROUP_BYTES' 16 MiB above 500 columns, each page rounded
   * up to 4 KiB), all cut before the first comes back. Counted in the bench's export child, 1,000 columns × 30,000
   * rows: 23,150 page buffers allocated with the list of eight buffers (GZIP or none), 16,951 with 8 MiB of list and
   * 8,285 with 16 MiB (ZSTD). At most what the eight buffers of up to 4 MiB could pin before.
   */
  constructor(
    private readonly maxBytes = 16 * 1024 * 1024,
    private readonly maxBufferBytes = 4 * 1024 * 1024,
  ) {}

  /** An owned buffer of at least `size` bytes (its whole ArrayBuffer, from offset 0): the smallest that fits. */
  take(size: number): Buffer {
    const b = this.takeFree(size);
    if (b) {
      this.exclusive.add(b);
      return Buffer.from(b);
    }
    this.allocated++;
    const fresh = new ArrayBuffer(size);
    this.exclusive.add(fresh);
    return Buffer.from(fresh);
  }

  private takeFree(size: number): ArrayBuffer | undefined {
    const c = sizeClass(size);
    if (c >= CLASSES) return undefined;
    // Its own class may hold smaller buffers than `size`: the smallest that fits (pages' sizes are rounded, so an
    // exact fit is common and ends the search).
    const own = this.classes[c]!;
    let best = -1;
    for (let i = 0; i < own.length; i++) {
      const n = own[i]!.byteLength;
      if (n === size) {
        best = i;
        break;
      }
      if (n > size && (best < 0 || n < own[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.remove(c, best);
    // Every buffer of a larger class fits: the smallest of the smallest such class.
    for (let k = c + 1; k < CLASSES; k++) {
      const list = this.classes[k]!;
      if (list.length > 0) return this.remove(k, smallest(list));
    }
    return undefined;
  }

  private remove(c: number, i: number): ArrayBuffer {
    const list = this.classes[c]!;
    const b = list[i]!;
    list[i] = list[list.length - 1]!;
    list.pop();
    this.held -= b.byteLength;
    this.classBytes[c]! -= b.byteLength;
    this.count--;
    return b;
  }

  /**
   * Returns a buffer no one uses any more (a detached one, or one above `maxBufferBytes`, is ignored). A full list
   * makes room by letting smaller buffers go (the smallest classes first), never larger ones: a small one (a
   * compressed page) does not push out one a whole page fits in; when the smaller ones cannot make room, `b` is not
   * kept and nothing is let go.
   */
  give(b: ArrayBuffer): void {
    // On the list, a buffer is no page's: only `take` hands it out (and marks it) again.
    this.exclusive.delete(b);
    const n = b.byteLength;
    if (n === 0 || n > this.maxBufferBytes || n > this.maxBytes) return;
    const c = sizeClass(n);
    if (this.held + n > this.maxBytes) {
      let smaller = 0;
      for (let k = 0; k < c; k++) smaller += this.classBytes[k]!;
      if (this.held - smaller + n > this.maxBytes) return;
      for (let k = 0; k < c && this.held + n > this.maxBytes; k++) {
        const list = this.classes[k]!;
        while (list.length > 0 && this.held + n > this.maxBytes) this.remove(k, list.length - 1);
      }
    }
    this.classes[c]!.push(b);
    this.held += n;
    this.classBytes[c]! += n;
    this.count++;
  }

  /** Marks `page`'s memory as this page's alone (a worker's output), so `reuse` may take it back. */
  own(page: Buffer): Buffer {
    if (page.byteOffset === 0) this.exclusive.add(page.buffer as ArrayBuffer);
    return page;
  }

  /**
   * A page's bytes were written (its output took them): its buffer goes back to the list when it is the page's
   * alone. Uncompressed pages and workers' outputs were fresh memory for every page until the writer gave them back
   * (issue 27: every page's buffer was external memory V8 counts toward its next full GC).
   */
  reuse(page: Buffer): void {
    const b = page.buffer as ArrayBuffer;
    if (page.byteOffset !== 0 || !this.exclusive.has(b)) return;
    this.give(b);
  }

  /** Buffers on the list. */
  get size(): number {
    return this.count;
  }

  /** Bytes on the list. */
  get bytes(): number {
    return this.held;
  }
}

function smallest(list: ArrayBuffer[]): number {
  let i = 0;
  for (let k = 1; k < list.length; k++) if (list[k]!.byteLength < list[i]!.byteLength) i = k;
  return i;
}

/** Size classes: up to 2^32 bytes (ArrayBuffers above it are never kept: `maxBufferBytes`). */
const CLASSES = 33;

/** ceil(log2(n)) for n ≥ 1: the size class of an n-byte buffer. */
function sizeClass(n: number): number {
  return n <= 1 ? 0 : 32 - Math.clz32(n - 1);
}

/** The same codecs on the calling thread (small pages). */
async function compressInThread(raw: Uint8Array, job: CompressJob): Promise<Buffer> {
  if (job.codec === 'zstd') {
    // node:zlib returns a view into its 64 KiB output chunk: held until the row group is written,
    // a wide table's thousand small pages kept 64 KiB each (1,000 columns: 497 MiB peak RSS).
    const out = zlib.zstdCompressSync(raw, {
      chunkSize: raw.length + (raw.length >> 7) + 1024,
      params: { [zlib.constants.ZSTD_c_compressionLevel]: job.level },
    });
    if (out.buffer.byteLength - out.length <= 4096) return out;
    // A buffer of its own (Buffer.from would share Node's 64 KiB pool slab with other, shorter-lived bytes).
    const exact = Buffer.allocUnsafeSlow(out.length);
    out.copy(exact);
    return exact;
  }
  // Pages here are ≤ 16 KiB: snappy-wasm's memory stays small. A failed load is not kept: the next page tries again.
  inThread ??= Promise.all([import('libdeflate'), import('snappy-wasm')])
    .then(([ld, sn]) => {
      sn.initSync(readFileSync(snappyWasm().wasm));
      return { gzip: ld.gzip, snappy: sn.compress_raw };
    })
    .catch((e: unknown) => {
      inThread = undefined;
      throw e;
    });
  const c = await inThread;
  const out = job.codec === 'gzip' ? c.gzip(raw, job.level) : c.snappy(raw);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * snappy-wasm's ES build and its wasm file. Its package resolves to the ES build for `import` (a browser build: its
 * default `init()` would `fetch()` the wasm file) and to a CommonJS build for `require`, each with a wasm file of its
 * own (their imports differ); both threads use the ES build, instantiated synchronously (`initSync`) from the file's
 * bytes. The literal `import('snappy-wasm')` above is also what tells the Lambda packager to ship the package.
 */
function snappyWasm(): { module: string; wasm: string } {
  const root = dirname(dirname(createRequire(import.meta.url).resolve('snappy-wasm'))); // <root>/cjs/snappy.js
  return { module: join(root, 'es', 'snappy.js'), wasm: join(root, 'es', 'snappy_bg.wasm') };
}

let shared: CompressionPool | undefined;

/** The process-wide pool. */
export function compressionPool(): CompressionPool {
  shared ??= new CompressionPool();
  return shared;
}

/** A copy of `src` in an ArrayBuffer of its own (safe to transfer to a worker). */
export function ownedCopy(src: Uint8Array): Buffer {
  const out = Buffer.from(new ArrayBuffer(src.length));
  out.set(src);
  return out;
}

/** A GZIP member (RFC 1952) of stored DEFLATE blocks (RFC 1951 §3.2.4): valid GZIP, no compression. */
export function storedGzip(raw: Uint8Array): Buffer {
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const out = Buffer.allocUnsafe(10 + blocks * 5 + raw.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255], 0);
  let p = 10;
  for (let b = 0; b < blocks; b++) {
    const start = b * 65535;
    const len = Math.min(65535, raw.length - start);
    out[p] = b === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(len, p + 1);
    out.writeUInt16LE(~len & 0xffff, p + 3);
    out.set(raw.subarray(start, start + len), p + 5);
    p += 5 + len;
  }
  out.writeUInt32LE(crc32(raw), p);
  out.writeUInt32LE(raw.length >>> 0, p + 4);
  return out;
}
