import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteSink } from './bytes.js';
import { bitWidth, encodeHybrid } from './rle.js';

/** A straightforward decoder of the RLE / bit-packing hybrid, written from the spec. */
function decode(buf: Buffer, width: number, count: number): number[] {
  const out: number[] = [];
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[p++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (out.length < count) {
    const header = varint();
    if (header % 2 === 0) {
      let value = 0;
      for (let i = 0; i < Math.ceil(width / 8); i++) value += buf[p++]! * 2 ** (8 * i);
      for (let i = 0; i < header / 2; i++) out.push(value);
    } else {
      const n = ((header - 1) / 2) * 8;
      let bitPos = 0;
      const start = p;
      for (let i = 0; i < n; i++) {
        let v = 0;
        for (let b = 0; b < width; b++) {
          const bit = (buf[start + ((bitPos + b) >> 3)]! >> ((bitPos + b) & 7)) & 1;
          v += bit * 2 ** b;
        }
        bitPos += width;
        out.push(v);
      }
      p = start + (n * width) / 8;
    }
  }
  return out.slice(0, count);
}

describe('RLE / bit-packing hybrid', () => {
  it('round-trips any sequence at any width (seeded)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.array(fc.nat(), { maxLength: 400 }),
        fc.nat({ max: 20 }),
        (width, raw, runBias) => {
          const max = 2 ** width - 1;
          // Mix long runs with noise, so both RLE and bit-packed runs occur.
          const values = raw.flatMap((v, i) => (i % 5 === 0 ? Array(runBias).fill(v % (max + 1)) : [v % (max + 1)]));
          const arr = width <= 8 ? Uint8Array.from(values) : Uint32Array.from(values);
          const out = new ByteSink(16);
          encodeHybrid(arr, values.length, width, out);
          expect(decode(out.toBuffer(), width, values.length)).toEqual(values);
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('uses RLE runs for repeated values (compact)', () => {
    const out = new ByteSink(16);
    encodeHybrid(new Uint8Array(10_000).fill(1), 10_000, bitWidth(1), out);
    expect(out.pos).toBeLessThan(5);
  });
});
