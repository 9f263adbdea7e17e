import { describe, expect, it } from 'vitest';
import { CopyOutParser } from './copy-out.js';

/** A protocol message: type byte, length (itself included), body. */
const message = (code: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = code.charCodeAt(0);
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};

/** A deterministic pseudo-random generator (the splits and payloads of each case). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Feeds `wire` cut at `cuts` (each chunk a fresh copy: the parser moves bytes inside it). */
function parseSplit(wire: Buffer, cuts: number[]) {
  const parser = new CopyOutParser();
  const data: Buffer[] = [];
  let end: { rest: Buffer; error: boolean } | undefined;
  const after: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    const chunk = Buffer.from(wire.subarray(at, cut));
    at = cut;
    if (end) {
      after.push(chunk);
      continue;
    }
    const r = parser.parse(chunk);
    if (r.data) data.push(Buffer.from(r.data));
    if (r.end) end = r.end;
  }
  return { data: Buffer.concat(data), end, handedBack: end ? Buffer.concat([end.rest, ...after]) : undefined };
}

describe('the COPY TO STDOUT reader (CopyOutParser)', () => {
  it('gives the CopyData bytes, and hands back what follows CopyDone, however the socket cut the messages', () => {
    for (let seed = 1; seed <= 300; seed++) {
      // Prepare: CopyOutResponse, rows (some empty), a notice and a parameter status among them, CopyDone, then pg's
      const r = rng(seed);
      const payloads = Array.from({ length: 1 + Math.floor(r() * 40) }, () =>
        Buffer.from(Array.from({ length: Math.floor(r() * 30) }, () => Math.floor(r() * 256))),
      );
      const rows = payloads.map((p) => message('d', p));
      rows.splice(Math.floor(r() * rows.length), 0, message('N', Buffer.from('SNOTICE\0Mhello\0\0')));
      rows.splice(Math.floor(r() * rows.length), 0, message('S', Buffer.from('application_name\0x\0')));
      const tail = Buffer.concat([message('C', Buffer.from('COPY 3\0')), message('Z', Buffer.from('I'))]);
      const wire = Buffer.concat([message('H', Buffer.from([1, 0, 0])), ...rows, message('c', Buffer.alloc(0)), tail]);
      const cuts = [...new Set(Array.from({ length: Math.floor(r() * 25) }, () => Math.floor(r() * wire.length)))].sort(
        (a, b) => a - b,
      );
      if (seed % 10 === 0) for (let i = 1; i < wire.length; i++) cuts.push(i); // one byte at a time
      // Act
      const out = parseSplit(
        wire,
        [...new Set(cuts)].sort((a, b) => a - b),
      );
      // Assess
      expect(out.data.equals(Buffer.concat(payloads)), `seed ${seed}`).toBe(true);
      expect(out.end?.error, `seed ${seed}`).toBe(false);
      expect(out.handedBack?.equals(tail), `seed ${seed}`).toBe(true);
    }
  });

  it('an ErrorResponse ends the copy: pg is handed the error message whole (its header too), wherever it was cut', () => {
    const rows = [message('d', Buffer.from('row-1')), message('d', Buffer.from('row-2'))];
    const error = message('E', Buffer.from('SERROR\0C57P01\0Mterminating connection\0\0'));
    const tail = message('Z', Buffer.from('I'));
    const wire = Buffer.concat([...rows, error, tail]);
    const errorAt = rows[0]!.length + rows[1]!.length;
    for (let cut = 1; cut < wire.length; cut++) {
      const out = parseSplit(wire, [cut]);
      expect(out.data.toString(), `cut ${cut}`).toBe('row-1row-2');
      expect(out.end?.error, `cut ${cut}`).toBe(true);
      expect(out.handedBack?.equals(wire.subarray(errorAt)), `cut ${cut}`).toBe(true);
    }
  });
});
