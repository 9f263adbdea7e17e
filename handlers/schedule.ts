import { z } from 'zod';
import { errorFields } from '../src/log/logger.js';
import { lambdaDeps } from '../src/run/lambda.js';
import { RunInProgress } from '../src/run/ledger.js';
import { openAccountRun, slotsByPlan } from '../src/run/task.js';

/**
 * EventBridge schedule (cron(0 4 * * ? *) and cron(0 15 * * ? *)): opens a run for every enabled
 * account due in this slot and fans its table tasks out to SQS. One account's failure (its role
 * cannot be assumed, a run already in progress) never stops another's.
 */
const eventSchema = z.object({ time: z.string().datetime() }).passthrough();

export const handler = async (event: unknown) => {
  const { settings, registry, ledger, queue, log, sourceUrl } = await lambdaDeps();
  const { time } = eventSchema.parse(event);
  const slot = new Date(time).toISOString().slice(11, 16);
  const due = await registry.due(slot, slotsByPlan(settings));
  const runs: { accountId: string; runId?: string; status: string; tasks: number; error?: string }[] = [];
  for (const dest of due) {
    try {
      const { run, messages } = await openAccountRun(dest, { sourceUrl, ledger, settings, trigger: 'schedule', slot });
      await queue.send(messages);
      runs.push({
        accountId: dest.accountId,
        runId: run.runId,
        status: run.status,
        tasks: messages.length,
        ...(run.error ? { error: run.error } : {}),
      });
      log.info(
        { accountId: dest.accountId, runId: run.runId, slot, tasks: messages.length, status: run.status },
        'run opened',
      );
    } catch (e) {
      const status = e instanceof RunInProgress ? 'skipped' : 'error';
      runs.push({ accountId: dest.accountId, status, tasks: 0, error: (e as Error).message });
      log.warn(
        { accountId: dest.accountId, slot, ...errorFields(e) },
        status === 'skipped' ? 'run already in progress' : 'could not open run',
      );
    }
  }
  return { slot, accounts: due.length, runs };
};
