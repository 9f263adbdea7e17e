import type { Settings } from '../../config/settings.js';
import { messageTasks, taskRecords } from '../../contracts/task.js';
import { errorFields, type Logger } from '../../log/logger.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';

/**
 * The task dead-letter queue (handlers/dead-letter.ts): SQS moved a task message there after
 * maxReceiveCount receives. Unless that task (each task of a packed message) already succeeded, its run fails with a clear error
 * (no receipt), so a dead-lettered task never leaves its run `running`; the customer is told at once
 * (src/notify/dispatch.ts). A message whose failure
 * cannot be recorded (the ledger unreachable) comes back.
 */
export async function processDeadLetters(
  event: unknown,
  deps: { ledger: Ledger; log: Logger; settings: Settings },
): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> {
  const { ledger, log } = deps;
  const batchItemFailures: { itemIdentifier: string }[] = [];
  const records = taskRecords(event, (record, e) =>
    log.error({ messageId: record.messageId, ...errorFields(e) }, 'malformed dead-lettered message dropped'),
  );
  for (const { record, message: msg } of records) {
    const receives = record.attributes?.ApproximateReceiveCount;
    const detail = `its task message was dead-lettered after ${receives ?? 'too many'} receives (workers kept failing, timing out or being throttled; see the worker's logs)`;
    try {
      // A packed message settles each of its tables: the first one not yet succeeded fails the run
      // (and with it the run's other open tasks); the others were already done or ended with it.
      let failedRun = false;
      for (const { table, part } of messageTasks(msg)) {
        const verdict = await ledger.deadLetter({ runId: msg.runId, table, part, detail });
        const fields = { accountId: msg.accountId, runId: msg.runId, table, part };
        if (verdict === 'failed') {
          log.error(fields, 'dead-lettered task failed its run');
          failedRun = true;
        } else log.info(fields, 'dead-lettered task had already finished');
      }
      // Its outcome event was written with the run's end: tell the customer now.
      if (failedRun) await dispatchRunOutcome(deps, msg.runId);
    } catch (e) {
      log.error(
        {
          runId: msg.runId,
          table: messageTasks(msg)
            .map((t) => t.table)
            .join(','),
          ...errorFields(e),
        },
        'could not record a dead-lettered task; retried',
      );
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}
