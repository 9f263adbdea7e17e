import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStack } from './stack.js';

let stack: LocalStack;
const trust = (externalId: string) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow' as const,
      Principal: { AWS: 'arn:aws:iam::111111111111:user/dropship-exporter' },
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'sts:ExternalId': externalId } },
    },
  ],
});
const write = (bucket: string) => ({
  Statement: [{ Effect: 'Allow' as const, Action: ['s3:PutObject'], Resource: `arn:aws:s3:::${bucket}/*` }],
});

beforeAll(async () => {
  stack = await LocalStack.start();
  await stack.applyWorld({
    accounts: {
      '222222222222': {
        buckets: [{ name: 'a-bucket', region: 'us-east-1' }],
        roles: [{ name: 'w', trustPolicy: trust('ext-a'), policies: [write('a-bucket')] }],
      },
      '333333333333': { buckets: [{ name: 'b-bucket', region: 'us-east-1' }] },
    },
  });
});
afterAll(async () => stack?.stop());

async function settle(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return e;
  }
}

function sts(secret = stack.platform.secretAccessKey) {
  return new STSClient({
    region: 'us-east-1',
    endpoint: stack.sts.endpoint,
    credentials: { accessKeyId: stack.platform.accessKeyId, secretAccessKey: secret },
  });
}

describe('local STS + S3 guard', () => {
  it('issues credentials only with the right external id, limited to the role policy', async () => {
    // Prepare / Act
    const wrong = await settle(
      sts().send(
        new AssumeRoleCommand({
          RoleArn: 'arn:aws:iam::222222222222:role/w',
          RoleSessionName: 'test-session',
          ExternalId: 'nope',
        }),
      ),
    );
    const missing = await settle(
      sts().send(
        new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::222222222222:role/w', RoleSessionName: 'test-session' }),
      ),
    );
    const badSecret = await settle(
      sts('x'.repeat(40)).send(
        new AssumeRoleCommand({
          RoleArn: 'arn:aws:iam::222222222222:role/w',
          RoleSessionName: 'test-session',
          ExternalId: 'ext-a',
        }),
      ),
    );
    const ok = await sts().send(
      new AssumeRoleCommand({
        RoleArn: 'arn:aws:iam::222222222222:role/w',
        RoleSessionName: 'test-session',
        ExternalId: 'ext-a',
      }),
    );
    // Assess
    expect(wrong).toMatchObject({
      name: 'AccessDenied',
      message: expect.stringContaining('is not authorized to perform: sts:AssumeRole'),
    });
    expect(missing).toMatchObject({ name: 'AccessDenied' });
    expect(badSecret).toMatchObject({ name: 'SignatureDoesNotMatch' });
    const c = ok.Credentials!;
    const s3 = new S3Client({
      region: 'us-east-1',
      endpoint: stack.s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! },
    });
    await s3.send(new PutObjectCommand({ Bucket: 'a-bucket', Key: 'x/y z:1.txt', Body: 'hello' }));
    expect(await stack.s3.keys('a-bucket')).toEqual(['x/y z:1.txt']);
    await expect(s3.send(new PutObjectCommand({ Bucket: 'b-bucket', Key: 'k', Body: 'x' }))).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    await expect(s3.send(new GetObjectCommand({ Bucket: 'a-bucket', Key: 'x/y z:1.txt' }))).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    const forged = new S3Client({
      region: 'us-east-1',
      endpoint: stack.s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: 'wrong', sessionToken: c.SessionToken! },
    });
    await expect(forged.send(new PutObjectCommand({ Bucket: 'a-bucket', Key: 'k', Body: 'x' }))).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
    });
    expect(stack.s3.events.map((e) => e.key)).toEqual(['x/y z:1.txt']);
  });
});
