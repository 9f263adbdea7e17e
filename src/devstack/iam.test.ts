import { describe, expect, it } from 'vitest';
import { permissionPolicy, readerPolicy, trustPolicy } from '../destinations/s3/policies.js';
import { authorize, Iam, judge, keyPolicyDelegatingTo, type PolicyDocument, trusts } from './iam.js';

/**
 * The local stack's verdicts come from iam-simulate (AWS's evaluation logic), fed with the very
 * documents `dropship policy` prints: one allow and one deny per policy kind.
 */
const ACCOUNT = '260000000001';
const KMS = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const dest = {
  externalId: 'ext-7f1c2a',
  bucket: 'acme-data',
  prefix: 'exports',
  roleArn: `arn:aws:iam::${ACCOUNT}:role/dropship`,
  kmsKeyArn: KMS,
};
const iam = new Iam();
const platform = iam.createUser('111111111111', 'dropship-exporter', [
  { Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] },
]);
const write = permissionPolicy(dest) as PolicyDocument;
const role = iam.putRole(ACCOUNT, 'dropship', trustPolicy(dest, platform.arn) as PolicyDocument, [write]);
const session = iam.issueSession(role, 'dropship-acme', 900, write);
const reader = iam.createUser(ACCOUNT, 'loader', [readerPolicy(dest) as PolicyDocument]);
const s3 = (key?: string) => (key === undefined ? `arn:aws:s3:::${dest.bucket}` : `arn:aws:s3:::${dest.bucket}/${key}`);
const inAccount = { resourceAccountId: ACCOUNT };

describe('trust policy (sts:AssumeRole)', () => {
  it('lets dropship assume the role with the external ID, and not without it, nor with another', async () => {
    expect(await trusts(role, platform, { 'sts:ExternalId': dest.externalId })).toBe(true);
    expect(await trusts(role, platform, {})).toBe(false);
    expect(await trusts(role, platform, { 'sts:ExternalId': 'ext-other' })).toBe(false);
  });

  it('lets no other principal assume it, even with the external ID', async () => {
    const stranger = iam.createUser('111111111111', 'someone-else', [
      { Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] },
    ]);
    expect(await trusts(role, stranger, { 'sts:ExternalId': dest.externalId })).toBe(false);
  });
});

describe('write policy, also passed as the session policy', () => {
  it('allows exactly PutObject and AbortMultipartUpload on the keys dropship writes under the prefix', async () => {
    const shard = s3('exports/2026-12-04T04:00/t/t_000000000000.parquet.gz');
    expect(await authorize(session, 's3:PutObject', shard, inAccount)).toBe(true);
    expect(await authorize(session, 's3:AbortMultipartUpload', shard, inAccount)).toBe(true);
    for (const key of ['exports/receipt.json', 'exports/status.json', 'exports/_dropship_probe/r.txt'])
      expect(await authorize(session, 's3:PutObject', s3(key), inAccount), key).toBe(true);
    // A customer's own object under the prefix, outside dropship's keys: not writable.
    for (const key of ['exports/t/x.parquet.gz', 'exports/report.csv', 'exports/receipt.json.bak'])
      expect(await authorize(session, 's3:PutObject', s3(key), inAccount), key).toBe(false);
    expect(await authorize(session, 's3:PutObject', s3('elsewhere/x'), inAccount)).toBe(false);
    expect(await authorize(session, 's3:GetObject', s3('exports/receipt.json'), inAccount)).toBe(false);
    expect(await authorize(session, 's3:DeleteObject', s3('exports/receipt.json'), inAccount)).toBe(false);
    expect(
      await authorize(session, 's3:ListBucket', s3(), { ...inAccount, context: { 's3:prefix': 'exports/' } }),
    ).toBe(false);
  });

  it('narrows a role that grants more: the session can do only what both allow', async () => {
    const broad = iam.putRole(ACCOUNT, 'broad', trustPolicy(dest, platform.arn) as PolicyDocument, [
      {
        Statement: [
          { Effect: 'Allow', Action: 's3:*', Resource: ['arn:aws:s3:::acme-data', 'arn:aws:s3:::acme-data/*'] },
        ],
      },
    ]);
    const plain = iam.issueSession(broad, 'plain', 900);
    const narrowed = iam.issueSession(broad, 'narrowed', 900, write);
    expect(await authorize(plain, 's3:GetObject', s3('exports/receipt.json'), inAccount)).toBe(true);
    expect(await authorize(narrowed, 's3:GetObject', s3('exports/receipt.json'), inAccount)).toBe(false);
    expect(await authorize(narrowed, 's3:PutObject', s3('exports/receipt.json'), inAccount)).toBe(true);
  });
});

describe('reader policy', () => {
  it('reads and lists under the prefix only; never writes', async () => {
    expect(await authorize(reader, 's3:GetObject', s3('exports/receipt.json'), inAccount)).toBe(true);
    expect(await authorize(reader, 's3:GetObject', s3('private/secrets.csv'), inAccount)).toBe(false);
    expect(await authorize(reader, 's3:PutObject', s3('exports/receipt.json'), inAccount)).toBe(false);
    const list = (context: Record<string, string>) =>
      authorize(reader, 's3:ListBucket', s3(), { ...inAccount, context });
    expect(await list({ 's3:prefix': 'exports/' })).toBe(true);
    expect(await list({ 's3:prefix': 'exports/2026-12-04T04:00/', 's3:delimiter': '/', 's3:max-keys': '1000' })).toBe(
      true,
    );
    expect(await list({})).toBe(false); // the bucket root: no s3:prefix in the request
    expect(await list({ 's3:prefix': 'private/' })).toBe(false);
  });
});

describe('KMS (the key policy delegates to IAM)', () => {
  it('allows the actions the write policy grants on its key, and nothing on another key', async () => {
    const keyOpts = { resourceAccountId: ACCOUNT, resourcePolicy: keyPolicyDelegatingTo(ACCOUNT) };
    expect(await authorize(session, 'kms:GenerateDataKey', KMS, keyOpts)).toBe(true);
    expect(await authorize(session, 'kms:Decrypt', KMS, keyOpts)).toBe(true);
    const other = KMS.replace('1234abcd', 'ffffffff');
    expect(await authorize(session, 'kms:GenerateDataKey', other, keyOpts)).toBe(false);
    const noDecrypt = iam.createUser(ACCOUNT, 'no-decrypt', [
      { Statement: [{ Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: KMS }] },
    ]);
    expect(await authorize(noDecrypt, 'kms:Decrypt', KMS, keyOpts)).toBe(false);
  });
});

describe('explicit deny', () => {
  it('wins over an allow', async () => {
    const denied = iam.createUser(ACCOUNT, 'denied', [
      readerPolicy(dest) as PolicyDocument,
      { Statement: [{ Effect: 'Deny', Action: 's3:GetObject', Resource: s3('exports/receipt.json') }] },
    ]);
    expect(
      await judge({ principal: denied, action: 's3:GetObject', resource: s3('exports/receipt.json'), ...inAccount }),
    ).toBe('ExplicitlyDenied');
  });
});
