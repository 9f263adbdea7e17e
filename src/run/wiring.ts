import pg from 'pg';
import { Registry, type SourceConnect } from '../accounts/registry.js';
import type { OpenQueue } from '../aws/open-queue.js';
import type { TaskQueue } from '../aws/queue.js';
import { unusableDatabaseUrl } from '../config/database-url.js';
import { requireSetting, type Settings } from '../config/settings.js';
import { Ledger } from '../store/ledger/ledger.js';
import { migrate, requireKnownSchema } from '../store/migrations.js';
import { crashFaults } from './lifecycle/crash.js';
import type { Faults } from './lifecycle/faults.js';
import { tuneHeapForExports } from './v8-heap.js';

/**
 * The one wiring of dropship: settings → the registry/ledger pool (created on first use, its
 * schema version checked once) → registry, ledger, task queue. The CLI (`App`, src/cli/app.ts), the Lambda
 * entry points (`lambdaDeps`, src/run/lambda.ts) and the test harness (test/kit/stack-harness.ts) all
 * build theirs here; they differ only in the options below.
 */
export interface WiringOptions {
  settings: Settings;
  /** The registry/ledger database; without it, DATABASE_URL (required when the database is first needed). */
  databaseUrl?: string;
  /** Where `databaseUrl` is configured, for the line telling it cannot be used (default: DATABASE_URL). */
  databaseSetting?: string;
  /** The pool's size (pg's default when absent). */
  poolMax?: number;
  /** `application_name` of the pool's connections (pg_stat_activity); none when absent. */
  applicationName?: string;
  /**
   * On first use: 'check' (the default: every function and CLI command) refuses a schema this code
   * cannot run on (src/store/migrations.ts); 'migrate' applies the migrations first — only
   * `dropship migrate`, the local stack and tests that build their own database.
   */
  schema?: 'check' | 'migrate';
  /**
   * The fault hook handed to the drivers (src/run/lifecycle/faults.ts). Absent: a no-op, unless the test-only
   * setting DROPSHIP_TEST_CRASH_AT arms the crash matrix's hook (src/run/lifecycle/crash.ts) — how a test
   * reaches a CLI child process or a Lambda instance through its environment.
   */
  faults?: Faults;
}

export class Wiring {
  readonly settings: Settings;
  /** Where the run's lifecycle may be made to die or freeze: a no-op in production. */
  readonly faults: Faults;
  private pooled: Promise<pg.Pool> | undefined;
  private taskQueue: TaskQueue | undefined;
  private opens: OpenQueue | undefined;
  /** The URLs checked once (usableUrl), by the setting that holds them. */
  private readonly checked = new Map<string, string>();

  constructor(private readonly opts: WiringOptions) {
    this.settings = opts.settings;
    this.faults = opts.faults ?? crashFaults(opts.settings);
    // Process-wide and idempotent: when V8 collects the whole heap (src/run/v8-heap.ts).
    tuneHeapForExports();
  }

  /** The registry/ledger database's URL, checked (usableUrl). */
  get databaseUrl(): string {
    return this.usableUrl(
      this.opts.databaseSetting ?? 'DATABASE_URL',
      this.opts.databaseUrl ??
        requireSetting(
          this.settings,
          'DATABASE_URL',
          'to reach the dropship registry (postgres://user:pass@host:5432/db)',
        ),
    );
  }

  /** Where the customers' data is read: DROPSHIP_SOURCE_DATABASE_URL (checked, usableUrl), else the registry's database. */
  get sourceUrl(): string {
    const separate = this.settings.DROPSHIP_SOURCE_DATABASE_URL;
    return separate === undefined ? this.databaseUrl : this.usableUrl('DROPSHIP_SOURCE_DATABASE_URL', separate);
  }

  /**
   * `url` (from `setting`) if pg can use it, else a ConfigError naming the setting and what to do, never the URL or its
   * password (src/config/database-url.ts). pg parses a URL only when it connects, and what it throws then (a password
   * with an unencoded `#` or `/`, a port past 65535: "Invalid URL"; an sslrootcert file that is not there) crashed the
   * CLI with a stack and exit 1 (review). Here pg parses it as it will (a client that never connects) once per URL.
   */
  private usableUrl(setting: string, url: string): string {
    if (this.checked.get(setting) === url) return url;
    const early = unusableDatabaseUrl(url, setting);
    if (early) throw early;
    try {
      new pg.Client({ connectionString: url });
    } catch (e) {
      throw unusableDatabaseUrl(url, setting, e) ?? e;
    }
    this.checked.set(setting, url);
    return url;
  }

