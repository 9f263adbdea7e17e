import { z } from 'zod';

/**
 * The "open" message: a small batch of accounts due in one scheduled slot, whose runs are still to
 * be opened. The schedule function (and the sweeper's catch-up) sends them over SQS
 * (src/aws/open-queue.ts); the open-runs function (handlers/open-runs.ts → src/schedule/open.ts)
 * opens each account's run. Opening is idempotent through the ledger's unique (account, slot, slot
 * date) key, so a message delivered twice opens nothing twice. One schema; the type is inferred.
 */

/** Accounts per message the schedule sends by default: ≈ 2 s of opening at ≈ 0.2 s per account. */
export const OPEN_BATCH_ACCOUNTS = 10;
/** The most accounts one message may carry (a message is opened within one function invocation). */
export const OPEN_BATCH_MAX = 25;

export const openMessageSchema = z
  .object({
    kind: z.literal('open'),
    /** The slot (UTC HH:MM) and its day: the runs' slot key. */
    slot: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (UTC)'),
    slotDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD'),
    /** Who sent it: the schedule event, or the sweeper catching a slot up (logs only; the run's trigger is `schedule`). */
    by: z.enum(['schedule', 'catch-up']),
    accountIds: z
      .array(z.string().min(1))
      .min(1)
      .max(OPEN_BATCH_MAX)
      .refine((ids) => new Set(ids).size === ids.length, 'account ids must be distinct'),
  })
  .strict();

export type OpenMessage = z.infer<typeof openMessageSchema>;

/** Where open messages go: the SQS open queue in production, an array in tests. */
export interface OpenSender {
  send(messages: OpenMessage[]): Promise<void>;
  /**
   * Messages on the queue not yet handled (visible, in flight or delayed), when the sender can
   * tell: the catch-up leaves a slot alone while its opening is still under way.
   */
  backlog?(): Promise<number>;
}

/** An SQS event of open messages. */
const openEventSchema = z
  .object({
    Records: z.array(z.object({ messageId: z.string(), body: z.string() }).passthrough()),
  })
  .passthrough();

export type OpenRecord = z.infer<typeof openEventSchema>['Records'][number];

/**
 * The records of an SQS event with their open messages. A record whose body is not an open message
 * is handed to `malformed` (to be logged and dropped: no retry can make it valid) and left out.
 */
export function openRecords(
  event: unknown,
  malformed: (record: OpenRecord, error: unknown) => void,
): { record: OpenRecord; message: OpenMessage }[] {
  const out: { record: OpenRecord; message: OpenMessage }[] = [];
  for (const record of openEventSchema.parse(event).Records) {
    try {
      out.push({ record, message: openMessageSchema.parse(JSON.parse(record.body)) });
    } catch (e) {
      malformed(record, e);
    }
  }
  return out;
}

/** `accountIds` cut into messages of at most `perMessage` accounts. */
export function openMessages(
  slot: string,
  slotDate: string,
  by: OpenMessage['by'],
  accountIds: string[],
  perMessage: number = OPEN_BATCH_ACCOUNTS,
): OpenMessage[] {
  const k = Math.max(1, Math.min(OPEN_BATCH_MAX, Math.floor(perMessage)));
  const out: OpenMessage[] = [];
  for (let i = 0; i < accountIds.length; i += k)
    out.push(openMessageSchema.parse({ kind: 'open', slot, slotDate, by, accountIds: accountIds.slice(i, i + k) }));
  return out;
}
