import { z } from 'zod';
import { runChecks } from '../src/run/check.js';
import { lambdaDeps } from '../src/run/lambda.js';

/**
 * EventBridge, about an hour before each slot (cron(0 3 * * ? *) and cron(0 14 * * ? *)): drift
 * checks for the destinations due in the coming slot, then the webhook outbox; every 15 minutes
 * (`{"sweep": true}`) only the outbox and the recovery of unrecorded outcomes (src/run/check.ts).
 */
const eventSchema = z.object({ time: z.string().datetime(), sweep: z.boolean().optional() }).passthrough();

export const handler = async (event: unknown) => runChecks(eventSchema.parse(event), await lambdaDeps());
