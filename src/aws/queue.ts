import type { TaskMessage } from '../contracts/task.js';
import { SqsQueue } from './sqs-queue.js';

/**
 * The table-task queue (SQS; ./sqs-queue.ts): a fan-out run's task messages (src/contracts/task.ts).
 * A batch entry that fails is an error, so a run is never left with a task nobody will run without
 * the caller knowing (and if the caller dies mid-send, the sweeper sends the run's tasks again).
 * `delay` sets when a handed-back message comes back: without it the queue's visibility timeout
 * (6 × the worker timeout) would apply to every retry.
 */
export class TaskQueue extends SqsQueue<TaskMessage> {
  constructor(url: string, opts: { maxAttempts?: number } = {}) {
    super(url, 'task', opts);
  }
}
