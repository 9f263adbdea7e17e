import type { Destination } from '../../accounts/destination.js';
import type { Registry } from '../../accounts/registry.js';
import type { TaskQueue } from '../../aws/queue.js';
import type { Settings } from '../../config/settings.js';
import { taskMessageSchema } from '../../contracts/task.js';
import { forgetDestinationClients } from '../../destinations/open.js';
import { errorFields, type Logger } from '../../log/logger.js';
import type { TableResult } from '../../pipeline/table.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';
import type { Faults } from '../lifecycle/faults.js';
import type { AccountOutcome, Reporter } from '../progress/reporter.js';
import { startFanOutRun } from './fan-out.js';
import type { TaskOutcome } from './task.js';
import { processTaskBatch } from './task-batch.js';

/**
 * `dropship export --account <id> --via-queue [--workers N]`: the production fan-out path, run
 * locally. The run is opened by `startFanOutRun` (the exportAccount Lambda's code); then N worker
 * loops in this process play Lambda's SQS event source against DROPSHIP_TASK_QUEUE_URL (the dev
 * stack's SQS or a real queue) with the real SQS client: receive a batch, hand it to the worker
 * Lambda's batch function (src/run/drivers/task-batch.ts — what handlers/worker.ts calls), delete the
 * messages it did not report as batch item failures, leave the failures to come back when the
 * worker said (it set their visibility). Messages of other live runs are never deleted: handed back
 * at once (visible again after OTHERS_BACK_SECONDS); late duplicates of ended runs are handled (the
 * worker does nothing with them) and deleted, as a deployed worker would. The loops stop when the run has ended (succeeded, failed or
 * cancelled). Progress and summary are the in-process export's: table progress from the workers,
 * table completions and the outcome from the ledger.
 */
