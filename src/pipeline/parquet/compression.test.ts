import { randomFillSync } from 'node:crypto';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { snappyUncompress } from 'hysnappy';
import { afterAll, describe, expect, it } from 'vitest';
import { type Compression, CompressionPool, PageBuffers } from './compression.js';

const pool = new CompressionPool(1);
afterAll(() => pool.close());

/** A compressible page of `size` bytes, different per `seed`. */
function page(size: number, seed: number): Buffer {
  const text = Buffer.from(`{"path":"/p/${seed}","n":${seed * 7},"ref":"${seed.toString(36).repeat(9)}"}`);
  const b = pool.buffers.take(size).subarray(0, size);
  for (let p = 0; p < size; p += text.length) text.copy(b, p, 0, Math.min(text.length, size - p));
  return b;
}

function decompress(codec: Compression, data: Buffer, size: number): Buffer {
  if (codec === 'gzip') return gunzipSync(data);
  if (codec === 'zstd') return zstdDecompressSync(data);
  const out = snappyUncompress(data, size);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

describe('CompressionPool workers', () => {
  for (const [codec, workers] of [
    ['snappy', 1],
    ['zstd', 1],
    ['gzip', 2],
  ] as const) {
    it(`${codec}: a burst of pages on a pool of two starts ${workers} worker(s), and every page decompresses to itself`, async () => {
      // Prepare: a pool of two, as on a two-core machine; a row group's pages cut at once.
      const two = new CompressionPool(2);
      try {
        const raws = Array.from({ length: 8 }, (_, i) => page(100_000 + i, i + 40));
        const expected = raws.map((r) => Buffer.from(r));

        // Act: all pages in flight together, so a second worker would be started if the codec may have one.
        const outs = await Promise.all(raws.map((r) => two.compress(r, { codec, level: codec === 'zstd' ? 1 : 4 })));

        // Assert
        expect(two.workers).toBe(workers);
        for (const [i, out] of outs.entries())
          expect(decompress(codec, out, 100_000 + i).equals(expected[i]!)).toBe(true);
      } finally {
        await two.close();
      }
    });
  }

  it('prewarm starts one worker for a codec that needs one, none for none, and never a second', async () => {
    const pool2 = new CompressionPool(2);
    try {
      pool2.prewarm('none');
      expect(pool2.workers).toBe(0);
      pool2.prewarm('gzip');
      pool2.prewarm('gzip');
      expect(pool2.workers).toBe(1);
      // The warm worker compresses the first page.
      const raw = page(100_000, 90);
      const expected = Buffer.from(raw);
      const out = await pool2.compress(raw, { codec: 'gzip', level: 4 });
      expect(decompress('gzip', out, 100_000).equals(expected)).toBe(true);
      expect(pool2.workers).toBe(1);
    } finally {
      await pool2.close();
    }
  });

  it('ZSTD above level 3 (slow) gets every worker of the pool, as GZIP does', async () => {
    const two = new CompressionPool(2);
    try {
      const raws = Array.from({ length: 8 }, (_, i) => page(100_000, i + 70));
      const expected = raws.map((r) => Buffer.from(r));
      const outs = await Promise.all(raws.map((r) => two.compress(r, { codec: 'zstd', level: 9 })));
      expect(two.workers).toBe(2);
      for (const [i, out] of outs.entries()) expect(decompress('zstd', out, 100_000).equals(expected[i]!)).toBe(true);
    } finally {
      await two.close();
    }
  });

  it('SNAPPY: a page that does not compress comes back in a fresh buffer, and the buffer sent along for it returns to the list', async () => {
    // Prepare: a pool of its own, so its list holds only what this page brings back.
    const own = new CompressionPool(1);
    try {
      const raw = own.buffers.take(200_000);
      randomFillSync(raw);
      const expected = Buffer.from(raw);

      // Act
      const out = await own.compress(raw, { codec: 'snappy', level: 0 });

      // Assert: Snappy's output of random bytes is a little larger than the page; the page and the unused output
      // buffer (the worker's "spare") are both back on the list.
      expect(out.length).toBeGreaterThan(200_000);
      expect(decompress('snappy', out, 200_000).equals(expected)).toBe(true);
      expect(own.buffers.size).toBe(2);
    } finally {
      await own.close();
    }
  });

  for (const codec of ['snappy', 'zstd'] as const)
    it(`${codec}: a pool whose written pages never come back (reuseOutputs false) keeps outputs exact-sized`, async () => {
      const exact = new CompressionPool(1, false);
      try {
        const raw = exact.buffers.take(300_000);
        page(300_000, 80).copy(raw);
        const expected = Buffer.from(raw);
        const out = await exact.compress(raw, { codec, level: 1 });
        expect(decompress(codec, out, 300_000).equals(expected)).toBe(true);
        expect(out.buffer.byteLength).toBeLessThan(out.length + 4096);
      } finally {
        await exact.close();
      }
    });

  it('a pool that GZIP grew to two workers compresses SNAPPY pages with them (no third started, none stopped)', async () => {
    const two = new CompressionPool(2);
    try {
      await Promise.all([0, 1, 2, 3].map((i) => two.compress(page(100_000, i + 50), { codec: 'gzip', level: 4 })));
      expect(two.workers).toBe(2);
      const outs = await Promise.all(
        [0, 1, 2, 3].map((i) => two.compress(page(100_000, i + 60), { codec: 'snappy', level: 0 })),
      );
      expect(two.workers).toBe(2);
      for (const [i, out] of outs.entries())
        expect(decompress('snappy', out, 100_000).equals(page(100_000, i + 60))).toBe(true);
    } finally {
      await two.close();
    }
  });
});

describe('CompressionPool page buffers', () => {
  for (const codec of ['gzip', 'zstd', 'snappy'] as const) {
    it(`${codec}: pages come back from the worker and are reused; every page decompresses to itself`, async () => {
      // Prepare: large pages (a worker compresses them) and small ones (compressed in this thread),
      // a large page after a small one, so a reused codec buffer would show stale bytes.
      const sizes = [300_000, 200_000, 9_000, 300_000, 4_000, 250_000, 300_000, 12_000];
      const before = pool.buffers.allocated;

      // Act: one page at a time, as a single column cuts them.
      for (const [i, size] of sizes.entries()) {
        const raw = page(size, i);
        const expected = Buffer.from(raw);
        const out = await pool.compress(raw, { codec, level: codec === 'zstd' ? 3 : 6 });

        // Assert
        expect(decompress(codec, out, size).equals(expected)).toBe(true);
        // Written: the Parquet writer gives the page's memory back (reusePages), for the next page or output.
        pool.buffers.reuse(out);
      }
      // The first page's buffer (300,000 bytes) comes back and holds every later page but none
      // larger than it: one allocation for eight pages, where every page was a fresh buffer; SNAPPY's
      // output is written into a second page buffer (its worker's snappyInto), which comes back the same way.
      expect(pool.buffers.allocated - before).toBeLessThanOrEqual(codec === 'snappy' ? 2 : 1);
      expect(pool.buffers.size).toBeGreaterThan(0);
    });
  }

  for (const codec of ['gzip', 'zstd', 'snappy'] as const) {
    it(`${codec}: pages of random bytes, and of random bytes between text, decompress to themselves`, async () => {
      // Prepare: incompressible runs (UUIDs, hashes) where a Snappy encoder skips ahead, then matches again; one
      // page per thread (a worker's, and this thread's below 16 KiB).
      for (const size of [400_000, 12_000]) {
        const raw = page(size, 11);
        for (let p = 0; p < size; p += 4096) randomFillSync(raw, p, Math.min(size - p, p % 8192 === 0 ? 4096 : 512));
        const expected = Buffer.from(raw);

        // Act
        const out = await pool.compress(raw, { codec, level: codec === 'zstd' ? 3 : 6 });

        // Assert
        expect(decompress(codec, out, size).equals(expected)).toBe(true);
      }
    });

    it(`${codec}: a page above 4 MiB (one huge value), then the next pages, decompress to themselves`, async () => {
      // Prepare: the worker's Snappy instance starts afresh after a page this large (its memory never shrinks).
      const sizes = [5 * 1024 * 1024 + 3, 300_000, 40_000];

      for (const [i, size] of sizes.entries()) {
        const raw = page(size, 20 + i);
        const expected = Buffer.from(raw);

        // Act
        const out = await pool.compress(raw, { codec, level: codec === 'zstd' ? 1 : 6 });

        // Assert
        expect(decompress(codec, out, size).equals(expected)).toBe(true);
        // A page buffer or output chunk of the page's size is kept whole only up to 4 MiB: the huge page's compressed
        // bytes (text: a fraction of it) are not held at its size until their row group is written.
        if (size > 4 * 1024 * 1024) expect(out.buffer.byteLength).toBeLessThan(out.length + 4096);
        else expect(out.buffer.byteLength).toBeLessThanOrEqual(4 * 1024 * 1024);
      }
    });

    it(`${codec}: a small page compressed in this thread holds memory of about its own size`, async () => {
      // Prepare: a page below the in-thread limit (a wide table's pages).
      const raw = page(8_000, 3);

      // Act
      const out = await pool.compress(raw, { codec, level: 3 });

      // Assert: not a view into a larger output chunk that would stay alive with it.
      expect(out.buffer.byteLength).toBeLessThanOrEqual(out.length + 4096);
    });
  }

  it('keeps at most its limit of bytes (the largest buffers), and hands out only a buffer large enough', () => {
    // Prepare: room for 13,000 bytes.
    const buffers = new PageBuffers(13_000);

    // Act: 1,000 + 2,000 + 4,000 fit; 8,000 lets the two smallest go; 500 fits beside them; 3,000 does not, and the
    // only smaller buffer (500) could not make room for it, so nothing is let go.
    for (const n of [1000, 2000, 4000, 8000, 500, 3000]) buffers.give(new ArrayBuffer(n));
    const kept = buffers.size;
    const held = buffers.bytes;
    const large = buffers.take(4500);
    const next = buffers.take(1500);
    const fresh = buffers.take(4500);

    // Assert: a small buffer never pushed out one a page fits in.
    expect(kept).toBe(3);
    expect(held).toBe(12_500);
    expect(large.length).toBe(8000);
    expect(next.length).toBe(4000);
    expect(fresh.length).toBe(4500);
    expect(buffers.allocated).toBe(1);
    expect(buffers.bytes).toBe(500);
  });

  it('hands out the smallest of a larger class when its own class has none that fits', () => {
    // Prepare: two buffers in one class (4,097–8,192 bytes), none in the class of 3,000 (2,049–4,096).
    const buffers = new PageBuffers();
    for (const n of [8000, 5000]) buffers.give(new ArrayBuffer(n));

    // Act
    const b = buffers.take(3000);

    // Assert
    expect(b.length).toBe(5000);
  });

  it('hands out the smallest buffer that fits, and keeps no buffer above its size limit', () => {
    // Prepare
    const buffers = new PageBuffers(1 << 20, 10_000);
    for (const n of [9_000, 3_000, 6_000, 50_000]) buffers.give(new ArrayBuffer(n));

    // Act
    const kept = buffers.size;
    const small = buffers.take(2_000);
    const middle = buffers.take(2_000);

    // Assert: the 50,000-byte buffer was not kept; best fit first.
    expect(kept).toBe(3);
    expect(small.length).toBe(3_000);
    expect(middle.length).toBe(6_000);
  });

  it("holds a wide table's row group of small pages, so the next row group's pages are not fresh memory", () => {
    // Prepare: 1,000 columns' pages, rounded up to 4 KiB as cutPage does (8 or 12 KiB), cut, written and given back.
    const buffers = new PageBuffers();
    const sizes = Array.from({ length: 1000 }, (_, i) => 4096 * (2 + (i % 2)));
    const sum = sizes.reduce((a, b) => a + b, 0);
    const first = sizes.map((n) => buffers.take(n));
    for (const b of first) buffers.reuse(b);
    const allocatedFirst = buffers.allocated;
    const heldFirst = buffers.bytes;

    // Act: the next row group's pages, of the same columns; then four 2 MiB pages come back beside them (the fourth only fits once small ones go).
    const second = sizes.map((n) => buffers.take(n));
    for (const b of second) buffers.reuse(b);
    for (let i = 0; i < 4; i++) buffers.give(new ArrayBuffer(2 * 1024 * 1024));
    const large = [0, 1, 2, 3].map(() => buffers.take(2 * 1024 * 1024));

    // Assert: every page of the second row group came from the list; the list held the whole row group, and made
    // room for the larger pages by letting small ones go, within its 16 MiB.
    expect(allocatedFirst).toBe(1000);
    expect(heldFirst).toBe(sum);
    expect(second.every((b, i) => b.length === sizes[i])).toBe(true);
    expect(large.every((b) => b.length === 2 * 1024 * 1024)).toBe(true);
    expect(buffers.allocated).toBe(1000);
    // No more small pages let go than needed: less than one page (12 KiB) below the 16 MiB.
    expect(buffers.bytes + 4 * 2 * 1024 * 1024).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(buffers.bytes + 4 * 2 * 1024 * 1024).toBeGreaterThan(16 * 1024 * 1024 - 12 * 1024);
  });

  it('lets small buffers go, not large ones, when it is full', () => {
    // Prepare: room for 64 KiB, filled with 4 KiB buffers.
    const buffers = new PageBuffers(64 * 1024);
    for (let i = 0; i < 16; i++) buffers.give(new ArrayBuffer(4096));

    // Act: a 32 KiB buffer comes back, then a 1 KiB one (no room, nothing smaller to let go).
    buffers.give(new ArrayBuffer(32 * 1024));
    buffers.give(new ArrayBuffer(1024));

    // Assert: eight 4 KiB buffers made room for the 32 KiB one; the 1 KiB one was not kept.
    expect(buffers.bytes).toBe(64 * 1024);
    expect(buffers.size).toBe(9);
    expect(buffers.take(20_000).length).toBe(32 * 1024);
  });

  it("takes back a written page only when its memory is the page's alone", () => {
    // Prepare
    const buffers = new PageBuffers();
    const taken = buffers.take(4096);
    const workerOutput = buffers.own(Buffer.from(new ArrayBuffer(3000)));
    const codecView = Buffer.from(new ArrayBuffer(8192)).subarray(0, 100); // e.g. a view into a codec's memory
    const foreign = Buffer.from(new ArrayBuffer(6000)); // not handed out by the list, not marked as a page's own
    const offsetView = buffers.take(2048).subarray(16);

    // Act
    for (const b of [taken.subarray(0, 1000), workerOutput, codecView, foreign, offsetView]) buffers.reuse(b);
    buffers.reuse(taken); // twice: the second is ignored

    // Assert: the taken page and the worker's output came back, once each; nothing else did.
    expect(buffers.size).toBe(2);
    const sizes = [buffers.take(1).buffer.byteLength, buffers.take(1).buffer.byteLength].sort((a, b) => a - b);
    expect(sizes).toEqual([3000, 4096]);
  });
});
