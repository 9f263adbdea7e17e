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
 *
 * The place is recorded as "maybe written" before that create-only PUT, and forgotten only when the destination answered
 * with a refusal (it wrote nothing: `port.refused`, a 412 among them); when no answer came (S3 may have stored it and
 * the answer was lost — conditional PUTs are sent once), it stays, and the next write replaces (red team, notify: the
 * place stayed unrecorded, and every later create-only PUT met dropship's own object — StatusPlaceTaken for ever).
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
  const state = places ? await places.state(port.container, key) : 'written';
  const known = state !== undefined;
  if (!known) await places!.maybe(port.container, key);
  try {
    await port.putObject(key, `${JSON.stringify(doc, null, 2)}\n`, {
      contentType: 'application/json',
      cacheControl: 'no-cache',
      ...(known ? {} : { ifNoneMatch: '*' as const }),
    });
  } catch (e) {
    if (!known) {
      const refused = e instanceof PreconditionFailed || port.refused(e);
      if (refused) await places!.forget(port.container, key);
      if (e instanceof PreconditionFailed) throw new StatusPlaceTaken(`${port.container}/${key}`, { cause: e });
    }
    throw e;
  }
  // Written: the place is dropship's (a "maybe" place too — so that a create-only PUT racing this one, refused by
  // this write's object, never forgets it).
  if (state !== 'written') await places?.record(port.container, key);
  return key;
}

/** Where dropship has written a status.json (the ledger's dropship.status_places; StatusStore implements it). */
export interface StatusPlaces {
  /** Whether a place is recorded (written, or maybe written). */
  known(bucket: string, key: string): Promise<boolean>;
  /** `written`: dropship's status.json is there; `maybe`: a create-only PUT of it got no answer; undefined: neither. */
  state(bucket: string, key: string): Promise<'written' | 'maybe' | undefined>;
  /** Before a create-only PUT: the place may be written (kept unless the destination refuses that PUT). */
  maybe(bucket: string, key: string): Promise<void>;
  /** dropship wrote a status.json at this place: the next ones replace it. */
  record(bucket: string, key: string): Promise<void>;
  /** The destination refused the create-only PUT: a "maybe" place is forgotten (a written one stays). */
  forget(bucket: string, key: string): Promise<void>;
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
