import { z } from 'zod';
import { lambdaDeps } from '../src/run/lambda.js';
import { logSlotForecast } from '../src/schedule/capacity-source.js';
import { enqueueSlot } from '../src/schedule/slots.js';

/**
 * EventBridge schedule (cron(0 4 * * ? *) and cron(0 15 * * ? *)): reads the accounts due in this
 * slot and hands them to the open queue, a few accounts per message (src/schedule/slots.ts
 * `enqueueSlot`); the openRuns function (handlers/open-runs.ts) opens their runs. Its own time grows
 * with the number of accounts only by the enqueueing (≈ one SendMessageBatch per 100 accounts). The
 * same event delivered twice (EventBridge is at-least-once; Lambda retries) starts no second run:
 * accounts that already have the slot's run are not sent again, and the opener opens one run per
 * account, slot and day. After enqueueing, it logs the slot's forecast (src/schedule/capacity-source.ts:
 * will the slot finish before the next one at the configured worker concurrency?) — after, because
 * reading every source's size estimates takes seconds at 10,000 destinations and must not delay the opening.
 */
const eventSchema = z.object({ time: z.string().datetime() }).passthrough();

export const handler = async (event: unknown) => {
  const deps = await lambdaDeps();
  const { time } = eventSchema.parse(event);
  const at = new Date(time).toISOString();
  const slot = at.slice(11, 16);
  const enqueued = await enqueueSlot(deps, slot, at.slice(0, 10));
  await logSlotForecast(deps, slot);
  return enqueued;
};
