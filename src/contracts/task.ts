import { z } from 'zod';

/**
 * The table-task message: one per table (or key-range part of a split table) of a fan-out run,
 * sent by the driver (src/run/drivers/fan-out.ts) over SQS (src/aws/queue.ts) and read by the worker
 * (src/run/drivers/task-batch.ts) and the dead-letter handler. One schema; the type is inferred from it.
 */
export const taskMessageSchema = z
  .object({
    runId: z.string().min(1),
    accountId: z.string().min(1),
    table: z.string().min(1),
    /** Key-range part of a split table (0 for whole tables). */
    part: z.number().int().min(0).optional(),
  })
  .strict();

export type TaskMessage = z.infer<typeof taskMessageSchema>;

/** Where task messages go: the SQS queue in production, an array in tests. */
export interface MessageSender {
  send(messages: TaskMessage[]): Promise<void>;
}

/** An SQS event of task messages (the worker's queue and its dead-letter queue). */
const taskEventSchema = z
  .object({
    Records: z.array(
      z
        .object({
          messageId: z.string(),
          body: z.string(),
          receiptHandle: z.string().optional(),
          attributes: z.object({ ApproximateReceiveCount: z.string().optional() }).passthrough().optional(),
        })
        .passthrough(),
    ),
  })
  .passthrough();

export type TaskRecord = z.infer<typeof taskEventSchema>['Records'][number];

/**
 * The records of an SQS event with their task messages. A record whose body is not a task message
 * is handed to `malformed` (to be logged and dropped: no retry can make it valid) and left out.
 */
export function taskRecords(
  event: unknown,
  malformed: (record: TaskRecord, error: unknown) => void,
): { record: TaskRecord; message: TaskMessage }[] {
  const out: { record: TaskRecord; message: TaskMessage }[] = [];
  for (const record of taskEventSchema.parse(event).Records) {
    try {
      out.push({ record, message: taskMessageSchema.parse(JSON.parse(record.body)) });
    } catch (e) {
      malformed(record, e);
    }
  }
  return out;
}
