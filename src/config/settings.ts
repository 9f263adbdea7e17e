import { z } from 'zod';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import { DEFAULT_SLOTS, slotListSchema } from '../contracts/slots.js';

/**
 * Every setting dropship reads from the environment, validated once at the edge.
 * Unknown DROPSHIP_* variables are rejected with a suggestion, so a typo such as
 * DROPSHIP_SHARD_TARGET_BYTE never silently falls back to a default.
 */
const MiB = 1024 * 1024;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

export const settingsSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL')
    .optional(),
  /** Where the customers' tables live; defaults to DATABASE_URL. */
  DROPSHIP_SOURCE_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL')
    .optional(),
  /** The AWS principal customers trust (our Lambda role in production). */
  DROPSHIP_PRINCIPAL_ARN: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]+$/, 'must be an IAM role or user ARN')
    .optional(),
  /**
   * Where the vendor hosts customers' CloudFormation templates (`dropship destinations kit`): the
   * quick-create link names `<base>/<account>/<hash>.template.json`. An https URL (the console loads
   * templates from S3 over https); no trailing slash needed.
   */
  DROPSHIP_KIT_TEMPLATE_BASE_URL: z
    .string()
    .regex(/^https:\/\/[^\s?#]+$/, 'must be an https URL without a query or fragment (an S3 bucket URL and folder)')
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  DROPSHIP_SHARD_TARGET_BYTES: int(MiB, 5 * 1024 * MiB).default(128 * MiB),
  DROPSHIP_ROW_GROUP_ROWS: int(1_000, 10_000_000).default(100_000),
  /** Uncompressed bytes per row group: bounds memory for wide tables (two row groups in flight). */
  DROPSHIP_ROW_GROUP_BYTES: int(MiB, 1024 * MiB).default(16 * MiB),
  DROPSHIP_PAGE_BYTES: int(64 * 1024, 64 * MiB).default(MiB),
  /**
   * The largest row a table may hold (its values' bytes as Postgres sends them in binary COPY): a longer row fails
   * its table, naming the column, before it is buffered. The exporter holds several copies of a row while it
   * writes it — the COPY buffer, the column, the page, its compressed form, the upload — measured on the dev stack
   * (`dropship export` of one row, `/usr/bin/time -v`): a 100 MiB random bytea took peak RSS from ~120 MB to 817 MB
   * (about 7×), a 200 MiB compressible text to 1,078 MB. At the default, 128 MiB, one row costs at most ~0.9 GB: the
   * 1,769 MB worker keeps room for its other tables, and one customer's huge row fails that customer's run instead
   * of every account in the process. The bound is per row: a process reading several tables at once (the CLI's
   * DROPSHIP_ACCOUNT_CONCURRENCY × DROPSHIP_TABLE_CONCURRENCY, two readers each with DROPSHIP_TABLE_THREADS=2) may
   * hold that many near-bound rows. Raise it together with the memory.
   */
  DROPSHIP_MAX_ROW_BYTES: int(MiB, 1024 * MiB).default(128 * MiB),
  /**
   * libdeflate's GZIP level (1–12). 4 gives smaller pages than zlib's (and DuckDB's) level 6 at about
   * twice its speed (src/pipeline/parquet/compression.ts has the measurement).
   */
  DROPSHIP_GZIP_LEVEL: int(1, 12).default(4),
  /**
   * ZSTD level (1–19). 1, Apache Arrow's (pyarrow's) default for Parquet: compresses the bench's pages twice as fast
   * as 3 (zstd's and DuckDB's default) for 1.4 % more bytes (src/pipeline/parquet/compression.ts has the measurement;
   * the export's CPU per row falls ~6 %).
   */
  DROPSHIP_ZSTD_LEVEL: int(1, 19).default(1),
  /** Multipart upload: (queue + 1) × part size of buffers per shard; 2 × 5 MiB parts keep up with encoding. */
  DROPSHIP_PART_SIZE_BYTES: int(5 * MiB, 5 * 1024 * MiB).default(5 * MiB),
  DROPSHIP_UPLOAD_QUEUE_SIZE: int(1, 64).default(2),
  DROPSHIP_TABLE_CONCURRENCY: int(1, 64).default(2),
  /**
   * Threads one large table is read with: 2 reads its two halves on two cores when the machine has them
   * (src/pipeline/threads/split.ts); 1, the default, never splits — on this project's 2-vCPU machine, with Postgres
   * and the local S3 on the same cores, two threads were slower and took more CPU per row (docs/operations/capacity.md).
   */
  DROPSHIP_TABLE_THREADS: int(1, 2).default(1),
  /** The row estimate from which a table is read by two threads. */
  DROPSHIP_TABLE_THREADS_MIN_ROWS: int(1_000, 1_000_000_000_000).default(1_000_000),
  DROPSHIP_ACCOUNT_CONCURRENCY: int(1, 64).default(2),
  DROPSHIP_ROLE_SESSION_SECONDS: int(900, 43_200).default(3600),
  DROPSHIP_S3_FORCE_PATH_STYLE: bool.default(false),
  /**
   * Shard parts go with `UNSIGNED-PAYLOAD` and a CRC32 checksum (over TLS or to loopback only): the SDK does not hash
   * every byte with SHA-256 (src/destinations/s3/upload.ts). false signs every byte, for a destination bucket whose
   * policy denies unsigned payloads (`s3:x-amz-content-sha256`; `dropship doctor` fails its probe then).
   */
  DROPSHIP_S3_UNSIGNED_PARTS: bool.default(true),
  /** Attempts per AWS request (S3 parts, PutObject, STS): retryable errors back off with jitter. */
  DROPSHIP_AWS_MAX_ATTEMPTS: int(1, 20).default(5),
  /**
   * How long an AWS request (S3, STS) may take to connect, and then go with nothing sent or received, before it fails
   * as a timeout (retried like any other): an endpoint that accepts and never answers no longer holds a run, a slot's
   * open message or a pre-flight until the Lambda's own timeout.
   */
  DROPSHIP_AWS_TIMEOUT_SECONDS: int(1, 900).default(60),
  /** SSM SecureString parameter holding DATABASE_URL (Lambda); read at cold start when DATABASE_URL is unset. */
  DROPSHIP_DATABASE_URL_SSM_PARAMETER: z
    .string()
    .regex(/^\/[\w./-]+$/, 'must be an SSM parameter name like /dropship/prod/database-url')
    .optional(),
  /**
   * SSM SecureString parameter holding DROPSHIP_SOURCE_DATABASE_URL (Lambda); read at cold start when that is unset.
   * A deployment refuses DROPSHIP_SOURCE_DATABASE_URL itself (src/config/deploy.ts): a URL with a password never sits in
   * a function's configuration.
   */
  DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: z
    .string()
    .regex(/^\/[\w./-]+$/, 'must be an SSM parameter name like /dropship/prod/source-database-url')
    .optional(),
  /** SQS queue of table tasks (Lambda fan-out). */
  DROPSHIP_TASK_QUEUE_URL: z.string().url('must be the queue URL').optional(),
  /** SQS queue of "open" messages: the schedule and the catch-up hand a slot's accounts to the open-runs function. */
  DROPSHIP_OPEN_QUEUE_URL: z.string().url('must be the queue URL').optional(),
  /** Attempts per table task before the run fails (SQS delivers; the ledger counts). */
  DROPSHIP_TASK_MAX_ATTEMPTS: int(1, 20).default(3),
  /** A claimed task is another worker's after this long (longer than the worker's timeout). */
  DROPSHIP_TASK_LEASE_SECONDS: int(60, 86_400).default(960),
  /** Lambda: a released task is delivered again after this × 3^(attempt−1) seconds (at most 900). */
  DROPSHIP_TASK_RETRY_SECONDS: int(0, 900).default(10),
  /** A Lambda worker stops this long before its hard timeout, aborting its uploads cleanly. */
  DROPSHIP_DEADLINE_MARGIN_SECONDS: int(0, 600).default(30),
  /** Lambda fan-out: a table estimated above this many rows is split by ranges of its integer primary key. */
  DROPSHIP_SPLIT_ROWS: int(1_000, 10_000_000_000).default(20_000_000),
  /**
   * Lambda fan-out: whole tables estimated at most this many bytes on disk travel together, up to this
   * many bytes per message (src/run/drivers/pack.ts); 0 sends one message per table.
   */
  DROPSHIP_PACK_BYTES: int(0, 100 * 1024 * MiB).default(64 * MiB),
  /** Lambda fan-out: at most this many tables per packed message. */
  DROPSHIP_PACK_MAX_TABLES: int(1, 500).default(50),
  /**
   * Destination credentials and S3 clients a warm worker keeps for the next task of the same run
   * (src/destinations/s3/clients.ts); 0 makes new ones for every task message.
   */
  DROPSHIP_CLIENT_CACHE_ENTRIES: int(0, 10_000).default(256),
  /**
   * A run whose owner stopped heartbeating this long ago is ended (or, if it was publishing its
   * receipt, finished) by the next run of the account or by the sweeper. CLI owners heartbeat every
   * quarter of it and also hold a session advisory lock, so a killed CLI is noticed at once.
   */
  DROPSHIP_RUN_STALE_SECONDS: int(1, 86_400).default(120),
  /**
   * A run whose receipt.json cannot be published (its PUT keeps failing) ends `failed` after this many
   * finishing attempts (the sweeper tries every 5 minutes: 24 ≈ 2 hours), which unblocks its account.
   */
  DROPSHIP_FINISH_MAX_ATTEMPTS: int(1, 1000).default(24),
  /** Lambda: a slot whose schedule event never arrived is caught up by the sweeper for this long after it. */
  DROPSHIP_SLOT_CATCHUP_SECONDS: int(0, 43_200).default(10_800),
  /** Source sessions: a transaction left idle this long is ended by Postgres (0 = keep the server's setting). */
  DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: int(0, 86_400).default(300),
  /** Source sessions: the longest a single statement (one table's COPY) may run (0 = keep the server's setting). */
  DROPSHIP_SOURCE_STATEMENT_TIMEOUT_SECONDS: int(0, 86_400).default(7_200),
  /** Source sessions: TCP keepalive idle time (client and server side), so a dead peer is noticed. */
  DROPSHIP_SOURCE_KEEPALIVE_SECONDS: int(1, 7_200).default(30),
  /**
   * Test-only fault point (see src/run/lifecycle/crash.ts): the process SIGKILLs itself (or hangs, with
   * DROPSHIP_TEST_CRASH_MODE=hang) when it reaches the named point. Inert unless set.
   */
  DROPSHIP_TEST_CRASH_AT: z
    .enum([
      'after-open-run',
      'during-send',
      'after-send',
      'mid-copy',
      'after-last-task',
      'before-receipt-put',
      'after-receipt-put',
    ])
    .optional(),
  DROPSHIP_TEST_CRASH_MODE: z.enum(['kill', 'hang']).default('kill'),
  /** Slots (UTC) per plan, comma-separated. */
  DROPSHIP_PAID_SLOTS: slotListSchema.default(DEFAULT_SLOTS.paid.join(',')),
  DROPSHIP_FREE_SLOTS: slotListSchema.default(DEFAULT_SLOTS.free.join(',')),
  /**
   * Notifications (src/notify/): AES-256-GCM key (32 bytes, base64) that encrypts webhook signing
   * secrets at rest; in production read from SSM (DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER) at cold start.
   */
  DROPSHIP_WEBHOOK_KEY: z
    .string()
    .refine(
      (v) => Buffer.from(v, 'base64').length === 32,
      'must be 32 random bytes in base64 (openssl rand -base64 32)',
    )
    .optional(),
  DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER: z
    .string()
    .regex(/^\/[\w./-]+$/, 'must be an SSM parameter name like /dropship/prod/webhook-key')
    .optional(),
  /** Attempts per webhook event (non-2xx, timeouts and connection errors are retried with backoff). */
  DROPSHIP_WEBHOOK_ATTEMPTS: int(1, 10).default(3),
  /** First retry delay in ms; doubles per attempt (with jitter). */
  DROPSHIP_WEBHOOK_BACKOFF_MS: int(1, 60_000).default(1000),
  /** Time limit of one webhook POST. */
  DROPSHIP_WEBHOOK_TIMEOUT_MS: int(100, 30_000).default(5000),
  /**
   * Development mode only: webhooks may go to loopback addresses, over plain http too (a local
   * receiver). Off in production, where loopback (the Lambda Runtime API on 127.0.0.1:9001),
   * private, link-local and reserved addresses are refused when connecting (src/notify/webhook.ts).
   */
  DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: bool.default(false),
  /**
   * Development mode: a destination may have a `local` target (a directory on this machine,
   * src/destinations/local/) — for tests and the local stack. Off in production, where only S3
   * targets are opened (src/destinations/open.ts).
   */
  DROPSHIP_ALLOW_LOCAL_TARGET: bool.default(false),
  /** A destination is paused after this many consecutive failed runs (6 = three days on a paid plan). */
  DROPSHIP_PAUSE_AFTER_FAILURES: int(1, 1000).default(6),
  /**
   * Ledger retention (src/store/ledger/retention.ts, run by the periodic function): ended runs and their
   * rows older than this are pruned, except the receipt chain's last link and the change-set base.
   * At least 7 days: the slot catch-up looks one day back and must still see the slot's runs.
   */
  DROPSHIP_LEDGER_RETENTION_DAYS: int(7, 36_500).default(90),
  /**
   * The capacity forecast (`dropship capacity`, src/schedule/capacity.ts); defaults from measured figures,
   * sources in docs/operations/capacity.md. Rows per second one worker exports (GZIP, 1,769 MB = 1 vCPU).
   */
  DROPSHIP_CAPACITY_ROWS_PER_SECOND: int(1, 100_000_000).default(244_000),
  /** Worker-milliseconds per destination outside its tasks (opening the run, pre-flight, receipt). */
  DROPSHIP_CAPACITY_FIXED_MS_PER_DESTINATION: int(0, 600_000).default(300),
  /** Worker-milliseconds per task outside row work (credentials, source connection, snapshot import, ledger). */
  DROPSHIP_CAPACITY_FIXED_MS_PER_TASK: int(0, 600_000).default(300),
  /** The worker function's memory as deployed (serverless.yml `memorySize` of the worker). */
  DROPSHIP_CAPACITY_WORKER_MEMORY_MB: int(128, 10_240).default(1769),
  /** Lambda's price per GB-second (arm64, us-east-1, first tier). */
  DROPSHIP_CAPACITY_USD_PER_GB_SECOND: z.coerce.number().positive().max(1).default(0.0000133334),
  /** CloudWatch namespace of the per-run embedded-metric-format lines. */
  DROPSHIP_METRICS_NAMESPACE: z.string().min(1).max(255).default('Dropship'),
  /**
   * Log level; unset, each entry point keeps its own default: info for the Lambda handlers and
   * notifications, warn for the CLI's JSON logs next to its progress display.
   */
  DROPSHIP_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  /** `dropship dev`: folder of the local stack's data and its admin.json (default .dropship/dev). */
  DROPSHIP_DEV_DIR: z.string().min(1).optional(),
  /** `dropship dev provision|apply`: the running dev stack's admin endpoint, instead of reading admin.json. */
  DROPSHIP_DEV_ADMIN_URL: z
    .string()
    .regex(/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+\/?$/, 'must be the loopback URL `dropship dev` printed')
    .optional(),
  DROPSHIP_DEV_ADMIN_TOKEN: z.string().min(16, 'must be the token `dropship dev` printed').optional(),
  /** The HTTP API's base URL, for whoever calls it (`dropship dev env` exports the local one); dropship never reads it. */
  DROPSHIP_API_URL: z.string().url('must be the API’s base URL, e.g. the one `dropship dev` printed').optional(),
  // Deploy time (serverless.yml reads these through deploy/settings.cjs; the functions never do).
  DROPSHIP_VPC_SECURITY_GROUP_ID: z
    .string()
    .regex(/^sg-[0-9a-f]{8}([0-9a-f]{9})?$/, 'must be a security group id like sg-0123456789abcdef0')
    .optional(),
  DROPSHIP_VPC_SUBNET_A: z
    .string()
    .regex(/^subnet-[0-9a-f]{8}([0-9a-f]{9})?$/, 'must be a subnet id like subnet-0123456789abcdef0')
    .optional(),
  DROPSHIP_VPC_SUBNET_B: z
    .string()
    .regex(/^subnet-[0-9a-f]{8}([0-9a-f]{9})?$/, 'must be a subnet id like subnet-0123456789abcdef0')
    .optional(),
  DROPSHIP_WORKER_CONCURRENCY: int(1, 10_000).default(8),
  DROPSHIP_ALARM_EMAIL: z.email('must be an e-mail address').optional(),
});

