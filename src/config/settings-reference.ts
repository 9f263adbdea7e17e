import { type Settings, settingsSchema } from './settings.js';

/**
 * The settings reference (docs/operations/settings.md) is generated from here and the zod schema
 * (`settingsReference()`; `npm run docs:settings` writes it, src/config/settings-reference.test.ts
 * fails when the file differs). Every setting must have an entry — the type below makes a new setting
 * without one a compile error — and defaults are read from the schema, never written twice.
 */
type Group = 'database' | 'export' | 'runs' | 'notify' | 'capacity' | 'deploy' | 'dev';

interface Entry {
  group: Group;
  meaning: string;
  /** Shown instead of the schema's default where there is none but something else applies. */
  fallback?: string;
}

const GROUPS: Record<Group, string> = {
  database: 'Databases and the principal',
  export: 'Export: Parquet, uploads, concurrency, AWS',
  runs: 'Runs, tasks and slots',
  notify: 'Status, webhooks and metrics',
  capacity: 'Capacity forecast (`dropship capacity`; sources of the defaults: docs/operations/capacity.md)',
  deploy: 'Deploy time (read by serverless.yml through deploy/settings.cjs)',
  dev: 'Development and tests',
};

export const SETTINGS_REFERENCE: Record<keyof Settings, Entry> = {
  DATABASE_URL: { group: 'database', meaning: 'registry database (and source, unless the next is set)' },
  DROPSHIP_SOURCE_DATABASE_URL: {
    group: 'database',
    meaning: "where the customers' schemas live",
    fallback: '`DATABASE_URL`',
  },
  DROPSHIP_PRINCIPAL_ARN: {
    group: 'database',
    meaning:
      "dropship's principal, printed into trust policies and setup kits (Lambda: set by serverless.yml to the functions' role)",
  },
  DROPSHIP_KIT_TEMPLATE_BASE_URL: {
    group: 'database',
    meaning:
      "https folder (an S3 bucket URL) where customers' CloudFormation templates are hosted; `destinations kit` prints quick-create links into it (unset: it says how to host them; Lambda: set by serverless.yml at deploy time, empty allowed)",
  },
  DROPSHIP_DATABASE_URL_SSM_PARAMETER: {
    group: 'database',
    meaning: 'SSM SecureString holding `DATABASE_URL` (Lambda; read at cold start)',
  },
  DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: {
    group: 'database',
    meaning:
      'SSM SecureString holding `DROPSHIP_SOURCE_DATABASE_URL` (Lambda; read at cold start; a deployment refuses the URL itself)',
    fallback: 'none: the registry’s database',
  },
  DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: {
    group: 'database',
    meaning: "source sessions: Postgres ends a transaction left idle this long (0 = keep the server's setting)",
  },
  DROPSHIP_SOURCE_STATEMENT_TIMEOUT_SECONDS: {
    group: 'database',
    meaning:
      "source sessions: the longest one table's COPY may run (0 = keep the server's setting; a limit set in the URL or role is kept)",
  },
  DROPSHIP_SOURCE_KEEPALIVE_SECONDS: {
    group: 'database',
    meaning: "source sessions: TCP keepalive idle time on both ends, so a dead peer's session ends",
  },
  DROPSHIP_SHARD_TARGET_BYTES: { group: 'export', meaning: 'shard size at which a new file starts' },
  DROPSHIP_ROW_GROUP_ROWS: { group: 'export', meaning: 'rows per Parquet row group (upper bound)' },
  DROPSHIP_ROW_GROUP_BYTES: {
    group: 'export',
    meaning:
      'uncompressed bytes per row group (upper bound, for wide rows; halved for tables of more than 500 columns)',
  },
  DROPSHIP_PAGE_BYTES: { group: 'export', meaning: 'uncompressed bytes per data page' },
  DROPSHIP_MAX_ROW_BYTES: {
    group: 'export',
    meaning:
      'the largest row a table may hold (bytes as Postgres sends them): a longer one fails its table, naming the column — the exporter needs about 7× a row in memory; raise it together with the memory',
  },
  DROPSHIP_GZIP_LEVEL: {
    group: 'export',
    meaning: "GZIP level 1–12 (libdeflate's scale: 4 writes smaller files than zlib's 6, at twice the speed)",
  },
  DROPSHIP_ZSTD_LEVEL: { group: 'export', meaning: 'ZSTD level 1–19, for destinations with `--compression zstd`' },
  DROPSHIP_PART_SIZE_BYTES: { group: 'export', meaning: 'multipart part size (≥ 5 MiB)' },
  DROPSHIP_UPLOAD_QUEUE_SIZE: { group: 'export', meaning: 'parts in flight per shard' },
  DROPSHIP_TABLE_CONCURRENCY: { group: 'export', meaning: 'tables exported at once per account' },
  DROPSHIP_TABLE_THREADS: {
    group: 'export',
    meaning:
      'threads a large table is read with (2: its two halves on two cores, when the machine — on Lambda, its memory size — has them; measure before: see capacity.md)',
  },
  DROPSHIP_TABLE_THREADS_MIN_ROWS: {
    group: 'export',
    meaning: 'row estimate from which a table is read by two threads',
  },
  DROPSHIP_ACCOUNT_CONCURRENCY: { group: 'export', meaning: 'accounts exported at once' },
  DROPSHIP_ROLE_SESSION_SECONDS: {
    group: 'export',
    meaning: 'AssumeRole session length (credentials refresh before expiry)',
  },
  DROPSHIP_AWS_MAX_ATTEMPTS: {
    group: 'export',
    meaning: 'attempts per AWS request (S3 parts, PutObject, STS); retryable errors back off with jitter',
  },
  DROPSHIP_AWS_TIMEOUT_SECONDS: {
    group: 'export',
    meaning:
      'an AWS request (S3, STS) fails as a timeout, and is retried, after this long connecting or with nothing sent or received',
  },
  DROPSHIP_S3_UNSIGNED_PARTS: {
    group: 'export',
    meaning:
      'shard parts go unsigned with a CRC32 checksum (TLS or loopback only); false signs every byte, for buckets whose policy denies unsigned payloads',
  },
  DROPSHIP_S3_FORCE_PATH_STYLE: {
    group: 'export',
    meaning: 'path-style S3 addressing (MinIO, LocalStack, the local stack)',
  },
  DROPSHIP_TASK_QUEUE_URL: {
    group: 'runs',
    meaning:
      'SQS queue of table tasks (Lambda; set by serverless.yml; `dropship export --via-queue` works it from here)',
  },
  DROPSHIP_OPEN_QUEUE_URL: {
    group: 'runs',
    meaning:
      'SQS queue of "open" messages: the schedule function and the sweeper\'s catch-up send a slot\'s accounts in small batches, the openRuns function opens their runs (Lambda; set by serverless.yml)',
  },
  DROPSHIP_TASK_MAX_ATTEMPTS: { group: 'runs', meaning: 'attempts per table task before its run fails' },
  DROPSHIP_TASK_LEASE_SECONDS: {
    group: 'runs',
    meaning: 'a claimed task becomes claimable again after this (longer than the worker timeout)',
  },
  DROPSHIP_TASK_RETRY_SECONDS: {
    group: 'runs',
    meaning: 'Lambda: a released task comes back after this × 3^(attempt−1) s',
  },
  DROPSHIP_DEADLINE_MARGIN_SECONDS: { group: 'runs', meaning: "a worker stops this long before Lambda's timeout" },
  DROPSHIP_SPLIT_ROWS: {
    group: 'runs',
    meaning:
      'Lambda fan-out: a table estimated above this many rows with a single integer primary key is split into key ranges, one task each',
  },
  DROPSHIP_PACK_BYTES: {
    group: 'runs',
    meaning:
      'Lambda fan-out: whole tables estimated at most this many bytes on disk travel in one task message, up to this many bytes per message; `0` sends one message per table',
  },
  DROPSHIP_PACK_MAX_TABLES: {
    group: 'runs',
    meaning: 'Lambda fan-out: at most this many tables per packed task message',
  },
  DROPSHIP_CLIENT_CACHE_ENTRIES: {
    group: 'export',
    meaning:
      "destination credentials (AssumeRole) and S3 clients a warm worker keeps for a run's next tasks until 5 minutes before they expire (least recently used go first); `0` makes new ones for every task message",
  },
  DROPSHIP_RUN_STALE_SECONDS: {
    group: 'runs',
    meaning:
      'a run whose owner has not heartbeated for this long is ended (or finished) by the next run or the sweeper; also the finishing lease',
  },
  DROPSHIP_FINISH_MAX_ATTEMPTS: {
    group: 'runs',
    meaning:
      'a run whose receipt.json cannot be published ends failed after this many finishing attempts (the sweeper tries every 5 minutes), which unblocks its account',
  },
  DROPSHIP_SLOT_CATCHUP_SECONDS: {
    group: 'runs',
    meaning:
      'the sweeper starts a slot whose schedule event never came until this long after the slot; later it is recorded as missed',
  },
  DROPSHIP_PAID_SLOTS: {
    group: 'runs',
    meaning: 'slots (UTC) of the paid plan; the deployed crons derive from it',
  },
  DROPSHIP_FREE_SLOTS: {
    group: 'runs',
    meaning: 'slots (UTC) of the free plan; the deployed crons derive from it',
  },
  DROPSHIP_WEBHOOK_KEY: {
    group: 'notify',
    meaning: '32 bytes (base64) that encrypt webhook signing secrets (AES-256-GCM); needed to set a webhook',
  },
  DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER: {
    group: 'notify',
    meaning: 'SSM SecureString holding `DROPSHIP_WEBHOOK_KEY` (Lambda; read at cold start)',
  },
  DROPSHIP_WEBHOOK_ATTEMPTS: {
    group: 'notify',
    meaning: 'POSTs per webhook event before it waits in the outbox for the next sweep',
  },
  DROPSHIP_WEBHOOK_BACKOFF_MS: { group: 'notify', meaning: 'first retry delay; doubles per attempt, with jitter' },
  DROPSHIP_WEBHOOK_TIMEOUT_MS: { group: 'notify', meaning: 'time limit of one webhook POST' },
  DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: {
    group: 'dev',
    meaning:
      'development mode: webhooks may go to loopback addresses, over plain http too (never in production; every other private, link-local or special address is refused at connect time)',
  },
  DROPSHIP_ALLOW_LOCAL_TARGET: {
    group: 'dev',
    meaning:
      'development mode: a destination may deliver to a local directory (a `local` target) instead of S3 — for tests and the local stack; never in production',
  },
  DROPSHIP_PAUSE_AFTER_FAILURES: {
    group: 'notify',
    meaning: 'consecutive failed runs after which a destination is paused',
  },
  DROPSHIP_METRICS_NAMESPACE: { group: 'notify', meaning: 'CloudWatch namespace of the per-run EMF metrics' },
  DROPSHIP_LOG_LEVEL: { group: 'notify', meaning: 'log level', fallback: 'info (the CLI: warn)' },
  DROPSHIP_VPC_SECURITY_GROUP_ID: {
    group: 'deploy',
    meaning: "the functions' security group, in the VPC where Postgres is reachable",
  },
  DROPSHIP_VPC_SUBNET_A: { group: 'deploy', meaning: "the functions' first subnet" },
  DROPSHIP_VPC_SUBNET_B: { group: 'deploy', meaning: "the functions' second subnet" },
  DROPSHIP_WORKER_CONCURRENCY: {
    group: 'deploy',
    meaning:
      "the worker's reserved concurrency: the most table readers Postgres sees at once (at least 2 for a deployment: the task queue's maximumConcurrency)",
  },
  DROPSHIP_LEDGER_RETENTION_DAYS: {
    group: 'runs',
    meaning:
      'ended runs, their tasks, change states and receipt-chain links older than this are pruned by the periodic function (the last link and the change-set base stay)',
  },
  DROPSHIP_CAPACITY_ROWS_PER_SECOND: {
    group: 'capacity',
    meaning: 'rows per second one worker exports (1 / 4.1 CPU-µs per row at 1 vCPU, GZIP)',
  },
  DROPSHIP_CAPACITY_FIXED_MS_PER_DESTINATION: {
    group: 'capacity',
    meaning: "worker-ms per destination outside its tasks (a run's measured fixed cost, upper end)",
  },
  DROPSHIP_CAPACITY_FIXED_MS_PER_TASK: {
    group: 'capacity',
    meaning: 'worker-ms per task outside row work (each task pays credentials, connection, snapshot import)',
  },
  DROPSHIP_CAPACITY_WORKER_MEMORY_MB: {
    group: 'capacity',
    meaning: "the worker's memory as deployed (serverless.yml)",
  },
  DROPSHIP_CAPACITY_USD_PER_GB_SECOND: {
    group: 'capacity',
    meaning: "Lambda's price per GB-second (arm64, us-east-1)",
  },
  DROPSHIP_ALARM_EMAIL: { group: 'deploy', meaning: "an address subscribed to the operators' alarm topic" },
  DROPSHIP_DEV_DIR: {
    group: 'dev',
    meaning: "`dropship dev`: the local stack's data folder and its `admin.json`",
    fallback: '`.dropship/dev`',
  },
  DROPSHIP_DEV_ADMIN_URL: {
    group: 'dev',
    meaning: "`dropship dev provision/apply`: the running dev stack's admin endpoint",
    fallback: 'from `admin.json`',
  },
  DROPSHIP_DEV_ADMIN_TOKEN: {
    group: 'dev',
    meaning: "`dropship dev provision/apply`: the running dev stack's admin token",
    fallback: 'from `admin.json`',
  },
  DROPSHIP_API_URL: {
    group: 'dev',
    meaning:
      "the HTTP API's base URL for callers (`curl --aws-sigv4`, scripts); `dropship dev env` exports the local API's. dropship itself never reads it",
    fallback: 'none',
  },
  DROPSHIP_TEST_CRASH_AT: {
    group: 'dev',
    meaning:
      '**tests only**: the process SIGKILLs itself (or hangs) at a named point of the run lifecycle (`src/run/lifecycle/crash.ts`); inert unless set',
  },
  DROPSHIP_TEST_CRASH_MODE: { group: 'dev', meaning: '**tests only**: `kill` or `hang` at the crash point' },
};