export interface ViaQueueDeps {
  sourceUrl: string;
  settings: Settings;
  ledger: Ledger;
  registry: Registry;
  queue: TaskQueue;
  reporter: Reporter;
  log: Logger;
  workers: number;
  /** Messages per receive (the worker function's batchSize in serverless.yml is 1). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Every task's outcome (tests). */
  onOutcome?: (o: TaskOutcome) => void;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ENDED = new Set(['succeeded', 'failed', 'cancelled']);
/**
 * Another live run's message is handed back visible again after this many seconds — not 0: a queue
 * returns the oldest visible messages first, and handing them back at 0 had the loops receive the
 * same foreign messages over and over (measured: a run never got its own). Its run waits ≤ 5 s.
 */
const OTHERS_BACK_SECONDS = 5;

export async function exportViaQueue(dest: Destination, deps: ViaQueueDeps): Promise<AccountOutcome> {
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  const { ledger, reporter, queue, log } = deps;
  let opened: Awaited<ReturnType<typeof startFanOutRun>>;
  try {
    opened = await startFanOutRun(dest, {
      sourceUrl: deps.sourceUrl,
      ledger,
      settings: deps.settings,
      queue,
      log,
      faults: deps.faults,
      trigger: 'manual',
    });
  } catch (error) {
    // Not opened (disabled account, another run in progress, the ledger or source unreachable).
    const outcome: AccountOutcome = { ok: false, runId: '-', error, failures: [], seconds: seconds() };
    reporter.accountDone(dest.accountId, outcome);
    return outcome;
  }
  const { run, tasks } = opened;
  const runId = run.runId;
  const rows = await ledger.tasks(runId);
  const tables = [...new Set(rows.map((t) => t.table))];
  reporter.accountStarted(dest.accountId, runId, tables);
  log.info({ accountId: dest.accountId, runId, tasks }, 'run opened; working its tasks from the queue');

  const stop = new AbortController();
  const signal = deps.signal ? AbortSignal.any([deps.signal, stop.signal]) : stop.signal;
  const reported = new Set<string>();

  /** Reports tables whose every part has succeeded; true once the run has ended. */
  const watch = async (): Promise<boolean> => {
    const now = await ledger.tasks(runId);
    for (const table of tables) {
      if (reported.has(table)) continue;
      const parts = now.filter((t) => t.table === table);
      if (parts.length > 0 && parts.every((t) => t.status === 'succeeded')) {
        reported.add(table);
        reporter.tableDone(dest.accountId, merge(parts.map((t) => t.result as TableResult)));
      }
      const failed = parts.find((t) => t.status === 'failed');
      if (failed && !reported.has(table)) {
        reported.add(table);
        reporter.tableFailed(dest.accountId, table, new Error(failed.error ?? 'failed'));
      }
    }
    const r = await ledger.getRun(runId);
    return !r || ENDED.has(r.status);
  };

  const loop = async (n: number): Promise<void> => {
    while (!signal.aborted) {
      let received: Awaited<ReturnType<TaskQueue['receive']>>;
      try {
        received = await queue.receive(deps.batchSize ?? 1, 1, signal);
      } catch (e) {
        if (signal.aborted) return;
        log.warn({ worker: n, ...errorFields(e) }, 'receive failed; trying again');
        await sleep(1000);
        continue;
      }
      const ours: typeof received = [];
      for (const m of received) {
        let msgRun: string | undefined;
        try {
          msgRun = taskMessageSchema.parse(JSON.parse(m.body)).runId;
        } catch {
          msgRun = undefined; // not ours to judge: the worker Lambda drops malformed messages; we leave them
        }
        if (msgRun === runId) ours.push(m);
        else if (msgRun && ENDED.has((await ledger.getRun(msgRun).catch(() => undefined))?.status ?? '')) {
          // A late duplicate of an ended run (e.g. one handed back as busy): the worker does nothing
          // with it and it is deleted, as a deployed worker would.
          ours.push(m);
        } else {
          // Another live run's (or an unknown one's): handed back, never deleted.
          await queue.delay(m.receiptHandle, OTHERS_BACK_SECONDS).catch(() => {});
        }
      }
      if (ours.length === 0) {
        await sleep(received.length > 0 ? 500 : 200);
        continue;
      }
      // The worker's deadline, as Lambda's would be (15 minutes per batch, less the margin).
      const deadline = AbortSignal.any([
        signal,
        AbortSignal.timeout(15 * 60_000 - deps.settings.DROPSHIP_DEADLINE_MARGIN_SECONDS * 1000),
      ]);
      const { batchItemFailures } = await processTaskBatch(
        { Records: ours.map((m) => ({ messageId: m.messageId, receiptHandle: m.receiptHandle, body: m.body })) },
        {
          settings: deps.settings,
          registry: deps.registry,
          ledger,
          log,
          sourceUrl: deps.sourceUrl,
          queue,
          signal: deadline,
          faults: deps.faults,
          onProgress: (accountId, p) => reporter.tableProgress(accountId, p),
          ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
        },
      );
      const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
      for (const m of ours) {
        if (failed.has(m.messageId)) continue; // comes back when the worker said (it set the visibility)
        await queue.delete(m.receiptHandle).catch((e: unknown) => {
          log.warn({ worker: n, ...errorFields(e) }, 'could not delete a handled message; it will be delivered again');
        });
      }
    }
  };

  const watcher = (async () => {
    while (!signal.aborted) {
      if (await watch().catch(() => false)) return stop.abort(new Error('run ended'));
      await sleep(250);
    }
  })();
  await Promise.all([...Array.from({ length: Math.max(1, deps.workers) }, (_, i) => loop(i)), watcher]);
  // The run's cached credentials and clients serve no other run (their key holds the run id); their idle
  // connections would keep a CLI process alive until the server closes them.
  forgetDestinationClients();
  await watch().catch(() => false);
  if (deps.signal?.aborted) {
    await ledger
      // Cancelled, as an operator's cancel: told, never counted toward the pause.
      .failRun({
        runId,
        error: `interrupted (${(deps.signal.reason as Error)?.message ?? 'signal'})`,
        status: 'cancelled',
      })
      .catch(() => {});
    // Its outcome event was written with its end (if this process ended it): tell the customer now.
    await dispatchRunOutcome({ ledger, settings: deps.settings }, runId);
  }

  const final = await ledger.getRun(runId);
  let outcome: AccountOutcome;
  if (final?.status === 'succeeded' && final.receiptKey) {
    const done = await ledger.tasks(runId);
    outcome = {
      ok: true,
      runId,
      receiptKey: final.receiptKey,
      tables: tables.map((t) => merge(done.filter((d) => d.table === t).map((d) => d.result as TableResult))),
      seconds: seconds(),
    };
  } else {
    const failures = (await ledger.tasks(runId))
      .filter((t) => t.status === 'failed')
      .map((t) => ({ table: t.part > 0 ? `${t.table} (part ${t.part})` : t.table, message: t.error ?? 'failed' }));
    const why = deps.signal?.aborted
      ? `stopped (${(deps.signal.reason as Error)?.message ?? 'interrupted'})`
      : `run ${final?.status ?? 'unknown'}${final?.error ? `: ${final.error}` : ''}`;
    outcome = {
      ok: false,
      runId,
      error: new Error(`account ${dest.accountId}: ${why}; no receipt written`),
      failures,
      seconds: seconds(),
    };
  }
  reporter.accountDone(dest.accountId, outcome);
  return outcome;
}

/** The parts of a split table as one result (files in key order, totals summed). */
function merge(parts: TableResult[]): TableResult {
  const first = parts[0]!;
  const out: TableResult = { ...first, files: parts.flatMap((p) => p.files) };
  out.rows = parts.reduce((n, p) => n + p.rows, 0);
  out.bytes = parts.reduce((n, p) => n + p.bytes, 0);
  out.seconds = Math.max(...parts.map((p) => p.seconds));
  out.files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}
