import type { Destination } from '../accounts/destination.js';
import { AccountsError } from '../accounts/registry.js';
import type { Settings } from '../config/settings.js';
import type { MessageSender, TaskMessage } from '../contracts/task.js';
import { openTarget } from '../destinations/open.js';
import { createLogger, type Logger } from '../log/logger.js';
import { ensureExternalIdEnforced } from '../notify/drift.js';
import { nowMicros } from '../receipt/receipt.js';
import { folderName } from '../sink/layout.js';
import { listTables, type TablePlan, type TaskPart } from '../source/catalog.js';
import { planParts, receiptSelection, type SelectedTables, selectTables } from '../source/select.js';
import { connectSource, sourceClient, sourceSession } from '../source/snapshot.js';
import { crashPoint } from './crash.js';
import { dispatchRunOutcome } from './ended.js';
import type { Ledger } from './ledger.js';
import type { Run, Trigger } from './ledger-rows.js';
import { newRunId } from './lifecycle.js';
import { sweepRuns } from './sweep.js';

/**
 * The fan-out driver (Lambda), its start: a run is opened for an account with one task per table
 * (or key range); each task travels as one SQS message and is exported by whichever worker
 * receives it (`runTask`, src/run/task.ts).
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
}

/**
 * Starts a fan-out run: ends (or finishes) what a dead owner left behind, opens the run and its
 * tasks, checks the role (a failure fails the run at once, visible to operators), sends one
 * message per task and records that they were all sent. If the sender dies before that record,
 * the sweeper sends the tasks again after DROPSHIP_RUN_STALE_SECONDS.
 */
export async function startFanOutRun(dest: Destination, deps: FanOutDeps): Promise<{ run: Run; tasks: number }> {
  if (!dest.enabled)
    throw new AccountsError(`account ${dest.accountId} is disabled (dropship destinations enable ${dest.accountId})`);
  const { ledger, settings } = deps;
  const log = deps.log ?? createLogger({ level: 'silent' });
  const startedMicros = nowMicros();
  const start = new Date(Number(startedMicros / 1000n));
  const runId = newRunId(start);
  await sweepRuns(
    {
      ledger,
      settings,
      log,
      destination: async () => dest,
      resend: (m) => deps.queue.send(m),
      by: `run ${runId}`,
    },
    { accountId: dest.accountId },
  );
  const session = sourceSession(settings);
  const client = sourceClient(deps.sourceUrl, `dropship ${dest.accountId}`, session);
  let tables: TablePlan[];
  let parts: TaskPart[];
  let selected: SelectedTables;
  try {
    await connectSource(client, session);
    selected = await selectTables(
      client,
      dest.sourceSchema,
      await listTables(client, dest.sourceSchema),
      dest.selection,
    );
    tables = selected.tables;
    parts = await planParts(client, dest.sourceSchema, settings.DROPSHIP_SPLIT_ROWS, selected);
  } finally {
    await client.end().catch(() => {});
  }
  const run = await ledger.openRun({
    runId,
    accountId: dest.accountId,
    trigger: deps.trigger,
    slot: deps.slot ?? null,
    slotDate: deps.slotDate ?? null,
    layout: dest.layout,
    folder: folderName(start, dest.layout),
    startedMicros,
    tables: tables.map((t) => t.name),
    parts,
    maxAttempts: settings.DROPSHIP_TASK_MAX_ATTEMPTS,
    owner: 'fan-out',
    staleSeconds: settings.DROPSHIP_RUN_STALE_SECONDS,
    destination: dest,
  });
  await crashPoint(settings, 'after-open-run');
  const port = openTarget(dest, runId, settings);
  try {
    await deps.ledger.noteSelection({
      runId,
      config: dest.selection,
      receipt: receiptSelection(dest.selection, selected),
    });
    if (selected.problems.length > 0) throw new Error(selected.problems.join('; '));
    if (tables.length === 0)
      throw new Error(`source schema "${dest.sourceSchema}" has no tables or materialized views`);
    await port.verifyAccess();
    await ensureExternalIdEnforced(deps.ledger.pool, dest, port);
  } catch (e) {
    await ledger.failRun({ runId, error: (e as Error).message });
    await dispatchRunOutcome({ ledger, settings, port }, runId, e);
    return { run: (await ledger.getRun(runId))!, tasks: 0 };
  } finally {
    port.close();
  }
  const split = new Set(parts.map((p) => p.table));
  const messages: TaskMessage[] = [
    ...tables.filter((t) => !split.has(t.name)).map((t) => ({ runId, accountId: dest.accountId, table: t.name })),
    ...parts.map((p) => ({ runId, accountId: dest.accountId, table: p.table, part: p.part })),
  ];
  // SendMessageBatch takes 10 at a time; the test-only crash point sits between the first and the rest.
  for (let i = 0; i < messages.length; i += 10) {
    if (i > 0) await crashPoint(settings, 'during-send');
    await deps.queue.send(messages.slice(i, i + 10));
  }
  await crashPoint(settings, 'after-send');
  await ledger.markDispatched(runId);
  return { run, tasks: messages.length };
}
