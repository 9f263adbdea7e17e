import { allSlots, type Plan, slotCron, slotsByPlan } from '../contracts/slots.js';
import { ConfigError, loadSettings, type Settings } from './settings.js';

/**
 * What serverless.yml reads at deploy time, from the same settings schema every function and the
 * CLI validate (deploy/settings.cjs is its door): the schedule's crons and the drift check's — an
 * hour before each slot — come from DROPSHIP_PAID_SLOTS / DROPSHIP_FREE_SLOTS, and the same two
 * values are set in the functions' environment, so the slots that fire are the slots whose accounts
 * are due. An invalid setting stops the deploy with the same message the CLI gives.
 */
export const CHECK_MINUTES_BEFORE_SLOT = 60;

interface ScheduleEvent {
  schedule: { rate: string; description: string; input?: Record<string, unknown> };
}

/**
 * What a deployment does with each setting given in its environment (a new setting without an entry is a compile
 * error). Before, serverless.yml passed a fixed list and dropped the rest without a word — DROPSHIP_SOURCE_DATABASE_URL
 * among them, so the functions read the customers' tables from the registry's database (deploy red team).
 *   - `deploy`: read by the deployment itself (crons, VPC, alarms, parameter names), which sets what the functions need;
 *   - `forward`: a runtime setting, passed to every function as given (after validation);
 *   - `fixed`: serverless.yml sets it (queues, the run lifecycle's timeouts, the log level): change it there;
 *   - `secret`: never in a function's configuration — give the SSM parameter that holds it;
 *   - `local`: the local stack's, meaningless (or harmful) on Lambda: a shell that ran `dropship dev env`;
 *   - `cli`: the operator's CLI reads it (in the same shell as the deploy, often), the functions never: neither
 *     refused nor passed (DROPSHIP_PRINCIPAL_ARN: serverless.yml gives the functions their own role's ARN).
 */
type DeployUse = 'deploy' | 'forward' | 'fixed' | 'secret' | 'local' | 'cli';

