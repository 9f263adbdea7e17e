import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sizingTable } from './bench/sizing.js';

/** The sizing table in the docs is the forecast's own output (test/bench/sizing.ts), not hand-typed figures. */
describe('sizing table', () => {
  it('docs/operations/production-database.md holds exactly what the forecast computes', () => {
    const doc = readFileSync(new URL('../docs/operations/production-database.md', import.meta.url), 'utf8');
    expect(doc).toContain(sizingTable());
  });
});
