import { describe, expect, it } from 'vitest';
import { accountRootArn, arnAccountId, arnPartition, s3Arn } from './arn.js';

describe('ARNs in the role’s partition', () => {
  it.each([
    ['arn:aws:iam::123456789012:role/dropship', 'aws'],
    ['arn:aws-cn:iam::123456789012:role/dropship', 'aws-cn'],
    ['arn:aws-us-gov:iam::123456789012:role/dropship', 'aws-us-gov'],
    ['arn:aws-iso-b:iam::123456789012:role/dropship', 'aws-iso-b'],
    ['123456789012', 'aws'],
    ['', 'aws'],
  ])('the partition of %s is %s', (arn, partition) => {
    expect(arnPartition(arn)).toBe(partition);
  });

  it('builds S3 bucket and object ARNs and account-root principals in the partition', () => {
    expect(s3Arn('aws-cn', 'acme-data')).toBe('arn:aws-cn:s3:::acme-data');
    expect(s3Arn('aws-cn', 'acme-data', 'exports/*')).toBe('arn:aws-cn:s3:::acme-data/exports/*');
    expect(s3Arn('aws', 'acme-data', '*')).toBe('arn:aws:s3:::acme-data/*');
    expect(accountRootArn('aws-us-gov', '123456789012')).toBe('arn:aws-us-gov:iam::123456789012:root');
  });

  it('reads the account ID of an ARN', () => {
    expect(arnAccountId('arn:aws-us-gov:iam::123456789012:role/dropship')).toBe('123456789012');
    expect(arnAccountId('arn:aws:s3:::acme-data')).toBeUndefined();
    expect(arnAccountId('not-an-arn')).toBeUndefined();
  });
});
