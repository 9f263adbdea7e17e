import { z } from 'zod';

/**
 * The table-task message: one per table (or key-range part of a split table) of a fan-out run,
 * sent by the driver (src/run/fan-out.ts) over SQS (src/aws/queue.ts) and read by the worker
 * (src/run/task-batch.ts) and the dead-letter handler. One schema; the type is inferred from it.
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
