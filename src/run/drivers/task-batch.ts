import type { Registry } from '../../accounts/registry.js';
import type { TaskQueue } from '../../aws/queue.js';
import type { Settings } from '../../config/settings.js';
import { messageLabel, taskRecords } from '../../contracts/task.js';
import { errorFields, type Logger } from '../../log/logger.js';
import type { TableProgress } from '../../pipeline/table.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { Faults } from '../lifecycle/faults.js';
import { LogReporter } from '../progress/reporter.js';
import { runTask, type TaskOutcome } from './task.js';

/**
 * One batch of table-task messages, as the SQS event source hands it to the worker Lambda
 * (handlers/worker.ts) and as `dropship export --via-queue` hands it to its worker loops: each
 * message is one table task or several small tables of one run packed together; the answer lists the messages that should come back (partial batch
 * failures) — a task held by another worker, a retryable failure, a task stopped at the deadline —
 * and sets when: a task held by another attempt comes back when that attempt's lease runs out, a
 * retry after its backoff (the queue's own visibility timeout, 6 × the worker timeout, applies only
 * to a worker that died). A malformed message is logged and dropped.
 */
export interface TaskBatchDeps {
  settings: Settings;
  registry: Registry;
  ledger: Ledger;
  log: Logger;
  sourceUrl: string;
  queue: Pick<TaskQueue, 'delay'>;
  signal: AbortSignal;
  /** Progress of each table (besides the progress log lines). */
  onProgress?: (accountId: string, p: TableProgress) => void;
  /** Every task's outcome (tests, the --via-queue driver). */
  onOutcome?: (outcome: TaskOutcome) => void;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

export async function processTaskBatch(
  event: unknown,
  deps: TaskBatchDeps,
): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> {
  const { settings, registry, ledger, log, sourceUrl, queue, signal } = deps;
  const batchItemFailures: { itemIdentifier: string }[] = [];
  const records = taskRecords(event, (record, e) =>
    log.error({ messageId: record.messageId, ...errorFields(e) }, 'malformed task message dropped'),
  );
  for (const { record, message: parsed } of records) {
    const { runId, accountId } = parsed;
    // One task, or a packed message's tables (their outcomes combined: src/run/drivers/task.ts).
    const table = messageLabel(parsed);
    try {
      // A packed message carries tasks nobody else has a message for: should this worker die between
      // two of them (no lease run out for the sweeper to see), the message itself comes back once a
      // lease of its could have run out, not after the queue's visibility timeout (6 × the worker's).
      if ('tables' in parsed && record.receiptHandle)
        await queue.delay(record.receiptHandle, settings.DROPSHIP_TASK_LEASE_SECONDS + 5).catch((e: unknown) => {
          log.warn({ accountId, runId, table, ...errorFields(e) }, 'could not set when the packed message comes back');
        });
      // Progress with percentage and time left every 10 s, as the CLI shows it.
      const progress = new LogReporter(log);
      progress.watchRun(accountId, runId);
      const outcome = await runTask(parsed, {
        sourceUrl,
        ledger,
        registry,
        settings,
        signal,
        log,
        faults: deps.faults,
        onProgress: (p) => {
          progress.tableProgress(accountId, p);
          deps.onProgress?.(accountId, p);
        },
      });
      deps.onOutcome?.(outcome);
      log.info({ accountId, runId, table, ...outcome }, `task ${outcome.status}`);
      if (outcome.status === 'retry') {
        batchItemFailures.push({ itemIdentifier: record.messageId });
        if (record.receiptHandle)
          await queue.delay(record.receiptHandle, outcome.delaySeconds).catch((e: unknown) => {
            log.warn({ accountId, runId, table, ...errorFields(e) }, 'could not set when the task comes back');
          });
      }
    } catch (e) {
      log.error({ accountId, runId, table, ...errorFields(e) }, 'task errored; will be redelivered');
      batchItemFailures.push({ itemIdentifier: record.messageId });
      if (record.receiptHandle) await queue.delay(record.receiptHandle, 30).catch(() => {});
    }
  }
  return { batchItemFailures };
}
