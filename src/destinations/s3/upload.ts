import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ObjectUpload } from '../port.js';

/**
 * One object written in parts of `partSize` bytes, `queueSize` parts in flight (an object smaller than one part
 * becomes a single PutObject), modelled on `@aws-sdk/lib-storage`'s `Upload.ts` and sending S3 the same requests:
 * CreateMultipartUpload (with `ChecksumAlgorithm: CRC32` when the client computes checksums whenever supported),
 * UploadPart, CompleteMultipartUpload with each part's ETag and checksum, AbortMultipartUpload on failure — after every
 * part in flight has settled, so no unfinished upload (and no billed part) is left; `fail()` and a rejected
 * `complete()` return only once it is aborted.
 *
 * Why not lib-storage itself (measured, issue 27): it reads a stream (our bytes went through a PassThrough, whose
 * reads concatenate what is buffered) and joins the chunks it reads into each part with `Buffer.concat` — two copies of
 * every byte into newly allocated memory, which the kernel must fault in and zero. In a 1M-row export without
 * compression (`npm run bench -- --rows 1000000 --codecs none --cpu-prof DIR`), `getChunkStream` and the stream's
 * reads were 10 % of the export process's busy CPU. Here bytes are copied once, into part buffers that are reused
 * (`PartBuffers`): a part's buffer goes back to the free list once S3 has answered for it.
 */
/**
 * A shard's bytes (its parts, or the single PutObject of a small one) are signed without hashing them
 * (`x-amz-content-sha256: UNSIGNED-PAYLOAD`) when the request carries a checksum of its bytes (`x-amz-checksum-*`,
 * which the client computes whenever supported) and goes over TLS: S3 verifies the checksum and refuses bytes that do
 * not match it (BadDigest), and TLS keeps anyone on the way from changing bytes and checksum together — what the Go and
 * Java SDKs send for uploads over HTTPS. Over plain HTTP (a custom endpoint) the payload stays signed, as it does for a
 * request without a checksum; a loopback endpoint (the local S3 of `dropship dev` and the tests) has no one on the way.
 * `dropship doctor` probes with the same requests, so a bucket policy that denies unsigned payloads
 * (`s3:x-amz-content-sha256`) fails its check rather than the first export. Measured (issue 27): the SDK's signer hashed
 * every byte with SHA-256 on the main thread, 5.6 % of the export process's busy main thread in a 2M-row uncompressed
 * export (`npm run bench -- --rows 2000000 --codecs none --cpu-prof DIR`, `update` in crypto/hash).
 */
export function unsignedPayload<C extends PutObjectCommand | UploadPartCommand>(command: C, enabled = true): C {
  // DROPSHIP_S3_UNSIGNED_PARTS=false: every byte signed (a bucket policy that requires signed payloads).
  if (!enabled) return command;
  // The SDK's middleware types are generic over each command's input and output; this one reads the request only.
  const stack = command.middlewareStack as unknown as {
    addRelativeTo(
      middleware: (next: Handler) => Handler,
      options: { relation: 'before'; toMiddleware: string; name: string; override: boolean },
    ): void;
  };
  stack.addRelativeTo(
    (next) => async (args) => {
      const request = args.request as { protocol?: string; hostname?: string; headers?: Record<string, string> };
      const headers = request?.headers;
      if (
        headers &&
        unsignedAllowed(request.protocol, request.hostname) &&
        Object.keys(headers).some((h) => h.toLowerCase().startsWith('x-amz-checksum-'))
      )
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'dropshipUnsignedPayload', override: true },
  );
  return command;
}

