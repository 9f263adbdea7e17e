import { z } from 'zod';
import { deadlineOf, InvalidEvent, type LambdaContext, lambdaDeps } from '../src/run/lambda.js';
import { diagnose, runChecks } from '../src/schedule/checks.js';

/**
 * EventBridge, an hour before each slot: drift checks for the destinations due in the coming slot,
 * then the webhook outbox (src/schedule/checks.ts); run outcomes are delivered by the process that ended the
 * run and by the sweeper (src/schedule/tidy.ts), never reconciled here. Invoked by an operator with `{"accountId": "acme"}`: the
 * doctor for that destination, as the principal customers trust —
 * `serverless invoke -f check --stage prod --data '{"accountId":"acme"}'` returns every check with its fix.
 */
const scheduled = z
  .object({ time: z.string().datetime() })
  .passthrough()
  .refine((e) => !('accountId' in e), 'a scheduled event names no account');
const oneAccount = z.object({ accountId: z.string().min(1) }).strict();

export const handler = async (event: unknown, context?: LambdaContext) => {
  // At the edge, before anything runs: one line naming the two shapes, not zod's complaint about a missing `time`.
  const account = oneAccount.safeParse(event);
  const slot = account.success ? undefined : scheduled.safeParse(event);
  if (slot && !slot.success)
    throw new InvalidEvent(
      'check',
      ['a scheduled event (with "time")', '{"accountId": "<account>"} (the doctor)'],
      event,
    );
  const deps = await lambdaDeps();
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
  return runChecks(slot!.data!, deps, deadlineOf(context, deps.settings));
};
