import { z } from 'zod';
import { allSlots, slotsByPlan } from '../src/contracts/slots.js';
import { checkDestinations, slotsAhead } from '../src/notify/drift.js';
import { deliverPending, recordMissedOutcomes } from '../src/notify/outcome.js';
import { StatusStore } from '../src/notify/store.js';
import { lambdaDeps } from '../src/run/lambda.js';

/**
 * EventBridge, about an hour before each slot (cron(0 3 * * ? *) and cron(0 14 * * ? *)): drift
 * checks for every destination due in the coming slot — a failure notifies the customer
 * (`destination.check_failed`) before the slot fails — then a sweep of the webhook outbox, which
 * sends events that earlier attempts could not deliver. Every 15 minutes (`{"sweep": true}`) only the
 * sweep runs, with the recovery of outcomes a crashed process never recorded.
 */
const eventSchema = z.object({ time: z.string().datetime(), sweep: z.boolean().optional() }).passthrough();

export const handler = async (event: unknown) => {
  const { settings, registry, ledger, log } = await lambdaDeps();
  const { time, sweep } = eventSchema.parse(event);
  // Every 15 minutes: outcomes a crashed process never recorded, then undelivered webhooks.
  const recovered = await recordMissedOutcomes({ pool: ledger.pool, settings, log });
  await new StatusStore(ledger.pool).prune();
  if (sweep) return { recovered, outbox: await deliverPending({ pool: ledger.pool, settings }, {}, log) };
  const plans = slotsByPlan(settings);
  const slots = slotsAhead(new Date(time), allSlots(plans));
  const seen = new Set<string>();
  const dests = [];
  for (const slot of slots)
    for (const d of await registry.due(slot, plans))
      if (!seen.has(d.accountId)) {
        seen.add(d.accountId);
        dests.push(d);
      }
  const results = await checkDestinations({ pool: ledger.pool, settings, log }, dests);
  for (const r of results)
    log.info(
      {
        accountId: r.accountId,
        ok: r.ok,
        probed: r.probed,
        failed: r.checks.filter((c) => c.status === 'fail').map((c) => c.name),
      },
      'drift check',
    );
  const outbox = await deliverPending({ pool: ledger.pool, settings }, {}, log).catch((e: Error) => ({
    delivered: 0,
    failed: 0,
    error: e.message,
  }));
  return {
    recovered,
    slots,
    checked: results.length,
    failed: results.filter((r) => !r.ok).map((r) => ({ accountId: r.accountId, failures: r.failures })),
    outbox,
  };
};
