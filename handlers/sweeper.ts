import { z } from 'zod';
import { InvalidEvent, lambdaDeps } from '../src/run/lambda.js';
import { dispatchRunOutcome } from '../src/run/lifecycle/ended.js';
import { tidy } from '../src/schedule/tidy.js';

/**
 * The one periodic function, every 5 minutes (EventBridge rate): all tidying (src/schedule/tidy.ts) — ends
 * what died (the same code that runs at the start of every run, src/run/liveness/sweep.ts, over every account),
 * catches up scheduled slots whose event never arrived (src/schedule/slots.ts), delivers run outcomes not
 * delivered yet and pending webhooks (src/notify/dispatch.ts), prunes old ones. Invoked with
 * {"cancel": "<runId>"} it cancels a run instead, as `dropship runs cancel <runId>` does:
 *   serverless invoke -f sweeper --data '{"cancel":"20261123T040000Z-3f9a1c"}'
 */
const cancelSchema = z.object({ cancel: z.string().min(1), by: z.string().min(1).optional() }).strict();
/** EventBridge's scheduled event, or `{}` from an operator (sweep now). */
const sweepSchema = z.union([z.object({ source: z.literal('aws.events') }).passthrough(), z.object({}).strict()]);

export const handler = async (event: unknown) => {
  // At the edge, before anything runs: a mistyped cancel is refused, never a sweep answered as if it were one.
  const cancel = cancelSchema.safeParse(event);
  if (!cancel.success && !sweepSchema.safeParse(event).success)
    throw new InvalidEvent(
      'sweeper',
      ['a scheduled event', '{} (sweep now)', '{"cancel": "<runId>"} (with "by": "<who>" optionally)'],
      event,
    );
  const deps = await lambdaDeps();
  const { ledger, log } = deps;
  if (cancel.success) {
    const res = await ledger.cancelRun({ runId: cancel.data.cancel, by: cancel.data.by ?? 'operator (Lambda invoke)' });
    log.warn({ runId: cancel.data.cancel, ...res }, res.ok ? 'run cancelled' : 'run not cancelled');
    // The cancel wrote the run's outcome event: the customer is told now.
    if (res.ok) await dispatchRunOutcome(deps, cancel.data.cancel);
    return {
      runId: cancel.data.cancel,
      ...(res.ok ? { status: 'cancelled' } : { status: res.status ?? 'unknown', cancelled: false }),
    };
  }
  const { runs, slots, outcomes } = await tidy(deps);
  return { runs, slots, outcomes };
};
