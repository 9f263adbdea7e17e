import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ObjectUpload } from '../port.js';

/**
 * One object streamed into an `@aws-sdk/lib-storage` multipart upload (parallel parts, `queueSize`
 * in flight, `partSize` each; an object smaller than one part becomes a single PutObject).
 *
 * Failure handling follows lib-storage's own contract: on `fail()` the body stream is destroyed
 * with the error, the upload's part workers settle, and lib-storage aborts the multipart upload
 * before `done()` rejects — we wait for that, so no unfinished upload (and no billed parts) is left.
 * (`Upload.abort()` is not used: its `done()` rejects before the AbortMultipartUpload is sent.)
 */
export interface S3UploadTarget {
  client: S3Client;
  bucket: string;
  key: string;
  contentType: string;
  partSize: number;
  queueSize: number;
  kmsKeyArn?: string;
}

export class S3ObjectUpload implements ObjectUpload {
  readonly key: string;
  private readonly body = new PassThrough({ highWaterMark: 1024 * 1024 });
  private readonly done: Promise<unknown>;
  private failure: unknown;
  /** Aborted when the upload fails: stops a wait for 'drain' that would never come. */
  private readonly failed = new AbortController();

  constructor(target: S3UploadTarget) {
    this.key = target.key;
    const upload = new Upload({
      client: target.client,
      queueSize: target.queueSize,
      partSize: target.partSize,
      leavePartsOnError: false,
      params: {
        Bucket: target.bucket,
        Key: target.key,
        Body: this.body,
        ContentType: target.contentType,
        ...(target.kmsKeyArn ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: target.kmsKeyArn } : {}),
      },
    });
    this.done = upload.done();
    // Remember the failure now; callers see it on their next write or at complete().
    this.done.catch((e: unknown) => {
      this.failure = e;
      this.failed.abort(e);
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.body.write(chunk)) {
      try {
        await once(this.body, 'drain', { signal: this.failed.signal });
      } catch (e) {
        // The body fails as a consequence (lib-storage stops reading it when a part fails): the
        // upload's own error, once it has settled and aborted, is the one that explains it.
        await this.done.catch(() => {});
        throw this.failure ?? e;
      }
    }
  }

  async complete(): Promise<void> {
    this.body.end();
    await this.done;
  }

  async fail(reason: unknown): Promise<void> {
    if (!this.body.destroyed) this.body.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    await this.done.catch(() => {});
  }
}