const MiB = 1024 * 1024;

/** The schema's default of one setting, as the reference shows it. */
function shownDefault(name: keyof Settings): string {
  const parsed = settingsSchema.shape[name].safeParse(undefined);
  const v = parsed.success ? parsed.data : undefined;
  if (v === undefined) return SETTINGS_REFERENCE[name].fallback ?? '—';
  if (typeof v === 'number' && name.endsWith('_BYTES') && v % MiB === 0) return `${v} (${v / MiB} MiB)`;
  return typeof v === 'string' && v.includes(':') ? `\`${v}\`` : String(v);
}

/** docs/operations/settings.md, generated. */
export function settingsReference(): string {
  const names = Object.keys(SETTINGS_REFERENCE) as (keyof Settings)[];
  const lines = [
    '# Settings (environment)',
    '',
    '<!-- Generated from src/config/settings.ts and src/config/settings-reference.ts by `npm run docs:settings`; do not edit. -->',
    '',
    'Every setting is an environment variable, validated once at start by one zod schema (`src/config/settings.ts`)',
    'in every function, the CLI and the deploy. An unknown `DROPSHIP_*` variable is an error with a suggestion',
    '(`DROPSHIP_SHARD_TARGET_BYTE is not a dropship setting (did you mean DROPSHIP_SHARD_TARGET_BYTES?)`). AWS',
    "endpoints, region and dropship's own credentials come only from standard AWS SDK configuration",
    '(`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_STS`, `AWS_REGION`, the default credential chain), so the same code runs',
    'against AWS, MinIO, LocalStack or the local stack.',
  ];
  for (const [group, title] of Object.entries(GROUPS) as [Group, string][]) {
    lines.push('', `## ${title}`, '', '| variable | default | meaning |', '| --- | --- | --- |');
    for (const n of names.filter((k) => SETTINGS_REFERENCE[k].group === group))
      lines.push(`| \`${n}\` | ${shownDefault(n)} | ${SETTINGS_REFERENCE[n].meaning} |`);
  }
  return `${lines.join('\n')}\n`;
}
