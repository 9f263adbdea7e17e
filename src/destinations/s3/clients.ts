import { createHash } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import {
  DropshipError,
  type DropshipErrorDefaults,
  type DropshipErrorOptions,
  isRetryable,
} from '../../contracts/errors.js';
import { type CustomerFailureCode, type FailureDest, failureFor, KMS_DENIAL } from './customer-failure.js';
import { sessionPolicyJson } from './policies.js';

/**
 * Destination credentials: STS AssumeRole into the customer's role with the account's external ID,
 * a session name that names dropship, the account and the run, and a session policy that limits
 * the credentials to writing under the destination's prefix. The provider refreshes the
 * credentials before they expire, so a run may outlive one session. One S3 client per account:
 * credentials never cross accounts.
 *
 * Endpoints, region and dropship's own credentials come from standard AWS SDK configuration
 * (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_STS, AWS_REGION, the default credential chain), so the
 * same code runs against AWS, MinIO, LocalStack or dropship's local stack.
 */
export class AwsError extends DropshipError {
  readonly code: string = 'aws';
  /**
   * An AWS call failed. Retryable unless told otherwise or its cause is not: an SDK error is
   * classified by its error code here, where it enters dropship (`isRetryableAws`).
   */
  constructor(message: string, options?: DropshipErrorOptions, defaults: DropshipErrorDefaults = {}) {
    super(message, options, { retryable: isRetryableAws(options?.cause), ...defaults });
    this.name = 'AwsError';
  }
}

/**
 * The destination cannot be written: role, trust, bucket or permission problem. Not retryable.
 * `failure` says which, in the customer's terms; its customer message is that failure's sentence
 * (src/destinations/s3/customer-failure.ts, the one source of the customer's words).
 */
export class DestinationAccessError extends AwsError {
  override readonly code: string = 'destination-access';
  readonly failure: CustomerFailureCode | undefined;
  constructor(
    message: string,
    options: DropshipErrorOptions & { failure?: { code: CustomerFailureCode; dest: FailureDest } } = {},
  ) {
    const { failure, ...rest } = options;
    super(message, rest, {
      retryable: false,
      customerMessage: failure
        ? failureFor(failure.code, failure.dest).reason
        : 'dropship cannot write to your destination: the role, its trust policy, the bucket or its permissions refuse it',
    });
    this.name = 'DestinationAccessError';
    this.failure = failure?.code;
  }
}

