import type pg from 'pg';
import type { Destination } from '../accounts/destination.js';
import { permissionPolicy, trustPolicy } from '../accounts/policies.js';
import type { Registry } from '../accounts/registry.js';
import type { TaskQueue } from '../aws/queue.js';
import { loadSettings, type Settings } from '../config/settings.js';
import { describeSelection } from '../contracts/selection.js';
import { createLogger, type Logger } from '../log/logger.js';
import { exportAccounts } from '../run/account.js';
import type { Ledger } from '../run/ledger.js';
import type { ActiveRun, Run, Task } from '../run/ledger-rows.js';
import { type AccountOutcome, LogReporter, type Reporter, Reporters } from '../run/reporter.js';
import { exportViaQueue } from '../run/via-queue.js';
import { Wiring } from '../run/wiring.js';
import { formatBytes, formatCount, renderTable } from './format.js';
import { failureLines, summaryTable, TerminalReporter } from './progress.js';

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
    ...describeSelection(d.selection),
    `compression   ${d.compression}`,
    `changes       ${d.changes ? 'yes (change files since the last successful delivery)' : 'no'}`,
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
  opts: { quietLogs?: boolean; slot?: string; viaQueue?: { workers: number } } = {},
): Promise<{ code: number; outcomes: Map<string, AccountOutcome> }> {
  // Progress for people: redrawn bars on a terminal, one plain line per table every few seconds
  // elsewhere. JSON logs keep warnings and errors unless DROPSHIP_LOG_LEVEL asks for more (the
  // Lambda logs carry the same progress facts as JSON).
  const tty = process.stderr.isTTY === true;
  const log = createLogger({
    level: process.env.DROPSHIP_LOG_LEVEL && !opts.quietLogs ? app.settings.DROPSHIP_LOG_LEVEL : 'warn',
  });
  const terminal = new TerminalReporter(process.stderr, { mode: tty ? 'tty' : 'lines' });
  const reporters: Reporter[] = [new LogReporter(log), terminal];
  terminal.start();
  // First SIGINT/SIGTERM: stop every run cleanly (uploads aborted, runs failed, no receipt).
  // A second one: record the runs as failed at once and exit; the parts of multipart uploads still
  // in flight are left to the bucket's AbortIncompleteMultipartUpload lifecycle rule.
  const abort = new AbortController();
  const ledger = await app.ledger();
  const active = new Set<string>();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      abort.abort(new Error(`interrupted by ${sig}`));
      if (tty) process.stderr.write(`\n${sig}: stopping (uploads are aborted); press Ctrl-C again to quit at once\n`);
      return;
    }
    if (signals > 2) return;
    void (async () => {
      for (const runId of active)
        await ledger
          .failRun({
            runId,
            error: `interrupted twice by ${sig}; the process quit without waiting for its uploads to abort`,
          })
          .catch(() => {});
      process.exit(130);
    })();
  };
  const tracker: Reporter = {
    accountStarted: (_a, runId) => void active.add(runId),
    tableProgress: () => {},
    tableDone: () => {},
    tableFailed: () => {},
    accountDone: (_a, o) => void active.delete(o.runId),
  };
  reporters.push(tracker);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcomes: Map<string, AccountOutcome>;
  try {
    outcomes = opts.viaQueue
      ? await viaQueue(app, dests, {
          reporter: new Reporters(reporters),
          log,
          signal: abort.signal,
          workers: opts.viaQueue.workers,
        })
      : await exportAccounts(dests, {
          sourceUrl: app.sourceUrl,
          settings: app.settings,
          reporter: new Reporters(reporters),
          ledger,
          log,
          trigger: 'cli',
          ...(opts.slot ? { slot: opts.slot } : {}),
          signal: abort.signal,
        });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    terminal.stop();
  }
  process.stdout.write(`\n${summaryTable(outcomes)}\n`);
  const failures = failureLines(outcomes);
  for (const line of failures) process.stderr.write(`error: ${line}\n`);
  return { code: abort.signal.aborted ? 130 : failures.length > 0 ? 1 : 0, outcomes };
}

/** `export --via-queue`: each account through the fan-out path, worked by loops in this process. */
async function viaQueue(
  app: App,
  dests: Destination[],
  o: { reporter: Reporter; log: Logger; signal: AbortSignal; workers: number },
): Promise<Map<string, AccountOutcome>> {
  const queue = app.queue('for --via-queue (the dev stack sets it: dropship dev env)');
  const outcomes = new Map<string, AccountOutcome>();
  for (const dest of dests) {
    outcomes.set(
      dest.accountId,
      await exportViaQueue(dest, {
        sourceUrl: app.sourceUrl,
        settings: app.settings,
        ledger: await app.ledger(),
        registry: await app.registry(),
        queue,
        ...o,
      }),
    );
  }
  return outcomes;
}

/** Why an active run looks dead (`runs list` marks it; the next run or the sweeper ends it). */
export function staleNote(a: ActiveRun): string | undefined {
  const silent = a.silentSeconds > a.staleSeconds;
  if (a.owner !== 'fan-out') {
    if (a.ownerGone) return 'stale: owner gone';
    if (silent) return `stale: no heartbeat for ${Math.round(a.silentSeconds)} s`;
    return undefined;
  }
  if (a.status === 'finishing' && a.finishLeaseExpired) return 'stale: finisher gone';
  if (silent && a.dispatchedAt === null) return 'stale: tasks not all sent';
  if (silent && a.tasksTotal > 0 && a.tasksSucceeded === a.tasksTotal) return 'stale: not finished';
  return undefined;
}

export function runsTable(runs: Run[], stale: Map<string, string> = new Map()): string {
  return renderTable(
    ['run', 'account', 'trigger', 'slot', 'status', 'started (UTC)', 'seconds', 'receipt / error'],
    runs.map((r) => [
      r.runId,
      r.accountId,
      r.trigger,
      r.slot ?? '—',
      stale.has(r.runId) ? `${r.status} (${stale.get(r.runId)})` : r.status,
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
