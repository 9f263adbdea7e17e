import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { Pool } from 'pg';
import type { Destination } from '../accounts/destination.js';
import type { Settings } from '../config/settings.js';
import type { DestinationPort } from '../destinations/port.js';
import { type CustomerFailure, failureFor } from '../destinations/s3/customer-failure.js';
import { type Check, doctor } from '../destinations/s3/doctor.js';
import type { Logger } from '../log/logger.js';
import { addEvent } from './outcome.js';
import { EXTERNAL_ID_PROBE_HOURS } from './probe.js';
import { StatusStore } from './store.js';

/**
 * Drift checks: before a slot, the doctor's non-invasive checks (assume role with the external ID,
 * bucket reachable in its region, a multipart upload — with the KMS key when set — started and
 * aborted) and, at most once a day, the external-ID enforcement probe. A failure notifies the
 * customer (`destination.check_failed`, with the fix) before the slot fails.
 *
 * The probe (AssumeRole without the external ID, which must be denied) leaves an AccessDenied
 * event in the customer's CloudTrail, so it runs at registration, in the doctor, and otherwise at
 * most every EXTERNAL_ID_PROBE_HOURS — not at every run. Runs rely on the last verification.
 */
export { EXTERNAL_ID_PROBE_HOURS };

/**
 * What a verification is for: the role and the external ID it was probed with (a SHA-256 digest, so
 * the external ID itself is stored only where it already is). Issue 22: after `update --role-arn`
 * the new role is probed before its first use, whatever the day's verification of the old one said.
 */
export function externalIdKey(dest: Pick<Destination, 'roleArn' | 'externalId'>): string {
  return createHash('sha256').update(`${dest.roleArn}\n${dest.externalId}`).digest('hex');
}

function probeDue(
  row: { externalIdVerifiedAt: Date | null; externalIdVerifiedFor: string | null },
  dest: Pick<Destination, 'roleArn' | 'externalId'>,
  now: Date,
): boolean {
  const at = row.externalIdVerifiedAt;
  return (
    !at ||
    row.externalIdVerifiedFor !== externalIdKey(dest) ||
    now.getTime() - at.getTime() >= EXTERNAL_ID_PROBE_HOURS * 3600_000
  );
}

/**
 * For the run path: throws (as verifyExternalIdEnforced does) when the role is assumable without
 * the external ID, but probes only when the last successful verification is older than a day.
 * Call it after the role was assumed with the external ID (so the verification means something).
 */
export async function ensureExternalIdEnforced(
  pool: Pool,
  dest: Destination,
  port: Pick<DestinationPort, 'verifyIsolation'>,
  now = new Date(),
): Promise<void> {
  const store = new StatusStore(pool);
  const row = await store.get(dest.accountId);
  if (!probeDue(row, dest, now)) return;
  if ((await port.verifyIsolation()) !== 'verified') return;
  await store.noteExternalIdVerified(dest.accountId, externalIdKey(dest));
}

/** `dropship doctor` ran the probe: a passing report counts as the day's verification. */
export async function noteDoctorReport(
  pool: Pool,
  report: { accountId: string; checks: Check[] },
  dest: Pick<Destination, 'roleArn' | 'externalId'>,
): Promise<void> {
  const pass = (name: string) => report.checks.find((c) => c.name === name)?.status === 'pass';
  if (pass('assume role') && pass('external ID enforced'))
    await new StatusStore(pool).noteExternalIdVerified(report.accountId, externalIdKey(dest));
}

export interface DriftResult {
  accountId: string;
  ok: boolean;
  probed: boolean;
  checks: Check[];
  /** What the customer is told (one per failed check), empty when all passed. */
  failures: CustomerFailure[];
  /** The `destination.check_failed` events queued for the customer's webhook (sent by the caller or the sweeper). */
  events?: string[];
  /** Not checked: the call ran out of time before this destination's turn (`deadline`). */
  unchecked?: true;
  /**
   * The destination version checked is no longer in force (changed or removed before or during its check): nothing was
   * recorded and the customer was not told; the version in force is checked on its own.
   */
  superseded?: true;
}

/** The customer's words for a failed doctor check; undefined when the failure is on our side. */
export function customerFailureOf(c: Check, dest: Destination): CustomerFailure | undefined {
  const text = `${c.detail} ${c.fix ?? ''}`;
  switch (c.name) {
    case 'assume role':
      return failureFor('role_not_assumable', dest);
    case 'external ID enforced':
      return /could not be verified/.test(c.detail) ? undefined : failureFor('external_id_not_enforced', dest);
    case 'bucket':
      // S3 did not answer (a 5xx, a dropped connection): ours to retry, not the customer's bucket in the wrong region.
      if (/could not be verified/.test(c.detail)) return undefined;
      return failureFor(/does not exist/.test(c.detail) ? 'bucket_missing' : 'bucket_wrong_region', dest);
    case 'multipart upload':
    case 'put object': {
      if (dest.kmsKeyArn && /kms:/.test(c.fix ?? '') && !/s3:PutObject and/.test(c.fix ?? '')) {
        const f = failureFor('kms_denied', dest);
        const missing = /allow (kms:\w+)/.exec(text)?.[1];
        return missing
          ? { ...f, reason: `the KMS key ${dest.kmsKeyArn} does not allow ${missing} to dropship's role` }
          : f;
      }
      return failureFor('write_denied', dest);
    }
    default:
      return undefined;
  }
}

