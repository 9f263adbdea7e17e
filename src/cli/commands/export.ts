import type { Command } from 'commander';
import type { Destination } from '../../accounts/destination.js';
import type { Logger } from '../../log/logger.js';
import type { AccountOutcome, Reporter } from '../../run/progress/reporter.js';
import type { App } from '../app.js';
import { examples, out, UsageError } from '../usage.js';
import { withApp } from '../with-app.js';

const SLOT_RE = /^\d\d:\d\d$/;

/** `dropship export`: one account now, or every account due in a slot. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('Export one account now, or every account due in a slot')
    .option('--account <id>', 'export this account')
    .option('--due', 'export every enabled account due in --slot')
    .option('--slot <HH:MM>', 'schedule slot: 04:00 or 15:00 (UTC)')
    .option(
      '--via-queue',
      'run the production fan-out path: open the run as the exportAccount Lambda does, then work its task messages from DROPSHIP_TASK_QUEUE_URL with worker loops in this process',
    )
    .option('--workers <n>', 'with --via-queue: worker loops (default 2)')
    .addHelpText(
      'after',
      examples(
        'dropship export --account acme',
        'dropship export --due --slot 04:00',
        'dropship export --account acme --via-queue --workers 3',
      ),
    )
    .action(async (o: { account?: string; due?: boolean; slot?: string; viaQueue?: boolean; workers?: string }) => {
      if (Boolean(o.account) === Boolean(o.due))
        throw new UsageError('give exactly one of --account <id> or --due --slot <HH:MM>');
      if (o.slot !== undefined && !o.due) throw new UsageError('--slot goes with --due');
      if (o.workers !== undefined && !o.viaQueue) throw new UsageError('--workers goes with --via-queue');
      if (o.viaQueue && !o.account) throw new UsageError('--via-queue exports one account: give --account <id>');
      const workers = o.workers === undefined ? 2 : Number(o.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 32)
        throw new UsageError('--workers must be a whole number from 1 to 32');
      if (o.due && !(o.slot && SLOT_RE.test(o.slot)))
        throw new UsageError('--due needs --slot HH:MM (04:00 or 15:00 by default)');
      await withApp(async (app) => {
        const registry = await app.registry();
        const dests = o.account
          ? [await registry.get(o.account)]
          : await registry.due(o.slot!, (await import('../../contracts/slots.js')).slotsByPlan(app.settings));
        if (dests.length === 0) {
          out(`No enabled accounts are due in slot ${o.slot}.`);
          return;
        }
        // `--due --slot` records its slot on each run (the `slot` column of `runs list`). The run
        // stays a `cli` run: it does not claim the scheduled run's (account, slot, day) key, so a
        // hand-run slot neither is refused after the schedule ran nor stops the schedule (or the
        // sweeper's catch-up) from delivering that slot.
        const { code } = await runExports(app, dests, {
          ...(o.due ? { slot: o.slot! } : {}),
          ...(o.viaQueue ? { viaQueue: { workers } } : {}),
        });
        process.exitCode = code;
      });
    });
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
  const { createLogger } = await import('../../log/logger.js');
  const { exportAccounts } = await import('../../run/drivers/in-process.js');
  const { LogReporter, Reporters } = await import('../../run/progress/reporter.js');
  const { failureLines, summaryTable, TerminalReporter } = await import('../progress.js');
  const tty = process.stderr.isTTY === true;
  const log = createLogger({
    level: (!opts.quietLogs && app.settings.DROPSHIP_LOG_LEVEL) || 'warn',
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
          faults: app.faults,
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
  const { exportViaQueue } = await import('../../run/drivers/via-queue.js');
  const queue = await app.queue('for --via-queue (the dev stack sets it: dropship dev env)');
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
        faults: app.faults,
        ...o,
      }),
    );
  }
  return outcomes;
}
