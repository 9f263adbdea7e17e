import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatch, matchesAny, selectionSchema, splitColumnPattern } from './selection.js';

describe('selection', () => {
  it.each([
    ['ref_*', 'ref_countries', true],
    ['ref_*', 'xref_countries', false],
    ['ref_*', 'ref_', true],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['a?c', 'abbc', false],
    ['a.c', 'abc', false],
    ['a.c', 'a.c', true],
    ['a+(b)[c]$', 'a+(b)[c]$', true],
    ['^a|b\\d', '^a|b\\d', true],
    ['Events', 'events', false],
    ['*', '', true],
    ['*', 'anything at all', true],
    ['', '', true],
    ['?', '', false],
    ['?', '😀', true],
    ['ü?', 'üx', true],
    ['**', 'x', true],
    ['*a', 'ba', true],
    ['*a', 'ab', false],
    ['a*', 'ab', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXcYb', false],
    ['*ab*ab*', 'xabyab', true],
    ['*ab*ab*', 'xaby', false],
    ['*a?c*', 'zzabcyy', true],
    ['a*?', 'a', false],
    ['a*?', 'ab', true],
    ['*a*a*a*a*a*a*ab', `${'a'.repeat(59)}b`, true],
    ['*a*a*a*a*a*a*ab', 'a'.repeat(60), false],
  ])(
    'glob %j against %j: %s (* any run, ? one character, everything else literal, case-sensitive, whole name)',
    (p, name, want) => {
      expect(globMatch(p, name)).toBe(want);
    },
  );

  it('glob matching is linear in the name: the pathological pattern on a 10,000-character name takes O(length) steps', () => {
    const steps = { count: 0 };
    const name = 'a'.repeat(10_000);
    expect(globMatch('*a*a*a*a*a*a*ab', name, steps)).toBe(false);
    // A backtracking matcher (the RegExp this replaced) needs ~n^6 steps here.
    expect(steps.count).toBeLessThanOrEqual(4 * name.length);
    const longest = { count: 0 };
    const pattern = `${'*a'.repeat(99)}*`; // 199 characters, the longest a pattern may be is 200
    globMatch(pattern, `${'b'.repeat(10_000)}`, longest);
    expect(longest.count).toBeLessThanOrEqual((pattern.length + 1) * 10_001);
  });

  it('agrees with an anchored RegExp (u flag) on short patterns and names (seeded)', () => {
    const word = (chars: string[], max: number) =>
      fc.array(fc.constantFrom(...chars), { maxLength: max }).map((a) => a.join(''));
    fc.assert(
      fc.property(word(['a', 'b', '*', '?', '.'], 8), word(['a', 'b', '.', '😀'], 10), (p, name) => {
        const re = new RegExp(
          `^${[...p].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c === '.' ? '\\.' : c)).join('')}$`,
          'su',
        );
        expect(globMatch(p, name)).toBe(re.test(name));
      }),
      { seed: 22, numRuns: 3000 },
    );
  });

  it('matchesAny names the first pattern that matches', () => {
    expect(matchesAny('audit_log', ['x', 'audit_*'])).toBe('audit_*');
    expect(matchesAny('audit_log', ['x'])).toBeUndefined();
    expect(splitColumnPattern('*.e.mail')).toEqual({ table: '*', column: 'e.mail' });
  });

  it('parses comma lists, and says what is wrong with a selection', () => {
    const ok = selectionSchema.parse({
      tenantColumn: 'org',
      tenantValue: '7',
      globalTables: ' countries , ref_codes ,',
    });
    expect(ok.globalTables).toEqual(['countries', 'ref_codes']);
    // Global tables are named exactly: a pattern would send whole a table nobody named.
    const globbed = selectionSchema.safeParse({ tenantColumn: 'org', tenantValue: '7', globalTables: 'ref_*,countr?' });
    expect(globbed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'globalTables.0: global tables are named exactly, without * or ?: a pattern would send whole a table nobody named (a new one, or one whose tenant column was renamed or dropped)',
      'globalTables.1: global tables are named exactly, without * or ?: a pattern would send whole a table nobody named (a new one, or one whose tenant column was renamed or dropped)',
    ]);
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
