import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import type { MessageSender, TaskMessage } from '../../contracts/task.js';
import { openTarget } from '../../destinations/open.js';
import { createLogger, type Logger } from '../../log/logger.js';
import { folderName } from '../../pipeline/sink/layout.js';
import { estimateTableBytes, listTables, type TablePlan, type TaskPart } from '../../pipeline/source/catalog.js';
import { planParts, receiptSelection, type SelectedTables, selectTables } from '../../pipeline/source/select.js';
import { connectSource, sourceClient, sourceSession } from '../../pipeline/source/snapshot.js';
import { nowMicros } from '../../receipt/receipt.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { Run, Trigger } from '../../store/ledger/rows.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';
import { type Faults, noFaults } from '../lifecycle/faults.js';
import { newRunId } from '../lifecycle/lifecycle.js';
import { PreflightError, passingPreflight, prepareRun } from '../lifecycle/prepare.js';
import { sweepRuns } from '../liveness/sweep.js';
import { packTasks } from './pack.js';

/**
 * The fan-out driver (Lambda), its start: a run is opened for an account with one task per table
 * (or key range); each task travels in an SQS message — small whole tables several to a message
 * (src/run/drivers/pack.ts) — and is exported by whichever worker receives it (`runTask`,
 * src/run/drivers/task.ts).
 */
export interface FanOutDeps {
  sourceUrl: string;
  ledger: Ledger;
  settings: Settings;
  queue: MessageSender;
  trigger: Trigger;
  slot?: string;
  /** YYYY-MM-DD of the scheduled slot: one scheduled run per account, slot and day. */
  slotDate?: string;
  log?: Logger;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

/** How long the opener's planning waits for a lock on a customer's table before it gives the account up for now. */
export const PLANNING_LOCK_TIMEOUT_SECONDS = 20;

/**
 * Starts a fan-out run: the shared pre-flight (src/run/lifecycle/prepare.ts: enabled, what a dead owner left
 * behind ended or finished, role and external ID, selection and key ranges), then opens the run and
 * its tasks, sends their messages (small tables packed) and records that they were all sent. A run the pre-flight
 * refuses (other than a disabled account's) is still recorded — failed, in the statement that opens it — so operators
 * see it and the slot counts it. If the sender dies before the "sent" record, the sweeper sends the tasks
 * again after DROPSHIP_RUN_STALE_SECONDS.
 */
export async function startFanOutRun(
  dest: Destination,
  deps: FanOutDeps,
): Promise<{ run: Run; tasks: number; messages: number }> {
  const { ledger, settings } = deps;
  const log = deps.log ?? createLogger({ level: 'silent' });
  const faults = deps.faults ?? noFaults;
  const startedMicros = nowMicros();
  const start = new Date(Number(startedMicros / 1000n));
  const runId = newRunId(start);
  const port = openTarget(dest, runId, settings);
  let selected: SelectedTables | undefined;
  let parts: TaskPart[] = [];
  let bytes = new Map<string, number>();
  let refused: PreflightError | undefined;
  try {
    try {
      await prepareRun(dest, {
        settings,
        pool: ledger.pool,
        port,
        sweep: () =>
          sweepRuns(
            {
              ledger,
              settings,
              log,
              destination: async () => dest,
              resend: (m) => deps.queue.send(m),
              by: `run ${runId}`,
            },
            { accountId: dest.accountId },
          ),
        select: async () => {
          const session = sourceSession(settings);
          const client = sourceClient(deps.sourceUrl, `dropship ${dest.accountId}`, session);
          try {
            await connectSource(client, session);
            // The planning reads the catalog, sizes and key ranges: behind a customer's ACCESS EXCLUSIVE lock (an ALTER,
            // a VACUUM FULL, one merely queued) they would wait until the opener's Lambda timed out, and the accounts
            // after this one in the open message with it. Refused after PLANNING_LOCK_TIMEOUT instead: this account's
            // slot is caught up later (the sweeper), the others open now (red-team finding, fan-out pass).
            await client.query(`set lock_timeout = '${PLANNING_LOCK_TIMEOUT_SECONDS}s'`);
            selected = await selectTables(
              client,
              dest.sourceSchema,
              await listTables(client, dest.sourceSchema),
              dest.selection,
            );
            parts = await planParts(client, dest.sourceSchema, settings.DROPSHIP_SPLIT_ROWS, selected);
            if (settings.DROPSHIP_PACK_BYTES > 0) bytes = await estimateTableBytes(client, dest.sourceSchema);
            return selected;
          } finally {
            await client.end().catch(() => {});
          }
        },
      });
    } catch (e) {
      if (!(e instanceof PreflightError) || e.check === 'disabled' || passingPreflight(e)) throw e;
      refused = e;
    }
    const tables: TablePlan[] = selected?.tables ?? [];
    const run = await ledger.openRun({
      runId,
      accountId: dest.accountId,
      trigger: deps.trigger,
      slot: deps.slot ?? null,
      slotDate: deps.slotDate ?? null,
      layout: dest.layout,
      folder: folderName(start, dest.layout),
      laterFolder: (minutes) => folderName(new Date(start.getTime() + minutes * 60_000), dest.layout),
      startedMicros,
      tables: tables.map((t) => t.name),
      parts,
      maxAttempts: settings.DROPSHIP_TASK_MAX_ATTEMPTS,
      owner: 'fan-out',
      staleSeconds: settings.DROPSHIP_RUN_STALE_SECONDS,
      destination: dest,
      ...(selected
        ? { selection: { config: dest.selection, receipt: receiptSelection(dest.selection, selected) } }
        : {}),
      ...(refused ? { refused: refused.message } : {}),
    });
    await faults.at('after-open-run');
    if (refused) {
      await dispatchRunOutcome({ ledger, settings, port }, runId, refused);
      return { run, tasks: 0, messages: 0 };
    }
    const split = new Set(parts.map((p) => p.table));
    // Small whole tables travel together (src/run/drivers/pack.ts); the ledger keeps one task per table.
    const messages: TaskMessage[] = packTasks({
      runId,
      accountId: dest.accountId,
      tables: tables.filter((t) => !split.has(t.name)).map((t) => ({ name: t.name, bytes: bytes.get(t.name) ?? null })),
      parts,
      packBytes: settings.DROPSHIP_PACK_BYTES,
      maxTables: settings.DROPSHIP_PACK_MAX_TABLES,
    });
    // SendMessageBatch takes 10 at a time; the test-only fault point sits between the first and the rest.
    for (let i = 0; i < messages.length; i += 10) {
      if (i > 0) await faults.at('during-send');
      await deps.queue.send(messages.slice(i, i + 10));
    }
    await faults.at('after-send');
    await ledger.markDispatched(runId);
    return { run, tasks: tables.length - split.size + parts.length, messages: messages.length };
  } finally {
    port.close();
  }
}
