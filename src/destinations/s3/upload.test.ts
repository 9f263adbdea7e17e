import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { PartBuffers, S3ObjectUpload, unsignedAllowed } from './upload.js';

const MiB = 1024 * 1024;
const partSize = 5 * MiB;

interface Sent {
  command: string;
  input: Record<string, unknown>;
  /** A copy of the body's bytes when the command was sent (the part buffer is reused afterwards). */
  body?: Buffer;
}

/**
 * An S3 client that records each command and answers it: UploadPart after `delay()` ms, failing part `failPart`.
 * Tracks how many parts are in flight at once.
 */
function fakeS3(
  o: { failPart?: number; failWith?: unknown; failComplete?: boolean; delay?: (part: number) => number } = {},
) {
  const sent: Sent[] = [];
  /** Every request and answer, in order. */
  const answered: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const client = {
    config: { requestChecksumCalculation: async () => 'WHEN_SUPPORTED' },
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const command = cmd.constructor.name.replace(/Command$/, '');
      const body = cmd.input.Body instanceof Uint8Array ? Buffer.from(cmd.input.Body) : undefined;
      sent.push({ command, input: cmd.input, ...(body ? { body } : {}) });
      answered.push(command);
      switch (command) {
        case 'CreateMultipartUpload':
          return { UploadId: 'u1' };
        case 'UploadPart': {
          const n = cmd.input.PartNumber as number;
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, o.delay?.(n) ?? 1));
          inFlight--;
          answered.push(`part ${n} answered`);
          if (n === o.failPart)
            throw 'failWith' in o ? o.failWith : Object.assign(new Error('part refused'), { name: 'InternalError' });
          return { ETag: `"e${n}"`, ChecksumCRC32: `c${n}` };
        }
        case 'CompleteMultipartUpload':
          if (o.failComplete) throw new Error('complete refused');
          return {};
        default:
          return { ETag: '"single"' };
      }
    },
  } as unknown as S3Client;
  return { client, sent, answered, maxInFlight: () => maxInFlight };
}

const target = (client: S3Client, queueSize = 2) => ({
  client,
  bucket: 'b',
  key: 'p/t_000000000000.parquet',
  contentType: 'application/vnd.apache.parquet',
  partSize,
  queueSize,
  kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/k',
});

