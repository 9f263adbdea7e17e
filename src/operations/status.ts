import type { Settings } from '../config/settings.js';
import { buildStatus, type StatusDocument } from '../notify/status.js';
import { StatusStore } from '../notify/store.js';
import type { OperationDeps } from './deps.js';

/**
 * A destination's delivery status: the same document, built by the same function, as the
 * `status.json` dropship writes into the customer's prefix after every run (src/notify/status.ts;
 * contract: schemas/status.schema.json) — as of `now`.
 */
export async function destinationStatus(
  deps: Pick<OperationDeps, 'pool' | 'registry'> & { settings: Settings },
  accountId: string,
  now = new Date(),
): Promise<StatusDocument> {
  const dest = await deps.registry.get(accountId);
  const row = await new StatusStore(deps.pool).get(accountId);
  return buildStatus(dest, row, deps.settings, now);
}