export const DEPLOY_USE: Record<keyof Settings, DeployUse> = {
  DATABASE_URL: 'cli', // the functions read DROPSHIP_DATABASE_URL_SSM_PARAMETER
  DROPSHIP_SOURCE_DATABASE_URL: 'secret',
  DROPSHIP_PRINCIPAL_ARN: 'cli',
  DROPSHIP_KIT_TEMPLATE_BASE_URL: 'deploy',
  DROPSHIP_SHARD_TARGET_BYTES: 'forward',
  DROPSHIP_ROW_GROUP_ROWS: 'forward',
  DROPSHIP_ROW_GROUP_BYTES: 'forward',
  DROPSHIP_PAGE_BYTES: 'forward',
  DROPSHIP_MAX_ROW_BYTES: 'forward',
  DROPSHIP_GZIP_LEVEL: 'forward',
  DROPSHIP_ZSTD_LEVEL: 'forward',
  DROPSHIP_PART_SIZE_BYTES: 'forward',
  DROPSHIP_UPLOAD_QUEUE_SIZE: 'forward',
  DROPSHIP_TABLE_CONCURRENCY: 'forward',
  DROPSHIP_TABLE_THREADS: 'forward',
  DROPSHIP_TABLE_THREADS_MIN_ROWS: 'forward',
  DROPSHIP_ACCOUNT_CONCURRENCY: 'forward',
  DROPSHIP_ROLE_SESSION_SECONDS: 'forward',
  DROPSHIP_S3_FORCE_PATH_STYLE: 'local',
  DROPSHIP_S3_UNSIGNED_PARTS: 'forward',
  DROPSHIP_AWS_MAX_ATTEMPTS: 'forward',
  DROPSHIP_AWS_TIMEOUT_SECONDS: 'forward',
  DROPSHIP_DATABASE_URL_SSM_PARAMETER: 'deploy',
  DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: 'deploy',
  DROPSHIP_TASK_QUEUE_URL: 'fixed',
  DROPSHIP_OPEN_QUEUE_URL: 'fixed',
  DROPSHIP_TASK_MAX_ATTEMPTS: 'fixed',
  DROPSHIP_TASK_LEASE_SECONDS: 'fixed',
  DROPSHIP_TASK_RETRY_SECONDS: 'forward',
  DROPSHIP_DEADLINE_MARGIN_SECONDS: 'fixed',
  DROPSHIP_SPLIT_ROWS: 'forward',
  DROPSHIP_PACK_BYTES: 'forward',
  DROPSHIP_PACK_MAX_TABLES: 'forward',
  DROPSHIP_CLIENT_CACHE_ENTRIES: 'forward',
  DROPSHIP_RUN_STALE_SECONDS: 'fixed',
  DROPSHIP_FINISH_MAX_ATTEMPTS: 'forward',
  DROPSHIP_SLOT_CATCHUP_SECONDS: 'fixed',
  DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: 'forward',
  DROPSHIP_SOURCE_STATEMENT_TIMEOUT_SECONDS: 'forward',
  DROPSHIP_SOURCE_KEEPALIVE_SECONDS: 'forward',
  DROPSHIP_TEST_CRASH_AT: 'local',
  DROPSHIP_TEST_CRASH_MODE: 'local',
  DROPSHIP_PAID_SLOTS: 'deploy',
  DROPSHIP_FREE_SLOTS: 'deploy',
  DROPSHIP_WEBHOOK_KEY: 'secret',
  DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER: 'deploy',
  DROPSHIP_WEBHOOK_ATTEMPTS: 'forward',
  DROPSHIP_WEBHOOK_BACKOFF_MS: 'forward',
  DROPSHIP_WEBHOOK_TIMEOUT_MS: 'forward',
  DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'local',
  DROPSHIP_ALLOW_LOCAL_TARGET: 'local',
  DROPSHIP_PAUSE_AFTER_FAILURES: 'forward',
  DROPSHIP_LEDGER_RETENTION_DAYS: 'forward',
  DROPSHIP_CAPACITY_ROWS_PER_SECOND: 'forward',
  DROPSHIP_CAPACITY_FIXED_MS_PER_DESTINATION: 'forward',
  DROPSHIP_CAPACITY_FIXED_MS_PER_TASK: 'forward',
  DROPSHIP_CAPACITY_WORKER_MEMORY_MB: 'forward',
  DROPSHIP_CAPACITY_USD_PER_GB_SECOND: 'forward',
  DROPSHIP_METRICS_NAMESPACE: 'fixed',
  DROPSHIP_LOG_LEVEL: 'fixed',
  DROPSHIP_DEV_DIR: 'local',
  DROPSHIP_DEV_ADMIN_URL: 'local',
  DROPSHIP_DEV_ADMIN_TOKEN: 'local',
  DROPSHIP_API_URL: 'cli',
  DROPSHIP_VPC_SECURITY_GROUP_ID: 'deploy',
  DROPSHIP_VPC_SUBNET_A: 'deploy',
  DROPSHIP_VPC_SUBNET_B: 'deploy',
  DROPSHIP_WORKER_CONCURRENCY: 'deploy',
  DROPSHIP_ALARM_EMAIL: 'deploy',
};

const REFUSED: Record<Exclude<DeployUse, 'deploy' | 'forward' | 'cli'>, (name: string) => string> = {
  fixed: (name) => `${name}: serverless.yml sets it for the functions; change it there, or unset it for the deploy`,
  secret: (name) =>
    `${name}: a secret never goes into a function's configuration; put it in an SSM SecureString and set ${name}_SSM_PARAMETER to its name`,
  local: (name) => `${name}: the local stack's setting, not a deployment's; unset it for the deploy`,
};

/** The variables the Serverless Framework resolves serverless.yml with when it is deploying (not packaging). */
export interface DeployOptions {
  /**
   * `serverless deploy`: the VPC must be given (packaging offline uses placeholders; a deploy with them created every
   * function in subnets that do not exist, found only inside CloudFormation — deploy red team).
   */
  deploying?: boolean;
}

