import { lambdaDeps } from '../src/run/lambda.js';
import { processOpenEvent } from '../src/schedule/open.js';

/**
 * SQS consumer of the open queue: one message is a few accounts of one slot (src/contracts/open.ts);
 * each gets its run and its table tasks go to the task queue (src/schedule/open.ts). Reports a
 * message as a batch item failure only when the ledger or the source did not answer; a redelivered
 * message opens only the accounts that have no run for the slot yet.
 */
export const handler = async (event: unknown) => processOpenEvent(event, await lambdaDeps());
