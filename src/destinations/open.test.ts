import { describe, expect, it } from 'vitest';
import { type Destination, reviveDestination, s3TargetOf } from '../accounts/destination.js';
import { ConfigError, loadSettings } from '../config/settings.js';
import { LocalDestination } from './local/adapter.js';
import { openTarget } from './open.js';
import { S3Destination } from './s3/adapter.js';

const s3 = {
  bucket: 'acme-data',
  prefix: 'dropship/exports',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::123456789012:role/dropship-export',
};
/** A destination as a run froze it before destinations had a target (dropship.runs.destination). */
const frozenBefore = {
  accountId: 'acme',
  plan: 'paid',
  ...s3,
  externalId: 'x',
  sourceSchema: 'acme',
  layout: 'dreamdata',
  selection: { dropTenantColumn: false, globalTables: [], includeTables: [], excludeTables: [], excludeColumns: [] },
  compression: 'gzip',
  changes: false,
  enabled: true,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  generation: 1,
  version: 1,
};

describe('opening a destination target', () => {
  it('a run frozen before targets existed reads as its S3 bucket, and opens the S3 adapter', () => {
    // Act
    const dest = reviveDestination(JSON.parse(JSON.stringify(frozenBefore)))!;
    // Assess
    expect(dest.target).toEqual({ kind: 's3', ...s3 });
    const port = openTarget(dest, 'r', loadSettings({}));
    expect(port).toBeInstanceOf(S3Destination);
    expect(port.container).toBe('acme-data');
    port.close();
  });

  it('opens a local target only in development mode (DROPSHIP_ALLOW_LOCAL_TARGET)', () => {
    // Prepare
    const dest: Destination = {
      ...reviveDestination(frozenBefore)!,
      target: { kind: 'local', root: '/tmp/x', prefix: s3.prefix },
    };
    // Act + Assess
    expect(() => openTarget(dest, 'r', loadSettings({}))).toThrow(ConfigError);
    expect(() => openTarget(dest, 'r', loadSettings({}))).toThrow(/DROPSHIP_ALLOW_LOCAL_TARGET/);
    expect(openTarget(dest, 'r', loadSettings({ DROPSHIP_ALLOW_LOCAL_TARGET: 'true' }))).toBeInstanceOf(
      LocalDestination,
    );
  });

  it("refuses a target whose prefix is not the destination's (keys carry the destination's prefix)", () => {
    // Prepare
    const dest: Destination = { ...reviveDestination(frozenBefore)!, target: s3TargetOf({ ...s3, prefix: 'other' }) };
    // Act + Assess
    expect(() => openTarget(dest, 'r', loadSettings({}))).toThrow(/target's prefix "other"/);
  });
});
