import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import S3rver from 's3rver';
import S3rverError from 's3rver/lib/models/error.js';
import { authorize, type Iam, keyPolicyDelegatingTo, type Principal } from './iam.js';
import { parseAuthorization, SigV4Error, verifySignature } from './sigv4.js';

/**
 * Local S3: s3rver (real HTTP, real files) behind a guard that makes it behave like S3 where
 * dropship's correctness depends on it:
 *   - SigV4 is verified (s3rver accepts any signature), sessions must carry their token and
 *     must not be expired;
 *   - every request is judged by AWS's IAM semantics (iam-simulate, ./iam.ts): the caller's
 *     policies ∩ session policy, with the request's condition keys (s3:prefix, s3:delimiter,
 *     s3:max-keys of a listing; the SSE headers of a write), including kms:GenerateDataKey /
 *     kms:Decrypt for SSE-KMS writes;
 *   - AbortMultipartUpload and ListMultipartUploads are implemented (s3rver lacks them);
 *   - a CompleteMultipartUpload repeated with the same parts after it succeeded answers as the first did (an SDK's
 *     retry when the first answer was lost), with no second creation event; an unknown upload is NoSuchUpload;
 *   - SSE / KMS headers of each object are kept and echoed, and can be asserted;
 *   - a bucket answers only in its own region;
 *   - every object creation is recorded in order (`events`), like S3 event notifications;
 *   - tests can inject faults (`faults`).
 */
export interface BucketInfo {
  name: string;
  region: string;
  ownerAccountId: string;
}

export interface S3EventRecord {
  seq: number;
  eventName: 'ObjectCreated:Put' | 'ObjectCreated:CompleteMultipartUpload';
  bucket: string;
  key: string;
  size: number;
  principalArn: string;
}

export interface S3RequestInfo {
  method: string;
  bucket: string;
  key: string;
  action: string;
  query: URLSearchParams;
  principal: Principal;
  /** The request's headers as sent (before the guard removes its authorization). */
  headers: Readonly<IncomingHttpHeaders>;
}

/**
 * A fault decides per request: answer with an error, drop the connection (no response at all),
 * or delay the request and then handle it normally. Faults run after authentication.
 */
export type FaultAction =
  | { status: number; code: string; message: string }
  | { drop: true }
  | { delayMs: number }
  /** s3rver handles the request, then the connection is cut before the response: a truncated answer. */
  | { truncate: true }
  /** The request hangs until `hold` settles, then its connection is cut (an owner frozen mid-upload). */
  | { hold: Promise<unknown> }
  /** The request waits until `gate` settles, then is handled normally (a test decides when uploads go on). */
  | { gate: Promise<unknown> };
export type Fault = (req: S3RequestInfo) => FaultAction | undefined;

export interface Encryption {
  sse?: string;
  kmsKeyId?: string;
}

type KoaCtx = {
  req: import('node:http').IncomingMessage;
  method: string;
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  set: (name: string, value: string) => void;
};
type Next = () => Promise<void>;

export class LocalS3 {
  readonly buckets = new Map<string, BucketInfo>();
  readonly events: S3EventRecord[] = [];
  readonly faults: Fault[] = [];
  readonly requests: { action: string; bucket: string; key: string; status: number; principalArn?: string }[] = [];
  private readonly encryption = new Map<string, Encryption>();
  private readonly pendingEncryption = new Map<string, Encryption>();
  /** Completed multipart uploads, by upload ID, for a repeated Complete (see `storeLikeS3`). */
  private readonly completed = new CompletedUploads();
  private readonly listeners = new Set<(e: S3EventRecord) => void>();
  /** Bucket notification configurations: ObjectCreated events whose key ends with `suffix` go to a queue. */
  readonly notifications: { bucket: string; suffix: string; send: (body: string) => void }[] = [];
  private server: S3rver | undefined;
  /** Writes and reads of one object, one at a time (see guard). */
  private readonly byKey = new KeyedQueue();
  endpoint = '';

  constructor(
    private readonly iam: Iam,
    readonly directory: string,
  ) {}

