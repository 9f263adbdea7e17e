import pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import { migrate } from '../accounts/migrations.js';
import { permissionPolicy, trustPolicy } from '../accounts/policies.js';
import { Registry } from '../accounts/registry.js';
import { ConfigError, loadSettings, requireSetting, type Settings } from '../config/settings.js';
import { createLogger } from '../log/logger.js';
import { exportAccounts } from '../run/account.js';
import { Ledger, type Run, type Task } from '../run/ledger.js';
import { type AccountOutcome, LogReporter, type Reporter, Reporters } from '../run/reporter.js';
import { formatBytes, formatCount, renderTable } from './format.js';
import { failureLines, summaryTable, TerminalReporter } from './progress.js';

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
      this.pool = new pg.Pool({ connectionString: this.databaseUrl, max: 4, application_name: 'dropship' });
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

export function printPolicies(dest: Destination, principalArn: string | undefined, out: (s: string) => void): void {
  out(`External ID (put it in the role's trust policy; it never changes): ${dest.externalId}\n`);
  if (principalArn) {
    out('Trust policy for the role (IAM > Roles > Trust relationships):');
    out(JSON.stringify(trustPolicy(dest, principalArn), null, 2));
  } else {
    out('(set DROPSHIP_PRINCIPAL_ARN to print the trust policy with dropship’s principal filled in)');
  }
  out('\nPermission policy for the role:');
  out(JSON.stringify(permissionPolicy(dest), null, 2));
}

export function describeDestination(d: Destination): string {
  return [
    `account       ${d.accountId}${d.enabled ? '' : '  (disabled)'}`,
    `plan          ${d.plan}`,
    `destination   s3://${d.bucket}/${d.prefix ? `${d.prefix}/` : ''}  (${d.region})`,
    `role          ${d.roleArn}`,
    `kms key       ${d.kmsKeyArn ?? '—'}`,
    `source schema ${d.sourceSchema}`,
    `layout        ${d.layout}`,
    `registered    ${d.createdAt.toISOString()}`,
  ].join('\n');
}

/**
 * Runs the given accounts with live progress on a terminal (structured logs otherwise), prints the
 * summary, and returns the process exit code: 0 when every account succeeded, 1 otherwise.
 */
export async function runExports(
  app: App,
  dests: Destination[],
  opts: { quietLogs?: boolean; slot?: string } = {},
): Promise<{ code: number; outcomes: Map<string, AccountOutcome> }> {
  const tty = process.stderr.isTTY === true;
  const log = createLogger({ level: tty || opts.quietLogs ? 'warn' : app.settings.DROPSHIP_LOG_LEVEL });
  const terminal = tty ? new TerminalReporter() : undefined;
  const reporters: Reporter[] = [new LogReporter(log)];
  if (terminal) reporters.push(terminal);
  terminal?.start();
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  let outcomes: Map<string, AccountOutcome>;
  try {
    outcomes = await exportAccounts(dests, {
      sourceUrl: app.sourceUrl,
      settings: app.settings,
      reporter: new Reporters(reporters),
      ledger: await app.ledger(),
      trigger: 'cli',
      ...(opts.slot ? { slot: opts.slot } : {}),
      signal: abort.signal,
    });
  } finally {
    process.off('SIGINT', onSignal);
    terminal?.stop();
  }
  process.stdout.write(`\n${summaryTable(outcomes)}\n`);
  const failures = failureLines(outcomes);
  for (const line of failures) process.stderr.write(`error: ${line}\n`);
  return { code: failures.length > 0 ? 1 : 0, outcomes };
}

export function runsTable(runs: Run[]): string {
  return renderTable(
    ['run', 'account', 'trigger', 'slot', 'status', 'started (UTC)', 'seconds', 'receipt / error'],
    runs.map((r) => [
      r.runId,
      r.accountId,
      r.trigger,
      r.slot ?? '—',
      r.status,
      r.startedAt.toISOString().slice(0, 19).replace('T', ' '),
      r.finishedAt ? ((r.finishedAt.getTime() - r.startedAt.getTime()) / 1000).toFixed(1) : '—',
      r.status === 'succeeded' ? (r.receiptKey ?? '') : (r.error ?? '').slice(0, 80),
    ]),
    [6],
  );
}

export function tasksTable(tasks: Task[]): string {
  return renderTable(
    ['table', 'status', 'attempts', 'rows', 'files', 'bytes', 'seconds', 'error'],
    tasks.map((t) => [
      t.table,
      t.status,
      `${t.attempts}/${t.maxAttempts}`,
      t.rows === null ? '—' : formatCount(t.rows),
      t.result ? String(t.result.files.length) : '—',
      t.bytes === null ? '—' : formatBytes(t.bytes),
      t.result ? t.result.seconds.toFixed(2) : '—',
      (t.error ?? '').slice(0, 100),
    ]),
    [2, 3, 4, 5, 6],
  );
}

export { ConfigError };
