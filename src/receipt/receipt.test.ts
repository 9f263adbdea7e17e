import { describe, expect, it } from 'vitest';
import { buildReceipt, type DeliveredTable, receiptBody } from './receipt.js';
import { validateReceipt } from './validate.js';

const table = (name: string): DeliveredTable => ({
  table: name,
  folder: `2026-11-23T04:00/${name}`,
  rows: 1,
  bytes: 100,
  files: [
    { key: `2026-11-23T04:00/${name}/${name}_000000000000.parquet.gz`, rows: 1, bytes: 100, sha256: 'a'.repeat(64) },
  ],
  columns: [{ name: '__proto__', postgres_type: 'integer', parquet_type: 'INT32', nullable: true, text_form: false }],
});

describe('receipt tables named like Object.prototype members', () => {
  it('lists __proto__, constructor, toString and hasOwnProperty under their own names and validates', () => {
    // Prepare
    const names = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf'];
    // Act
    const receipt = buildReceipt('20261123T040000Z-abcdef', 1_795_000_000_000_000n, names.map(table));
    const body = receiptBody(receipt);
    // Assess: the serialized bytes (what customers read) and a parse of them
    const parsed = JSON.parse(body) as { tables: Record<string, { columns: { name: string }[] }> };
    expect(Object.keys(parsed.tables)).toEqual(names);
    expect(Object.getOwnPropertyDescriptor(parsed.tables, '__proto__')?.value.columns[0].name).toBe('__proto__');
    expect(validateReceipt(parsed)).toEqual([]);
    expect(Object.getPrototypeOf(parsed.tables)).toBe(Object.prototype);
  });
});
