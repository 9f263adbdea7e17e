import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../store/migrations.js';
import { MIGRATION_NOTES, migrationLine } from './migration-notes.js';

describe('migrate --check’s descriptions', () => {
  it('describe exactly the migrations this release has, and flag the ones that lock runs', () => {
    // Assess: one note per version 1..SCHEMA_VERSION (a new migration needs its line), none beyond.
    expect(Object.keys(MIGRATION_NOTES).map(Number)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect(migrationLine(23)).toMatch(/^\s+23 {2}runs newest first.*\[locks runs: builds 2 indexes on runs/);
    expect(migrationLine(22)).not.toContain('locks runs');
    for (const note of Object.values(MIGRATION_NOTES)) expect(note.what).not.toContain('\n');
  });
});