/** Over TLS, or to this machine (loopback): where a checksum is enough to keep the bytes as they were sent. */
export function unsignedAllowed(protocol: string | undefined, hostname: string | undefined): boolean {
  if (protocol === 'https:') return true;
  const host = (hostname ?? '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

type Handler = (args: { request: unknown }) => Promise<unknown>;

export interface S3UploadTarget {
  client: S3Client;
  bucket: string;
  key: string;
  contentType: string;
  partSize: number;
  queueSize: number;
  kmsKeyArn?: string;
  /** Parts (and single PutObjects) with a checksum go as UNSIGNED-PAYLOAD (`unsignedPayload`); default true. */
  unsignedParts?: boolean;
}

/**
 * Part buffers, reused across the uploads of the process: free ones are kept up to `maxBytes` in all (the rest are
 * left to the garbage collector; 32 MiB = six default parts, so larger configured parts are kept fewer). Their memory
 * stays faulted in, so filling a part costs one copy.
 */
export class PartBuffers {
  private readonly free = new Map<number, Buffer[]>();
  private keptBytes = 0;

  constructor(private readonly maxBytes = 32 * 1024 * 1024) {}

  take(size: number): Buffer {
    const buf = this.free.get(size)?.pop();
    if (!buf) return Buffer.allocUnsafeSlow(size);
    this.keptBytes -= buf.length;
    return buf;
  }

  give(buf: Buffer): void {
    const list = this.free.get(buf.length) ?? [];
    if (this.keptBytes + buf.length > this.maxBytes || list.includes(buf)) return;
    list.push(buf);
    this.keptBytes += buf.length;
    this.free.set(buf.length, list);
  }

  /** Free buffers kept (for tests). */
  get kept(): number {
    let n = 0;
    for (const l of this.free.values()) n += l.length;
    return n;
  }
}

const sharedParts = new PartBuffers();

export class S3ObjectUpload implements ObjectUpload {
  readonly key: string;
  private part: Buffer | undefined;
  private filled = 0;
  private partNumber = 0;
  private uploadId: Promise<string> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  /** The first failure (any value, `undefined` included: `failed` says whether there was one). */
  private failure: unknown;
  private failed = false;
  private ended = false;
  /** The object is stored (PutObject or CompleteMultipartUpload answered). */
  private stored = false;
  private completing: Promise<void> | undefined;
  private aborting: Promise<void> | undefined;
  private readonly sse: { ServerSideEncryption?: 'aws:kms'; SSEKMSKeyId?: string };

  constructor(
    private readonly target: S3UploadTarget,
    private readonly buffers: PartBuffers = sharedParts,
  ) {
    if (target.partSize < 5 * 1024 * 1024) throw new RangeError('an S3 upload part is at least 5 MiB');
    if (target.queueSize < 1) throw new RangeError('an upload needs at least one part in flight');
    this.key = target.key;
    this.sse = target.kmsKeyArn ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: target.kmsKeyArn } : {};
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failed) return this.fails();
    if (this.ended) throw new Error(`${this.key}: written after complete() or fail()`);
    let at = 0;
    while (at < chunk.length) {
      if (this.part && this.filled === this.part.length) {
        // A full part, and more bytes: it is not the last one. Send it (waits while queueSize parts are in flight).
        await this.send();
        if (this.failed) return this.fails();
      }
      this.part ??= this.buffers.take(this.target.partSize);
      const n = Math.min(chunk.length - at, this.part.length - this.filled);
      chunk.copy(this.part, this.filled, at, at + n);
      this.filled += n;
      at += n;
    }
  }

  complete(): Promise<void> {
    this.completing ??= this.store();
    return this.completing;
  }

  private async store(): Promise<void> {
    if (this.failed) return this.fails();
    this.ended = true;
    if (!this.uploadId) {
      // Smaller than one part (or exactly one): a single PutObject.
      const part = this.part;
      const filled = this.filled;
      this.part = undefined;
      this.filled = 0;
      try {
        await this.target.client.send(
          unsignedPayload(
            new PutObjectCommand({
              Bucket: this.target.bucket,
              Key: this.key,
              Body: part ? part.subarray(0, filled) : Buffer.alloc(0),
              ContentType: this.target.contentType,
              ...this.sse,
            }),
            this.target.unsignedParts ?? true,
          ),
        );
        this.stored = true;
      } finally {
        this.release(part);
      }
      return;
    }
    await this.send();
    await this.settle();
    if (this.failed) return this.fails();
    this.parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    try {
      await this.target.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.key,
          UploadId: await this.uploadId,
          MultipartUpload: { Parts: this.parts },
        }),
      );
      this.stored = true;
    } catch (e) {
      this.fault(e);
      return this.fails();
    }
  }

  async fail(reason: unknown): Promise<void> {
    this.ended = true;
    this.fault(reason);
    // A completion under way settles first: what it stored stays stored (nothing to abort then).
    await this.completing?.catch(() => {});
    await this.settle();
    if (!this.stored) await this.abort().catch(() => {});
  }

  private fault(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = e;
  }

  /** Sends the part being filled (the next part number), once fewer than queueSize parts are in flight. */
  private async send(): Promise<void> {
    const part = this.part;
    if (!part) return;
    while (this.inFlight.size >= this.target.queueSize) await Promise.race(this.inFlight);
    if (this.failed) return;
    this.uploadId ??= this.create();
    const number = ++this.partNumber;
    const body = part.subarray(0, this.filled);
    this.part = undefined;
    this.filled = 0;
    const sent = (async () => {
      try {
        const UploadId = await this.uploadId!;
        const res = await this.target.client.send(
          unsignedPayload(
            new UploadPartCommand({
              Bucket: this.target.bucket,
              Key: this.key,
              UploadId,
              PartNumber: number,
              Body: body,
            }),
            this.target.unsignedParts ?? true,
          ),
        );
        if (!res.ETag) throw new Error(`${this.key}: part ${number} was stored without an ETag`);
        this.parts.push({
          PartNumber: number,
          ETag: res.ETag,
          ...(res.ChecksumCRC32 ? { ChecksumCRC32: res.ChecksumCRC32 } : {}),
          ...(res.ChecksumCRC32C ? { ChecksumCRC32C: res.ChecksumCRC32C } : {}),
          ...(res.ChecksumSHA1 ? { ChecksumSHA1: res.ChecksumSHA1 } : {}),
          ...(res.ChecksumSHA256 ? { ChecksumSHA256: res.ChecksumSHA256 } : {}),
        });
      } catch (e) {
        this.fault(e);
      } finally {
        this.release(part);
      }
    })();
    this.inFlight.add(sent);
    void sent.then(() => this.inFlight.delete(sent));
  }

  private async create(): Promise<string> {
    const checksums = await this.target.client.config?.requestChecksumCalculation?.();
    const res = await this.target.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.target.bucket,
        Key: this.key,
        ContentType: this.target.contentType,
        ...(checksums === 'WHEN_SUPPORTED' ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
        ...this.sse,
      }),
    );
    if (!res.UploadId) throw new Error(`${this.key}: S3 started no multipart upload (no UploadId)`);
    return res.UploadId;
  }

  /** Every part in flight has settled. */
  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** The part being filled goes back; the multipart upload, if one was started, is aborted — once. */
  private abort(): Promise<void> {
    this.aborting ??= (async () => {
      this.release(this.part);
      this.part = undefined;
      const started = this.uploadId;
      const id = await started?.catch(() => undefined);
      if (id)
        await this.target.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.key, UploadId: id }),
        );
    })();
    return this.aborting;
  }

  /**
   * The upload failed: settle, abort, then throw the first failure. (An abort that fails too leaves parts that the
   * bucket's AbortIncompleteMultipartUpload rule removes; the failure thrown stays the one that explains it.)
   */
  private async fails(): Promise<never> {
    this.ended = true;
    await this.settle();
    await this.abort().catch(() => {});
    throw this.failure;
  }

  private release(part: Buffer | undefined): void {
    if (part) this.buffers.give(part);
  }
}
