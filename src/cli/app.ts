import type pg from 'pg';
import type { Registry } from '../accounts/registry.js';
import type { TaskQueue } from '../aws/queue.js';
import { loadSettings, type Settings } from '../config/settings.js';
import type { Ledger } from '../run/ledger.js';
import { Wiring } from '../run/wiring.js';
import { UsageError } from './usage.js';

/** What every command needs: settings, the registry database, a logger (the wiring: src/run/wiring.ts). */
export class App {
  readonly settings: Settings;
  private readonly wiring: Wiring;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.settings = loadSettings(env);
    // One connection per running account holds its run's owner lock (src/run/owner.ts): room for those.
    this.wiring = new Wiring({ settings: this.settings, poolMax: 8, applicationName: 'dropship' });
  }

  get databaseUrl(): string {
    return this.wiring.databaseUrl;
  }

  get sourceUrl(): string {
    return this.wiring.sourceUrl;
  }

  /** The registry/ledger database (migrated), for modules with their own tables (src/notify). */
  async database(): Promise<pg.Pool> {
    return this.wiring.pool();
  }

  async registry(): Promise<Registry> {
    return this.wiring.registry();
  }

  async ledger(): Promise<Ledger> {
    return this.wiring.ledger();
  }

  /** The SQS task queue (DROPSHIP_TASK_QUEUE_URL, required `purpose`); ended by `close()`. */
  queue(purpose: string): TaskQueue {
    return this.wiring.queue(purpose);
  }

  async close(): Promise<void> {
    await this.wiring.close();
  }
}

/**
 * The App lifecycle of every command that needs settings or the registry database: one App for
 * the command, closed when the command ends, whether it succeeded or threw.
 */
export async function withApp<T>(fn: (app: App) => Promise<T>): Promise<T> {
  const app = new App();
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/** The principal the trust policy names; the commands that print or create it need it set. */
export function requirePrincipal(app: App): string {
  const p = app.settings.DROPSHIP_PRINCIPAL_ARN;
  if (!p)
    throw new UsageError(
      'DROPSHIP_PRINCIPAL_ARN is not set: it is the principal the trust policy names (the Lambda role in production)',
    );
  return p;
}
