import { z } from 'zod';
import { lambdaDeps } from '../src/run/lambda.js';
import { diagnose, runChecks } from '../src/schedule/checks.js';

/**
 * EventBridge, an hour before each slot: drift checks for the destinations due in the coming slot,
 * then the webhook outbox (src/schedule/checks.ts); run outcomes are delivered by the process that ended the
 * run and by the sweeper (src/schedule/tidy.ts), never reconciled here. Invoked by an operator with `{"accountId": "acme"}`: the
 * doctor for that destination, as the principal customers trust —
 * `serverless invoke -f check --stage prod --data '{"accountId":"acme"}'` returns every check with its fix.
 */
const scheduled = z.object({ time: z.string().datetime() }).passthrough();
const oneAccount = z.object({ accountId: z.string().min(1) }).strict();

export const handler = async (event: unknown) => {
  const deps = await lambdaDeps();
  const account = oneAccount.safeParse(event);
  if (account.success) {
    const dest = await deps.registry.get(account.data.accountId);
    const d = await diagnose(dest, { settings: deps.settings, pool: deps.ledger.pool, sourceUrl: deps.sourceUrl });
    deps.log.info(
      {
        accountId: d.accountId,
        ok: d.ok,
        failed: d.report.checks.filter((c) => c.status === 'fail').map((c) => c.name),
      },
      'doctor',
    );
    return d;
  }
  return runChecks(scheduled.parse(event), deps);
};
