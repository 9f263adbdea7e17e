import type { PoolClient } from 'pg';
import type { Destination, DestinationInput } from '../accounts/destination.js';
import { type DestinationPatch, DestinationReplaced, type WithinWrite } from '../accounts/registry.js';
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
 * webhook with a new signing secret — in one transaction: a failure setting the webhook registers nothing (it left a
 * destination without its webhook, whose retry then met 409 "exists": red team, API). The webhook address and the
 * encryption key are checked before anything is registered, so a bad address registers nothing.
 */
export async function createDestination(
  deps: Pick<OperationDeps, 'settings' | 'pool' | 'registry'>,
  input: DestinationInput,
  webhookUrl?: string,
  /** More of the same transaction, once the destination and its webhook are written (the API keeps its answer). */
  within?: (c: PoolClient, created: Created) => Promise<void>,
): Promise<Created> {
  const hook = webhookUrl === undefined ? undefined : await newWebhook(deps.settings, webhookUrl);
  const createdOf = (destination: Destination): Created =>
    hook ? { destination, webhookUrl: hook.url, webhookSecret: hook.secret } : { destination };
  const destination = await deps.registry.add(
    input,
    hook || within
      ? async (c, d) => {
          if (hook) await writeWebhook(deps, hook)(c, d);
          await within?.(c, createdOf(d));
        }
      : undefined,
  );
  return createdOf(destination);
}

/** What an update changed: the destination as it is now, and the webhook it set (its secret shown once). */
export interface Updated {
  destination: Destination;
  webhook?: { url: string; secret: string } | null;
  /** The account's open runs the change cancelled (it changed where or how data is delivered). */
  cancelledRunIds?: string[];
}

/**
 * Changes a destination (`patch`, as `Registry.update` takes it) and, when `webhookUrl` is given, its webhook (a new
 * signing secret; null removes it) — in one transaction: a failure setting the webhook changes nothing (a PATCH
 * answered 500 with its other fields changed: red team, API). The webhook is checked first: a bad address changes
 * nothing either. An empty patch changes the webhook alone.
 */
export async function updateDestination(
  deps: Pick<OperationDeps, 'settings' | 'pool' | 'registry'>,
  accountId: string,
  patch: DestinationPatch,
  webhookUrl?: string | null,
): Promise<Updated> {
  const hook = typeof webhookUrl === 'string' ? await newWebhook(deps.settings, webhookUrl) : webhookUrl;
  if (Object.keys(patch).length === 0) {
    const destination = await deps.registry.get(accountId);
    if (hook === undefined) return { destination };
    return { destination, webhook: await setWebhook(deps, destination, hook) };
  }
  const { destination, cancelledRunIds } = await deps.registry.updateReporting(
    accountId,
    patch,
    hook === undefined ? undefined : writeWebhook(deps, hook),
  );
  return hook === undefined
    ? { destination, cancelledRunIds }
    : { destination, cancelledRunIds, webhook: hook && { url: hook.url, secret: hook.secret } };
}

/** A webhook about to be set: its checked address, a new signing secret and that secret encrypted for storage. */
export interface NewWebhook {
  url: string;
  secret: string;
  sealed: string;
}

/** Checks the address and the encryption key (refused before anything changes) and makes a new signing secret. */
async function newWebhook(settings: OperationDeps['settings'], url: string): Promise<NewWebhook> {
  const valid = validateWebhookUrl(url, { allowLoopback: settings.DROPSHIP_WEBHOOK_ALLOW_LOOPBACK });
  const key = await webhookKey(settings);
  const secret = generateSecret();
  return { url: valid, secret, sealed: encryptSecret(secret, key) };
}

/** Writes the webhook (null: none) in the registry write's own transaction. */
function writeWebhook(deps: Pick<OperationDeps, 'pool'>, hook: NewWebhook | null): WithinWrite {
  return (c, d) => new StatusStore(deps.pool).writeWebhook(c, d.accountId, hook?.url ?? null, hook?.sealed ?? null);
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
  url: string | null | NewWebhook,
): Promise<{ url: string; secret: string } | null> {
  const store = new StatusStore(deps.pool);
  const { accountId, generation } = destination;
  if (url === null) {
    if (!(await store.setWebhook(accountId, generation, null, null))) throw new DestinationReplaced(accountId);
    return null;
  }
  const hook = typeof url === 'string' ? await newWebhook(deps.settings, url) : url;
  if (!(await store.setWebhook(accountId, generation, hook.url, hook.sealed))) throw new DestinationReplaced(accountId);
  return { url: hook.url, secret: hook.secret };
}
