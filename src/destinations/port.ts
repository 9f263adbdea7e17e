import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';

/**
 * The destination port: everything the export needs from the place it delivers to, and nothing
 * more. Modelled on DuckDB's FileSystem (the Parquet writer never knows whether it writes to S3 or
 * to disk) and on lib-storage's Upload (one client injected for the whole run, bounded concurrency
 * inside the upload, settle-then-abort on failure; src/destinations/s3/upload.ts sends its requests). One adapter per target kind:
 *
 *   src/destinations/s3/     the customer's S3 bucket, through an assumed role (the product)
 *   src/destinations/local/  a directory on this machine (tests, `dropship dev`; refused in production)
 *
 * A port is opened for one destination and one run (`openTarget`, src/destinations/open.ts) and
 * hides its credentials: writers see keys, bytes and typed errors only. Keys are full object keys
 * (the destination prefix included, src/pipeline/sink/layout.ts).
 */
export interface DestinationPort {
  /** The target's kind ('s3' | 'local'): for logs and messages only, never for branching. */
  readonly kind: string;
  /**
   * The target's container, as the receipt chain records it (`dropship.receipt_chain.bucket`):
   * the bucket for S3, `local:<root>` for a directory. A recorded ETag is a precondition only
   * within the same container.
   */
  readonly container: string;

  /**
   * Fails fast when the destination cannot be reached at all (S3: AssumeRole into the customer's
   * role with the external ID), with a typed error that says what to fix.
   */
  verifyAccess(): Promise<void>;

  /**
   * Proves that only dropship acting for this account can reach the target — S3: AssumeRole into
   * the role WITHOUT the external ID must be denied (the confused-deputy guard,
   * src/destinations/s3/external-id-guard.ts). On S3 it leaves an AccessDenied event in the
   * customer's CloudTrail, so callers rate-limit it (src/notify/drift.ts `ensureExternalIdEnforced`).
   * Resolves 'verified' when it proved it, 'not-applicable' when the kind has nothing to prove (a
   * local directory): that is no verification of the account's registered role.
   */
  verifyIsolation(): Promise<'verified' | 'not-applicable'>;

  /**
   * Opens one streamed object (a Parquet shard): bytes written go out in parts of `partSize`,
   * `queueSize` parts in flight; `fail()` settles the parts and aborts, so nothing unfinished stays.
   */
  openUpload(key: string, opts: UploadOptions): ObjectUpload;

  /**
   * Writes a small object (receipt.json, status.json) in one request. With `ifMatch` it replaces only
   * the object with that ETag, with `ifNoneMatch: '*'` it creates only; when the condition does not
   * hold (another object, or none) it throws `PreconditionFailed` and nothing changes.
   */
  putObject(key: string, body: string, opts: PutOptions): Promise<PutResult>;

  /**
   * This destination's raw error (an SDK or file-system error) rewritten into one typed line that
   * names the destination and what is missing, with the customer's words where it is theirs to fix
   * (`DestinationAccessError.failure`). Anything else is returned as it is.
   */
  explain(key: string, e: unknown): unknown;

  /**
   * The destination refuses this run's access (role, bucket, permissions, KMS key): every table
   * would fail alike, so the run stops early.
   */
  deniesAccess(e: unknown): boolean;

  /** Whether a failure (raw or explained) may succeed when tried again. */
  isRetryable(e: unknown): boolean;

  /**
   * True when the destination answered the request with a refusal (so the request wrote nothing);
   * false when no answer came (a dropped connection: the write is in doubt).
   */
  refused(e: unknown): boolean;

  /** Releases the port's clients (sockets). Idempotent. */
  close(): void;
}

export interface UploadOptions {
  contentType: string;
  partSize: number;
  queueSize: number;
}

export interface PutOptions {
  contentType: string;
  cacheControl?: string;
  ifMatch?: string;
  ifNoneMatch?: '*';
}

export interface PutResult {
  key: string;
  /** The stored object's ETag (a precondition for the next conditional write), when the target gives one. */
  etag: string | undefined;
}

/** One object being streamed to the destination. */
export interface ObjectUpload {
  readonly key: string;
  /**
   * Writes bytes; resolves when the upload can take more (backpressure) and has taken the chunk's bytes (copied or
   * written them): the caller may then reuse the chunk's memory (the Parquet writer's page buffers).
   */
  write(chunk: Buffer): Promise<void>;
  /** Ends the object; resolves once it is stored. */
  complete(): Promise<void>;
  /** Stops the upload and resolves once what was sent is aborted (no unfinished parts stay). */
  fail(reason: unknown): Promise<void>;
}

/** A conditional write found another object in place, or none (`ifMatch`), or one (`ifNoneMatch`). */
export class PreconditionFailed extends DropshipError {
  readonly code: string = 'precondition-failed';
  constructor(
    readonly key: string,
    options?: DropshipErrorOptions,
  ) {
    super(`${key}: the object in place is not the one the write was conditional on`, options, { retryable: false });
    this.name = 'PreconditionFailed';
  }
}

/** Every message of an error and its causes, plus per-table failures when the error carries them. */
export function errorText(e: unknown): string {
  if (e === undefined || e === null) return '';
  if (typeof e === 'string') return e;
  const parts: string[] = [];
  let c: unknown = e;
  for (let i = 0; c && i < 8; i++) {
    parts.push(c instanceof Error ? c.message : String(c));
    const failures = (c as { failures?: { message: string }[] }).failures;
    if (Array.isArray(failures)) parts.push(...failures.map((f) => f.message));
    c = c instanceof Error ? c.cause : undefined;
  }
  return parts.join('\n');
}
