import { z } from 'zod';
import { startOnDemandRun } from '../src/operations/runs.js';
import { lambdaDeps } from '../src/run/lambda.js';

/**
 * On-demand export of one account, on the same path as the schedule (a run, its tasks on SQS):
 *   serverless invoke -f exportAccount --data '{"accountId":"acme"}'
 * Returns the run id at once; watch it with `dropship runs show <runId>`.
 */
const eventSchema = z.object({ accountId: z.string().min(1) }).strict();

export const handler = async (event: unknown) => {
  const { settings, registry, ledger, queue, log, sourceUrl, faults } = await lambdaDeps();
  const { accountId } = eventSchema.parse(event);
  const { run, tasks } = await startOnDemandRun(
    { sourceUrl, registry, ledger, settings, queue, log, faults },
    accountId,
  );
  log.info({ accountId, runId: run.runId, tasks, status: run.status }, 'run opened');
  return {
    accountId,
    runId: run.runId,
    status: run.status,
    tasks,
    ...(run.error ? { error: run.error } : {}),
  };
};
