import { z } from 'zod';

/**
 * The task message, sent by the driver (src/run/drivers/fan-out.ts) over SQS (src/aws/queue.ts) and
 * read by the worker (src/run/drivers/task-batch.ts), the dead-letter handler and `--via-queue`.
 * Two shapes, each strict; the type is inferred from them:
 *
 *   - one task: `{ runId, accountId, table, part? }` — a table, or one key-range part of a split table
 *     (what every message was before packing; still what large tables, parts and the sweeper's resends use);
 *   - packed: `{ runId, accountId, tables: [...] }` — several small whole tables (part 0) of one run,
 *     exported one after another by the worker that receives it (DROPSHIP_PACK_BYTES).
 *
 * Either way the ledger keeps one task row per table and part; a message only says who carries it.
 */
/** The most tables one packed message may name (DROPSHIP_PACK_MAX_TABLES is at most this). */
export const PACK_MAX_TABLES = 500;

const singleTaskSchema = z
  .object({
    runId: z.string().min(1),
    accountId: z.string().min(1),
    table: z.string().min(1),
    /** Key-range part of a split table (0 for whole tables). */
    part: z.number().int().min(0).optional(),
  })
  .strict();

const packedTaskSchema = z
  .object({
    runId: z.string().min(1),
    accountId: z.string().min(1),
    /** Whole tables (part 0), exported in this order. */
    tables: z
      .array(z.string().min(1))
      .min(1)
      .max(PACK_MAX_TABLES)
      .refine((t) => new Set(t).size === t.length, 'a table is named twice'),
  })
  .strict();

export const taskMessageSchema = z.union([singleTaskSchema, packedTaskSchema]);

export type TaskMessage = z.infer<typeof taskMessageSchema>;

/** The tasks a message carries, in order: one for a single-task message, one per table for a packed one. */
export function messageTasks(m: TaskMessage): { table: string; part: number }[] {
  return 'tables' in m ? m.tables.map((table) => ({ table, part: 0 })) : [{ table: m.table, part: m.part ?? 0 }];
}

/** A message's tasks for logs: `events`, `big#3`, or `a,b,c`. */
export function messageLabel(m: TaskMessage): string {
  return messageTasks(m)
    .map((t) => (t.part ? `${t.table}#${t.part}` : t.table))
    .join(',');
}

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
