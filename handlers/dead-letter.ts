import { z } from 'zod';
import { taskMessageSchema } from '../src/contracts/task.js';
import { errorFields } from '../src/log/logger.js';
import { lambdaDeps } from '../src/run/lambda.js';

/**
 * Consumer of the task dead-letter queue: SQS moved a task message there after maxReceiveCount
 * receives. Unless that task already succeeded, its run fails with a clear error (no receipt), so a
 * dead-lettered task never leaves its run `running`. The message is the worker's (one schema:
 * src/run/task-batch.ts); the event adds the receive count.
 */
const eventSchema = z
  .object({
    Records: z.array(
      z
        .object({
          messageId: z.string(),
          body: z.string(),
          attributes: z.object({ ApproximateReceiveCount: z.string().optional() }).passthrough().optional(),
        })
        .passthrough(),
    ),
  })
  .passthrough();

export const handler = async (event: unknown) => {
  const { ledger, log } = await lambdaDeps();
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of eventSchema.parse(event).Records) {
    let msg: z.infer<typeof taskMessageSchema>;
    try {
      msg = taskMessageSchema.parse(JSON.parse(record.body));
    } catch (e) {
      log.error({ messageId: record.messageId, ...errorFields(e) }, 'malformed dead-lettered message dropped');
      continue;
    }
    const receives = record.attributes?.ApproximateReceiveCount;
    const detail = `its task message was dead-lettered after ${receives ?? 'too many'} receives (workers kept failing, timing out or being throttled; see the worker's logs)`;
    try {
      const verdict = await ledger.deadLetter({ runId: msg.runId, table: msg.table, part: msg.part ?? 0, detail });
      const fields = { accountId: msg.accountId, runId: msg.runId, table: msg.table, part: msg.part ?? 0 };
      if (verdict === 'failed') log.error(fields, 'dead-lettered task failed its run');
      else log.info(fields, 'dead-lettered task had already finished');
    } catch (e) {
      log.error(
        { runId: msg.runId, table: msg.table, ...errorFields(e) },
        'could not record a dead-lettered task; retried',
      );
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
};
