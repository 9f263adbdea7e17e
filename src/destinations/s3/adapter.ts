import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Destination, S3Target } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import {
  type DestinationPort,
  type ObjectUpload,
  PreconditionFailed,
  type PutOptions,
  type PutResult,
  type UploadOptions,
} from '../port.js';
import {
  DestinationAccessError,
  type DestinationClients,
  destinationClientCache,
  destinationClients,
  explainS3Error,
  httpStatusOf,
  isRetryableAws,
  verifyAssumeRole,
} from './clients.js';
import { verifyExternalIdEnforced } from './external-id-guard.js';
import { S3ObjectUpload } from './upload.js';

/**
 * The S3 adapter of the destination port: one S3 client per run and account (kept by a warm worker for
 * the run's next tasks), on credentials from
 * AssumeRole into the customer's role with the account's external ID (src/destinations/s3/clients.ts);
 * every object written with SSE-KMS under the target's key when it has one. Nothing outside
 * src/destinations/s3/ sees the client, the credentials or the SDK's errors.
 */
export class S3Destination implements DestinationPort {
  readonly kind = 's3';
  readonly container: string;
  /** The destination with the target's bucket, prefix, region, role and key (what messages name). */
  private readonly dest: Destination;
  private clients: DestinationClients | undefined;
  /** Hands the cached clients back (src/destinations/s3/clients.ts); none for injected clients. */
  private release: (() => void) | undefined;

  constructor(
    dest: Destination,
    target: S3Target,
    private readonly runId: string,
    private readonly settings: Settings,
    /** The client to use instead of one on assumed-role credentials (tests inject a fake). */
    clients?: DestinationClients,
    /** Take the clients from the worker's cache and leave them there when closed (a worker's port). */
    private readonly reuse = false,
  ) {
    this.clients = clients;
    const { kmsKeyArn: _, ...rest } = dest;
    this.dest = {
      ...rest,
      bucket: target.bucket,
      prefix: target.prefix,
      region: target.region,
      roleArn: target.roleArn,
      ...(target.kmsKeyArn ? { kmsKeyArn: target.kmsKeyArn } : {}),
    };
    this.container = target.bucket;
  }

  /**
   * The client, made at first use (a port opened and never used makes no STS call) — a worker's port
   * takes it from the process's cache, where the run's earlier tasks may have left credentials and a client.
   */
  private get c(): DestinationClients {
    if (!this.clients) {
      if (!this.reuse) this.clients = destinationClients(this.dest, this.runId, this.settings);
      else {
        const { clients, release } = destinationClientCache.acquire(this.dest, this.runId, this.settings);
        this.clients = clients;
        this.release = release;
      }
    }
    return this.clients;
  }

  async verifyAccess(): Promise<void> {
    await verifyAssumeRole(this.dest, this.c);
  }

  async verifyIsolation(): Promise<'verified'> {
    await verifyExternalIdEnforced(this.dest, this.settings);
    return 'verified';
  }

  private get sse(): { ServerSideEncryption: 'aws:kms'; SSEKMSKeyId: string } | Record<string, never> {
    return this.dest.kmsKeyArn ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.dest.kmsKeyArn } : {};
  }

  openUpload(key: string, opts: UploadOptions): ObjectUpload {
    return new S3ObjectUpload({
      client: this.c.s3,
      bucket: this.dest.bucket,
      key,
      contentType: opts.contentType,
      partSize: opts.partSize,
      queueSize: opts.queueSize,
      ...(this.dest.kmsKeyArn ? { kmsKeyArn: this.dest.kmsKeyArn } : {}),
      unsignedParts: this.settings.DROPSHIP_S3_UNSIGNED_PARTS,
    });
  }

  async putObject(key: string, body: string, opts: PutOptions): Promise<PutResult> {
    const conditional = Boolean(opts.ifMatch || opts.ifNoneMatch);
    const command = new PutObjectCommand({
      Bucket: this.dest.bucket,
      Key: key,
      Body: body,
      ContentType: opts.contentType,
      ...(opts.cacheControl ? { CacheControl: opts.cacheControl } : {}),
      ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : {}),
      ...(opts.ifNoneMatch ? { IfNoneMatch: opts.ifNoneMatch } : {}),
      ...this.sse,
    });
    if (conditional) sendOnce(command);
    try {
      const res = await this.c.s3.send(command);
      return { key, etag: res.ETag };
    } catch (raw) {
      const e = raw instanceof NotSentAgain ? raw.first : raw;
      const status = httpStatusOf(e);
      // 412: another object in place; 404 (If-Match): none (the customer deleted it, or the bucket is new).
      if (
        conditional &&
        (status === 412 || (opts.ifMatch && status === 404) || (e as Error).name === 'PreconditionFailed')
      )
        throw new PreconditionFailed(key, { cause: e });
      throw explainS3Error(this.dest, key, e);
    }
  }

  explain(key: string, e: unknown): unknown {
    return isS3Error(e) ? explainS3Error(this.dest, key, e) : e;
  }

  deniesAccess(e: unknown): boolean {
    return e instanceof DestinationAccessError;
  }

  isRetryable(e: unknown): boolean {
    return isRetryableAws(e);
  }

  refused(e: unknown): boolean {
    return httpStatusOf(e) !== undefined;
  }

  close(): void {
    if (this.release) {
      // Cached clients stay with the worker for the run's next tasks.
      this.release();
      this.release = undefined;
      this.clients = undefined;
    } else this.clients?.s3.destroy();
  }
}

/** An error S3 answered with (the SDK attaches the response's metadata). */
function isS3Error(e: unknown): boolean {
  return typeof e === 'object' && e !== null && '$metadata' in e;
}

/**
 * A conditional write is sent once: the SDK's own retry of it is refused (`NotSentAgain`, carrying the first attempt's
 * error), so the caller sees every attempt and counts each as in doubt until S3 answers (the receipt's publication,
 * src/run/lifecycle/finish.ts; status.json's place). Red team (kill, then trust): the SDK resent the account's first,
 * create-only receipt PUT after its answer was lost; the resend met the object its first attempt had stored (412), read
 * as "a receipt.json dropship did not write": the run failed with its receipt published, and every later run too.
 *
 * A middleware inside the SDK's retry loop (step `finalizeRequest`, after `retryMiddleware`): it lets the first attempt
 * through and answers any later one with a plain error the retry strategy does not retry (no `cause`: the SDK's
 * transient-error check follows causes), so the retry loop ends and throws it.
 */
function sendOnce(command: PutObjectCommand): void {
  let first: unknown;
  let sent = false;
  const once = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
    if (sent) throw new NotSentAgain(first);
    sent = true;
    try {
      return await next(args);
    } catch (e) {
      first = e;
      throw e;
    }
  };
  command.middlewareStack.addRelativeTo(
    once as unknown as Parameters<typeof command.middlewareStack.addRelativeTo>[0],
    {
      relation: 'after',
      toMiddleware: 'retryMiddleware',
      name: 'dropshipSendOnce',
      override: true,
    },
  );
}

/** The SDK wanted to send a conditional write again; `first` is what the one attempt ended with. */
export class NotSentAgain extends Error {
  constructor(readonly first: unknown) {
    super('a conditional write is sent once (its first attempt failed)');
    this.name = 'NotSentAgain';
  }
}
