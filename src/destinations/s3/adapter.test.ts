import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { type Destination, s3TargetOf } from '../../accounts/destination.js';
import { loadSettings } from '../../config/settings.js';
import { PreconditionFailed } from '../port.js';
import { S3Destination } from './adapter.js';
import { DestinationAccessError, type DestinationClients } from './clients.js';

const kmsKeyArn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const s3 = {
  bucket: 'acme-data',
  prefix: 'exports',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::123456789012:role/dropship-export',
  kmsKeyArn,
};
const dest = { accountId: 'acme', externalId: 'x', ...s3, target: s3TargetOf(s3) } as Destination;

/** An S3 client that records each command's input and answers with `answer`. */
function fakeClient(answer: (input: Record<string, unknown>) => unknown) {
  const sent: Record<string, unknown>[] = [];
  const client = {
    send: async (cmd: { input: Record<string, unknown> }) => {
      sent.push(cmd.input);
      const a = answer(cmd.input);
      if (a instanceof Error) throw a;
      return a;
    },
    destroy: () => {},
  } as unknown as S3Client;
  const port = new S3Destination(dest, dest.target as ReturnType<typeof s3TargetOf>, 'r', loadSettings({}), {
    s3: client,
    credentials: (async () => ({})) as unknown as DestinationClients['credentials'],
  });
  return { port, sent };
}
const s3Error = (name: string, status: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('the S3 adapter of the destination port', () => {
  it('a small object: one PutObject with the content type, SSE-KMS under the target key, and If-Match', async () => {
    // Prepare
    const { port, sent } = fakeClient(() => ({ ETag: '"e2"' }));
    // Act
    const put = await port.putObject('exports/receipt.json', '{}', {
      contentType: 'application/json',
      ifMatch: '"e1"',
    });
    // Assess
    expect(put).toEqual({ key: 'exports/receipt.json', etag: '"e2"' });
    expect(sent).toEqual([
      {
        Bucket: 'acme-data',
        Key: 'exports/receipt.json',
        Body: '{}',
        ContentType: 'application/json',
        IfMatch: '"e1"',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: kmsKeyArn,
      },
    ]);
  });

  it('a conditional PUT answered 412, or 404 under If-Match, is PreconditionFailed (with the answer as cause)', async () => {
    for (const status of [412, 404]) {
      // Prepare
      const answer = s3Error(status === 412 ? 'PreconditionFailed' : 'NoSuchKey', status);
      const { port } = fakeClient(() => answer);
      // Act
      const e = await port.putObject('k', 'b', { contentType: 'x', ifMatch: '"e"' }).catch((err: unknown) => err);
      // Assess
      expect(e).toBeInstanceOf(PreconditionFailed);
      expect((e as Error).cause).toBe(answer);
      expect(port.refused(e)).toBe(true);
    }
  });

  it('an unconditional PUT refused is explained in the customer-facing terms (not a precondition)', async () => {
    // Prepare
    const { port } = fakeClient(() => s3Error('NoSuchBucket', 404));
    // Act
    const e = await port.putObject('k', 'b', { contentType: 'x' }).catch((err: unknown) => err);
    // Assess
    expect(e).toBeInstanceOf(DestinationAccessError);
    expect((e as DestinationAccessError).failure).toBe('bucket_missing');
    expect(port.deniesAccess(e)).toBe(true);
    expect(port.isRetryable(e)).toBe(false);
  });

  it('no answer at all (a dropped connection) is retryable and not a refusal: the write is in doubt', () => {
    // Prepare
    const { port } = fakeClient(() => ({}));
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    // Act
    const e = port.explain('k', reset);
    // Assess
    expect(e).toBe(reset);
    expect(port.refused(e)).toBe(false);
    expect(port.isRetryable(e)).toBe(true);
  });
});
