import type { Destination } from '../accounts/destination.js';
import type { MessageSender } from '../contracts/task.js';
import { startFanOutRun } from '../run/drivers/fan-out.js';
import { dispatchRunOutcome } from '../run/lifecycle/ended.js';
import type { Faults } from '../run/lifecycle/faults.js';
import type { Run } from '../store/ledger/rows.js';
import type { OperationDeps } from './deps.js';

/**
 * Starts an on-demand run of one account on the schedule's own path (a run, its tasks on SQS) and
 * returns at once with the run: what the exportAccount Lambda (handlers/export-account.ts) and the
 * API's POST /destinations/{accountId}/runs do. Workers export the tasks; the run's status tells
 * how it ends.
 */
export async function startOnDemandRun(
  deps: Pick<OperationDeps, 'settings' | 'registry' | 'ledger' | 'sourceUrl' | 'log'> & {
    queue: MessageSender;
    faults?: Faults;
  },
  accountId: string,
): Promise<{ destination: Destination; run: Run; tasks: number }> {
  const destination = await deps.registry.get(accountId);
  const { run, tasks } = await startFanOutRun(destination, {
    sourceUrl: deps.sourceUrl,
    ledger: deps.ledger,
    settings: deps.settings,
    queue: deps.queue,
    ...(deps.log ? { log: deps.log } : {}),
    ...(deps.faults ? { faults: deps.faults } : {}),
    trigger: 'manual',
  });
  return { destination, run, tasks };
}

/**
 * Cancels a running or finishing run (`dropship runs cancel`, the API's POST /runs/{runId}/cancel):
 * its owner stops and aborts its uploads, no receipt is written, and the customer is told now.
 * Returns the run's status when it could not be cancelled (undefined: no such run).
 */
export async function cancelRun(
  deps: Pick<OperationDeps, 'settings' | 'ledger'>,
  runId: string,
  by: string,
): Promise<{ ok: true } | { ok: false; status: Run['status'] | undefined }> {
  const res = await deps.ledger.cancelRun({ runId, by });
  // The cancel wrote the run's outcome event: the customer is told now (src/notify/dispatch.ts).
  if (res.ok) await dispatchRunOutcome({ ledger: deps.ledger, settings: deps.settings }, runId);
  return res;
}