export function roleSessionName(accountId: string, runId: string): string {
  return `dropship-${accountId}-${runId}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

/**
 * The HTTP handler options of every S3 and STS client: a connection must open, and a request then never go silent,
 * for longer than DROPSHIP_AWS_TIMEOUT_SECONDS. The SDK's default has neither bound, so an endpoint that accepts the
 * connection and never answers held the call until the Lambda's timeout (red team, fan-out). `socketTimeout` is an
 * idle bound, not a total one: a large part that keeps sending, or a CompleteMultipartUpload whose answer S3 keeps
 * alive with whitespace, is not cut. The timeout is a `TimeoutError`, which the SDK's standard mode retries.
 */
export function awsHttpConfig(settings: Pick<Settings, 'DROPSHIP_AWS_TIMEOUT_SECONDS'>): {
  requestHandler: { connectionTimeout: number; socketTimeout: number };
} {
  const ms = settings.DROPSHIP_AWS_TIMEOUT_SECONDS * 1000;
  return { requestHandler: { connectionTimeout: ms, socketTimeout: ms } };
}

/**
 * The STS client options dropship uses wherever it calls STS: the region from the standard AWS
 * environment (else the destination's), the attempts DROPSHIP_AWS_MAX_ATTEMPTS allows, and the
 * timeouts of `awsHttpConfig`.
 */
export function stsClientConfig(
  region: string,
  settings: Pick<Settings, 'DROPSHIP_AWS_MAX_ATTEMPTS' | 'DROPSHIP_AWS_TIMEOUT_SECONDS'>,
): { region: string; maxAttempts: number } & ReturnType<typeof awsHttpConfig> {
  return {
    region: process.env.AWS_REGION ?? region,
    maxAttempts: settings.DROPSHIP_AWS_MAX_ATTEMPTS,
    ...awsHttpConfig(settings),
  };
}

/**
 * The S3 client options the settings decide: path-style addressing (local S3s, MinIO) when asked, and the timeouts
 * of `awsHttpConfig`.
 */
export function s3SettingsConfig(
  settings: Pick<Settings, 'DROPSHIP_S3_FORCE_PATH_STYLE' | 'DROPSHIP_AWS_TIMEOUT_SECONDS'>,
): { forcePathStyle?: true } & ReturnType<typeof awsHttpConfig> {
  return { ...(settings.DROPSHIP_S3_FORCE_PATH_STYLE ? { forcePathStyle: true } : {}), ...awsHttpConfig(settings) };
}

type Credentials = Awaited<ReturnType<ReturnType<typeof fromTemporaryCredentials>>>;

export interface DestinationClients {
  s3: S3Client;
  credentials: () => Promise<Credentials>;
  /** The session length the credentials are asked for (DROPSHIP_ROLE_SESSION_SECONDS), when known. */
  sessionSeconds?: number;
}

/** Credentials are refreshed this long before they expire (the AWS SDK's own margin). */
export const REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * One AssumeRole's credentials for as long as they last: the same answer until `refreshBeforeMs`
 * before their expiration (by `now`), then a new AssumeRole. A failed call is not kept.
 */
function reuseCredentials(
  assume: () => Promise<Credentials>,
  now: () => number,
  refreshBeforeMs: number,
): () => Promise<Credentials> {
  let current: { creds: Promise<Credentials>; expiresAt?: number } | undefined;
  return () => {
    if (current && (current.expiresAt === undefined || current.expiresAt - now() > refreshBeforeMs))
      return current.creds;
    const entry: { creds: Promise<Credentials>; expiresAt?: number } = { creds: assume() };
    current = entry;
    entry.creds.then(
      (c) => {
        // Expiration unknown: keep them pending an answer (never the case with STS).
        entry.expiresAt = c.expiration ? c.expiration.getTime() : Number.POSITIVE_INFINITY;
      },
      () => {
        if (current === entry) current = undefined;
      },
    );
    return entry.creds;
  };
}

export function destinationClients(
  dest: Destination,
  runId: string,
  settings: Settings,
  opts: { now?: () => number } = {},
): DestinationClients {
  const assume = fromTemporaryCredentials({
    params: {
      RoleArn: dest.roleArn,
      RoleSessionName: roleSessionName(dest.accountId, runId),
      ExternalId: dest.externalId,
      Policy: sessionPolicyJson(dest),
      DurationSeconds: settings.DROPSHIP_ROLE_SESSION_SECONDS,
    },
    clientConfig: stsClientConfig(dest.region, settings),
  });
  const credentials = reuseCredentials(() => assume(), opts.now ?? Date.now, REFRESH_BEFORE_MS);
  // The SDK's standard retry strategy: exponential backoff with full jitter for throttling
  // (SlowDown, 503), 5xx, connection resets and timeouts; never for AccessDenied, NoSuchBucket,
  // InvalidAccessKeyId and other client errors, which fail at once.
  const s3 = new S3Client({
    region: dest.region,
    credentials,
    maxAttempts: settings.DROPSHIP_AWS_MAX_ATTEMPTS,
    retryMode: 'standard',
    ...s3SettingsConfig(settings),
  });
  return { s3, credentials, sessionSeconds: settings.DROPSHIP_ROLE_SESSION_SECONDS };
}

/**
 * A warm worker's destination clients (issue 25): the credentials of one AssumeRole and one S3 client
 * per destination and run, reused by every task of that run the worker handles — a packed message's
 * tables, later messages, the run's finish — until 5 minutes before the credentials expire (then
 * one new AssumeRole). The key holds everything the credentials and the client are made from: the
 * account, the destination's generation and version, role ARN, external ID, region, bucket, prefix and
 * KMS key (the session policy), the run (the role session's name), and the settings and endpoints that
 * shape the clients — so a changed destination, another destination or another run never gets them.
 * Bounded: the least recently used entry goes first (its client is destroyed once no port uses it).
 */
export class DestinationClientCache {
  private readonly entries = new Map<string, { clients: DestinationClients; users: number; evicted: boolean }>();
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Clients for one port; `release` when the port closes. With no room (0 entries), fresh ones each time. */
  acquire(dest: Destination, runId: string, settings: Settings): { clients: DestinationClients; release: () => void } {
    const max = settings.DROPSHIP_CLIENT_CACHE_ENTRIES;
    if (max <= 0) {
      const clients = destinationClients(dest, runId, settings, { now: this.now });
      return { clients, release: () => clients.s3.destroy() };
    }
    const key = cacheKey(dest, runId, settings);
    let entry = this.entries.get(key);
    if (entry)
      this.entries.delete(key); // re-inserted last: most recently used
    else entry = { clients: destinationClients(dest, runId, settings, { now: this.now }), users: 0, evicted: false };
    this.entries.set(key, entry);
    entry.users++;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= max) break;
      this.entries.delete(k);
      e.evicted = true;
      if (e.users === 0) e.clients.s3.destroy();
    }
    const used = entry;
    let released = false;
    return {
      clients: used.clients,
      release: () => {
        if (released) return;
        released = true;
        used.users--;
        if (used.evicted && used.users === 0) used.clients.s3.destroy();
      },
    };
  }

  /** Forgets every entry (a new Lambda instance, tests). */
  clear(): void {
    for (const e of this.entries.values()) {
      e.evicted = true;
      if (e.users === 0) e.clients.s3.destroy();
    }
    this.entries.clear();
  }
}

function cacheKey(dest: Destination, runId: string, settings: Settings): string {
  const parts = [
    dest.accountId,
    dest.generation,
    dest.version,
    dest.roleArn,
    dest.externalId,
    dest.region,
    dest.bucket,
    dest.prefix,
    dest.kmsKeyArn ?? '',
    runId,
    settings.DROPSHIP_ROLE_SESSION_SECONDS,
    settings.DROPSHIP_AWS_MAX_ATTEMPTS,
    settings.DROPSHIP_AWS_TIMEOUT_SECONDS,
    settings.DROPSHIP_S3_FORCE_PATH_STYLE,
    process.env.AWS_REGION ?? '',
    process.env.AWS_ENDPOINT_URL_STS ?? '',
    process.env.AWS_ENDPOINT_URL_S3 ?? '',
  ];
  // Hashed: the external ID is part of the key and never kept in the clear outside the destination.
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The worker process's cache (one per warm Lambda instance). */
export const destinationClientCache = new DestinationClientCache();

const NOT_RETRYABLE = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'NoSuchBucket',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidClientTokenId',
  'KMS.AccessDeniedException',
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
]);

export function awsErrorCode(e: unknown): string | undefined {
  const err = e as { name?: string; Code?: string; $metadata?: unknown };
  return err && typeof err === 'object' ? (err.Code ?? err.name) : undefined;
}

/**
 * The one classification of AWS SDK errors: those no retry can fix (permissions, missing bucket,
 * wrong region, rejected credentials) are not retryable; throttling, 5xx, resets and timeouts are
 * (the SDK has already retried them `DROPSHIP_AWS_MAX_ATTEMPTS` times; a later attempt may succeed).
 * A DropshipError (and an error with one among its causes) answers for itself.
 */
export function isRetryableAws(e: unknown): boolean {
  if (e === undefined || e === null) return true;
  if (!(e instanceof DropshipError)) {
    const code = awsErrorCode(e);
    if (code !== undefined && NOT_RETRYABLE.has(code)) return false;
  }
  return isRetryable(e);
}

/**
 * STS refused the session's length: the role's MaxSessionDuration is shorter than the
 * DurationSeconds dropship asks for (DROPSHIP_ROLE_SESSION_SECONDS). Not a trust-policy problem.
 */
export function isSessionTooLong(e: unknown): boolean {
  return awsErrorCode(e) === 'ValidationError' && /MaxSessionDuration/i.test((e as Error).message ?? '');
}

/** One line for isSessionTooLong: what is wrong and the two ways out (the role's side, or dropship's setting). */
export function sessionTooLongExplanation(dest: Pick<Destination, 'accountId' | 'roleArn'>, seconds?: number): string {
  const asked = seconds !== undefined ? `${seconds} s` : 'the session length';
  return (
    `role ${dest.roleArn} refuses sessions of ${asked} (DROPSHIP_ROLE_SESSION_SECONDS): its MaxSessionDuration is shorter. ` +
    `Raise the role's MaxSessionDuration to at least ${seconds ?? 'DROPSHIP_ROLE_SESSION_SECONDS'} (aws iam update-role --role-name ${dest.roleArn.split('/').pop()} ` +
    `--max-session-duration ${seconds ?? '<seconds>'}; dropship policy --account ${dest.accountId} prints the create-role command), ` +
    'or lower DROPSHIP_ROLE_SESSION_SECONDS'
  );
}

