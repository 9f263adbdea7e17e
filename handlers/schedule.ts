import { z } from 'zod';
import { lambdaRun } from '../src/run/lambda.js';

/**
 * EventBridge schedule at 04:00 and 15:00 UTC: exports every enabled account due in the slot.
 * (Runs the accounts in this function; the SQS fan-out is the deployment issue's work.)
 */
const eventSchema = z.object({ time: z.string().datetime() }).passthrough();

export const handler = lambdaRun(async ({ registry, run }, event: unknown) => {
  const { time } = eventSchema.parse(event);
  const hour = new Date(time).getUTCHours();
  const slot = hour < 10 ? '04:00' : '15:00';
  return run(await registry.due(slot));
});
