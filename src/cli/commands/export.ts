import type { Command } from 'commander';
import type { Destination } from '../../accounts/destination.js';
import type { Logger } from '../../log/logger.js';
import type { AccountOutcome, Reporter } from '../../run/progress/reporter.js';
import type { App } from '../app.js';
import { examples, out, UsageError } from '../usage.js';
import { withApp } from '../with-app.js';

const SLOT_RE = /^\d\d:\d\d$/;

/** The signals that stop an export (a closed terminal's SIGHUP too), and their numbers for the exit code. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** Marks an export in progress for src/cli/bin.mjs's closed-pipe handler. */
const EXPORTING = Symbol.for('dropship.exporting');

/** How long a second signal waits for the runs to be recorded cancelled before the process exits anyway. */
const SECOND_SIGNAL_MS = 2000;

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
        // A slot nobody is exported in is refused (exit 2), not answered with "nobody is due".
        if (o.due) (await import('../slot-option.js')).requireConfiguredSlot(o.slot!, app.settings);
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
  const terminal = new TerminalReporter(process.stderr, { mode: tty ? 'tty' : 'lines' });
  // On a terminal the log lines go above the bars (written straight to fd 2, the next redraw erased them).
  const log = createLogger({
    level: (!opts.quietLogs && app.settings.DROPSHIP_LOG_LEVEL) || 'warn',
    ...(tty ? { destination: { write: (line: string) => terminal.note(line.trimEnd()) } } : {}),
  });
  const reporters: Reporter[] = [new LogReporter(log), terminal];
  terminal.start();
  // First SIGINT/SIGTERM/SIGHUP: stop every run cleanly (uploads aborted, runs cancelled, no receipt; accounts still
  // waiting their turn are not started). A second one: record the runs as cancelled — for at most 2 s, a ledger that
  // does not answer does not hold the process — and exit; the parts of multipart uploads still in flight are left to
  // the bucket's AbortIncompleteMultipartUpload lifecycle rule. A third one exits at once.
  const abort = new AbortController();
  const ledger = await app.ledger();
  const active = new Set<string>();
  let signals = 0;
  let signalCode = 130;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      signalCode = 128 + (SIGNAL_NUMBERS[sig] ?? 2);
      abort.abort(new Error(`interrupted by ${sig}`));
      if (tty) {
        const again = sig === 'SIGINT' ? 'press Ctrl-C again' : `send ${sig} again`;
        terminal.note(`${sig}: stopping (uploads are aborted); ${again} to quit at once`);
      }
      return;
    }
    if (signals > 2) process.exit(signalCode);
    const recorded = Promise.all(
      [...active].map((runId) =>
        ledger
          .failRun({
            runId,
            error: `interrupted twice by ${sig}; the process quit without waiting for its uploads to abort`,
            status: 'cancelled',
          })
          .catch(() => {}),
      ),
    );
    void Promise.race([recorded, new Promise((r) => setTimeout(r, SECOND_SIGNAL_MS).unref())]).then(() =>
      process.exit(signalCode),
    );
  };
  const tracker: Reporter = {
    accountStarted: (_a, runId) => void active.add(runId),
    tableProgress: () => {},
    tableDone: () => {},
    tableFailed: () => {},
    accountDone: (_a, o) => void active.delete(o.runId),
  };
  reporters.push(tracker);
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  let outcomes: Map<string, AccountOutcome>;
  const busy = globalThis as { [EXPORTING]?: number };
  busy[EXPORTING] = (busy[EXPORTING] ?? 0) + 1;
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
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
    terminal.stop();
    busy[EXPORTING] = (busy[EXPORTING] ?? 1) - 1;
  }
  const failures = failureLines(outcomes);
  // 128 + the signal's number only when the interruption stopped something: a run that delivered before the signal
  // took effect exits 0 (a wrapper that reruns on 130 would deliver it twice).
  const stoppedSome = [...outcomes.values()].some((o) => !o.ok);
  const code = !stoppedSome ? 0 : abort.signal.aborted ? signalCode : 1;
  // Set before the summary (no tick since the export's end): a reader gone meanwhile ends the process with this code
  // (src/cli/bin.mjs).
  process.exitCode = code;
  process.stdout.write(`${summaryTable(outcomes)}\n`);
  for (const line of failures) process.stderr.write(`error: ${line}\n`);
  return { code, outcomes };
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
