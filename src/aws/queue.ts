import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { TaskMessage } from '../contracts/task.js';
import { AwsError } from '../destinations/s3/clients.js';

/**
 * The table-task queue (SQS; endpoint from standard AWS SDK configuration, e.g. AWS_ENDPOINT_URL_SQS).
 * Messages go out in batches of 10, SQS's maximum; a batch entry that fails is an error, so a run
 * is never left with a task nobody will run without the caller knowing (and if the caller dies
 * mid-send, the sweeper sends the run's tasks again).
 */
export class TaskQueue {
  private readonly sqs: SQSClient;
  /** `maxAttempts`: DROPSHIP_AWS_MAX_ATTEMPTS (the SDK's standard retries with backoff and jitter). */
  constructor(
    private readonly url: string,
    opts: { maxAttempts?: number } = {},
  ) {
    this.sqs = new SQSClient({ ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}), retryMode: 'standard' });
  }

  async send(messages: TaskMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      const res = await this.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.url,
          Entries: batch.map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) })),
        }),
      );
      if (res.Failed && res.Failed.length > 0) {
        throw new AwsError(
          `could not enqueue ${res.Failed.length} task(s): ${res.Failed.map((f) => `${f.Code}: ${f.Message}`).join('; ')}`,
        );
      }
    }
  }

  /**
   * When a message that is handed back (a batch item failure) becomes visible again. Without it the
   * queue's visibility timeout (6 × the worker timeout) would apply to every retry.
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

  /**
   * Receives up to `max` messages (long polling up to `waitSeconds`), as Lambda's event source
   * does for the worker (`dropship export --via-queue`).
   */
  async receive(
    max: number,
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<{ messageId: string; receiptHandle: string; body: string }[]> {
    const res = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        WaitTimeSeconds: waitSeconds,
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