/** `n` bytes of a pattern that shows where each byte came from. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('an object uploaded in parts (S3ObjectUpload)', () => {
  it('an object smaller than a part is one PutObject with its bytes, content type and SSE-KMS', async () => {
    // Prepare
    const s3 = fakeS3();
    const up = new S3ObjectUpload(target(s3.client), new PartBuffers());
    const data = [bytes(1000, 1), bytes(3000, 2)];
    // Act
    for (const d of data) await up.write(d);
    await up.complete();
    // Assess
    expect(s3.sent.map((s) => s.command)).toEqual(['PutObject']);
    expect(s3.sent[0]!.body!.equals(Buffer.concat(data))).toBe(true);
    expect(s3.sent[0]!.input).toMatchObject({
      Bucket: 'b',
      Key: 'p/t_000000000000.parquet',
      ContentType: 'application/vnd.apache.parquet',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k',
    });
  });

  it('a larger object: parts of partSize in order (the last smaller), at most queueSize in flight, completed with each part’s ETag and checksum', async () => {
    // Prepare: parts answered out of order (the first slowest)
    const s3 = fakeS3({ delay: (n) => (n === 1 ? 30 : 2) });
    const buffers = new PartBuffers();
    const up = new S3ObjectUpload(target(s3.client, 2), buffers);
    const data = Array.from({ length: 23 }, (_, i) => bytes(MiB + 17 * i, i));
    const whole = Buffer.concat(data);
    // Act
    for (const d of data) await up.write(d);
    await up.complete();
    // Assess
    const commands = s3.sent.map((s) => s.command);
    expect(commands[0]).toBe('CreateMultipartUpload');
    expect(commands.at(-1)).toBe('CompleteMultipartUpload');
    const parts = s3.sent.filter((s) => s.command === 'UploadPart');
    expect(parts.map((p) => p.input.PartNumber)).toEqual([1, 2, 3, 4, 5]);
    expect(parts.slice(0, -1).every((p) => p.body!.length === partSize)).toBe(true);
    expect(Buffer.concat(parts.map((p) => p.body!)).equals(whole)).toBe(true);
    expect(s3.maxInFlight()).toBe(2);
    expect(s3.sent[0]!.input).toMatchObject({ ChecksumAlgorithm: 'CRC32', ServerSideEncryption: 'aws:kms' });
    expect(s3.sent.at(-1)!.input).toEqual({
      Bucket: 'b',
      Key: 'p/t_000000000000.parquet',
      UploadId: 'u1',
      MultipartUpload: {
        Parts: [1, 2, 3, 4, 5].map((n) => ({ PartNumber: n, ETag: `"e${n}"`, ChecksumCRC32: `c${n}` })),
      },
    });
    // Part buffers were reused: no more were made than could be in use at once (queueSize + the one filling).
    expect(buffers.kept).toBeLessThanOrEqual(3);
  });

  it('a part refused: later writes or complete() fail with its error only after the parts in flight settled and the upload was aborted', async () => {
    // Prepare
    const s3 = fakeS3({ failPart: 2, delay: (n) => (n === 3 ? 40 : 1) });
    const up = new S3ObjectUpload(target(s3.client, 2), new PartBuffers());
    // Act
    let error: unknown;
    try {
      for (let i = 0; i < 30; i++) await up.write(bytes(MiB, i));
      await up.complete();
    } catch (e) {
      error = e;
    }
    // Assess: the part's own error; Abort is the last request, after part 3 (in flight when part 2 failed) answered
    expect(error).toMatchObject({ message: 'part refused' });
    const commands = s3.sent.map((s) => s.command);
    expect(commands.at(-1)).toBe('AbortMultipartUpload');
    expect(commands).not.toContain('CompleteMultipartUpload');
    expect(s3.sent.at(-1)!.input).toEqual({ Bucket: 'b', Key: 'p/t_000000000000.parquet', UploadId: 'u1' });
    expect(s3.maxInFlight()).toBeLessThanOrEqual(2);
    expect(s3.answered.indexOf('AbortMultipartUpload')).toBeGreaterThan(s3.answered.indexOf('part 3 answered'));
    expect(s3.answered.indexOf('part 3 answered')).toBeGreaterThan(-1);
  });

  it('fail(): waits for the parts in flight, then aborts; a refused CompleteMultipartUpload aborts too', async () => {
    // Prepare
    const a = fakeS3({ delay: () => 20 });
    const up = new S3ObjectUpload(target(a.client, 2), new PartBuffers());
    for (let i = 0; i < 12; i++) await up.write(bytes(MiB, i));
    const b = fakeS3({ failComplete: true });
    const up2 = new S3ObjectUpload(target(b.client, 2), new PartBuffers());
    for (let i = 0; i < 7; i++) await up2.write(bytes(MiB, i));
    // Act
    await up.fail(new Error('the table failed'));
    const refused = await up2.complete().then(
      () => 'completed',
      (e: Error) => e.message,
    );
    // Assess
    expect(a.sent.map((s) => s.command).at(-1)).toBe('AbortMultipartUpload');
    expect(a.maxInFlight()).toBeGreaterThan(0);
    await expect(up.write(bytes(10, 0))).rejects.toThrow('the table failed');
    expect(refused).toBe('complete refused');
    expect(b.sent.map((s) => s.command).slice(-2)).toEqual(['CompleteMultipartUpload', 'AbortMultipartUpload']);
  });

  it('a part buffer is given back once, even when fail() follows complete(): two uploads never fill the same memory', async () => {
    // Prepare
    const buffers = new PartBuffers();
    const up = new S3ObjectUpload(target(fakeS3().client), buffers);
    await up.write(bytes(100, 1));
    await up.complete();
    // Act
    await up.fail(new Error('the run failed afterwards'));
    const a = buffers.take(partSize);
    const b = buffers.take(partSize);
    // Assess
    expect(a).not.toBe(b);
    expect(buffers.kept).toBe(0);
  });

  it('a failure whatever its value (undefined too) stops the upload: no part after it, no Complete, one Abort', async () => {
    // Prepare: part 2 rejected with undefined; another upload failed by its caller with undefined while a write waits
    const a = fakeS3({ failPart: 2, failWith: undefined, delay: (n) => (n === 3 ? 30 : 1) });
    const up = new S3ObjectUpload(target(a.client, 2), new PartBuffers());
    const b = fakeS3({ delay: () => 40 });
    const up2 = new S3ObjectUpload(target(b.client, 1), new PartBuffers());
    // Act
    const first = (async () => {
      for (let i = 0; i < 24; i++) await up.write(bytes(MiB, i));
      await up.complete();
    })().then(
      () => 'completed',
      () => 'failed',
    );
    const waiting = (async () => {
      for (let i = 0; i < 24; i++) await up2.write(bytes(MiB, i));
    })().then(
      () => 'written',
      () => 'failed',
    );
    await new Promise((r) => setTimeout(r, 10));
    await up2.fail(undefined);
    // Assess
    expect(await first).toBe('failed');
    expect(a.sent.map((x) => x.command)).not.toContain('CompleteMultipartUpload');
    expect(a.sent.filter((x) => x.command === 'AbortMultipartUpload')).toHaveLength(1);
    expect(await waiting).toBe('failed');
    const after = b.answered.slice(b.answered.indexOf('AbortMultipartUpload'));
    expect(after.filter((c) => c === 'UploadPart' || c === 'CreateMultipartUpload')).toEqual([]);
    expect(b.sent.filter((x) => x.command === 'AbortMultipartUpload')).toHaveLength(1);
    expect(b.sent.filter((x) => x.command === 'CreateMultipartUpload')).toHaveLength(1);
  });

  it('fail() after the object is stored sends nothing; fail() while parts of complete() are in flight aborts it', async () => {
    // Prepare
    const a = fakeS3();
    const stored = new S3ObjectUpload(target(a.client, 2), new PartBuffers());
    for (let i = 0; i < 7; i++) await stored.write(bytes(MiB, i));
    const b = fakeS3({ delay: () => 20 });
    const stopped = new S3ObjectUpload(target(b.client, 2), new PartBuffers());
    for (let i = 0; i < 7; i++) await stopped.write(bytes(MiB, i));
    // Act
    await stored.complete();
    await stored.fail(new Error('the run failed afterwards'));
    const completing = stopped.complete().then(
      () => 'completed',
      (e: Error) => e.message,
    );
    await stopped.fail(new Error('the run failed meanwhile'));
    // Assess
    expect(a.sent.map((x) => x.command).at(-1)).toBe('CompleteMultipartUpload');
    expect(await completing).toBe('the run failed meanwhile');
    expect(b.sent.map((x) => x.command)).not.toContain('CompleteMultipartUpload');
    expect(b.sent.map((x) => x.command).at(-1)).toBe('AbortMultipartUpload');
  });

  it('keeps free part buffers up to a byte budget, whatever their size', () => {
    const buffers = new PartBuffers(12 * MiB);
    for (let i = 0; i < 4; i++) buffers.give(Buffer.allocUnsafeSlow(5 * MiB));
    buffers.give(Buffer.allocUnsafeSlow(6 * MiB));
    expect(buffers.kept).toBe(2);
    buffers.take(5 * MiB);
    buffers.give(Buffer.allocUnsafeSlow(6 * MiB));
    expect(buffers.kept).toBe(2);
  });

  it('refuses parts S3 would refuse (under 5 MiB) and a queue of none', () => {
    const s3 = fakeS3();
    expect(() => new S3ObjectUpload({ ...target(s3.client), partSize: MiB })).toThrow('at least 5 MiB');
    expect(() => new S3ObjectUpload({ ...target(s3.client), queueSize: 0 })).toThrow('at least one part');
  });
});

describe('unsigned payloads', () => {
  it('only over TLS or to this machine: elsewhere a checksum alone could be rewritten with the bytes', () => {
    expect(unsignedAllowed('https:', 'bucket.s3.us-east-1.amazonaws.com')).toBe(true);
    expect(unsignedAllowed('http:', '127.0.0.1')).toBe(true);
    expect(unsignedAllowed('http:', 'localhost')).toBe(true);
    expect(unsignedAllowed('http:', '[::1]')).toBe(true);
    expect(unsignedAllowed('http:', 'minio.internal')).toBe(false);
    expect(unsignedAllowed('http:', '127.0.0.1.example.com')).toBe(false);
    expect(unsignedAllowed(undefined, undefined)).toBe(false);
  });
});
