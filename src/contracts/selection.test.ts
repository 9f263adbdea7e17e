import { describe, expect, it } from 'vitest';
import { globRegExp, matchesAny, selectionSchema, splitColumnPattern } from './selection.js';

describe('selection', () => {
  it('globs: * and ? only, everything else literal, case-sensitive, whole name', () => {
    expect(globRegExp('ref_*').test('ref_countries')).toBe(true);
    expect(globRegExp('ref_*').test('xref_countries')).toBe(false);
    expect(globRegExp('a?c').test('abc')).toBe(true);
    expect(globRegExp('a?c').test('ac')).toBe(false);
    expect(globRegExp('a.c').test('abc')).toBe(false);
    expect(globRegExp('a+(b)[c]$').test('a+(b)[c]$')).toBe(true);
    expect(globRegExp('Events').test('events')).toBe(false);
    expect(matchesAny('audit_log', ['x', 'audit_*'])).toBe('audit_*');
    expect(splitColumnPattern('*.e.mail')).toEqual({ table: '*', column: 'e.mail' });
  });

  it('parses comma lists, and says what is wrong with a selection', () => {
    const ok = selectionSchema.parse({ tenantColumn: 'org', tenantValue: '7', globalTables: ' countries , ref_* ,' });
    expect(ok.globalTables).toEqual(['countries', 'ref_*']);
    expect(ok.excludeColumns).toEqual([]);
    const bad = selectionSchema.safeParse({ tenantColumn: 'org', excludeColumns: 'email', dropTenantColumn: true });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'excludeColumns.0: exclude-columns entries are "table.column" (globs allowed on both sides, e.g. "*.email")',
      'tenantValue: tenant mode needs both --tenant-column and --tenant-value',
    ]);
    const half = selectionSchema.safeParse({ tenantValue: '7', globalTables: 'x' });
    expect(half.error?.issues.map((i) => i.message)).toEqual([
      'tenant mode needs both --tenant-column and --tenant-value',
      '--global-tables only applies in tenant mode (--tenant-column)',
    ]);
    expect(selectionSchema.safeParse({ tenantColumn: 'org', tenantValue: 'a\u0000b' }).success).toBe(false);
  });
});
