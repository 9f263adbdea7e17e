import { type Destination, objectKey } from '../accounts/destination.js';
import type { Settings } from '../config/settings.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import { status } from '../contracts/validators.generated.js';
import { type DestinationPort, PreconditionFailed } from '../destinations/port.js';
import type { DestinationStatusRow, LastFailure, LastSuccess } from './store.js';

/**
 * `<prefix>/status.json`: rewritten at the end of every run, success or failure, inside the
 * write-only prefix. Unlike receipt.json (written only on success, the trigger for loaders), it
 * always tells the customer where their deliveries stand. Contract: schemas/status.schema.json.
 */
export interface StatusDocument {
  account: string;
  updated_at: string;
  last_run: { run_id: string; status: 'succeeded' | 'failed'; finished_at: string } | null;
  last_success: LastSuccess | null;
  last_failure: LastFailure | null;
  consecutive_failures: number;
  paused: boolean;
  paused_at: string | null;
  next_slot: string | null;
}

// Precompiled by Ajv from schemas/status.schema.json (src/receipt/schema-validators.ts): nothing is compiled at start.
const check = status as ((value: unknown) => boolean) & {
  errors?: { instancePath: string; message?: string }[] | null;
};

export function validateStatus(value: unknown): string[] {
  return check(value) ? [] : (check.errors ?? []).map((e) => `${e.instancePath || '$'} ${e.message}`);
}

/** The next slot (UTC) of the destination's plan strictly after `now`, as an ISO timestamp. */
export function nextSlot(plan: Destination['plan'], settings: Settings, now: Date): string {
  const slots = (plan === 'paid' ? settings.DROPSHIP_PAID_SLOTS : settings.DROPSHIP_FREE_SLOTS).split(',').sort();
  for (let day = 0; day < 2; day++) {
    for (const s of slots) {
      const [h, m] = s.split(':').map(Number);
      const t = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + day, h, m));
      if (t.getTime() > now.getTime()) return t.toISOString().replace('.000Z', 'Z');
    }
  }
  throw new Error(`no slot configured for plan ${plan}`);
}

function statusKey(dest: Pick<Destination, 'prefix'>): string {
  return objectKey(dest, 'status.json');
}

export function buildStatus(
  dest: Destination,
  row: DestinationStatusRow,
  settings: Settings,
  now: Date,
): StatusDocument {
  const paused = row.pausedAt !== null || !dest.enabled;
  const s = row.lastSuccess;
  const f = row.lastFailure;
  const lastRun: StatusDocument['last_run'] =
    s && (!f || s.finished_at >= f.at)
      ? { run_id: s.run_id, status: 'succeeded', finished_at: s.finished_at }
      : f
        ? { run_id: f.run_id, status: 'failed', finished_at: f.at }
        : null;
  return {
    account: dest.accountId,
    updated_at: now.toISOString(),
    last_run: lastRun,
    last_success: row.lastSuccess,
    last_failure: row.lastFailure,
    consecutive_failures: row.consecutiveFailures,
    paused,
    paused_at: row.pausedAt ? row.pausedAt.toISOString() : null,
    next_slot: paused ? null : nextSlot(dest.plan, settings, now),
  };
}

/**
 * Writes status.json. A place dropship never wrote one at (`places`: dropship.status_places) gets it create-only: an
 * object already there is not dropship's (a bucket-root destination over the customer's own status.json) and is
 * left alone — `StatusPlaceTaken`. Once written, the place is recorded and the next writes replace it.
 */
export async function writeStatus(
  port: DestinationPort,
  dest: Pick<Destination, 'prefix'>,
  doc: StatusDocument,
  places?: StatusPlaces,
): Promise<string> {
  const problems = validateStatus(doc);
  if (problems.length > 0) throw new Error(`status.json violates its schema: ${problems.join('; ')}`);
  const key = statusKey(dest);
  const known = places ? await places.known(port.container, key) : true;
  try {
    await port.putObject(key, `${JSON.stringify(doc, null, 2)}\n`, {
      contentType: 'application/json',
      cacheControl: 'no-cache',
      ...(known ? {} : { ifNoneMatch: '*' as const }),
    });
  } catch (e) {
    if (!known && e instanceof PreconditionFailed) throw new StatusPlaceTaken(`${port.container}/${key}`, { cause: e });
    throw e;
  }
  if (!known) await places?.record(port.container, key);
  return key;
}

/** Where dropship has written a status.json (the ledger's dropship.status_places; StatusStore implements it). */
export interface StatusPlaces {
  known(bucket: string, key: string): Promise<boolean>;
  record(bucket: string, key: string): Promise<void>;
}

/** A status.json dropship never wrote is at the destination's place: it is not replaced. Not retryable. */
export class StatusPlaceTaken extends DropshipError {
  readonly code: string = 'status-place-taken';
  constructor(place: string, options?: DropshipErrorOptions) {
    super(
      `status.json not written: ${place} holds an object dropship did not write (the customer's own?); move it away and dropship writes its status there`,
      options,
      { retryable: false },
    );
    this.name = 'StatusPlaceTaken';
  }
}
