import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { TaskMessage } from '../run/task.js';
import { AwsError } from './clients.js';

/**
 * The table-task queue (SQS; endpoint from standard AWS SDK configuration, e.g. AWS_ENDPOINT_URL_SQS).
 * Messages go out in batches of 10, SQS's maximum; a batch entry that fails is an error, so a run
 * is never left with a task nobody will run without the caller knowing.
 */
export class TaskQueue {
  private readonly sqs = new SQSClient({});
  constructor(private readonly url: string) {}

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

  destroy(): void {
    this.sqs.destroy();
  }
}
