import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  addDestinationFlags,
  changesFromOptions,
  DESTINATION_FLAGS,
  patchFromOptions,
  selectionFromOptions,
} from './destination-flags.js';

const parse = (which: 'update' | 'add-selection', args: string[]): Record<string, unknown> => {
  const cmd = addDestinationFlags(new Command('x').exitOverride().configureOutput({ writeErr: () => {} }), which);
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
};

describe('destination flags', () => {
  it('map each given flag to its field, and only the given ones', () => {
    expect(patchFromOptions(parse('update', []))).toEqual({});
    expect(
      patchFromOptions(
        parse('update', [
          '--plan',
          'free',
          '--prefix',
          '',
          '--no-kms-key-arn',
          '--exclude-tables',
          'a*,b',
          '--drop-tenant-column',
        ]),
      ),
    ).toEqual({
      plan: 'free',
      prefix: '',
      kmsKeyArn: null,
      selection: { excludeTables: 'a*,b', dropTenantColumn: true },
    });
    expect(patchFromOptions(parse('update', ['--no-tenant', '--no-drop-tenant-column']))).toEqual({
      selection: { tenantColumn: null, tenantValue: null, dropTenantColumn: false, globalTables: [] },
    });
  });

  it('add takes the selection flags, not the clearing ones', () => {
    expect(selectionFromOptions(parse('add-selection', ['--tenant-column', 'org', '--tenant-value', '7']))).toEqual({
      tenantColumn: 'org',
      tenantValue: '7',
    });
    expect(() => parse('add-selection', ['--no-tenant'])).toThrow();
    // Every row of the table names a distinct flag.
    expect(new Set(DESTINATION_FLAGS.map((f) => f.flags)).size).toBe(DESTINATION_FLAGS.length);
  });

  it('--changes turns change sets on (add and update), --no-changes off (update only)', () => {
    expect(patchFromOptions(parse('update', ['--changes']))).toEqual({ changes: true });
    expect(patchFromOptions(parse('update', ['--no-changes']))).toEqual({ changes: false });
    expect(changesFromOptions(parse('add-selection', ['--changes']))).toEqual({ changes: true });
    expect(changesFromOptions(parse('add-selection', []))).toEqual({});
    expect(() => parse('add-selection', ['--no-changes'])).toThrow();
  });
});
