import type { Destination, DestinationInput } from '../accounts/destination.js';
import { DestinationReplaced } from '../accounts/registry.js';
import { StatusStore, webhookKey } from '../notify/store.js';
import { encryptSecret, generateSecret, validateWebhookUrl } from '../notify/webhook.js';
import type { OperationDeps } from './deps.js';

/**
 * Registering and changing destinations, as `dropship destinations add|update` and the API's
 * POST/PATCH /destinations do it (the registry validates and stores; these add the webhook).
 */

/** A destination as registered, with the webhook's signing secret when one was set (shown once). */
export interface Created {
  destination: Destination;
  webhookUrl?: string;
  webhookSecret?: string;
}

/**
 * Registers a destination (its external ID is generated) and, when `webhookUrl` is given, its
 * webhook with a new signing secret. The webhook address and the encryption key are checked before
 * anything is registered, so a bad address registers nothing.
 */
export async function createDestination(
  deps: Pick<OperationDeps, 'settings' | 'pool' | 'registry'>,
  input: DestinationInput,
  webhookUrl?: string,
): Promise<Created> {
  if (webhookUrl !== undefined) await checkWebhook(deps.settings, webhookUrl);
  const destination = await deps.registry.add(input);
  if (webhookUrl === undefined) return { destination };
  const set = await setWebhook(deps, destination, webhookUrl);
  return { destination, webhookUrl: set!.url, webhookSecret: set!.secret };
}

/**
 * What `setWebhook` would refuse — the address, or no encryption key configured — refused before anything changes:
 * a create or an update that also sets a webhook checks it first, so a bad address changes nothing.
 */
export async function checkWebhook(settings: OperationDeps['settings'], url: string): Promise<void> {
  validateWebhookUrl(url, { allowLoopback: settings.DROPSHIP_WEBHOOK_ALLOW_LOOPBACK });
  await webhookKey(settings);
}

/**
 * Sets an account's webhook with a newly generated signing secret (stored encrypted; returned here
 * once and never again), or removes it (`url` null; returns null) — on the registration `destination` is (its
 * generation): when the account was removed meanwhile (and maybe registered again), nothing is set and
 * `DestinationReplaced` says so.
 */
export async function setWebhook(
  deps: Pick<OperationDeps, 'settings' | 'pool'>,
  destination: Pick<Destination, 'accountId' | 'generation'>,
  url: string | null,
): Promise<{ url: string; secret: string } | null> {
  const store = new StatusStore(deps.pool);
  const { accountId, generation } = destination;
  if (url === null) {
    if (!(await store.setWebhook(accountId, generation, null, null))) throw new DestinationReplaced(accountId);
    return null;
  }
  const valid = validateWebhookUrl(url, { allowLoopback: deps.settings.DROPSHIP_WEBHOOK_ALLOW_LOOPBACK });
  const key = await webhookKey(deps.settings);
  const secret = generateSecret();
  if (!(await store.setWebhook(accountId, generation, valid, encryptSecret(secret, key))))
    throw new DestinationReplaced(accountId);
  return { url: valid, secret };
}
