import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sizingTable } from './bench/sizing.js';

/** The sizing table in the docs is the forecast's own output (test/bench/sizing.ts), not hand-typed figures. */
describe('sizing table', () => {
  it('docs/operations/production-database.md holds exactly what the forecast computes', () => {
    // Compared cell by cell: the formatter (biome) pads markdown tables, the figures are what matter.
    const cells = (md: string) =>
      md
        .split('\n')
        .filter((l) => l.startsWith('|') && !/^\|[\s|:-]+\|$/.test(l))
        .map((l) =>
          l
            .split('|')
            .map((c) => c.trim())
            .join('|'),
        );
    const doc = cells(readFileSync(new URL('../docs/operations/production-database.md', import.meta.url), 'utf8'));
    const table = cells(sizingTable());
    expect(table.length).toBeGreaterThan(2);
    const at = doc.indexOf(table[0]!);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(doc.slice(at, at + table.length)).toEqual(table);
  });
});
