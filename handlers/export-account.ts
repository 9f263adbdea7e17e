import { z } from 'zod';
import { lambdaRun } from '../src/run/lambda.js';

/**
 * On-demand export of one account:
 *   serverless invoke -f exportAccount --data '{"accountId":"acme"}'
 */
const eventSchema = z.object({ accountId: z.string().min(1) }).strict();

export const handler = lambdaRun(async ({ registry, run }, event: unknown) => {
  const { accountId } = eventSchema.parse(event);
  return run([await registry.get(accountId)]);
});
