import { z } from 'zod';
import { lambdaDeps } from '../src/run/lambda.js';
import { runSlot } from '../src/schedule/slots.js';

/**
 * EventBridge schedule (cron(0 4 * * ? *) and cron(0 15 * * ? *)): opens a run for every enabled
 * account due in this slot and fans its table tasks out to SQS. One account's failure (its role
 * cannot be assumed, a run already in progress) never stops another's. The same event delivered
 * twice (EventBridge is at-least-once; Lambda retries) starts no second run: one run per account,
 * slot and day.
 */
const eventSchema = z.object({ time: z.string().datetime() }).passthrough();

export const handler = async (event: unknown) => {
  const deps = await lambdaDeps();
  const { time } = eventSchema.parse(event);
  const at = new Date(time).toISOString();
  const slot = at.slice(11, 16);
  const runs = await runSlot(deps, slot, at.slice(0, 10));
  return { slot, accounts: runs.length, runs };
};
