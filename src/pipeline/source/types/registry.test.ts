import { describe, expect, it } from 'vitest';
import { DecodeKind, pgTypeInfo as pgType } from './entry.js';
import { columnCodec, entryFor, TYPE_ENTRIES } from './registry.js';

describe('the type registry', () => {
  it('has one entry per type, each keyed by a built-in OID or by its extension', () => {
    const keys = TYPE_ENTRIES.map((e) => (e.oid !== undefined ? `oid ${e.oid}` : `${e.extension}.${e.name}`));
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(TYPE_ENTRIES.map((e) => e.name)).size).toBe(TYPE_ENTRIES.length);
    for (const e of TYPE_ENTRIES) expect(e.oid === undefined).toBe(e.extension !== undefined);
    // Built-in OIDs are below FirstGenbkiObjectId (10000): fixed in every Postgres.
    for (const e of TYPE_ENTRIES) if (e.oid !== undefined) expect(e.oid).toBeLessThan(10_000);
  });

  it('finds a built-in by OID only in pg_catalog, and an extension type only under its extension', () => {
    expect(entryFor(pgType(20, 'int8'))?.name).toBe('int8');
    expect(entryFor(pgType(20, 'int8', { nspname: 'other' }))).toBeUndefined();
    expect(entryFor(pgType(20, 'int8', { typtype: 'c' }))).toBeUndefined();
    expect(entryFor(pgType(99_001, 'citext', { nspname: 'public', extname: 'citext' }))?.name).toBe('citext');
    // An extension installed into pg_catalog keeps its type.
    expect(entryFor(pgType(99_002, 'citext', { extname: 'citext' }))?.name).toBe('citext');
    expect(entryFor(pgType(99_003, 'citext', { nspname: 'public', extname: 'other' }))).toBeUndefined();
    expect(entryFor(pgType(99_004, 'citext', { nspname: 'public' }))).toBeUndefined();
  });

  const types = new Map(
    [
      pgType(1700, 'numeric'),
      pgType(2950, 'uuid'),
      pgType(90_001, 'money2', { nspname: 'app', typtype: 'd', typbasetype: 1700, typtypmod: ((12 << 16) | 2) + 4 }),
      pgType(90_002, 'cents', { nspname: 'app', typtype: 'd', typbasetype: 90_001, typtypmod: ((12 << 16) | 2) + 4 }),
      pgType(90_003, 'id', { nspname: 'app', typtype: 'd', typbasetype: 2950 }),
      pgType(90_004, '_id', { nspname: 'app', typcategory: 'A', typelem: 90_003 }),
      pgType(90_005, 'mood', { nspname: 'app', typtype: 'e', typcategory: 'E' }),
      pgType(90_006, '_mood', { nspname: 'app', typcategory: 'A', typelem: 90_005 }),
      pgType(90_007, 'pair', { nspname: 'app', typtype: 'c', typcategory: 'C' }),
    ].map((t) => [t.oid, t]),
  );

  it('resolves domains (with their typmod), arrays and enums through the registry', () => {
    const decimal = columnCodec('c', 90_002, -1, types);
    expect(decimal.list).toBe(false);
    expect(decimal.codec.leaf).toEqual({ physical: 'INT64', logical: { type: 'DECIMAL', precision: 12, scale: 2 } });
    expect(decimal.codec.kind).toBe(DecodeKind.DECIMAL64);
    expect(decimal.codec.scale).toBe(2);

    const ids = columnCodec('c', 90_004, -1, types);
    expect(ids.list).toBe(true);
    expect(ids.codec.leaf.logical).toEqual({ type: 'UUID' });
    expect(ids.codec.kind).toBe(DecodeKind.CLOSURE);

    const moods = columnCodec('c', 90_006, -1, types);
    expect(moods).toMatchObject({ list: true, codec: { kind: DecodeKind.LIST_BYTES, textForm: false } });
    expect(moods.codec.select('"c"', true)).toBe('"c"');

    const pair = columnCodec('c', 90_007, -1, types);
    expect(pair.codec.textForm).toBe(true);
    expect(pair.codec.select('"c"', false)).toContain('format(\'%s\', "c")');

    expect(columnCodec('c', 1700, -1, types).codec.textForm).toBe(true);
  });

  it('names the column when a type cannot be mapped', () => {
    expect(() => columnCodec('amount', 1700, ((5 << 16) | (-2 & 0x7ff)) + 4, types)).toThrow(
      'column amount: numeric(5,-2) has no Parquet DECIMAL equivalent',
    );
    expect(() => columnCodec('ghost', 12_345, -1, types)).toThrow('column ghost: unknown type oid 12345');
  });
});
