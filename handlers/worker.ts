import { z } from 'zod';
import { errorFields } from '../src/log/logger.js';
import { deadlineSignal, type LambdaContext, lambdaDeps } from '../src/run/lambda.js';
import { LogReporter } from '../src/run/reporter.js';
import { runTask } from '../src/run/task.js';

/**
 * SQS consumer: one message is one table task (account × table). Reports partial batch failures,
 * so only the tasks that should run again are redelivered (a task held by another worker, a
 * retryable failure, a task stopped at the deadline) — and sets when: a task held by another
 * attempt comes back when that attempt's lease runs out, a retry after its backoff (the queue's own
 * visibility timeout, 6 × the worker timeout, applies only to a worker that died). A malformed
 * message is logged and dropped.
 */
const messageSchema = z
  .object({
    runId: z.string().min(1),
    accountId: z.string().min(1),
    table: z.string().min(1),
    part: z.number().int().min(0).optional(),
  })
  .strict();
const eventSchema = z
  .object({
    Records: z.array(
      z.object({ messageId: z.string(), body: z.string(), receiptHandle: z.string().optional() }).passthrough(),
    ),
  })
  .passthrough();

export const handler = async (event: unknown, context?: LambdaContext) => {
  const { settings, registry, ledger, log, sourceUrl, queue } = await lambdaDeps();
  const signal = deadlineSignal(context, settings);
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of eventSchema.parse(event).Records) {
    let parsed: z.infer<typeof messageSchema>;
    try {
      parsed = messageSchema.parse(JSON.parse(record.body));
    } catch (e) {
      log.error({ messageId: record.messageId, ...errorFields(e) }, 'malformed task message dropped');
      continue;
    }
    const { runId, accountId, table, part } = parsed;
    try {
      // Progress with percentage and time left every 10 s, as the CLI shows it.
      const progress = new LogReporter(log);
      progress.watchRun(accountId, runId);
      const outcome = await runTask(parsed, {
        sourceUrl,
        ledger,
        registry,
        settings,
        signal,
        onProgress: (p) => progress.tableProgress(accountId, p),
      });
      log.info({ accountId, runId, table, part: part ?? 0, ...outcome }, `task ${outcome.status}`);
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
};