export function deployConfig(env: NodeJS.ProcessEnv = process.env, opts: DeployOptions = {}) {
  const s = loadSettings(env);
  const given = (Object.keys(DEPLOY_USE) as (keyof Settings)[]).filter((k) => env[k] !== undefined && env[k] !== '');
  const refused = given.flatMap((k) => {
    const use = DEPLOY_USE[k];
    return use === 'fixed' || use === 'secret' || use === 'local' ? [REFUSED[use](k)] : [];
  });
  const vpc = ['DROPSHIP_VPC_SECURITY_GROUP_ID', 'DROPSHIP_VPC_SUBNET_A', 'DROPSHIP_VPC_SUBNET_B'] as const;
  if (opts.deploying)
    for (const k of vpc.filter((k) => s[k] === undefined))
      refused.push(`${k}: required to deploy (the functions reach Postgres inside this VPC)`);
  if (refused.length > 0)
    throw new ConfigError(`Invalid configuration for a deployment:\n  - ${refused.join('\n  - ')}`);
  /** Every `forward` setting given, as given (validated above): each function's environment (serverless.yml). */
  const forwarded = Object.fromEntries(
    given.filter((k) => DEPLOY_USE[k] === 'forward').map((k) => [k, String(env[k])]),
  );
  // The task queue's mapping cannot hand messages to fewer than 2 workers (SQS maximumConcurrency ≥ 2): with 1
  // reserved, its second invocation would always be throttled, each a receive toward the dead-letter queue.
  if (s.DROPSHIP_WORKER_CONCURRENCY < 2)
    throw new ConfigError(
      'Invalid configuration:\n  - DROPSHIP_WORKER_CONCURRENCY: at least 2 for a deployment (the task queue hands messages to 2 workers at least)',
    );
  const byPlan = slotsByPlan(s);
  const plansOf = (slot: string) =>
    (Object.keys(byPlan) as Plan[]).filter((p) => byPlan[p].includes(slot)).join(' and ');
  const slots = allSlots(byPlan);
  const scheduleEvents: ScheduleEvent[] = slots.map((slot) => ({
    schedule: { rate: slotCron(slot), description: `${slot} UTC slot (${plansOf(slot)} plans)` },
  }));
  // Only the drift checks: run outcomes and webhooks left undelivered are the sweeper's (every 5 minutes).
  const checkEvents: ScheduleEvent[] = slots.map((slot) => ({
    schedule: {
      rate: slotCron(slot, -CHECK_MINUTES_BEFORE_SLOT),
      description: `drift checks before the ${slot} UTC slot`,
    },
  }));
  return {
    forwarded,
    paidSlots: s.DROPSHIP_PAID_SLOTS,
    freeSlots: s.DROPSHIP_FREE_SLOTS,
    scheduleEvents,
    checkEvents,
    workerConcurrency: s.DROPSHIP_WORKER_CONCURRENCY,
    /**
     * The task queue mapping's maximumConcurrency (SQS allows 2–1,000): the pollers hand messages to no more workers
     * than the reserved concurrency. Without it the mapping scales its pollers past the reserved concurrency, the
     * invocations it cannot make are throttled and each counts as a receive toward the dead-letter queue (AWS:
     * "Lambda SQS scaling" — set maximum concurrency ≤ reserved concurrency).
     */
    workerPollers: Math.min(1000, s.DROPSHIP_WORKER_CONCURRENCY),
    securityGroupId: s.DROPSHIP_VPC_SECURITY_GROUP_ID ?? 'sg-0000000000000000a',
    subnetA: s.DROPSHIP_VPC_SUBNET_A ?? 'subnet-0000000000000000a',
    subnetB: s.DROPSHIP_VPC_SUBNET_B ?? 'subnet-0000000000000000b',
    alarmEmail: s.DROPSHIP_ALARM_EMAIL ?? '',
    /** Empty: no quick-create link in the setup kit (an empty variable is an unset setting). */
    kitTemplateBaseUrl: s.DROPSHIP_KIT_TEMPLATE_BASE_URL ?? '',
  };
}
