import type { Pool } from 'pg';
import type { Destination } from '../accounts/destination.js';
import { DestinationNotFound, type Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { allSlots, slotsByPlan } from '../contracts/slots.js';
import { type DoctorReport, doctor } from '../destinations/s3/doctor.js';
import type { Logger } from '../log/logger.js';
import { checkDestinations, noteDoctorReport, slotsAhead } from '../notify/drift.js';
import { deliverPending, WEBHOOK_BUDGET_MS } from '../notify/outcome.js';
import { selectionReport } from '../pipeline/source/select.js';
import type { Ledger } from '../store/ledger/ledger.js';

/** What the check function keeps for the webhook outbox after its checks, when it has a deadline. */
const OUTBOX_RESERVE_MS = 60_000;

/**
 * What the check function does (handlers/check.ts) about an hour before each slot: drift checks for
 * every destination due in the coming slot — a failure notifies the customer
 * (`destination.check_failed`) before the slot fails — then the webhook outbox, so those warnings go
 * out at once. Run outcomes and the rest of the tidying are the sweeper's (src/schedule/tidy.ts).
 */
export async function runChecks(
  at: { time: string },
  deps: { settings: Settings; registry: Registry; ledger: Ledger; log: Logger },
  /** When the function must be done (ms since the epoch): checks not started by then, and webhooks, wait. */
  deadline?: number,
) {
  const { settings, registry, ledger, log } = deps;
  const { time } = at;
  const plans = slotsByPlan(settings);
  const slots = slotsAhead(new Date(time), allSlots(plans));
  const seen = new Set<string>();
  const dests = [];
  for (const slot of slots)
    for (const d of await registry.due(slot, plans))
      if (!seen.has(d.accountId)) {
        seen.add(d.accountId);
        dests.push(d);
      }
  // The webhook outbox gets what is left after the checks, at most WEBHOOK_BUDGET_MS; the checks the rest.
  const checksDeadline = deadline === undefined ? undefined : deadline - OUTBOX_RESERVE_MS;
  const results = await checkDestinations({ pool: ledger.pool, settings, log }, dests, {
    reread: currentDestination(registry),
    ...(checksDeadline !== undefined ? { deadline: checksDeadline } : {}),
  });
  for (const r of results)
    log.info(
      {
        accountId: r.accountId,
        ok: r.ok,
        probed: r.probed,
        failed: r.checks.filter((c) => c.status === 'fail').map((c) => c.name),
      },
      'drift check',
    );
  const unchecked = results.filter((r) => r.unchecked).map((r) => r.accountId);
  if (unchecked.length > 0)
    log.error(
      { unchecked: unchecked.length, first: unchecked.slice(0, 20) },
      'drift checks: out of time before every destination was checked',
    );
  const budgetMs =
    deadline === undefined ? WEBHOOK_BUDGET_MS : Math.max(0, Math.min(WEBHOOK_BUDGET_MS, deadline - Date.now()));
  const outbox = await deliverPending({ pool: ledger.pool, settings }, {}, log, { budgetMs }).catch((e: Error) => ({
    delivered: 0,
    failed: 0,
    error: e.message,
  }));
  return {
    slots,
    checked: results.length - unchecked.length,
    failed: results
      .filter((r) => !r.ok && !r.unchecked && !r.superseded)
      .map((r) => ({ accountId: r.accountId, failures: r.failures })),
    unchecked,
    outbox,
  };
}

/**
 * The destination as it is now (undefined: removed), read right before its check: the list of due destinations is read
 * once, and the checks take up to 600 s — one changed meanwhile (a wrong role fixed) is checked as it is now, never as
 * it was (red team, notify: the stale copy's failure was told to the customer and recorded as the last check).
 */
export function currentDestination(
  registry: Pick<Registry, 'get'>,
): (d: Destination) => Promise<Destination | undefined> {
  return (d) =>
    registry.get(d.accountId).catch((e: unknown) => {
      if (e instanceof DestinationNotFound) return undefined;
      throw e;
    });
}

/** What `diagnose` found: the doctor's checks and, for a partial selection, how it fits the source now. */
export interface Diagnosis {
  accountId: string;
  report: DoctorReport;
  selection: { summary: string; problems: string[] };
  ok: boolean;
}

/**
 * The doctor for one destination, as the trusted principal of the process that runs it: every check
 * with its fix (src/destinations/s3/doctor.ts), recorded as the day's external-ID probe, and the selection
 * checked against the source. `dropship doctor` and the check function's `{"accountId": …}` event
 * both call this (the operator runs it in production through the deployed function, whose role is
 * the principal customers trust).
 */
export async function diagnose(
  dest: Destination,
  deps: { settings: Settings; pool: Pool; sourceUrl: string; trustPolicy?: unknown },
): Promise<Diagnosis> {
  const principal = deps.settings.DROPSHIP_PRINCIPAL_ARN;
  const report = await doctor(dest, {
    settings: deps.settings,
    ...(principal ? { principalArn: principal } : {}),
    ...(deps.trustPolicy !== undefined ? { trustPolicy: deps.trustPolicy } : {}),
  });
  await noteDoctorReport(deps.pool, report, dest); // counts as the day's external-ID probe of this role
  // A whole-schema destination too: a table a run cannot deliver (no columns, a view never populated, two tables
  // whose files would be named alike) shows here before a run is refused for it.
  const selection = await selectionReport(deps.sourceUrl, dest.sourceSchema, dest.selection);
  return {
    accountId: dest.accountId,
    report,
    selection,
    ok: report.ok && selection.problems.length === 0,
  };
}
