import type { Registry } from '../accounts/registry.js';
import type { TaskQueue } from '../aws/queue.js';
import { secureParameter } from '../aws/ssm.js';
import { loadSettings, requireSetting, type Settings } from '../config/settings.js';
import { DropshipError } from '../contracts/errors.js';
import type { OpenSender } from '../contracts/open.js';
import { createLogger, type Logger } from '../log/logger.js';
import type { Ledger } from '../store/ledger/ledger.js';
import type { Faults } from './lifecycle/faults.js';
import { Wiring } from './wiring.js';

/**
 * Shared wiring of the Lambda entry points, created once per cold start: settings validated at
 * the edge, a small pool for the registry and ledger (migrated once), the task queue, JSON logs to
 * stdout, and the deadline signal.
 */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

export interface LambdaDeps {
  settings: Settings;
  log: Logger;
  registry: Registry;
  ledger: Ledger;
  queue: TaskQueue;
  /**
   * The open queue (DROPSHIP_OPEN_QUEUE_URL, required on first use only: the functions that never
   * schedule a slot run without it).
   */
  opens: OpenSender;
  sourceUrl: string;
  /** The wiring's fault hook (src/run/lifecycle/faults.ts): a no-op in production. */
  faults: Faults;
  /** Ends the pool and the queue's client (resetLambdaDeps). */
  wiring: Wiring;
}

let deps: Promise<LambdaDeps> | undefined;

export function lambdaDeps(): Promise<LambdaDeps> {
  deps ??= (async () => {
    const settings = await withSourceUrlFromSsm(loadSettings());
    const wiring = new Wiring({
      settings,
      databaseUrl: settings.DATABASE_URL ?? (await databaseUrlFromSsm(settings)),
      databaseSetting:
        settings.DATABASE_URL !== undefined
          ? 'DATABASE_URL'
          : 'the parameter DROPSHIP_DATABASE_URL_SSM_PARAMETER names',
      poolMax: 3,
      applicationName: 'dropship-lambda',
    });
    try {
      await wiring.pool(); // connected and migrated at cold start
      return {
        settings,
        log: createLogger({ level: settings.DROPSHIP_LOG_LEVEL, destination: process.stdout }),
        registry: await wiring.registry(),
        ledger: await wiring.ledger(),
        queue: await wiring.queue('to fan table tasks out over SQS'),
        opens: {
          send: async (m) => (await wiring.openQueue('to hand a slot’s accounts to the open-runs function')).send(m),
          backlog: async () => (await wiring.openQueue('to see whether a slot is still being opened')).backlog(),
        },
        sourceUrl: wiring.sourceUrl,
        faults: wiring.faults,
        wiring,
      };
    } catch (e) {
      await wiring.close().catch(() => {});
      throw e;
    }
  })();
  deps.catch(() => {
    deps = undefined;
  });
  return deps;
}

/**
 * Tests: forget the cached wiring (a new "cold start" with the current environment), ending the
 * old pool. Used after a simulated crash, as a fresh Lambda instance would start.
 */
export async function resetLambdaDeps(): Promise<void> {
  const old = deps;
  deps = undefined;
  const d = await old?.catch(() => undefined);
  await d?.wiring.close().catch(() => {});
}

/** The Postgres URL from SSM Parameter Store (SecureString), so it never sits in the function's configuration. */
async function databaseUrlFromSsm(settings: Settings): Promise<string> {
  const name = requireSetting(
    settings,
    'DROPSHIP_DATABASE_URL_SSM_PARAMETER',
    'to reach the dropship registry and run ledger (or set DATABASE_URL)',
  );
  return postgresUrlParameter(name, settings);
}

/**
 * The settings with DROPSHIP_SOURCE_DATABASE_URL read from the SSM SecureString DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER
 * names, when that is set and the URL is not: where the customers' tables are read (a replica, or a direct endpoint
 * while the registry sits behind a pooler — docs/operations/production-database.md). Unset: the registry's database.
 */
export async function withSourceUrlFromSsm(settings: Settings): Promise<Settings> {
  const name = settings.DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER;
  if (settings.DROPSHIP_SOURCE_DATABASE_URL !== undefined || name === undefined) return settings;
  const url = await postgresUrlParameter(name, settings);
  return { ...settings, DROPSHIP_SOURCE_DATABASE_URL: url };
}

/** Fires DROPSHIP_DEADLINE_MARGIN_SECONDS before Lambda's hard timeout (never sooner than 1 s). */
export function deadlineSignal(context: LambdaContext | undefined, settings: Settings): AbortSignal {
  const remaining = context?.getRemainingTimeInMillis() ?? 15 * 60_000;
  return AbortSignal.timeout(Math.max(1_000, remaining - settings.DROPSHIP_DEADLINE_MARGIN_SECONDS * 1000));
}

/**
 * An invocation whose event is none of the shapes the function takes: one line naming them, before anything runs
 * (deploy red team: the sweeper ran a whole sweep for `{"cancle": …}` and answered as if nothing was wrong; the check
 * function answered a stray field with zod's complaint about a missing `time`).
 */
export class InvalidEvent extends DropshipError {
  readonly code: string = 'invalid-event';
  override readonly badInput: boolean = true;
  constructor(fn: string, accepted: string[], event: unknown) {
    const keys =
      event !== null && typeof event === 'object' && !Array.isArray(event)
        ? `an object with ${
            Object.keys(event).length === 0
              ? 'no fields'
              : `fields ${Object.keys(event)
                  .map((k) => JSON.stringify(k))
                  .join(', ')}`
          }`
        : Array.isArray(event)
          ? 'an array'
          : typeof event;
    super(`the ${fn} function takes ${accepted.join(', or ')}; this event is ${keys}: nothing was done`, undefined, {
      retryable: false,
    });
    this.name = 'InvalidEvent';
  }
}

/** The moment (ms since the epoch) a handler must be done by: DROPSHIP_DEADLINE_MARGIN_SECONDS before Lambda's timeout. */
export function deadlineOf(context: LambdaContext | undefined, settings: Settings): number | undefined {
  if (!context) return undefined;
  return (
    Date.now() + Math.max(1_000, context.getRemainingTimeInMillis() - settings.DROPSHIP_DEADLINE_MARGIN_SECONDS * 1000)
  );
}

/** A postgres:// URL from an SSM SecureString (the registry's, the source's): never in a function's configuration. */
function postgresUrlParameter(name: string, settings: Settings): Promise<string> {
  return secureParameter(
    name,
    (value) => (/^postgres(ql)?:\/\//.test(value) ? value : undefined),
    'a postgres:// URL',
    { maxAttempts: settings.DROPSHIP_AWS_MAX_ATTEMPTS },
  );
}
