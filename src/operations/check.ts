import type { Destination } from '../accounts/destination.js';
import { checkDestinations, type DriftResult } from '../notify/drift.js';
import { type Diagnosis, diagnose } from '../schedule/checks.js';
import type { OperationDeps } from './deps.js';

/**
 * A destination's check, as the API's POST /destinations/{accountId}/check runs it: the doctor
 * (`dropship doctor`: every check with its fix, the selection against the source, recorded as the
 * day's external-ID probe) and the drift check (`dropship destinations check --account`: recorded
 * as the last check; a failure is told to the customer in status.json's words, by webhook).
 */
export async function checkDestination(
  deps: Pick<OperationDeps, 'settings' | 'pool' | 'sourceUrl' | 'log'>,
  dest: Destination,
): Promise<{ doctor: Diagnosis; drift: DriftResult }> {
  const doctor = await diagnose(dest, { settings: deps.settings, pool: deps.pool, sourceUrl: deps.sourceUrl });
  const [drift] = await checkDestinations(
    { pool: deps.pool, settings: deps.settings, ...(deps.log ? { log: deps.log } : {}) },
    [dest],
  );
  return { doctor, drift: drift! };
}
