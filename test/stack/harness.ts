import pg from 'pg';
import { migrate } from '../../src/accounts/migrations.js';
import { Registry } from '../../src/accounts/registry.js';
import { loadSettings, type Settings } from '../../src/config/settings.js';
import { Ledger } from '../../src/run/ledger.js';
import { LocalStack } from './stack.js';

/**
 * What most integration tests start with: the local stack, this process pointed at it through the
 * standard environment, a migrated registry/ledger database, and settings with optional overrides.
 * `stop()` undoes all of it.
 */
export interface Harness {
  stack: LocalStack;
  pool: pg.Pool;
  registry: Registry;
  ledger: Ledger;
  settings: (extra?: Record<string, string>) => Settings;
  stop: () => Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const stack = await LocalStack.start();
  const saved = { ...process.env };
  const env = { ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' };
  Object.assign(process.env, env);
  const pool = new pg.Pool({ connectionString: stack.databaseUrl });
  pool.on('error', () => {}); // idle clients see the server stop at the end
  await migrate(pool);
  return {
    stack,
    pool,
    registry: new Registry(pool),
    ledger: new Ledger(pool),
    settings: (extra = {}) => loadSettings({ ...env, ...extra }),
    stop: async () => {
      await pool.end();
      await stack.stop();
      process.env = saved;
    },
  };
}
