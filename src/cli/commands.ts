import pg from 'pg';
import { migrate } from '../accounts/migrations.js';
import { Registry } from '../accounts/registry.js';
import { loadSettings, requireSetting, type Settings } from '../config/settings.js';
import { Ledger } from '../run/ledger.js';

/** What every command needs: settings, the registry database, a logger. */
export class App {
  readonly settings: Settings;
  private pool: pg.Pool | undefined;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.settings = loadSettings(env);
  }

  get databaseUrl(): string {
    return requireSetting(
      this.settings,
      'DATABASE_URL',
      'to reach the dropship registry (postgres://user:pass@host:5432/db)',
    );
  }

  get sourceUrl(): string {
    return this.settings.DROPSHIP_SOURCE_DATABASE_URL ?? this.databaseUrl;
  }

  private async db(): Promise<pg.Pool> {
    if (!this.pool) {
      // One connection per running account holds its run's owner lock (src/run/owner.ts): room for those.
      this.pool = new pg.Pool({ connectionString: this.databaseUrl, max: 8, application_name: 'dropship' });
      this.pool.on('error', () => {});
      await migrate(this.pool);
    }
    return this.pool;
  }

  /** The registry/ledger database (migrated), for modules with their own tables (src/notify). */
  async database(): Promise<pg.Pool> {
    return this.db();
  }

  async registry(): Promise<Registry> {
    return new Registry(await this.db());
  }

  async ledger(): Promise<Ledger> {
    return new Ledger(await this.db());
  }

  async close(): Promise<void> {
    await this.pool?.end();
    this.pool = undefined;
  }
}
