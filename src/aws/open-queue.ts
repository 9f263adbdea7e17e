import type { OpenMessage, OpenSender } from '../contracts/open.js';
import { SqsQueue } from './sqs-queue.js';

/**
 * The open queue (SQS; ./sqs-queue.ts):
 * the schedule function and the sweeper's catch-up send "open" messages (src/contracts/open.ts),
 * the open-runs function consumes them. Sent in batches of 10, SQS's maximum; a batch entry that
 * fails is an error (the caller logs it; the sweeper's catch-up sends the slot's missing accounts
 * again).
 */
export class OpenQueue extends SqsQueue<OpenMessage> implements OpenSender {
  constructor(url: string, opts: { maxAttempts?: number } = {}) {
    super(url, 'open message', opts);
  }
}
