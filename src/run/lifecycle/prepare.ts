import type pg from 'pg';
import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import { DropshipError, type DropshipErrorOptions } from '../../contracts/errors.js';
import type { DestinationPort } from '../../destinations/port.js';
import { ensureExternalIdEnforced } from '../../notify/drift.js';
import type { SelectedTables } from '../../pipeline/source/select.js';

/** Which pre-flight check refused the run. */
export type PreflightCheck = 'disabled' | 'role' | 'external-id' | 'selection';

/**
 * A run refused before it exported anything, with the same words under both drivers. `cause` is the
 * check's own error when it had one (the role's DestinationAccessError, …), so the verdict
 * (retryable, repeats) and the customer's words (src/notify/reasons.ts) stay the cause's.
 */
export class PreflightError extends DropshipError {
  readonly code: string = 'preflight';
  /** A disabled account is what a person gave (as AccountsError was): the CLI exits 2 on it. */
  override readonly badInput: boolean;
  constructor(
    readonly check: PreflightCheck,
    message: string,
    options?: DropshipErrorOptions,
  ) {
    super(message, options, check === 'disabled' ? { retryable: false } : {});
    this.name = 'PreflightError';
    this.badInput = check === 'disabled';
  }
}

export interface PrepareDeps {
  settings: Settings;
  /** The registry/ledger pool (where the external-ID probe's last verification is kept). */
  pool: pg.Pool;
  /** The run's port to the destination (src/destinations/): access and isolation are checked through it. */
  port: DestinationPort;
  /** Ends (or finishes) whatever a dead owner of this account left behind (src/run/liveness/sweep.ts). */
  sweep: () => Promise<unknown>;
  /**
   * Reads the source catalog and applies the destination's selection: in the run's snapshot
   * (in-process) or on a connection of its own, planning the key ranges too (fan-out).
   */
  select: () => Promise<SelectedTables>;
  /**
   * Called once the account is known to be enabled, before the sweep and the role check: where a
   * driver starts opening the connections it will need (the run owner's lock, the snapshot holder's
   * connection — opened, nothing read), so they open while the checks wait. Never called for a
   * disabled account.
   */
  warm?: () => void;
  signal?: AbortSignal;
}

/**
 * The pre-flight of a run, one order for both drivers (the in-process `exportAccount`,
 * src/run/drivers/in-process.ts, and the fan-out `startFanOutRun`, src/run/drivers/fan-out.ts):
 *
 *   1. the account is enabled (nothing else is touched for a disabled one, not even its leftovers);
 *   2. whatever a dead owner of the account left behind is ended or finished (the sweep), and
 *   3. the customer's role can be assumed with the external ID — before the source is read, so a
 *      wrong role fails fast and holds no snapshot. 2 and 3 run side by side (neither needs the
 *      other; AssumeRole is the opening's longest wait, ~50–100 ms): the sweep's error is reported
 *      first, as when they ran in turn, and a sweep that fails still lets the role check end;
 *   4. the role cannot be assumed without it (probed at most daily: src/notify/drift.ts);
 *   5. the selection is read from the source and has no problem and at least one table.
 *
 * Returns the selection; a refusal throws a `PreflightError` (its `check` says which). Other
 * failures (the source or the ledger unreachable) are thrown as they are.
 */
export async function prepareRun(dest: Destination, deps: PrepareDeps): Promise<SelectedTables> {
  if (!dest.enabled)
    throw new PreflightError(
      'disabled',
      `account ${dest.accountId} is disabled (dropship destinations enable ${dest.accountId})`,
    );
  // Names stored before they were counted in bytes (63, as Postgres keeps them): a longer one is cut by Postgres and
  // reads another name's data (red team, API; review: such registrations went on exporting).
  const long = [
    ['source schema', dest.sourceSchema],
    ['tenant column', dest.selection.tenantColumn],
  ].filter(([, name]) => name !== undefined && Buffer.byteLength(name, 'utf8') > 63);
  if (long.length > 0)
    throw new PreflightError(
      'selection',
      `account ${dest.accountId}: ${long.map(([what, name]) => `${what} "${name}" is longer than Postgres' 63 bytes (Postgres would read another name's data): change it (dropship destinations update ${dest.accountId})`).join('; ')}`,
    );
  try {
    deps.warm?.();
  } catch {
    // Only a head start: what failed to open here is opened where it is needed, and fails there in its own words.
  }
  const [swept, role] = await Promise.allSettled([deps.sweep(), refuseOn('role', () => deps.port.verifyAccess())]);
  if (swept.status === 'rejected') throw swept.reason;
  deps.signal?.throwIfAborted();
  if (role.status === 'rejected') throw role.reason;
  await refuseOn('external-id', () => ensureExternalIdEnforced(deps.pool, dest, deps.port));
  deps.signal?.throwIfAborted();
  const selected = await deps.select();
  const problems =
    selected.problems.length > 0
      ? selected.problems
      : selected.tables.length === 0
        ? [`source schema "${dest.sourceSchema}" has no tables or materialized views`]
        : [];
  if (problems.length > 0) throw new PreflightError('selection', `account ${dest.accountId}: ${problems.join('; ')}`);
  deps.signal?.throwIfAborted();
  return selected;
}

/**
 * A role or external-ID check AWS could not answer — throttled, a 5xx, the network (the check's cause says it is
 * retryable) — refuses nothing: the fan-out opener records no failed run for it and its open message comes back (red
 * team, fan-out: a moment of STS throttling at 04:00 used every opened account's slot up with a failed run, counted
 * toward its pause). A definite answer (AccessDenied, no external-ID condition) is a refusal.
 */
export function passingPreflight(e: PreflightError): boolean {
  return (e.check === 'role' || e.check === 'external-id') && e.retryable;
}

/** The check's own error, as a PreflightError with the same words (they name the account and the fix). */
async function refuseOn(check: PreflightCheck, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (e) {
    throw new PreflightError(check, e instanceof Error ? e.message : String(e), { cause: e });
  }
}
