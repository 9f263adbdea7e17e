import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { settingsSchema } from './settings.js';
import { SETTINGS_REFERENCE, settingsReference } from './settings-reference.js';

describe('the settings reference', () => {
  it('docs/operations/settings.md is the generated reference (npm run docs:settings rewrites it)', () => {
    const file = readFileSync(new URL('../../docs/operations/settings.md', import.meta.url), 'utf8');
    expect(file).toBe(settingsReference());
  });

  it('names every setting of the schema once, with its default from the schema', () => {
    const text = settingsReference();
    for (const name of Object.keys(settingsSchema.shape)) {
      expect(Object.keys(SETTINGS_REFERENCE)).toContain(name);
      expect(text.split('\n').filter((l) => l.startsWith(`| \`${name}\` |`)).length, name).toBe(1);
    }
    expect(text).toContain('| `DROPSHIP_SHARD_TARGET_BYTES` | 134217728 (128 MiB) |');
    expect(text).toContain('| `DROPSHIP_PAID_SLOTS` | `04:00,15:00` |');
    expect(text).toContain('| `DROPSHIP_WORKER_CONCURRENCY` | 8 |');
  });
});