async function checkDestination(
  deps: { pool: Pool; settings: Settings; log?: Logger; now?: Date },
  dest: Destination,
  opts: { forceProbe?: boolean; notify?: boolean } = {},
): Promise<DriftResult> {
  const now = deps.now ?? new Date();
  const store = new StatusStore(deps.pool);
  const row = await store.get(dest.accountId);
  const probed = opts.forceProbe === true || probeDue(row, dest, now);
  const report = await doctor(dest, { settings: deps.settings, drift: { externalIdProbe: probed } });
  const assumed = report.checks.find((c) => c.name === 'assume role')?.status === 'pass';
  const enforced = report.checks.find((c) => c.name === 'external ID enforced')?.status === 'pass';
  if (probed && assumed && enforced) await store.noteExternalIdVerified(dest.accountId, externalIdKey(dest));
  const failed = report.checks.filter((c) => c.status === 'fail');
  const failures = failed.map((c) => customerFailureOf(c, dest)).filter((f): f is CustomerFailure => f !== undefined);
  // One failure per kind (an assume-role failure is not also a bucket failure, etc.).
  const unique = [...new Map(failures.map((f) => [f.code, f])).values()];
  const result: DriftResult = {
    accountId: dest.accountId,
    ok: failed.length === 0,
    probed,
    checks: report.checks,
    failures: unique,
  };
  // Of this destination version only: one changed (or removed) while it was checked records and tells nothing — the
  // version in force is checked on its own (red team, notify: a check of the role before a fix told the customer
  // "dropship could not assume the role <the old role>" and was stored as the fixed version's last check).
  if (
    !(await store.noteCheck(dest.accountId, dest.generation, dest.version, {
      ok: result.ok,
      probed,
      checks: report.checks,
    }))
  ) {
    deps.log?.info(
      { accountId: dest.accountId, generation: dest.generation, version: dest.version },
      'drift check of a destination version changed or removed since: not recorded, customer not told',
    );
    return { ...result, superseded: true };
  }
  if (unique.length > 0 && opts.notify !== false && row.webhookUrl) {
    const ids: string[] = [];
    for (const f of unique) {
      // Of this registration and version only: one removed (and registered again) or changed since gets nothing.
      const id = await addEvent(store, dest, 'destination.check_failed', {
        account: dest.accountId,
        run_id: null,
        occurred_at: now.toISOString(),
        reason: `before the next delivery, a check found: ${f.reason}`,
        fix: f.fix,
      });
      if (id !== undefined) ids.push(id);
    }
    // Queued, not sent here: the caller sends the outbox once every check is done (the check function, the CLI), or
    // the sweeper within 5 minutes — a webhook endpoint that never answers held each check (35 s, past the API's
    // 29 s) and every destination after it (red team, API).
    result.events = ids;
  }
  if (!result.ok)
    deps.log?.warn(
      { accountId: dest.accountId, failed: failed.map((c) => c.name), probed },
      'drift check failed; customer notified',
    );
  return result;
}

/** Destinations checked side by side (each check is a few AWS calls and the doctor's probes). */
export const CHECK_CONCURRENCY = 4;

/**
 * Checks several destinations, `CHECK_CONCURRENCY` at a time, each failure its own; none is started after `deadline`
 * (ms since the epoch): those are returned `unchecked` (before, one after another without a bound: the check function's
 * 600 s ran out with the destinations after the slow ones never checked and nothing said about them).
 */
export async function checkDestinations(
  deps: { pool: Pool; settings: Settings; log?: Logger },
  dests: Destination[],
  opts: {
    forceProbe?: boolean;
    deadline?: number;
    concurrency?: number;
    /**
     * The destination as it is now, read right before its check (undefined: removed): a list read long before (the
     * check function's, up to 600 s) checks the version in force, not the one it read.
     */
    reread?: (d: Destination) => Promise<Destination | undefined>;
  } = {},
): Promise<DriftResult[]> {
  const gate = pLimit(Math.max(1, opts.concurrency ?? CHECK_CONCURRENCY));
  return Promise.all(
    dests.map((d) =>
      gate(async (): Promise<DriftResult> => {
        if (opts.deadline !== undefined && Date.now() >= opts.deadline)
          return {
            accountId: d.accountId,
            ok: false,
            probed: false,
            checks: [{ name: 'check', status: 'fail', detail: 'not checked: out of time before its turn' }],
            failures: [],
            unchecked: true,
          };
        try {
          const now = opts.reread ? await opts.reread(d) : d;
          // Re-read: one removed (or registered anew) or disabled meanwhile is not due any more.
          if (now === undefined || now.generation !== d.generation || (opts.reread && !now.enabled))
            return {
              accountId: d.accountId,
              ok: false,
              probed: false,
              checks: [{ name: 'check', status: 'fail', detail: 'not checked: removed or disabled before its turn' }],
              failures: [],
              superseded: true,
            };
          return await checkDestination(deps, now, opts.forceProbe ? { forceProbe: true } : {});
        } catch (e) {
          return {
            accountId: d.accountId,
            ok: false,
            probed: false,
            checks: [{ name: 'check', status: 'fail', detail: `the check itself failed: ${(e as Error).message}` }],
            failures: [],
          };
        }
      }),
    ),
  );
}

/** The slots (HH:MM) that start within `aheadMinutes` after `time` — what the check before a slot looks at. */
export function slotsAhead(time: Date, slots: string[], aheadMinutes = 90): string[] {
  const out = new Set<string>();
  for (const s of slots) {
    const [h, m] = s.split(':').map(Number);
    for (const day of [0, 1]) {
      const t = Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate() + day, h, m);
      const delta = (t - time.getTime()) / 60_000;
      if (delta > 0 && delta <= aheadMinutes) out.add(s);
    }
  }
  return [...out].sort();
}
