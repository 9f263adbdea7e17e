import { describe, expect, it } from 'vitest';
import { s3TargetOf } from '../accounts/destination.js';
import { describeFailure } from './wording.js';

const s3 = {
  accountId: 'acme',
  bucket: 'acme-data',
  prefix: 'exports',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::123456789012:role/dropship-export',
};
const denied = new Error('account acme: access denied writing s3://acme-data/exports/x (AccessDenied)');

describe("the customer's words for a failure, by target kind", () => {
  it('an S3 target: the S3 adapter words it (write denied, with the fix)', () => {
    // Act
    const f = describeFailure({ ...s3, target: s3TargetOf(s3) }, denied);
    // Assess
    expect(f.code).toBe('write_denied');
    expect(f.reason).toContain('s3://acme-data/exports/');
  });

  it('a destination frozen before targets existed is worded as S3', () => {
    expect(describeFailure(s3, denied).code).toBe('write_denied');
  });

  it('a local target has no S3 words: its failure is ours', () => {
    // Act
    const f = describeFailure({ ...s3, target: { kind: 'local' } }, denied);
    // Assess
    expect(f.code).toBe('internal');
    expect(f.reason).not.toContain('s3://');
  });
});
