import { describe, expect, it } from 'vitest';
import { sha256Hex, verifyLink } from './chain.js';

const receipt = (sequence: number, previous: string | null, run = 'r') =>
  Buffer.from(`${JSON.stringify({ run_id: run, sequence, previous_receipt_sha256: previous }, null, 2)}\n`);

describe('receipt chain links', () => {
  const r1 = receipt(1, null, 'a');
  const r2 = receipt(2, sha256Hex(r1), 'b');
  const r3 = receipt(3, sha256Hex(r2), 'c');

  it('a receipt that follows the previous one verifies', () => {
    expect(verifyLink(r1, r2).ok).toBe(true);
    expect(verifyLink(r2, r3).ok).toBe(true);
  });

  it('tells a gap from a replaced receipt and from a wrong order', () => {
    expect(verifyLink(r1, r3)).toEqual({ ok: false, detail: 'gap: 1 receipt missing between sequence 1 and 3' });
    const replaced = receipt(2, sha256Hex(r1), 'other');
    expect(verifyLink(replaced, r3)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('replaced or altered'),
    });
    expect(verifyLink(r2, r1)).toMatchObject({ ok: false, detail: expect.stringContaining('is not newer') });
    expect(verifyLink(Buffer.from('{}'), r2)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('no sequence'),
    });
  });

  it('a receipt nested too deep is refused before it is parsed, as by every reader of receipts', () => {
    const ok = Buffer.from(JSON.stringify({ sequence: 1, previous_receipt_sha256: null, run_id: 'a' }));
    const deep = Buffer.from(`{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    expect(() => verifyLink(ok, deep)).toThrow(/newer: nested deeper than a receipt may be/);
    expect(() => verifyLink(ok, Buffer.from('{nope'))).toThrow(/newer: not JSON/);
  });
});
