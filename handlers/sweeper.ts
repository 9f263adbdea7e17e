import { z } from 'zod';
import { allSlots, slotsByPlan } from '../src/contracts/slots.js';
import { errorFields } from '../src/log/logger.js';
import { lambdaDeps } from '../src/run/lambda.js';
import { currentSlot, slotMetricsLine, slotStatus } from '../src/run/slot-status.js';
import { catchUpSlots } from '../src/run/slots.js';
import { sweepRuns } from '../src/run/sweep.js';

/**
 * Every 5 minutes (EventBridge rate): ends what died — the same code that runs at the start of
 * every run (src/run/sweep.ts) over every account — and catches up scheduled slots whose event never
 * arrived (src/run/slots.ts). Invoked with {"cancel": "<runId>"} it cancels a run instead, as
 * `dropship runs cancel <runId>` does:
 *   serverless invoke -f sweeper --data '{"cancel":"20261123T040000Z-3f9a1c"}'
 */
const cancelSchema = z.object({ cancel: z.string().min(1), by: z.string().min(1).optional() }).strict();

export const handler = async (event: unknown) => {
  const deps = await lambdaDeps();
  const { ledger, registry, settings, log, queue } = deps;
  const cancel = cancelSchema.safeParse(event);
  if (cancel.success) {
    const res = await ledger.cancelRun({ runId: cancel.data.cancel, by: cancel.data.by ?? 'operator (Lambda invoke)' });
    log.warn({ runId: cancel.data.cancel, ...res }, res.ok ? 'run cancelled' : 'run not cancelled');
    return {
      runId: cancel.data.cancel,
      ...(res.ok ? { status: 'cancelled' } : { status: res.status ?? 'unknown', cancelled: false }),
    };
  }
  const swept = await sweepRuns({
    ledger,
    settings,
    log,
    destination: (accountId) => registry.get(accountId),
    resend: (m) => queue.send(m),
    by: 'sweeper',
  });
  let slots: Awaited<ReturnType<typeof catchUpSlots>> = [];
  try {
    slots = await catchUpSlots(deps);
  } catch (e) {
    log.error({ ...errorFields(e) }, 'slot catch-up failed');
  }
  // The operator's view of the current slot as CloudWatch gauges (the alarms in serverless.yml).
  try {
    const now = new Date();
    const status = await slotStatus(deps, { ...currentSlot(allSlots(slotsByPlan(settings)), now), now });
    process.stdout.write(`${slotMetricsLine(status, settings.DROPSHIP_METRICS_NAMESPACE, now)}\n`);
  } catch (e) {
    log.error({ ...errorFields(e) }, 'slot status failed');
  }
  const acted = swept.filter((s) => s.action !== 'alive');
  if (acted.length > 0 || slots.length > 0) log.info({ runs: acted, slots }, 'sweep done');
  return { runs: acted, slots };
};
