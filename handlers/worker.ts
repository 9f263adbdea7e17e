import { processTaskBatch } from '../src/run/drivers/task-batch.js';
import { deadlineSignal, type LambdaContext, lambdaDeps } from '../src/run/lambda.js';

/**
 * SQS consumer: one message is one table task (account × table, or one key range of a split table).
 * Reports partial batch failures, so only the tasks that should run again are redelivered, and
 * sets when they come back (src/run/drivers/task-batch.ts). The worker that runs a run's first task holds
 * the run's snapshot for the others and helps with its pending tasks (src/run/lifecycle/shared-snapshot.ts).
 */
export const handler = async (event: unknown, context?: LambdaContext) => {
  const { settings, registry, ledger, log, sourceUrl, queue, faults } = await lambdaDeps();
  const signal = deadlineSignal(context, settings);
  return processTaskBatch(event, { settings, registry, ledger, log, sourceUrl, queue, signal, faults });
};
