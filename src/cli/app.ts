import type pg from 'pg';
import type { Registry } from '../accounts/registry.js';
import type { TaskQueue } from '../aws/queue.js';
import { loadSettings, type Settings } from '../config/settings.js';
import type { OperationDeps } from '../operations/deps.js';
import type { Faults } from '../run/lifecycle/faults.js';
import { Wiring } from '../run/wiring.js';
import type { Ledger } from '../store/ledger/ledger.js';
import { connecting } from './database-error.js';

/**
 * What every command needs: settings, the registry database, a logger (the wiring: src/run/wiring.ts).
 * Commands get one through withApp (./with-app.ts), which loads this module when a command runs.
 */
export class App {
  readonly settings: Settings;
  private readonly wiring: Wiring;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.settings = loadSettings(env);
    // One connection per running account holds its run's owner lock (src/run/liveness/owner.ts): room for those,
    // and 6 more for everyone's short statements (8 at the default DROPSHIP_ACCOUNT_CONCURRENCY of 2).
    this.wiring = new Wiring({
      settings: this.settings,
      poolMax: this.settings.DROPSHIP_ACCOUNT_CONCURRENCY + 6,
      applicationName: 'dropship',
    });
  }

  get databaseUrl(): string {
    return this.wiring.databaseUrl;
  }

  get sourceUrl(): string {
    return this.wiring.sourceUrl;
  }

  /** The wiring's fault hook for the run drivers (src/run/lifecycle/faults.ts): a no-op in production. */
  get faults(): Faults {
    return this.wiring.faults;
  }

  /** The registry/ledger database (migrated), for modules with their own tables (src/notify). */
  async database(): Promise<pg.Pool> {
    return this.connected(() => this.wiring.pool());
  }

  async registry(): Promise<Registry> {
    return this.connected(() => this.wiring.registry());
  }

  async ledger(): Promise<Ledger> {
    return this.connected(() => this.wiring.ledger());
  }

  /** The first use connects: a login refused or a host not reached is the configuration's (one line, exit 2). */
  private connected<T>(fn: () => Promise<T>): Promise<T> {
    return connecting(() => this.databaseUrl, 'DATABASE_URL', fn);
  }

  /** What the shared operations (src/operations/) need: the same for the CLI and the HTTP API. */
  async operations(): Promise<OperationDeps> {
    return {
      settings: this.settings,
      pool: await this.database(),
      registry: await this.registry(),
      ledger: await this.ledger(),
      sourceUrl: this.sourceUrl,
    };
  }

  /** The SQS task queue (DROPSHIP_TASK_QUEUE_URL, required `purpose`); ended by `close()`. */
  queue(purpose: string): Promise<TaskQueue> {
    return this.wiring.queue(purpose);
  }

  async close(): Promise<void> {
    await this.wiring.close();
  }
}
