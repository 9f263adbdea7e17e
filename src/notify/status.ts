import { createHash } from 'node:crypto';
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
  const body = `${JSON.stringify(doc, null, 2)}\n`;
  const state = places ? await places.state(port.container, key) : 'written';
  if (state === 'written') {
    await port.putObject(key, body, { contentType: 'application/json', cacheControl: 'no-cache' });
    return key;
  }
  const p = places!;
  // A place maybe written (an earlier PUT here got no answer): only the object that PUT sent is dropship's to replace.
  const sent = state === 'maybe' ? await p.maybeEtag(port.container, key) : undefined;
  if (sent && (await conditionalPut(port, p, key, body, { ifMatch: sent })) === 'written') return key;
  // No object of dropship's known to be there: create only — an object in place is the customer's, never replaced.
  const created = await conditionalPut(port, p, key, body, { ifNoneMatch: '*' });
  if (created === 'written') return key;
  await p.forget(port.container, key);
  throw new StatusPlaceTaken(`${port.container}/${key}`);
}

/**
 * One conditional status.json PUT, its body's ETag (S3's for a single PUT: the quoted MD5 — not under SSE-KMS, where a
 * lost answer then ends in StatusPlaceTaken: status.json stale, never the customer's object replaced) recorded first as
 * the place's "maybe written" object. `refused`: the condition did not hold (another object in place, or none).
 * Throws when no answer came (the record stays: the next write replaces only that body) or on another refusal.
 */
async function conditionalPut(
  port: DestinationPort,
  places: StatusPlaces,
  key: string,
  body: string,
  condition: { ifMatch: string } | { ifNoneMatch: '*' },
): Promise<'written' | 'refused'> {
  const previous = await places.maybeEtag(port.container, key);
  await places.maybe(port.container, key, `"${createHash('md5').update(body).digest('hex')}"`);
  try {
    await port.putObject(key, body, { contentType: 'application/json', cacheControl: 'no-cache', ...condition });
  } catch (e) {
    if (e instanceof PreconditionFailed) {
      await restore(places, port.container, key, previous);
      return 'refused';
    }
    // Refused otherwise (permissions, 5xx): nothing written, the place as it was; no answer: the record stays.
    if (port.refused(e)) await restore(places, port.container, key, previous);
    throw e;
  }
  await places.record(port.container, key);
  return 'written';
}

/** Puts a place's "maybe written" record back as it was before a PUT that wrote nothing. */
async function restore(places: StatusPlaces, bucket: string, key: string, etag: string | undefined): Promise<void> {
  if (etag) await places.maybe(bucket, key, etag);
  else await places.forget(bucket, key);
}

/** Where dropship has written a status.json (the ledger's dropship.status_places, through `statusPlaces` in ./store.ts). */
export interface StatusPlaces {
  /** `written`: dropship's status.json is there; `maybe`: a create-only PUT of it got no answer; undefined: neither. */
  state(bucket: string, key: string): Promise<'written' | 'maybe' | undefined>;
  /** Before a conditional PUT: the place may be written with the object whose ETag is `etag` (kept unless refused). */
  maybe(bucket: string, key: string, etag: string): Promise<void>;
  /** The ETag of the object a maybe-written place's unanswered PUT sent (undefined: none known). */
  maybeEtag(bucket: string, key: string): Promise<string | undefined>;
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
