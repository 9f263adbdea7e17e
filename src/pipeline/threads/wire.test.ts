import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { Chunk } from '../parquet/column.js';
import { packGroup, unpackGroup, type WireGroup } from './wire.js';

const page = (data: Buffer, numValues = 3) => ({
  numValues,
  uncompressedSize: data.length + 1,
  encoding: 0,
  data: Promise.resolve(data),
});

/** A page in a buffer of its own (as page buffers and compression outputs are), filled with `fill`. */
const ownPage = (size: number, fill: number): Buffer => Buffer.from(new ArrayBuffer(size)).fill(fill);

/** Sends a packed group through a real MessageChannel, transferring what packGroup says to. */
function send(packed: { group: WireGroup; transfer: ArrayBuffer[] }): WireGroup {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(packed.group, packed.transfer);
  const got = receiveMessageOnPort(port2)!.message as WireGroup;
  port1.close();
  return got;
}

async function bytes(chunks: Chunk[]): Promise<string[][]> {
  return Promise.all(chunks.map(async (c) => Promise.all(c.pages.map(async (p) => (await p.data).toString('hex')))));
}

describe('a row group between threads', () => {
  it('moves large pages in their own buffers, copies the rest, and arrives intact', async () => {
    // Prepare: a large page in its own buffer, a small one, two views of one buffer, a dictionary, bounds.
    const big = ownPage(64 * 1024, 7);
    const small = Buffer.from([1, 2, 3]);
    const shared = Buffer.from(new ArrayBuffer(80 * 1024)).fill(9);
    const chunks: Chunk[] = [
      {
        pages: [page(big), page(small)],
        dictionary: page(ownPage(32 * 1024, 5), 2),
        stats: { nulls: 4, min: Buffer.from('a'), max: Buffer.from('z') },
      },
      { pages: [page(shared.subarray(0, 40 * 1024)), page(shared.subarray(40 * 1024))], stats: { nulls: 0 } },
    ];
    const expected = await bytes(chunks);

    // Act
    const packed = await packGroup(chunks, 10);
    const got = unpackGroup(send(packed));

    // Assess: only the two buffers that hold one page each moved (and are gone here; the shared one was copied).
    expect(packed.group.pages).toHaveLength(2);
    expect(big.buffer.byteLength).toBe(0);
    expect(shared.buffer.byteLength).toBe(80 * 1024);
    expect(await bytes(got)).toEqual(expected);
    expect(got[0]!.stats).toEqual({ nulls: 4, min: Buffer.from('a'), max: Buffer.from('z') });
    expect(got[1]!.stats).toEqual({ nulls: 0 });
    expect((await got[0]!.dictionary!.data).equals(Buffer.alloc(32 * 1024, 5))).toBe(true);
    expect(got[0]!.dictionary!.numValues).toBe(2);
    expect(got[0]!.pages.map((p) => [p.numValues, p.uncompressedSize])).toEqual([
      [3, 64 * 1024 + 1],
      [3, 4],
    ]);
  });

  it('copies every page when asked (a buffer that could not be transferred)', async () => {
    // Prepare
    const big = ownPage(64 * 1024, 3);
    const chunks: Chunk[] = [{ pages: [page(big)], stats: { nulls: 0 } }];

    // Act
    const packed = await packGroup(chunks, 1, true);
    const got = unpackGroup(send(packed));

    // Assess
    expect(packed.group.pages).toEqual([]);
    expect(big.buffer.byteLength).toBe(64 * 1024);
    expect((await got[0]!.pages[0]!.data).equals(Buffer.alloc(64 * 1024, 3))).toBe(true);
  });
});
