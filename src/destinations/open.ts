import type { Destination } from '../accounts/destination.js';
import { ConfigError, type Settings } from '../config/settings.js';
import { LocalDestination } from './local/adapter.js';
import type { DestinationPort } from './port.js';
import { S3Destination } from './s3/adapter.js';
import { destinationClientCache } from './s3/clients.js';

/**
 * Opens the port of a destination's target for one run (`runId` names the S3 role session): the one
 * place that knows which adapter serves which kind. A `local` target is refused unless
 * DROPSHIP_ALLOW_LOCAL_TARGET is set (development and tests only).
 */
export function openTarget(
  dest: Destination,
  runId: string,
  settings: Settings,
  /**
   * `reuseClients`: a worker's port — take the run's credentials and clients from the process's cache and
   * leave them there for the run's next tasks (src/destinations/s3/clients.ts); others make their own.
   */
  opts: { reuseClients?: boolean } = {},
): DestinationPort {
  const target = dest.target;
  // Object keys carry the destination's prefix (src/pipeline/sink/layout.ts): a target under another prefix would
  // put the files where the receipt does not say.
  if (target.prefix !== dest.prefix)
    throw new ConfigError(
      `account ${dest.accountId}: the target's prefix "${target.prefix}" is not the destination's "${dest.prefix}"`,
    );
  switch (target.kind) {
    case 's3':
      return new S3Destination(dest, target, runId, settings, undefined, opts.reuseClients === true);
    case 'local':
      if (!settings.DROPSHIP_ALLOW_LOCAL_TARGET)
        throw new ConfigError(
          `account ${dest.accountId}: a local target is allowed only in development mode (DROPSHIP_ALLOW_LOCAL_TARGET)`,
        );
      return new LocalDestination(target);
  }
}

/** Forgets the clients and credentials a warm worker keeps for its runs' next tasks (a new instance, tests). */
export function forgetDestinationClients(): void {
  destinationClientCache.clear();
}
