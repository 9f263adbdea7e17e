import type pg from 'pg';
import type { Registry } from '../../src/accounts/registry.js';
import { loadSettings, type Settings } from '../../src/config/settings.js';
import { LocalStack } from '../../src/devstack/stack.js';
import { Wiring } from '../../src/run/wiring.js';
import type { Ledger } from '../../src/store/ledger/ledger.js';

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
  const wiring = new Wiring({ settings: loadSettings(env), databaseUrl: stack.databaseUrl });
  const pool = await wiring.pool();
  return {
    stack,
    pool,
    registry: await wiring.registry(),
    ledger: await wiring.ledger(),
    settings: (extra = {}) => loadSettings({ ...env, ...extra }),
    stop: async () => {
      await wiring.close();
      await stack.stop();
      process.env = saved;
    },
  };
}
