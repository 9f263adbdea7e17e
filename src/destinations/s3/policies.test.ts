import { describe, expect, it } from 'vitest';
import type { Destination } from '../../accounts/destination.js';
import {
  permissionPolicy,
  policyDocuments,
  readerPolicy,
  SESSION_POLICY_MAX_CHARS,
  sessionPolicyJson,
  writeResources,
} from './policies.js';

const KMS = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const dest = (patch: Partial<Destination> = {}): Destination =>
  ({
    accountId: 'acme',
    bucket: 'acme-data',
    prefix: 'exports',
    region: 'eu-west-1',
    roleArn: 'arn:aws:iam::123456789012:role/dropship',
    externalId: 'ext-123',
    ...patch,
  }) as Destination;

describe('policy documents', () => {
  it('are never built from a prefix with an IAM wildcard or policy variable (a destination stored before it was refused)', () => {
    for (const prefix of ['exp*', '*', 'a?b', 'a$b'])
      for (const build of [permissionPolicy, readerPolicy, writeResources])
        expect(() => build(dest({ prefix })), `${build.name} ${prefix}`).toThrow(/IAM reads as wildcards/);
    expect(writeResources(dest({ prefix: 'exp' }))).toEqual([
      'arn:aws:s3:::acme-data/exp/2*',
      'arn:aws:s3:::acme-data/exp/receipt.json',
      'arn:aws:s3:::acme-data/exp/status.json',
      'arn:aws:s3:::acme-data/exp/_dropship_probe/*',
    ]);
    expect(writeResources(dest({ prefix: '' }))[0]).toBe('arn:aws:s3:::acme-data/2*');
  });

  it("the session policy is the permission policy, or — past AWS's 2,048 characters — its statement on <prefix>/*", () => {
    const kms = `arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/${'a'.repeat(36)}`;
    const short = dest({ kmsKeyArn: KMS });
    expect(sessionPolicyJson(short)).toBe(JSON.stringify(permissionPolicy(short)));
    // The longest destination the registry takes: a 63-character bucket, a 512-character prefix, a KMS key.
    const prefix = `${'p'.repeat(99)}/`.repeat(6).slice(0, 512).replace(/\/$/, 'x');
    const long = dest({
      bucket: 'b'.repeat(63),
      prefix,
      roleArn: 'arn:aws-us-gov:iam::123456789012:role/x',
      kmsKeyArn: kms,
    });
    expect(JSON.stringify(permissionPolicy(long)).length).toBeGreaterThan(SESSION_POLICY_MAX_CHARS);
    const session = sessionPolicyJson(long);
    expect(session.length).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
    expect(JSON.parse(session).Statement[0].Resource).toBe(`arn:aws-us-gov:s3:::${'b'.repeat(63)}/${prefix}/*`);
    expect(JSON.parse(session).Statement[1].Resource).toBe(kms);
  });

  it('the reader policy (commercial partition, prefix and KMS key) is the document `dropship policy` prints', () => {
    expect(readerPolicy(dest({ kmsKeyArn: KMS }))).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ReadDropshipExports',
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource: 'arn:aws:s3:::acme-data/exports/*',
        },
        {
          Sid: 'ListDropshipExports',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: 'arn:aws:s3:::acme-data',
          Condition: { StringLike: { 's3:prefix': ['exports/*'] } },
        },
        { Sid: 'DecryptDropshipExports', Effect: 'Allow', Action: 'kms:Decrypt', Resource: KMS },
      ],
    });
    expect(readerPolicy(dest({ prefix: '' })).Statement).toEqual([
      { Sid: 'ReadDropshipExports', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::acme-data/*' },
      { Sid: 'ListDropshipExports', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::acme-data' },
    ]);
  });

  it.each([
    ['aws-cn', 'arn:aws-cn:iam::123456789012:role/dropship'],
    ['aws-us-gov', 'arn:aws-us-gov:iam::123456789012:role/dropship'],
  ])('a role in %s yields S3 ARNs in that partition in the writer and reader policies', (partition, roleArn) => {
    const d = dest({ roleArn });
    expect(writeResources(d)[0]).toBe(`arn:${partition}:s3:::acme-data/exports/2*`);
    expect(permissionPolicy(d).Statement[0]!.Resource).toEqual(writeResources(d));
    const reader = readerPolicy(d).Statement;
    expect(reader[0]!.Resource).toBe(`arn:${partition}:s3:::acme-data/exports/*`);
    expect(reader[1]!.Resource).toBe(`arn:${partition}:s3:::acme-data`);
    const printed = JSON.stringify(policyDocuments(d, `arn:${partition}:iam::999999999999:role/dropship-platform`));
    expect(printed).not.toMatch(/arn:aws:/);
  });

  it('the lifecycle rules and the printed set, in the order `dropship policy` prints them', () => {
    expect(policyDocuments(dest(), 'arn:aws:iam::999999999999:role/p').lifecycle).toEqual({
      Rules: [
        {
          ID: 'dropship-expire-dumps-4b4e49dd2d',
          Status: 'Enabled',
          Filter: { Prefix: 'exports/2' },
          Expiration: { Days: 7 },
        },
        {
          ID: 'dropship-abort-uploads-4b4e49dd2d',
          Status: 'Enabled',
          Filter: { Prefix: 'exports/2' },
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        },
      ],
    });
    expect(Object.keys(policyDocuments(dest(), 'arn:aws:iam::999999999999:role/p'))).toEqual([
      'trust',
      'writer',
      'lifecycle',
      'reader',
    ]);
  });
});
