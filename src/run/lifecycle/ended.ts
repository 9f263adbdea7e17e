import type { Settings } from '../../config/settings.js';
import type { DestinationPort } from '../../destinations/port.js';
import type { Logger } from '../../log/logger.js';
import { type DispatchResult, dispatchOutcomes } from '../../notify/dispatch.js';
import type { Ledger } from '../../store/ledger/ledger.js';

/**
 * After a run ended in the ledger (which wrote its outcome event in the same transaction): deliver
 * it at once, from the process that ended it — best effort, never throws. Whatever is not delivered
 * here (the process died, S3 was down) goes out with the periodic function (src/schedule/tidy.ts).
 * `hint`: the error this process holds, which names the customer's failure more precisely than the
 * ledger's text.
 */
export async function dispatchRunOutcome(
  deps: { ledger: Ledger; settings: Settings; log?: Logger | undefined; port?: DestinationPort | undefined },
  runId: string,
  hint?: unknown,
): Promise<DispatchResult> {
  return dispatchOutcomes(
    {
      pool: deps.ledger.pool,
      settings: deps.settings,
      outbox: deps.ledger.outcomes,
      ...(deps.log ? { log: deps.log } : {}),
      ...(deps.port ? { port: deps.port } : {}),
    },
    { runId, ...(hint !== undefined ? { hint } : {}) },
  );
}
