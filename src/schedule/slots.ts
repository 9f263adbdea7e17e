import type { Registry } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import { type OpenMessage, type OpenSender, openMessages } from '../contracts/open.js';
import { slotsByPlan } from '../contracts/slots.js';
import type { MessageSender } from '../contracts/task.js';
import type { Logger } from '../log/logger.js';
import type { Faults } from '../run/lifecycle/faults.js';
import { newRunId } from '../run/lifecycle/lifecycle.js';
import type { Ledger } from '../store/ledger/ledger.js';
import { openSlotBatch } from './open.js';

/**
 * Scheduled slots: at most one run per account, slot and day (the ledger's unique key on
 * (account, slot, slot date) turns a duplicate EventBridge delivery, a redelivered open message or
 * a Lambda retry into a no-op), and a slot whose schedule event never arrived is caught up by the
 * sweeper. docs/design/slots.md tells the whole path.
 *
 * Opening a slot is two steps, so no one function's lifetime bounds how many accounts a slot has:
 *   1. `enqueueSlot` (the schedule function, handlers/schedule.ts): one registry query for the due
 *      accounts, one ledger query for those that already have the slot's run, then "open" messages
 *      of a few accounts each on the open queue (src/contracts/open.ts) — nothing else;
 *   2. `openSlotBatch` (the open-runs function, handlers/open-runs.ts → src/schedule/open.ts): each
 *      account of a message gets its run (`startFanOutRun`), and its table tasks go to the task queue.
 *
 * `catchUpSlots` is what the sweeper does every few minutes for the slots of the last day: the
 * accounts due in a slot that has no run for them, more than DROPSHIP_RUN_STALE_SECONDS after the
 * slot time, are enqueued the same way — until DROPSHIP_SLOT_CATCHUP_SECONDS after the slot; after
 * that the slot is recorded as a failed run "missed" (visible in `runs list`, counted as a failure).
 */
