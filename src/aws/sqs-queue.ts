import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AwsError } from '../destinations/s3/clients.js';

/** SendMessageBatch calls in flight at once: sending a slot's messages is mostly these round trips. */
const SENDS_IN_FLIGHT = 8;

/**
 * One SQS queue of JSON messages (endpoint from standard AWS SDK configuration, e.g.
 * AWS_ENDPOINT_URL_SQS): what the task queue (./queue.ts) and the open queue (./open-queue.ts) share.
 * Messages go out in batches of 10, SQS's maximum, up to SENDS_IN_FLIGHT batches at once; a batch
 * entry that fails is an error (the other senders stop after their call), so a caller never leaves
 * a message unsent without knowing. Receive, delete, delay and backlog are what Lambda's SQS event
 * source does, for the local players (`--via-queue`, the scale bench).
 */
export class SqsQueue<M> {
  private readonly sqs: SQSClient;
  /** `maxAttempts`: DROPSHIP_AWS_MAX_ATTEMPTS (the SDK's standard retries with backoff and jitter). */
  constructor(
    readonly url: string,
    /** What one message is, in the error that says some could not be sent ("task", "open message"). */
    private readonly noun: string,
    opts: { maxAttempts?: number } = {},
  ) {
    this.sqs = new SQSClient({ ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}), retryMode: 'standard' });
  }

  async send(messages: M[]): Promise<void> {
    const batches: M[][] = [];
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
          next = batches.length;
          throw new AwsError(
            `could not enqueue ${res.Failed.length} ${this.noun}(s): ${res.Failed.map((f) => `${f.Code}: ${f.Message}`).join('; ')}`,
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

  /**
   * When a message that is handed back (a batch item failure) becomes visible again. Without it the
   * queue's visibility timeout would apply to every retry.
   */
  async delay(receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.url,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: Math.max(0, Math.min(43_200, Math.round(seconds))),
      }),
    );
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
