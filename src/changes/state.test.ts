import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrefixLines } from './state.js';

async function run(chunks: Buffer[], prefix: string): Promise<string> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), new PrefixLines(prefix), async (src: AsyncIterable<Buffer>) => {
    for await (const b of src) out.push(b);
  });
  return Buffer.concat(out).toString('utf8');
}

describe('PrefixLines (COPY text lines → state rows)', () => {
  it('prefixes every line however the stream is chunked (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.string({ maxLength: 12 }).map((s) => s.replace(/\n/g, ' ')),
          { maxLength: 20 },
        ),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
        async (lines, cuts) => {
          const text = lines.map((l) => `${l}\n`).join('');
          const bytes = Buffer.from(text, 'utf8');
          const chunks: Buffer[] = [];
          for (let at = 0, i = 0; at < bytes.length; i++) {
            const n = cuts[i % cuts.length]!;
            chunks.push(bytes.subarray(at, at + n));
            at += n;
          }
          expect(await run(chunks, '42\t')).toBe(lines.map((l) => `42\t${l}\n`).join(''));
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });
});