/**
 * Assumes the role once, so a wrong role or external ID fails before any table is read, with
 * a message that says what to fix (never the external ID itself: messages reach logs).
 */
export async function verifyAssumeRole(dest: Destination, clients: DestinationClients): Promise<void> {
  try {
    await clients.credentials();
  } catch (e) {
    const code = awsErrorCode(e);
    if (code === 'AccessDenied' || code === 'AccessDeniedException') {
      throw new DestinationAccessError(
        `account ${dest.accountId}: cannot assume role ${dest.roleArn} (AccessDenied). The role must exist and its trust ` +
          `policy must allow dropship's principal with the condition sts:ExternalId = the external ID registered for this ` +
          `account (print the exact policy with: dropship destinations show ${dest.accountId})`,
        { cause: e, failure: { code: 'role_not_assumable', dest } },
      );
    }
    if (isSessionTooLong(e))
      throw new AwsError(`account ${dest.accountId}: ${sessionTooLongExplanation(dest, clients.sessionSeconds)}`, {
        cause: e,
        retryable: false,
        repeats: true,
        customerMessage: `the role ${dest.roleArn} does not allow sessions as long as the ones dropship asks for (its maximum session duration, MaxSessionDuration, is shorter)`,
      });
    throw new AwsError(
      `account ${dest.accountId}: AssumeRole on ${dest.roleArn} failed: ${code ?? ''} ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/** An AccessDenied that the destination's KMS key caused (S3 names the KMS action in its message). */
function kmsDenial(dest: Destination, e: unknown): boolean {
  return Boolean(dest.kmsKeyArn) && KMS_DENIAL.test((e as Error).message ?? '');
}

/** Rewrites an S3 error into one line that names the destination and what is missing. */
export function explainS3Error(dest: Destination, key: string, e: unknown): AwsError {
  const code = awsErrorCode(e);
  const where = `s3://${dest.bucket}/${key}`;
  switch (code) {
    case 'NoSuchBucket':
      return new DestinationAccessError(
        `account ${dest.accountId}: bucket "${dest.bucket}" does not exist (writing ${where})`,
        { cause: e, failure: { code: 'bucket_missing', dest } },
      );
    case 'AccessDenied':
      return new DestinationAccessError(
        `account ${dest.accountId}: access denied writing ${where}. The role ${dest.roleArn} needs s3:PutObject and ` +
          `s3:AbortMultipartUpload on that key${dest.kmsKeyArn ? ` and kms:GenerateDataKey + kms:Decrypt on ${dest.kmsKeyArn}` : ''}` +
          ` (print the policy with: dropship destinations show ${dest.accountId})`,
        { cause: e, failure: { code: kmsDenial(dest, e) ? 'kms_denied' : 'write_denied', dest } },
      );
    case 'AuthorizationHeaderMalformed':
    case 'PermanentRedirect':
      return new DestinationAccessError(
        `account ${dest.accountId}: bucket "${dest.bucket}" is not in region ${dest.region} (${(e as Error).message})`,
        { cause: e, failure: { code: 'bucket_wrong_region', dest } },
      );
    default:
      return new AwsError(
        `account ${dest.accountId}: writing ${where} failed: ${code ?? 'Error'}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
  }
}

/** The HTTP status an AWS service answered with (the error or one of its causes); undefined when no answer came. */
export function httpStatusOf(e: unknown): number | undefined {
  let c: unknown = e;
  for (let i = 0; c && i < 8; i++) {
    const status = (c as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
    if (typeof status === 'number') return status;
    c = (c as { cause?: unknown }).cause;
  }
  return undefined;
}
