import pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import { migrate } from '../accounts/migrations.js';
import { Registry } from '../accounts/registry.js';
import { loadSettings, requireSetting } from '../config/settings.js';
import { createLogger } from '../log/logger.js';
import { exportAccounts } from './account.js';
import { Ledger } from './ledger.js';
import { LogReporter } from './reporter.js';

/**
 * Shared wiring of the Lambda entry points: settings validated once per cold start, a small
 * registry pool, structured logs to stdout, and an AbortSignal that fires 30 s before Lambda's
 * hard timeout so uploads are aborted cleanly instead of being cut off.
 */
interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

export interface RunSummary {
  ok: boolean;
  accounts: { accountId: string; ok: boolean; runId: string; receipt?: string; error?: string }[];
}

export function lambdaRun(
  body: (
    deps: { registry: Registry; run: (dests: Destination[]) => Promise<RunSummary> },
    event: unknown,
  ) => Promise<RunSummary>,
) {
  const settings = loadSettings();
  const log = createLogger({ level: settings.DROPSHIP_LOG_LEVEL, destination: process.stdout });
  let pool: pg.Pool | undefined;
  return async (event: unknown, context?: LambdaContext): Promise<RunSummary> => {
    const url = requireSetting(settings, 'DATABASE_URL', 'to reach the dropship registry');
    if (!pool) {
      pool = new pg.Pool({ connectionString: url, max: 2 });
      await migrate(pool);
    }
    const registry = new Registry(pool);
    const remaining = context?.getRemainingTimeInMillis() ?? 15 * 60_000;
    const signal = AbortSignal.timeout(Math.max(1_000, remaining - 30_000));
    const run = async (dests: Destination[]): Promise<RunSummary> => {
      const outcomes = await exportAccounts(dests, {
        sourceUrl: settings.DROPSHIP_SOURCE_DATABASE_URL ?? url,
        settings,
        reporter: new LogReporter(log, 5_000),
        ledger: new Ledger(pool!),
        trigger: 'manual',
        signal,
      });
      const accounts = [...outcomes].map(([accountId, o]) =>
        o.ok
          ? { accountId, ok: true, runId: o.runId, receipt: o.receiptKey }
          : {
              accountId,
              ok: false,
              runId: o.runId,
              error: o.error instanceof Error ? o.error.message : String(o.error),
            },
      );
      return { ok: accounts.every((a) => a.ok), accounts };
    };
    return body({ registry, run }, event);
  };
}