  /** The registry/ledger pool, its schema checked (or migrated) once, on first use. */
  pool(): Promise<pg.Pool> {
    this.pooled ??= (async () => {
      const pool = new pg.Pool({
        connectionString: this.databaseUrl,
        ...(this.opts.poolMax !== undefined ? { max: this.opts.poolMax } : {}),
        ...(this.opts.applicationName !== undefined ? { application_name: this.opts.applicationName } : {}),
      });
      pool.on('error', () => {}); // idle clients see the server go away; the next query reports it
      try {
        if (this.opts.schema === 'migrate') await migrate(pool);
        else await requireKnownSchema(pool);
      } catch (e) {
        await pool.end().catch(() => {});
        throw e;
      }
      return pool;
    })();
    this.pooled.catch(() => {
      this.pooled = undefined;
    });
    return this.pooled;
  }

  /** The registry; it checks a destination's source schema in the source database (`sourceUrl`). */
  async registry(): Promise<Registry> {
    const separate = this.settings.DROPSHIP_SOURCE_DATABASE_URL;
    return new Registry(
      await this.pool(),
      // The source URL is checked when a registration first needs it (commands that never do run without it).
      separate === undefined ? undefined : (o) => sourceConnect(this.sourceUrl, this.opts.applicationName)(o),
    );
  }

  async ledger(): Promise<Ledger> {
    return new Ledger(await this.pool());
  }

  /**
   * The SQS task queue (fan-out); DROPSHIP_TASK_QUEUE_URL is required only here, `purpose` says why.
   * Its module (and the SQS client) is loaded on first use: most CLI commands never need it.
   */
  async queue(purpose: string): Promise<TaskQueue> {
    const url = requireSetting(this.settings, 'DROPSHIP_TASK_QUEUE_URL', purpose);
    const { TaskQueue } = await import('../aws/queue.js');
    this.taskQueue ??= new TaskQueue(url, {
      maxAttempts: this.settings.DROPSHIP_AWS_MAX_ATTEMPTS,
    });
    return this.taskQueue;
  }

  /**
   * The SQS open queue (a slot's accounts, in small batches, for the open-runs function);
   * DROPSHIP_OPEN_QUEUE_URL is required only here, `purpose` says why. Loaded on first use.
   */
  async openQueue(purpose: string): Promise<OpenQueue> {
    const url = requireSetting(this.settings, 'DROPSHIP_OPEN_QUEUE_URL', purpose);
    const { OpenQueue } = await import('../aws/open-queue.js');
    this.opens ??= new OpenQueue(url, { maxAttempts: this.settings.DROPSHIP_AWS_MAX_ATTEMPTS });
    return this.opens;
  }

  /** Ends the pool and the queues' clients; a later use starts them again. */
  async close(): Promise<void> {
    const pooled = this.pooled;
    this.pooled = undefined;
    this.taskQueue?.destroy();
    this.taskQueue = undefined;
    this.opens?.destroy();
    this.opens = undefined;
    await (await pooled?.catch(() => undefined))?.end();
  }
}

/**
 * The registry's connection to a separate source database, for its checks of a destination's source schema: connected,
 * and every statement ended, within `timeoutMs` (what is left of the registry write's budget) — `lock_timeout` and
 * `statement_timeout` for the session. Without them a customer's lock on one of its tables held a registration (and
 * every later line of a bulk import) for as long as it was held (red team, API).
 */
export function sourceConnect(url: string, applicationName?: string): SourceConnect {
  return async ({ timeoutMs }) => {
    const ms = Math.max(1, Math.ceil(timeoutMs));
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: ms,
      ...(applicationName !== undefined ? { application_name: applicationName } : {}),
    });
    client.on('error', () => {}); // a dropped connection fails the check's next query
    await client.connect();
    try {
      await client.query(`select set_config('lock_timeout', $1, false), set_config('statement_timeout', $1, false)`, [
        `${ms}ms`,
      ]);
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    return { client, release: () => client.end().catch(() => {}) };
  };
}
