import { z } from 'zod';

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
  DROPSHIP_SHARD_TARGET_BYTES: int(MiB, 5 * 1024 * MiB).default(128 * MiB),
  DROPSHIP_ROW_GROUP_ROWS: int(1_000, 10_000_000).default(100_000),
  DROPSHIP_ROW_GROUP_BYTES: int(MiB, 1024 * MiB).default(32 * MiB),
  DROPSHIP_PAGE_BYTES: int(64 * 1024, 64 * MiB).default(MiB),
  DROPSHIP_GZIP_LEVEL: int(1, 9).default(6),
  DROPSHIP_PART_SIZE_BYTES: int(5 * MiB, 5 * 1024 * MiB).default(8 * MiB),
  DROPSHIP_UPLOAD_QUEUE_SIZE: int(1, 64).default(4),
  DROPSHIP_TABLE_CONCURRENCY: int(1, 64).default(2),
  DROPSHIP_ACCOUNT_CONCURRENCY: int(1, 64).default(2),
  DROPSHIP_ROLE_SESSION_SECONDS: int(900, 43_200).default(3600),
  DROPSHIP_S3_FORCE_PATH_STYLE: bool.default(false),
  /** Attempts per AWS request (S3 parts, PutObject, STS): retryable errors back off with jitter. */
  DROPSHIP_AWS_MAX_ATTEMPTS: int(1, 20).default(5),
  /** SSM SecureString parameter holding DATABASE_URL (Lambda); read at cold start when DATABASE_URL is unset. */
  DROPSHIP_DATABASE_URL_SSM_PARAMETER: z
    .string()
    .regex(/^\/[\w./-]+$/, 'must be an SSM parameter name like /dropship/prod/database-url')
    .optional(),
  /** SQS queue of table tasks (Lambda fan-out). */
  DROPSHIP_TASK_QUEUE_URL: z.string().url('must be the queue URL').optional(),
  /** Attempts per table task before the run fails (SQS delivers; the ledger counts). */
  DROPSHIP_TASK_MAX_ATTEMPTS: int(1, 20).default(3),
  /** A claimed task is another worker's after this long (longer than the worker's timeout). */
  DROPSHIP_TASK_LEASE_SECONDS: int(60, 86_400).default(960),
  /** A Lambda worker stops this long before its hard timeout, aborting its uploads cleanly. */
  DROPSHIP_DEADLINE_MARGIN_SECONDS: int(0, 600).default(30),
  /** Lambda fan-out: a table estimated above this many rows is split by ranges of its integer primary key. */
  DROPSHIP_SPLIT_ROWS: int(1_000, 10_000_000_000).default(20_000_000),
  /** Slots (UTC) per plan, comma-separated. */
  DROPSHIP_PAID_SLOTS: z
    .string()
    .regex(/^(\d\d:\d\d)(,\d\d:\d\d)*$/, 'HH:MM[,HH:MM…]')
    .default('04:00,15:00'),
  DROPSHIP_FREE_SLOTS: z
    .string()
    .regex(/^(\d\d:\d\d)(,\d\d:\d\d)*$/, 'HH:MM[,HH:MM…]')
    .default('04:00'),
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
  /** A destination is paused after this many consecutive failed runs (6 = three days on a paid plan). */
  DROPSHIP_PAUSE_AFTER_FAILURES: int(1, 1000).default(6),
  /** CloudWatch namespace of the per-run embedded-metric-format lines. */
  DROPSHIP_METRICS_NAMESPACE: z.string().min(1).max(255).default('Dropship'),
  DROPSHIP_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type Settings = z.output<typeof settingsSchema>;

export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
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