export interface SlotDeps {
  registry: Registry;
  ledger: Ledger;
  settings: Settings;
  /** Where the opened runs' table tasks go. */
  queue: MessageSender;
  /** Where the slot's open messages go (the open queue). */
  opens: OpenSender;
  sourceUrl: string;
  log: Logger;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

/** What opening runs needs (the open-runs function): no open queue. */
export type OpenDeps = Omit<SlotDeps, 'opens'>;

/** One account's outcome in a slot (what the functions return and log). */
export interface SlotRun {
  accountId: string;
  runId?: string;
  /**
   * The run's status when it was opened (`running`, or `failed` when its pre-flight refused it);
   * `duplicate` (the slot already has its run), `skipped` (a live run is in progress, or the account
   * is no longer due), `error` (not opened), `queued` (handed to the open queue by the catch-up),
   * `missed` (past the catch-up window).
   */
  status: string;
  tasks: number;
  error?: string;
}

/** What the schedule function did: how many accounts it handed to the open queue, in how many messages. */
export interface SlotEnqueued {
  slot: string;
  slotDate: string;
  /** Accounts due in the slot (enabled, their plan scheduled in it). */
  due: number;
  /** Due accounts that already have the slot's run (a repeated event): not sent again. */
  alreadyOpened: number;
  /** Accounts sent. */
  accounts: number;
  /** Open messages sent (⌈accounts / per message⌉). */
  messages: number;
  /** The whole call; of it, reading the registry and the ledger. */
  seconds: number;
  readSeconds: number;
}

export interface EnqueueOptions {
  /** Accounts per open message (default OPEN_BATCH_ACCOUNTS, at most OPEN_BATCH_MAX). */
  perMessage?: number;
  /** Who sends (logs; default `schedule`). */
  by?: OpenMessage['by'];
}

/**
 * The schedule function's work for one slot: reads the due accounts (one registry query) and the
 * accounts that already have the slot's run (one ledger query), and sends the rest to the open queue
 * in messages of a few accounts each (SendMessageBatch, 10 messages a call). Opens no run itself.
 */
export async function enqueueSlot(
  deps: Pick<SlotDeps, 'registry' | 'ledger' | 'settings' | 'opens' | 'log'>,
  slot: string,
  slotDate: string,
  opts: EnqueueOptions = {},
): Promise<SlotEnqueued> {
  const t0 = performance.now();
  const due = await deps.registry.dueIds(slot, slotsByPlan(deps.settings));
  const have = await deps.ledger.slotRuns({ slot, slotDate });
  const todo = due.filter((id) => !have.has(id));
  const read = performance.now();
  const messages = openMessages(slot, slotDate, opts.by ?? 'schedule', todo, opts.perMessage);
  await deps.opens.send(messages);
  const out: SlotEnqueued = {
    slot,
    slotDate,
    due: due.length,
    alreadyOpened: due.length - todo.length,
    accounts: todo.length,
    messages: messages.length,
    seconds: (performance.now() - t0) / 1000,
    readSeconds: (read - t0) / 1000,
  };
  deps.log.info({ ...out }, 'slot enqueued for opening');
  return out;
}

/**
 * Both steps of a slot in this process: the schedule's messages kept in memory and opened one after
 * another by `openSlotBatch` — the production code without the open queue (tests of what a slot
 * does; the production way, over a queue, is `openSlotViaQueue`, src/schedule/play.ts).
 */
export async function runSlot(
  deps: OpenDeps,
  slot: string,
  slotDate: string,
  opts: EnqueueOptions = {},
): Promise<SlotRun[]> {
  const sent: OpenMessage[] = [];
  await enqueueSlot({ ...deps, opens: { send: async (m) => void sent.push(...m) } }, slot, slotDate, opts);
  const runs: SlotRun[] = [];
  for (const m of sent) runs.push(...(await openSlotBatch(deps, m)).runs);
  return runs;
}

export async function catchUpSlots(deps: SlotDeps, now: Date = new Date()): Promise<SlotRun[]> {
  const slots = [
    ...new Set([...deps.settings.DROPSHIP_PAID_SLOTS.split(','), ...deps.settings.DROPSHIP_FREE_SLOTS.split(',')]),
  ];
  const grace = deps.settings.DROPSHIP_RUN_STALE_SECONDS * 1000;
  const window = deps.settings.DROPSHIP_SLOT_CATCHUP_SECONDS * 1000;
  const out: SlotRun[] = [];
  // Asked once, when a slot has accounts to catch up: while the open queue still holds messages, the
  // slot is being opened (its accounts may be among them) and nothing is sent again.
  let busy: number | undefined;
  const openQueueBusy = async (): Promise<number> => (busy ??= (await deps.opens.backlog?.()) ?? 0);
  for (const slot of slots) {
    for (const daysAgo of [0, 1]) {
      const at = new Date(`${new Date(now.getTime() - daysAgo * 86_400_000).toISOString().slice(0, 10)}T${slot}:00Z`);
      const age = now.getTime() - at.getTime();
      if (age < grace || age > 86_400_000) continue;
      const slotDate = at.toISOString().slice(0, 10);
      const have = await deps.ledger.slotRuns({ slot, slotDate });
      // Due since before the slot: not one registered, resumed or upgraded after it (it was not due then).
      const missing = (await deps.registry.dueSince(slot, slotsByPlan(deps.settings), at)).filter(
        (d) => !have.has(d.accountId),
      );
      if (missing.length === 0) continue;
      if (age <= window) {
        const backlog = await openQueueBusy();
        if (backlog > 0) {
          deps.log.info(
            { slot, slotDate, missing: missing.length, backlog },
            'slot not opened yet, but the open queue is still busy: catch-up waits',
          );
          continue;
        }
        const ids = missing.map((d) => d.accountId);
        deps.log.warn({ slot, slotDate, accounts: ids }, 'catching up a missed slot');
        await deps.opens.send(openMessages(slot, slotDate, 'catch-up', ids));
        out.push(...ids.map((accountId) => ({ accountId, status: 'queued', tasks: 0 })));
        continue;
      }
      // An account whose own run was going at the slot (an on-demand run started just before it) was skipped by the
      // opening, not forgotten: its slot is not recorded as a failure.
      const ranAcross = await deps.ledger.ranAcross(
        missing.map((d) => d.accountId),
        at,
        deps.settings.DROPSHIP_SLOT_CATCHUP_SECONDS,
      );
      const toRecord = missing.filter((d) => {
        if (!ranAcross.has(d.accountId)) return true;
        deps.log.info(
          { accountId: d.accountId, slot, slotDate },
          'slot not recorded as missed: a run of the account was going across it',
        );
        return false;
      });
      const error = `slot ${slot} of ${slotDate} missed: no run started within DROPSHIP_SLOT_CATCHUP_SECONDS (${deps.settings.DROPSHIP_SLOT_CATCHUP_SECONDS} s)`;
      // Run ids are the slot's second and 6 random hex digits: drawn again on a repeat within this batch.
      const ids = new Set<string>();
      const rows = toRecord.map((d) => {
        let runId = newRunId(at);
        while (ids.has(runId)) runId = newRunId(at);
        ids.add(runId);
        return { runId, accountId: d.accountId, layout: d.layout };
      });
      // One insert for the whole slot; the outcomes are delivered by the outbox (the sweeper's next step, many
      // accounts at once), not here one account after another.
      const recorded = await deps.ledger.recordMissedSlots({ slot, slotDate, error }, rows);
      for (const r of rows) {
        if (!recorded.has(r.accountId)) continue;
        deps.log.error({ accountId: r.accountId, runId: r.runId, slot, slotDate }, 'slot missed');
        out.push({ accountId: r.accountId, runId: r.runId, status: 'missed', tasks: 0, error });
      }
    }
  }
  return out;
}
