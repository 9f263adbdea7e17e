import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
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
        roles: [
          { name: 'w', trustPolicy: trust('ext-a'), policies: [write('a-bucket')] },
          {
            name: 'rw',
            trustPolicy: trust('ext-rw'),
            policies: [
              {
                Statement: [
                  {
                    Effect: 'Allow' as const,
                    Action: ['s3:PutObject', 's3:GetObject'],
                    Resource: 'arn:aws:s3:::a-bucket/rw/*',
                  },
                ],
              },
            ],
          },
        ],
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

/** An S3 client on a session of the read-write role (`rw/*` of a-bucket). */
async function rwClient(
  session: string,
  config: { requestChecksumCalculation?: 'WHEN_REQUIRED' } = {},
): Promise<S3Client> {
  const c = (
    await sts().send(
      new AssumeRoleCommand({
        RoleArn: 'arn:aws:iam::222222222222:role/rw',
        RoleSessionName: session,
        ExternalId: 'ext-rw',
      }),
    )
  ).Credentials!;
  return new S3Client({
    region: 'us-east-1',
    endpoint: stack.s3.endpoint,
    forcePathStyle: true,
    ...config,
    credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! },
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

  it('answers a PUT only once its bytes are stored: read-after-write, and two PUTs of one key never mix', async () => {
    // Prepare: a session of the read-write role; a listener reading the stored object when S3 reports it created
    const s3 = await rwClient('rw', { requestChecksumCalculation: 'WHEN_REQUIRED' });
    const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
    const seen: string[] = [];
    const off = stack.s3.onEvent((e) => {
      if (e.key.startsWith('rw/'))
        seen.push(md5(readFileSync(join(stack.s3.directory, e.bucket, `${e.key}._S3rver_object`))));
    });
    const bodies = [0, 1, 2, 3].map((i) => Buffer.alloc(12 * 1024 * 1024 + i, 97 + i));
    try {
      // Act: one PUT, then four PUTs of one key at once
      const first = await s3.send(new PutObjectCommand({ Bucket: 'a-bucket', Key: 'rw/one', Body: bodies[0] }));
      const got = Buffer.from(
        await (await s3.send(new GetObjectCommand({ Bucket: 'a-bucket', Key: 'rw/one' }))).Body!.transformToByteArray(),
      );
      await Promise.all(
        bodies.map((b) => s3.send(new PutObjectCommand({ Bucket: 'a-bucket', Key: 'rw/same', Body: b }))),
      );
      const last = await s3.send(new GetObjectCommand({ Bucket: 'a-bucket', Key: 'rw/same' }));
      const lastBytes = Buffer.from(await last.Body!.transformToByteArray());

      // Assess: what the event saw and what a GET reads are the whole object just written
      expect(seen[0]).toBe(md5(bodies[0]!));
      expect(md5(got)).toBe(md5(bodies[0]!));
      expect(first.ETag).toBe(`"${md5(bodies[0]!)}"`);
      // Each concurrent PUT's event saw one whole body; the object left is one whole body, its ETag its own.
      const whole = new Set(bodies.map(md5));
      expect(seen.slice(1).every((h) => whole.has(h))).toBe(true);
      expect(whole.has(md5(lastBytes))).toBe(true);
      expect(last.ETag).toBe(`"${md5(lastBytes)}"`);
    } finally {
      off();
    }
  });
  it('completes a multipart upload as S3 does: the parts in order, the ETag of the parts, only with their ETags', async () => {
    // Prepare: a session of the read-write role, three parts (two of 5 MiB, one of a byte)
    const s3 = await rwClient('mp');
    const md5 = (b: Buffer) => createHash('md5').update(b).digest();
    const parts = [Buffer.alloc(5 * 1024 * 1024, 1), Buffer.alloc(5 * 1024 * 1024, 2), Buffer.from([3])];
    const upload = async (key: string, bodies = parts) => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'a-bucket', Key: key }));
      const stored = [];
      for (const [i, body] of bodies.entries()) {
        const r = await s3.send(
          new UploadPartCommand({ Bucket: 'a-bucket', Key: key, UploadId, PartNumber: i + 1, Body: body }),
        );
        stored.push({ PartNumber: i + 1, ETag: r.ETag! });
      }
      return { UploadId: UploadId!, stored };
    };
    /** What S3 answers a Complete: 'completed', or its error's name. */
    const completeAs = (key: string, UploadId: string, Parts: { PartNumber: number; ETag: string }[]) =>
      s3
        .send(
          new CompleteMultipartUploadCommand({ Bucket: 'a-bucket', Key: key, UploadId, MultipartUpload: { Parts } }),
        )
        .then(
          () => 'completed',
          (e: { name?: string }) => e.name,
        );

    // Act: one upload completed with the parts' ETags, another with one ETag that is not its part's
    const good = await upload('rw/mp');
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'a-bucket',
        Key: 'rw/mp',
        UploadId: good.UploadId,
        MultipartUpload: { Parts: good.stored },
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: 'a-bucket', Key: 'rw/mp' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    const bad = await upload('rw/mp-bad');
    const refused = await completeAs(
      'rw/mp-bad',
      bad.UploadId,
      bad.stored.map((p, i) => (i === 1 ? { ...p, ETag: good.stored[0]!.ETag } : p)),
    );
    const badObject = await s3.send(new GetObjectCommand({ Bucket: 'a-bucket', Key: 'rw/mp-bad' })).then(
      () => 'exists',
      (e: { name?: string }) => e.name,
    );

    const misordered = await upload('rw/mp-order');
    const outOfOrder = await completeAs('rw/mp-order', misordered.UploadId, [
      misordered.stored[1]!,
      misordered.stored[0]!,
      misordered.stored[2]!,
    ]);
    const small = await upload('rw/mp-small', [parts[2]!, parts[0]!]);
    const tooSmall = await completeAs('rw/mp-small', small.UploadId, small.stored);
    const late = await s3
      .send(
        new UploadPartCommand({ Bucket: 'a-bucket', Key: 'rw/mp', UploadId: good.UploadId, PartNumber: 4, Body: 'x' }),
      )
      .then(
        () => 'stored',
        (e: { name?: string }) => e.name,
      );

    // A Complete repeated (an SDK's retry after a lost answer): as the first, with the same parts only; no event again.
    const eventsBefore = stack.s3.events.length;
    const again = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'a-bucket',
        Key: 'rw/mp',
        UploadId: good.UploadId,
        MultipartUpload: { Parts: good.stored },
      }),
    );
    const againOtherParts = await completeAs('rw/mp', good.UploadId, good.stored.slice(0, 2));
    const againOtherKey = await completeAs('rw/mp-elsewhere', good.UploadId, good.stored);
    const unknown = await completeAs('rw/mp', 'no-such-upload-id', good.stored);
    const eventsAfter = stack.s3.events.length;

    // Assess: the object is the parts in order; its ETag is S3's multipart ETag; a wrong part ETag stores nothing
    expect(bytes.equals(Buffer.concat(parts))).toBe(true);
    expect(again.ETag).toBe(done.ETag);
    expect([againOtherParts, againOtherKey, unknown]).toEqual(['NoSuchUpload', 'NoSuchUpload', 'NoSuchUpload']);
    expect(eventsAfter).toBe(eventsBefore);
    const expected = `"${createHash('md5')
      .update(Buffer.concat(parts.map(md5)))
      .digest('hex')}-3"`;
    expect(done.ETag).toBe(expected);
    expect(got.ETag).toBe(expected);
    expect(refused).toBe('InvalidPart');
    expect(badObject).toBe('NoSuchKey');
    // Parts listed out of order, a part below 5 MiB that is not the last, a part of a completed upload: refused.
    expect(outOfOrder).toBe('InvalidPartOrder');
    expect(tooSmall).toBe('EntityTooSmall');
    expect(late).toBe('NoSuchUpload');
  });
  it("refuses bytes that are not the request's: a wrong CRC32 checksum, a wrong signed payload hash", async () => {
    // Prepare: a session of the read-write role; requests whose headers are changed before they are signed
    const s3 = await rwClient('ck');
    const body = Buffer.from('the bytes that were checksummed');
    const put = (key: string, headers: Record<string, string>) => {
      const command = new PutObjectCommand({ Bucket: 'a-bucket', Key: key, Body: body, ChecksumAlgorithm: 'CRC32' });
      type Handler = (args: { request: unknown }) => Promise<unknown>;
      const middleware = command.middlewareStack as unknown as {
        addRelativeTo(
          m: (next: Handler) => Handler,
          o: { relation: 'before'; toMiddleware: string; name: string },
        ): void;
      };
      middleware.addRelativeTo(
        (next) => async (args) => {
          Object.assign((args.request as { headers: Record<string, string> }).headers, headers);
          return next(args);
        },
        { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'changeHeaders' },
      );
      return s3.send(command).then(
        () => 'stored',
        (e: { name?: string }) => e.name,
      );
    };
    const other = (algorithm: 'sha256') => createHash(algorithm).update('other bytes').digest('hex');

    // Act
    const echoed = await s3.send(
      new PutObjectCommand({ Bucket: 'a-bucket', Key: 'rw/echo', Body: body, ChecksumAlgorithm: 'CRC32' }),
    );
    const unsigned = await put('rw/unsigned', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
    const badCrc = await put('rw/bad-crc', {
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'x-amz-checksum-crc32': 'AAAAAA==',
    });
    const badHash = await put('rw/bad-hash', { 'x-amz-content-sha256': other('sha256') });

    // Assess: the checksum and the signed hash are checked against the bytes; nothing refused is stored
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    expect(echoed.ChecksumCRC32).toBe(crc.toString('base64'));
    expect(unsigned).toBe('stored');
    expect(badCrc).toBe('BadDigest');
    expect(badHash).toBe('XAmzContentSHA256Mismatch');
    const keys = await stack.s3.keys('a-bucket');
    expect(keys).toContain('rw/unsigned');
    expect(keys).not.toContain('rw/bad-crc');
    expect(keys).not.toContain('rw/bad-hash');
  });
});