  async start(): Promise<string> {
    const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: this.directory });
    storeLikeS3((server as unknown as { store: FilesystemStore }).store, this.completed);
    // Outermost middleware: runs before s3rver's own handling (and after it, for the response).
    (server as unknown as { middleware: unknown[] }).middleware.unshift((ctx: KoaCtx, next: Next) =>
      this.guard(ctx, next),
    );
    const addr = (await server.run()) as AddressInfo;
    this.server = server;
    this.endpoint = `http://127.0.0.1:${addr.port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    if (this.server) await this.server.close();
    this.server = undefined;
  }

  /** Creates a bucket owned by `ownerAccountId` in `region`. */
  async createBucket(name: string, region: string, ownerAccountId: string): Promise<void> {
    this.buckets.set(name, { name, region, ownerAccountId });
    await (this.server as unknown as { store: { putBucket: (n: string) => Promise<void> } }).store.putBucket(name);
  }

  onEvent(fn: (e: S3EventRecord) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  encryptionOf(bucket: string, key: string): Encryption | undefined {
    return this.encryption.get(`${bucket}/${key}`);
  }

  /** Multipart uploads that were started and neither completed nor aborted. */
  async unfinishedUploads(bucket: string): Promise<{ key: string; uploadId: string }[]> {
    const dir = join(this.directory, bucket, '._S3rver_uploads');
    if (!existsSync(dir)) return [];
    const ids = await readdir(dir);
    return Promise.all(
      ids.map(async (uploadId) => ({ uploadId, key: (await readFile(join(dir, uploadId, 'key'))).toString() })),
    );
  }

  /** The ETag (quoted MD5) of the object in place, as s3rver stores it; undefined when there is none. */
  private async currentEtag(bucket: string, key: string): Promise<string | undefined> {
    const store = (
      this.server as unknown as { store: { getMetadata: (b: string, k: string) => Promise<{ etag: string }> } }
    ).store;
    try {
      return (await store.getMetadata(bucket, key)).etag;
    } catch {
      return undefined;
    }
  }

  /** Object keys in a bucket (read from s3rver's store, bypassing auth), sorted. */
  async keys(bucket: string): Promise<string[]> {
    const root = join(this.directory, bucket);
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      if (!existsSync(dir)) return;
      for (const name of await readdir(dir)) {
        if (name === '._S3rver_uploads') continue;
        const full = join(dir, name);
        if ((await stat(full)).isDirectory()) await walk(full, `${prefix}${name}/`);
        else if (name.endsWith('._S3rver_object'))
          out.push(decodeURIComponent(prefix + name.slice(0, -'._S3rver_object'.length)));
      }
    };
    await walk(root, '');
    return out.sort();
  }

  private async guard(ctx: KoaCtx, next: Next): Promise<void> {
    const url = ctx.req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const segments = path.split('/').slice(1);
    const bucket = decodeURIComponent(segments[0] ?? '');
    const key = segments.slice(1).map(decodeURIComponent).join('/');
    const action = s3Action(ctx.method, bucket, key, query);
    const record = { action, bucket, key, status: 0 } as LocalS3['requests'][number];
    this.requests.push(record);

    let principal: Principal;
    try {
      principal = this.authenticate(ctx, url);
    } catch (e) {
      if (e instanceof S3Failure) return this.fail(ctx, record, e);
      throw e;
    }
    record.principalArn = principal.arn;

    const info = this.buckets.get(bucket);
    if (bucket && !info) {
      return this.fail(ctx, record, new S3Failure(404, 'NoSuchBucket', 'The specified bucket does not exist'));
    }
    const auth = parseAuthorization(String(ctx.headers.authorization));
    if (info && auth.region !== info.region) {
      ctx.set('x-amz-bucket-region', info.region);
      return this.fail(
        ctx,
        record,
        new S3Failure(
          400,
          'AuthorizationHeaderMalformed',
          `The authorization header is malformed; the region '${auth.region}' is wrong; expecting '${info.region}'`,
        ),
      );
    }

    const resource = key ? `arn:aws:s3:::${bucket}/${key}` : bucket ? `arn:aws:s3:::${bucket}` : '*';
    const sse = headerOf(ctx, 'x-amz-server-side-encryption');
    const kmsKeyId = headerOf(ctx, 'x-amz-server-side-encryption-aws-kms-key-id');
    // CreateMultipartUpload has no IAM action of its own: it is authorised as s3:PutObject.
    const iamAction = action === 's3:CreateMultipartUpload' ? 's3:PutObject' : action;
    // The condition keys S3 puts into the request context for this action.
    const context: Record<string, string | undefined> =
      iamAction === 's3:ListBucket'
        ? {
            's3:prefix': query.get('prefix') ?? undefined,
            's3:delimiter': query.get('delimiter') ?? undefined,
            's3:max-keys': query.get('max-keys') ?? undefined,
          }
        : iamAction === 's3:PutObject'
          ? {
              's3:x-amz-server-side-encryption': sse,
              's3:x-amz-server-side-encryption-aws-kms-key-id': kmsKeyId,
            }
          : {};
    const resourceAccountId = info?.ownerAccountId ?? principal.accountId;
    if (!(await authorize(principal, iamAction, resource, { resourceAccountId, context }))) {
      return this.fail(ctx, record, new S3Failure(403, 'AccessDenied', 'Access Denied'));
    }
    if (sse === 'aws:kms' && kmsKeyId && (action === 's3:PutObject' || action === 's3:CreateMultipartUpload')) {
      const needed = query.has('uploads') ? ['kms:GenerateDataKey', 'kms:Decrypt'] : ['kms:GenerateDataKey'];
      const keyAccount = /^arn:[^:]+:kms:[^:]*:(\d{12}):/.exec(kmsKeyId)?.[1] ?? resourceAccountId;
      for (const kmsAction of needed) {
        const allowed = await authorize(principal, kmsAction, kmsKeyId, {
          resourceAccountId: keyAccount,
          resourcePolicy: keyPolicyDelegatingTo(principal.accountId),
        });
        if (!allowed) {
          return this.fail(
            ctx,
            record,
            new S3Failure(
              403,
              'AccessDenied',
              `User: ${principal.arn} is not authorized to perform: ${kmsAction} on resource: ${kmsKeyId} because no identity-based policy allows the ${kmsAction} action`,
            ),
          );
        }
      }
    }

    let truncate = false;
    for (const fault of this.faults) {
      const f = fault({ method: ctx.method, bucket, key, action, query, principal, headers: { ...ctx.req.headers } });
      if (!f) continue;
      if ('drop' in f) {
        record.status = -1;
        ctx.req.socket.destroy();
        return;
      }
      if ('hold' in f) {
        await f.hold.catch(() => {});
        record.status = -1;
        ctx.req.socket.destroy();
        return;
      }
      if ('delayMs' in f) {
        await new Promise((r) => setTimeout(r, f.delayMs));
        continue;
      }
      if ('gate' in f) {
        await f.gate.catch(() => {});
        continue;
      }
      if ('truncate' in f) {
        // Handled as any request is (its write stored, its creation event sent), then the answer is lost.
        truncate = true;
        break;
      }
      return this.fail(ctx, record, new S3Failure(f.status, f.code, f.message));
    }

    // Authenticated and authorised: hand over to s3rver as an anonymous request.
    delete ctx.headers.authorization;
    delete ctx.req.headers.authorization;

    // S3 applies the writes of one key one at a time (a conditional write's check and its write are one step, and
    // the object a creation event reports is that write's), and a read sees a whole object, its ETag with it: so
    // writes and reads of one key go one at a time here (the bytes are renamed into place before the ETag is).
    const keyed =
      (action === 's3:PutObject' && ctx.method === 'PUT' && !query.has('uploadId')) ||
      (action === 's3:PutObject' && ctx.method === 'POST' && query.has('uploadId')) ||
      (action === 's3:GetObject' && Boolean(key));
    const hand = () => this.handOver(ctx, next, record, { bucket, key, action, query, sse, kmsKeyId, principal });
    await (keyed ? this.byKey.run(`${bucket}/${key}`, hand) : hand());
    if (truncate) {
      record.status = -2;
      ctx.req.socket.destroy();
    }
  }

  /** The authorised request, handed to s3rver (with S3's conditional writes, creation events, SSE headers). */
  private async handOver(
    ctx: KoaCtx,
    next: Next,
    record: { status: number },
    r: {
      bucket: string;
      key: string;
      action: string;
      query: URLSearchParams;
      sse: string | undefined;
      kmsKeyId: string | undefined;
      principal: Principal;
    },
  ): Promise<void> {
    const { bucket, key, action, query, sse, kmsKeyId, principal } = r;
    // S3 conditional writes (PutObject with If-Match / If-None-Match): 412 when the object in place is not
    // the one named, 404 when If-Match names an object that is not there. s3rver itself ignores them.
    if (action === 's3:PutObject' && ctx.method === 'PUT' && !query.has('uploadId')) {
      const ifMatch = ctx.req.headers['if-match'];
      const ifNoneMatch = ctx.req.headers['if-none-match'];
      if (typeof ifMatch === 'string' || typeof ifNoneMatch === 'string') {
        const current = await this.currentEtag(bucket, key);
        if (typeof ifMatch === 'string' && current === undefined)
          return this.fail(ctx, record, new S3Failure(404, 'NoSuchKey', 'The specified key does not exist.'));
        if (
          (typeof ifMatch === 'string' && ifMatch !== '*' && ifMatch !== current) ||
          (typeof ifNoneMatch === 'string' && current !== undefined)
        )
          return this.fail(
            ctx,
            record,
            new S3Failure(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
          );
      }
    }

    if (action === 's3:AbortMultipartUpload') return this.abortUpload(ctx, record, bucket, key, query.get('uploadId')!);
    if (action === 's3:ListBucketMultipartUploads')
      return this.listUploads(ctx, record, bucket, query.get('prefix') ?? '');

    // A Complete repeated after it succeeded (its first answer lost): answered from what was stored, nothing again.
    const completing = action === 's3:PutObject' && ctx.method === 'POST' && query.has('uploadId');
    const repeated = completing && this.completed.has(bucket, key, query.get('uploadId')!);
    if (completing && !repeated && this.completed.knows(query.get('uploadId')!))
      return this.fail(ctx, record, new S3Failure(404, 'NoSuchUpload', NO_SUCH_UPLOAD));
    await next();
    record.status = ctx.status;
    const verified = (ctx.req as { [CHECKSUM]?: string })[CHECKSUM];
    if (verified && ctx.status === 200) ctx.set('x-amz-checksum-crc32', verified);
    const objectKey = `${bucket}/${key}`;
    if (ctx.status === 200 && action === 's3:PutObject' && ctx.method === 'PUT' && !query.has('uploadId')) {
      this.setEncryption(objectKey, { sse, kmsKeyId });
      this.emit({ eventName: 'ObjectCreated:Put', bucket, key, principalArn: principal.arn });
    } else if (ctx.status === 200 && action === 's3:CreateMultipartUpload') {
      const id = /<UploadId>([^<]+)<\/UploadId>/.exec(String(ctx.body))?.[1];
      if (id) this.pendingEncryption.set(id, { ...(sse ? { sse } : {}), ...(kmsKeyId ? { kmsKeyId } : {}) });
    } else if (
      ctx.status === 200 &&
      !repeated &&
      action === 's3:PutObject' &&
      ctx.method === 'POST' &&
      query.has('uploadId')
    ) {
      const id = query.get('uploadId')!;
      this.setEncryption(objectKey, this.pendingEncryption.get(id) ?? {});
      this.pendingEncryption.delete(id);
      this.emit({ eventName: 'ObjectCreated:CompleteMultipartUpload', bucket, key, principalArn: principal.arn });
    }
    const enc = this.encryption.get(objectKey);
    if (enc?.sse && (ctx.status === 200 || ctx.status === 206)) {
      ctx.set('x-amz-server-side-encryption', enc.sse);
      if (enc.kmsKeyId) ctx.set('x-amz-server-side-encryption-aws-kms-key-id', enc.kmsKeyId);
    }
  }

  private setEncryption(objectKey: string, enc: Encryption): void {
    if (enc.sse) this.encryption.set(objectKey, enc);
    else this.encryption.delete(objectKey);
  }

  private emit(e: Omit<S3EventRecord, 'seq' | 'size'>): void {
    const record = { ...e, seq: this.events.length + 1, size: 0 };
    void this.sizeOf(e.bucket, e.key).then((size) => {
      record.size = size;
    });
    this.events.push(record);
    for (const fn of this.listeners) fn(record);
    for (const n of this.notifications) {
      if (n.bucket !== e.bucket || !e.key.endsWith(n.suffix)) continue;
      // The S3 event notification message format (as delivered to SQS).
      n.send(
        JSON.stringify({
          Records: [
            {
              eventVersion: '2.1',
              eventSource: 'aws:s3',
              awsRegion: this.buckets.get(e.bucket)?.region ?? 'us-east-1',
              eventTime: new Date().toISOString(),
              eventName: e.eventName,
              s3: {
                s3SchemaVersion: '1.0',
                bucket: { name: e.bucket, arn: `arn:aws:s3:::${e.bucket}` },
                object: {
                  key: encodeURIComponent(e.key).replace(/%2F/g, '/'),
                  sequencer: String(record.seq).padStart(16, '0'),
                },
              },
            },
          ],
        }),
      );
    }
  }

  private async sizeOf(bucket: string, key: string): Promise<number> {
    const parts = key.split('/').map(encodeURIComponent);
    const last = parts.pop()!;
    try {
      return (await stat(join(this.directory, bucket, ...parts, `${last}._S3rver_object`))).size;
    } catch {
      return 0;
    }
  }

  private authenticate(ctx: KoaCtx, url: string): Principal {
    let auth: ReturnType<typeof parseAuthorization>;
    try {
      auth = parseAuthorization(headerOf(ctx, 'authorization'));
    } catch (e) {
      if (e instanceof SigV4Error)
        throw new S3Failure(403, 'AccessDenied', 'Access Denied (anonymous requests are not allowed)');
      throw e;
    }
    const principal = this.iam.principals.get(auth.accessKeyId);
    if (!principal) {
      throw new S3Failure(
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    }
    try {
      verifySignature(
        { method: ctx.method, url, headers: ctx.headers, payloadHash: headerOf(ctx, 'x-amz-content-sha256') ?? '' },
        auth,
        principal.secretAccessKey,
      );
    } catch (e) {
      if (e instanceof SigV4Error) throw new S3Failure(403, e.code, e.message);
      throw e;
    }
    if (principal.sessionToken !== undefined) {
      if (headerOf(ctx, 'x-amz-security-token') !== principal.sessionToken) {
        throw new S3Failure(400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
      }
      if (principal.expiresAt !== undefined && Date.now() >= principal.expiresAt) {
        throw new S3Failure(400, 'ExpiredToken', 'The provided token has expired.');
      }
    }
    return principal;
  }

  private fail(ctx: KoaCtx, record: { status: number }, e: S3Failure): void {
    record.status = e.status;
    ctx.status = e.status;
    ctx.set('content-type', 'application/xml');
    ctx.body = errorXml(e.code, e.message);
  }

  private async abortUpload(
    ctx: KoaCtx,
    record: { status: number },
    bucket: string,
    key: string,
    uploadId: string,
  ): Promise<void> {
    const dir = join(this.directory, bucket, '._S3rver_uploads', uploadId);
    const storedKey = existsSync(join(dir, 'key')) ? (await readFile(join(dir, 'key'))).toString() : undefined;
    if (storedKey !== key) {
      return this.fail(ctx, record, new S3Failure(404, 'NoSuchUpload', NO_SUCH_UPLOAD));
    }
    await rm(dir, { recursive: true, force: true });
    this.pendingEncryption.delete(uploadId);
    record.status = 204;
    ctx.status = 204;
  }

  private async listUploads(ctx: KoaCtx, record: { status: number }, bucket: string, prefix: string): Promise<void> {
    const uploads = (await this.unfinishedUploads(bucket)).filter((u) => u.key.startsWith(prefix));
    const items = uploads
      .map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${xmlEscape(u.uploadId)}</UploadId></Upload>`)
      .join('');
    record.status = 200;
    ctx.status = 200;
    ctx.set('content-type', 'application/xml');
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`;
  }
}

class S3Failure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** One queue per key: `run` starts `fn` once every earlier call for the same key has settled. */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    const tail = mine.catch(() => {});
    this.tails.set(key, tail);
    try {
      return await mine;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  putObject(object: { bucket: string; key: string; content: Buffer | Readable; metadata: unknown }): Promise<{
    size: number;
    md5: string;
  }>;
  putPart(bucket: string, uploadId: string, partNumber: string | number, content: Readable): Promise<StoredPart>;
  putObjectMultipart(
    bucket: string,
    uploadId: string,
    parts: { number: number; etag: string }[],
  ): Promise<{ size: number; md5: string }>;
}

interface StoredPart {
  size: number;
  md5: string;
}

/** Writes `chunks` to a temporary file beside `path` and renames it over `path`: a reader sees the old bytes or all new. */
async function replaceWhole(path: string, write: (file: FileHandle) => Promise<void>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${randomUUID()}.partial`;
  try {
    const file = await open(temporary, 'w');
    try {
      await write(file);
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (e) {
    await rm(temporary, { force: true });
    throw e;
  }
}

/** Bytes written at once when a body is written as it is read (`readHashed` with `write`). */
const WRITE_BATCH_BYTES = 512 * 1024;

/**
 * A request body's bytes and their MD5 (one pass, no stream in between), refused as S3 refuses it when they are not
 * what the request says they are: the payload hash it was signed with (`x-amz-content-sha256`, unless
 * `UNSIGNED-PAYLOAD`), its CRC32 checksum (`x-amz-checksum-crc32`) or its `Content-MD5`.
 *
 * With `write`, the bytes go there in batches as they are read (`chunks` is then empty; the caller writes into a
 * temporary file that replaces the object only once this resolves): a 5 MiB part's request buffers die young instead
 * of living through collections until the whole part is in, which made the bench's process run a Mark-Compact every
 * 200–300 ms under external-memory pressure during an uncompressed export (`--trace-gc`, heap flat at 32 MB).
 */
async function readHashed(
  content: Buffer | Readable,
  write?: (batch: Buffer[]) => Promise<unknown>,
): Promise<{ chunks: Buffer[]; size: number; md5: string }> {
  const request = Buffer.isBuffer(content)
    ? undefined
    : (content as Readable & { headers?: IncomingHttpHeaders; [CHECKSUM]?: string });
  const headers = request?.headers ?? {};
  // aws-chunked bodies (a streamed body with a trailing checksum) carry their framing: s3rver would store it as bytes.
  if (String(headers['content-encoding'] ?? '').includes('aws-chunked'))
    throw s3Error('NotImplemented', 501, 'aws-chunked request bodies are not supported by the local S3.');
  const signedHash = String(headers['x-amz-content-sha256'] ?? '').toLowerCase();
  const sha256 = /^[0-9a-f]{64}$/.test(signedHash) ? createHash('sha256') : undefined;
  const crc32Header = headers['x-amz-checksum-crc32'];
  const md5 = createHash('md5');
  let chunks: Buffer[] = [];
  let batched = 0;
  let size = 0;
  let crc = 0;
  for await (const chunk of request ? (request as AsyncIterable<Buffer>) : [content as Buffer]) {
    md5.update(chunk);
    sha256?.update(chunk);
    if (crc32Header !== undefined) crc = crc32(chunk, crc);
    chunks.push(chunk);
    size += chunk.length;
    batched += chunk.length;
    if (write && batched >= WRITE_BATCH_BYTES) {
      await write(chunks);
      chunks = [];
      batched = 0;
    }
  }
  if (write && chunks.length > 0) {
    await write(chunks);
    chunks = [];
  }
  const digest = md5.digest();
  if (sha256 && sha256.digest('hex') !== signedHash)
    throw s3Error(
      'XAmzContentSHA256Mismatch',
      400,
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  if (crc32Header !== undefined) {
    const computed = Buffer.alloc(4);
    computed.writeUInt32BE(crc >>> 0);
    if (computed.toString('base64') !== String(crc32Header))
      throw s3Error('BadDigest', 400, 'The CRC32 you specified did not match the calculated checksum.');
    // S3 answers with the checksum it verified (the guard puts it on the response).
    if (request) request[CHECKSUM] = computed.toString('base64');
  }
  const contentMd5 = headers['content-md5'];
  if (contentMd5 !== undefined && digest.toString('base64') !== String(contentMd5))
    throw s3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.');
  return { chunks, size, md5: digest.toString('hex') };
}

/** The CRC32 checksum a request's body was verified against, kept on the request for the response. */
const CHECKSUM = Symbol('verified CRC32');

const NO_SUCH_UPLOAD =
  'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.';

/** An error s3rver answers with its status and S3's XML body. */
function s3Error(code: string, status: number, message: string): Error {
  return Object.assign(new S3rverError(code, message), { status, expose: true });
}

/**
 * What s3rver 3.7.1's `FilesystemStore` writes is replaced here where it is not S3:
 *
 * - `putObject` / `putPart` answered before the bytes were on disk (they resolve when the input is read, not when the
 *   file is written) and wrote in place: a GET, a listing, a creation event or a CompleteMultipartUpload right after a
 *   200 could see the previous bytes, or part of the new ones — found by the binding model (CI 2026-12-05: a receipt
 *   event read the previous receipt's bytes). S3 is read-after-write consistent and replaces an object whole. Here the
 *   bytes go to a temporary file renamed over the object (or part) once written; its MD5 and metadata follow.
 * - `putObjectMultipart` streamed every part through an MD5 and a write stream again, so that the object's ETag was the
 *   MD5 of all its bytes; S3's ETag of a multipart object is the MD5 of the parts' MD5s and the part count
 *   (`"<hex>-<parts>"`), which needs no second pass over the bytes. The parts are copied into the object through one
 *   reused buffer. At 2M rows uncompressed (240 MiB of shards) s3rver's own path spent 3.0 CPU-s on the bench's main
 *   thread during the export (GC 30 %, MD5 23 %, writes 19 %), on the two cores the export shares with Postgres.
 */
function storeLikeS3(store: FilesystemStore, completed: CompletedUploads): void {
  store.putObject = async (object) => {
    const path = store.getResourcePath(object.bucket, object.key, 'object');
    const body = await readHashed(object.content);
    await replaceWhole(path, async (file) => {
      await file.writev(body.chunks);
    });
    await store.putMetadata(object.bucket, object.key, object.metadata, body.md5);
    return { size: body.size, md5: body.md5 };
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    // A part of an upload that was completed or aborted (or never started) is refused, as S3 refuses it.
    if (!existsSync(join(dir, 'key'))) throw s3Error('NoSuchUpload', 404, NO_SUCH_UPLOAD);
    const path = join(dir, String(partNumber));
    // Written as it is read, into a temporary file that replaces the part only once every check passed.
    let body: StoredPart = { size: 0, md5: '' };
    await replaceWhole(path, async (file) => {
      body = await readHashed(content, (batch) => file.writev(batch));
    });
    await writeFile(`${path}.md5`, body.md5);
    return { size: body.size, md5: body.md5 };
  };
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    if (!existsSync(join(dir, 'key'))) {
      // Completed before with these very parts: S3 answers a repeated Complete as it answered the first.
      const done = completed.replay(bucket, uploadId, parts);
      if (done) return done;
      throw s3Error('NoSuchUpload', 404, NO_SUCH_UPLOAD);
    }
    const [key, metadata] = await Promise.all([
      readFile(join(dir, 'key'), 'utf8'),
      readFile(join(dir, 'metadata'), 'utf8').then((m) => JSON.parse(m) as unknown),
    ]);
    // S3 completes only with the parts listed in ascending order, each but the last at least 5 MiB.
    if (parts.some((p, i) => i > 0 && p.number <= parts[i - 1]!.number))
      throw s3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order.');
    const digests = await Promise.all(
      parts.map((p) => readFile(join(dir, `${p.number}.md5`), 'utf8').catch(() => undefined)),
    );
    // S3 completes only with the parts as they were stored: each named part there, with the ETag it was given.
    parts.forEach((p, i) => {
      if (digests[i] !== p.etag)
        throw new S3rverError(
          'InvalidPart',
          "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        );
    });
    const sizes = await Promise.all(
      parts.map((p) =>
        stat(join(dir, String(p.number))).then(
          (st) => st.size,
          () => 0,
        ),
      ),
    );
    if (sizes.some((n, i) => i < sizes.length - 1 && n < 5 * 1024 * 1024))
      throw s3Error('EntityTooSmall', 400, 'Your proposed upload is smaller than the minimum allowed object size.');
    const etag = `${createHash('md5')
      .update(Buffer.concat(digests.map((d) => Buffer.from(d ?? '', 'hex'))))
      .digest('hex')}-${parts.length}`;
    let size = 0;
    const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
    await replaceWhole(store.getResourcePath(bucket, key, 'object'), async (out) => {
      for (const part of parts) {
        const input = await open(join(dir, String(part.number)), 'r');
        try {
          for (;;) {
            const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0) break;
            await out.write(buffer, 0, bytesRead);
            size += bytesRead;
          }
        } finally {
          await input.close();
        }
      }
    });
    await store.putMetadata(bucket, key, metadata, etag);
    completed.add(bucket, key, uploadId, parts, { size, md5: etag });
    await rm(dir, { recursive: true, force: true });
    return { size, md5: etag };
  };
}

/**
 * Multipart uploads completed, by upload ID: S3 answers a CompleteMultipartUpload repeated with the same parts after it
 * succeeded as it answered the first (github.com/adobe/S3Mock/issues/2586 shows it against S3; minio/minio#13318 too),
 * which is what makes an SDK's retry safe when the first answer was lost on the way. The newest 10,000 are kept.
 */
class CompletedUploads {
  private readonly byId = new Map<string, { bucket: string; key: string; parts: string; result: StoredPart }>();

  add(bucket: string, key: string, uploadId: string, parts: CompletedPart[], result: StoredPart): void {
    this.byId.set(uploadId, { bucket, key, parts: partList(parts), result });
    if (this.byId.size > 10_000) this.byId.delete(this.byId.keys().next().value!);
  }

  /** An upload ID completed before (for any object). */
  knows(uploadId: string): boolean {
    return this.byId.has(uploadId);
  }

  has(bucket: string, key: string, uploadId: string): boolean {
    const done = this.byId.get(uploadId);
    return done !== undefined && done.bucket === bucket && done.key === key;
  }

  /** The first Complete's result when this one names the same parts (an upload completed with others is gone). */
  replay(bucket: string, uploadId: string, parts: CompletedPart[]): StoredPart | undefined {
    const done = this.byId.get(uploadId);
    return done && done.bucket === bucket && done.parts === partList(parts) ? done.result : undefined;
  }
}

type CompletedPart = { number: number; etag: string };
const partList = (parts: CompletedPart[]): string => parts.map((p) => `${p.number}:${p.etag}`).join(',');

function headerOf(ctx: KoaCtx, name: string): string | undefined {
  const v = ctx.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>local</RequestId></Error>`;
}

/** The IAM action an S3 REST request needs (path-style addressing). */
export function s3Action(method: string, bucket: string, key: string, q: URLSearchParams): string {
  if (!bucket) return 's3:ListAllMyBuckets';
  if (key) {
    switch (method) {
      case 'PUT':
        return 's3:PutObject';
      case 'POST':
        return q.has('uploads') ? 's3:CreateMultipartUpload' : 's3:PutObject';
      case 'DELETE':
        return q.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject';
      case 'GET':
        return q.has('uploadId') ? 's3:ListMultipartUploadParts' : 's3:GetObject';
      default:
        return 's3:GetObject';
    }
  }
  if (method === 'GET' && q.has('uploads')) return 's3:ListBucketMultipartUploads';
  if (q.has('location')) return 's3:GetBucketLocation';
  if (q.has('lifecycle')) return method === 'GET' ? 's3:GetLifecycleConfiguration' : 's3:PutLifecycleConfiguration';
  if (method === 'PUT') return 's3:CreateBucket';
  if (method === 'DELETE') return 's3:DeleteBucket';
  if (method === 'POST' && q.has('delete')) return 's3:DeleteObject';
  return 's3:ListBucket';
}
