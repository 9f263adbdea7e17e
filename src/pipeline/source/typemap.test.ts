import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PgTypeInfo, planColumn } from './typemap.js';
import { pgTypeInfo } from './types/entry.js';
import { numericUnscaled, numericUnscaledNumber } from './types/numeric.js';

/** Postgres' binary numeric (numeric_send) for a decimal string, written from the format. */
function numericSend(text: string, dscale: number): Buffer {
  const neg = text.startsWith('-');
  const [ip = '0', fp = ''] = text.replace('-', '').split('.');
  const intPart = ip.replace(/^0+/, '');
  const pad = (4 - (intPart.length % 4)) % 4;
  const intDigits = `${'0'.repeat(pad)}${intPart}`;
  const frac = fp.padEnd(Math.ceil(fp.length / 4) * 4, '0');
  let digits = [...(intDigits.match(/.{4}/g) ?? []), ...(frac.match(/.{4}/g) ?? [])].map(Number);
  let weight = intDigits.length / 4 - 1;
  while (digits.length && digits[0] === 0) {
    digits = digits.slice(1);
    weight--;
  }
  while (digits.length && digits.at(-1) === 0) digits = digits.slice(0, -1);
  const b = Buffer.alloc(8 + 2 * digits.length);
  b.writeInt16BE(digits.length, 0);
  b.writeInt16BE(digits.length ? weight : 0, 2);
  b.writeUInt16BE(neg && digits.length ? 0x4000 : 0, 4);
  b.writeInt16BE(dscale, 6);
  for (const [i, d] of digits.entries()) b.writeInt16BE(d, 8 + 2 * i);
  return b;
}

describe('numeric decoding', () => {
  it('the number fast path equals the exact BigInt path whenever it answers (seeded)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 18n) + 1n, max: 10n ** 18n - 1n }),
        fc.integer({ min: 0, max: 18 }),
        (unscaled, scale) => {
          const abs = (unscaled < 0n ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
          const text = `${unscaled < 0n ? '-' : ''}${scale ? `${abs.slice(0, -scale)}.${abs.slice(-scale)}` : abs}`;
          const b = numericSend(text, scale);
          const exact = numericUnscaled(b, 0, scale, 'x');
          expect(exact).toBe(unscaled);
          const fast = numericUnscaledNumber(b, 0, scale);
          if (fast !== undefined) expect(BigInt(fast)).toBe(unscaled);
          // Base-10000 groups add up to three padding zeros: below 2^40 the fast path always answers.
          if (unscaled > -(2n ** 40n) && unscaled < 2n ** 40n) expect(fast).not.toBeUndefined();
        },
      ),
      { seed: 11, numRuns: 2000 },
    );
  });
});

describe('types are resolved by OID and namespace, never by bare name', () => {
  const type = (oid: number, typname: string, nspname: string, more: Partial<PgTypeInfo> = {}): PgTypeInfo =>
    pgTypeInfo(oid, typname, { nspname, ...more });
  const types = new Map(
    [
      type(2950, 'uuid', 'pg_catalog'),
      type(20, 'int8', 'pg_catalog'),
      type(1082, 'date', 'pg_catalog'),
      type(90001, 'uuid', 'myschema', { typtype: 'c', typcategory: 'C' }),
      type(90002, 'int8', 'myschema', { typtype: 'c', typcategory: 'C' }),
      type(90003, 'date', 'myschema', { typtype: 'c', typcategory: 'C' }),
      type(90004, 'uuid_d', 'myschema', { typtype: 'd', typbasetype: 90001 }),
      type(90005, 'big', 'myschema', { typtype: 'd', typbasetype: 20 }),
      type(90006, '_uuid', 'myschema', { typcategory: 'A', typelem: 90001 }),
      type(90007, 'citext', 'public', { extname: 'citext' }),
      type(90008, 'citext', 'myschema', { typtype: 'c', typcategory: 'C' }),
      type(90009, 'int8', 'myschema2'),
    ].map((t) => [t.oid, t]),
  );
  const plan = (oid: number) =>
    planColumn({ name: 'c', notNull: false, typeOid: oid, typmod: -1, pgType: String(oid) }, types);
  it.each([
    [2950, false, 'FIXED_LEN_BYTE_ARRAY'],
    [20, false, 'INT64'],
    [1082, false, 'INT32'],
    [90001, true, 'BYTE_ARRAY'],
    [90002, true, 'BYTE_ARRAY'],
    [90003, true, 'BYTE_ARRAY'],
    [90004, true, 'BYTE_ARRAY'],
    [90005, false, 'INT64'],
    [90006, true, 'BYTE_ARRAY'],
    [90007, false, 'BYTE_ARRAY'],
    [90008, true, 'BYTE_ARRAY'],
    [90009, true, 'BYTE_ARRAY'],
  ])('type oid %i: text form %s, physical %s', (oid, textForm, physical) => {
    const p = plan(oid);
    expect(p.textForm).toBe(textForm);
    expect(p.spec.leaf.physical).toBe(physical);
    if (textForm) expect(p.select).toContain("format('%s'");
  });
});
