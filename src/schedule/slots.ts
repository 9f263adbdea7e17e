import type { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { slotsByPlan } from '../contracts/slots.js';
import type { MessageSender } from '../contracts/task.js';
import { errorFields, type Logger } from '../log/logger.js';
import { startFanOutRun } from '../run/drivers/fan-out.js';
import { dispatchRunOutcome } from '../run/lifecycle/ended.js';
import type { Faults } from '../run/lifecycle/faults.js';
import { newRunId } from '../run/lifecycle/lifecycle.js';
import { type Ledger, RunInProgress, SlotAlreadyRun } from '../store/ledger/ledger.js';

/**
 * Scheduled slots: at most one run per account, slot and day (the ledger's unique key on
 * (account, slot, slot date) turns a duplicate EventBridge delivery or a Lambda retry into a
 * no-op), and a slot whose schedule event never arrived is caught up by the sweeper.
 *
 * `runSlot` is what the schedule function does for one slot; `catchUpSlots` is what the sweeper
 * does every few minutes for the slots of the last day: an account due in a slot that has no run
 * for it, more than DROPSHIP_RUN_STALE_SECONDS after the slot time, gets its run now — until
 * DROPSHIP_SLOT_CATCHUP_SECONDS after the slot; after that the slot is recorded as a failed run
 * "missed" (visible in `runs list`, counted as a failure).
 */
export interface SlotDeps {
  registry: Registry;
  ledger: Ledger;
  settings: Settings;
  queue: MessageSender;
  sourceUrl: string;
  log: Logger;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

export interface SlotRun {
  accountId: string;
  runId?: string;
  status: string;
  tasks: number;
  error?: string;
}

export async function runSlot(
  deps: SlotDeps,
  slot: string,
  slotDate: string,
  onlyAccounts?: Set<string>,
): Promise<SlotRun[]> {
  const due = (await deps.registry.due(slot, slotsByPlan(deps.settings))).filter(
    (d) => !onlyAccounts || onlyAccounts.has(d.accountId),
  );
  const runs: SlotRun[] = [];
  for (const dest of due) {
    try {
      const { run, tasks } = await startFanOutRun(dest, {
        sourceUrl: deps.sourceUrl,
        ledger: deps.ledger,
        settings: deps.settings,
        queue: deps.queue,
        trigger: 'schedule',
        slot,
        slotDate,
        log: deps.log,
        faults: deps.faults,
      });
      runs.push({
        accountId: dest.accountId,
        runId: run.runId,
        status: run.status,
        tasks,
        ...(run.error ? { error: run.error } : {}),
      });
      deps.log.info(
        { accountId: dest.accountId, runId: run.runId, slot, slotDate, tasks, status: run.status },
        'run opened',
      );
    } catch (e) {
      if (e instanceof SlotAlreadyRun) {
        runs.push({ accountId: dest.accountId, status: 'duplicate', tasks: 0, error: e.message });
        deps.log.info({ accountId: dest.accountId, slot, slotDate }, 'slot already has a run (duplicate event)');
        continue;
      }
      const status = e instanceof RunInProgress ? 'skipped' : 'error';
      runs.push({ accountId: dest.accountId, status, tasks: 0, error: (e as Error).message });
      deps.log.error(
        { accountId: dest.accountId, slot, slotDate, ...errorFields(e) },
        status === 'skipped'
          ? 'slot not started: a live run is in progress (the sweeper catches the slot up)'
          : 'could not open run',
      );
    }
  }
  return runs;
}

export async function catchUpSlots(deps: SlotDeps, now: Date = new Date()): Promise<SlotRun[]> {
  const slots = [
    ...new Set([...deps.settings.DROPSHIP_PAID_SLOTS.split(','), ...deps.settings.DROPSHIP_FREE_SLOTS.split(',')]),
  ];
  const grace = deps.settings.DROPSHIP_RUN_STALE_SECONDS * 1000;
  const window = deps.settings.DROPSHIP_SLOT_CATCHUP_SECONDS * 1000;
  const out: SlotRun[] = [];
  for (const slot of slots) {
    for (const daysAgo of [0, 1]) {
      const at = new Date(`${new Date(now.getTime() - daysAgo * 86_400_000).toISOString().slice(0, 10)}T${slot}:00Z`);
      const age = now.getTime() - at.getTime();
      if (age < grace || age > 86_400_000) continue;
      const slotDate = at.toISOString().slice(0, 10);
      const have = await deps.ledger.slotRuns({ slot, slotDate });
      const missing = (await deps.registry.due(slot, slotsByPlan(deps.settings))).filter(
        (d) => !have.has(d.accountId) && d.createdAt.getTime() < at.getTime(),
      );
      if (missing.length === 0) continue;
      if (age <= window) {
        deps.log.warn({ slot, slotDate, accounts: missing.map((d) => d.accountId) }, 'catching up a missed slot');
        out.push(...(await runSlot(deps, slot, slotDate, new Set(missing.map((d) => d.accountId)))));
        continue;
      }
      for (const d of missing) {
        const error = `slot ${slot} of ${slotDate} missed: no run started within DROPSHIP_SLOT_CATCHUP_SECONDS (${deps.settings.DROPSHIP_SLOT_CATCHUP_SECONDS} s)`;
        const runId = newRunId(at);
        if (
          await deps.ledger.recordMissedSlot({ runId, accountId: d.accountId, slot, slotDate, layout: d.layout, error })
        ) {
          deps.log.error({ accountId: d.accountId, runId, slot, slotDate }, 'slot missed');
          await dispatchRunOutcome(deps, runId);
          out.push({ accountId: d.accountId, runId, status: 'missed', tasks: 0, error });
        }
      }
    }
  }
  return out;
}
