import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { OpenMessage, OpenSender } from '../contracts/open.js';
import { AwsError } from '../destinations/s3/clients.js';

/** SendMessageBatch calls in flight at once: the schedule function's time is mostly these round trips. */
const SENDS_IN_FLIGHT = 8;

/**
 * The open queue (SQS; endpoint from standard AWS SDK configuration, e.g. AWS_ENDPOINT_URL_SQS):
 * the schedule function and the sweeper's catch-up send "open" messages (src/contracts/open.ts),
 * the open-runs function consumes them. Sent in batches of 10, SQS's maximum; a batch entry that
 * fails is an error (the caller logs it; the sweeper's catch-up sends the slot's missing accounts
 * again).
 */
export class OpenQueue implements OpenSender {
  private readonly sqs: SQSClient;
  /** `maxAttempts`: DROPSHIP_AWS_MAX_ATTEMPTS (the SDK's standard retries with backoff and jitter). */
  constructor(
    readonly url: string,
    opts: { maxAttempts?: number } = {},
  ) {
    this.sqs = new SQSClient({ ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}), retryMode: 'standard' });
  }

  /** SendMessageBatch calls of 10 messages each, up to SENDS_IN_FLIGHT at once (a slot of 10,000 accounts is 100 calls). */
  async send(messages: OpenMessage[]): Promise<void> {
    const batches: OpenMessage[][] = [];
    for (let i = 0; i < messages.length; i += 10) batches.push(messages.slice(i, i + 10));
    let next = 0;
    const sender = async (): Promise<void> => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const res = await this.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.url,
            Entries: batch.map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) })),
          }),
        );
        if (res.Failed && res.Failed.length > 0) {
          next = batches.length; // the other senders stop after their call
          throw new AwsError(
            `could not enqueue ${res.Failed.length} open message(s): ${res.Failed.map((f) => `${f.Code}: ${f.Message}`).join('; ')}`,
          );
        }
      }
    };
    const results = await Promise.allSettled(
      Array.from({ length: Math.min(SENDS_IN_FLIGHT, batches.length) }, () => sender()),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Messages not deleted yet: visible, in flight and delayed (SQS's approximate counts). */
  async backlog(): Promise<number> {
    const res = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = res.Attributes ?? {};
    return (
      Number(a.ApproximateNumberOfMessages ?? 0) +
      Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
      Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
    );
  }

  /** Receives up to `max` messages (long polling up to `waitSeconds`), as Lambda's event source does. */
  async receive(
    max: number,
    waitSeconds: number,
    signal?: AbortSignal,
    visibilitySeconds?: number,
  ): Promise<{ messageId: string; receiptHandle: string; body: string }[]> {
    const res = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        WaitTimeSeconds: waitSeconds,
        ...(visibilitySeconds !== undefined ? { VisibilityTimeout: visibilitySeconds } : {}),
      }),
      signal ? { abortSignal: signal } : {},
    );
    return (res.Messages ?? []).flatMap((m) =>
      m.MessageId && m.ReceiptHandle && m.Body !== undefined
        ? [{ messageId: m.MessageId, receiptHandle: m.ReceiptHandle, body: m.Body }]
        : [],
    );
  }

  async delete(receiptHandle: string): Promise<void> {
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receiptHandle }));
  }

  destroy(): void {
    this.sqs.destroy();
  }
}
