import { describe, expect, it } from 'vitest';
import { MAX_PATTERNS, selectionSchema } from './selection.js';

describe('selection lists are bounded (each pattern is matched against every table at every run)', () => {
  it(`refuses more than ${MAX_PATTERNS} patterns in a list, naming the list; repeats count once`, () => {
    const many = Array.from({ length: MAX_PATTERNS + 1 }, (_, i) => `t${i}`);
    for (const list of ['includeTables', 'excludeTables', 'globalTables'] as const) {
      const r = selectionSchema.safeParse({
        [list]: many,
        ...(list === 'globalTables' ? { tenantColumn: 'org', tenantValue: '1' } : {}),
      });
      expect(r.success).toBe(false);
      expect(r.error!.issues.map((i) => [i.path.join('.'), i.message])).toContainEqual([
        list,
        `at most ${MAX_PATTERNS} patterns (globs: one pattern can name many tables)`,
      ]);
    }
    const columns = selectionSchema.safeParse({ excludeColumns: many.map((t) => `${t}.c`) });
    expect(columns.success).toBe(false);
    // The same pattern given many times is one pattern (the CLI's comma-separated form too).
    const repeated = selectionSchema.parse({ includeTables: Array(500).fill('events'), excludeTables: 'a,b,a,a' });
    expect(repeated.includeTables).toEqual(['events']);
    expect(repeated.excludeTables).toEqual(['a', 'b']);
    expect(selectionSchema.parse({ includeTables: many.slice(0, MAX_PATTERNS) }).includeTables).toHaveLength(
      MAX_PATTERNS,
    );
  });
});