export type Settings = z.output<typeof settingsSchema>;

/** A setting is missing or invalid. Not retryable, and it repeats: the operator has to change it. */
export class ConfigError extends DropshipError {
  readonly code: string = 'config';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false, repeats: true });
    this.name = 'ConfigError';
  }
}

function closest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0]!;
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = d[j]!;
        d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = tmp;
      }
    }
    return d[b.length]!;
  };
  let best: string | undefined;
  let bestD = 4;
  for (const c of candidates) {
    const dd = dist(name, c);
    if (dd < bestD) {
      best = c;
      bestD = dd;
    }
  }
  return best;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const known = Object.keys(settingsSchema.shape);
  const problems: string[] = [];
  for (const name of Object.keys(env)) {
    if (name.startsWith('DROPSHIP_') && !known.includes(name)) {
      const hint = closest(name, known);
      problems.push(`${name} is not a dropship setting${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
  }
  const picked = Object.fromEntries(known.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const parsed = settingsSchema.safeParse(picked);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return parsed.data!;
}

export function requireSetting<K extends keyof Settings>(s: Settings, key: K, why: string): NonNullable<Settings[K]> {
  const v = s[key];
  if (v === undefined || v === null) throw new ConfigError(`${String(key)} is not set; it is needed ${why}`);
  return v as NonNullable<Settings[K]>;
}
