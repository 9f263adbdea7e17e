import type { Destination } from '../../accounts/destination.js';
import { DestinationNotFound, type Registry } from '../../accounts/registry.js';
import type { Settings } from '../../config/settings.js';
import type { TaskMessage } from '../../contracts/task.js';
import { openTarget } from '../../destinations/open.js';
import type { Logger } from '../../log/logger.js';
import { listTables } from '../../pipeline/source/catalog.js';
import { MappingError } from '../../pipeline/source/errors.js';
import { selectTables } from '../../pipeline/source/select.js';
import { sourceSession } from '../../pipeline/source/snapshot.js';
import type { TableProgress } from '../../pipeline/table.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { Run } from '../../store/ledger/rows.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';
import type { Faults } from '../lifecycle/faults.js';
import { finishRun } from '../lifecycle/finish.js';
import { runTableTask } from '../lifecycle/lifecycle.js';
import { RunPolicy } from '../lifecycle/policy.js';
import { SharedSnapshot } from '../lifecycle/shared-snapshot.js';

/**
 * The fan-out driver's task execution (Lambda workers): one task message — a table, or one key
 * range of it — exported through the shared task lifecycle (src/run/lifecycle/lifecycle.ts). The ledger makes
 * duplicate and concurrent deliveries harmless, and the last task to complete writes the receipt.
 * The run itself is started by `startFanOutRun` (src/run/drivers/fan-out.ts).
 *
 * Consistency: every task of a run reads in one snapshot, held open by the worker that ran the
 * run's first task (src/run/lifecycle/shared-snapshot.ts); a task that cannot import it reads in its own and
 * the receipt says so (`consistency: "table"`).
 */
export type TaskOutcome =
  | { status: 'succeeded'; receiptKey?: string }
  | { status: 'skipped'; reason: string }
  /** Deliver again later (busy elsewhere, or a retryable failure); `delaySeconds` is when it can be claimed. */
  | { status: 'retry'; reason: string; delaySeconds: number }
  | { status: 'failed'; reason: string };

export interface TaskDeps {
  sourceUrl: string;
  ledger: Ledger;
  registry: Registry;
  settings: Settings;
  signal?: AbortSignal;
  /** Progress of the table (rows, estimate) for the structured logs. */
  onProgress?: (p: TableProgress) => void;
  /** Operational lines (the run snapshot held and released); silent when absent. */
  log?: Logger;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

export async function runTask(msg: TaskMessage, deps: TaskDeps): Promise<TaskOutcome> {
  const { ledger, settings } = deps;
  const run = await ledger.getRun(msg.runId);
  if (!run) return { status: 'skipped', reason: `unknown run ${msg.runId}` };
  // The destination the run was opened for (issue 22), never the registry's current one: an update
  // or removal cancels the run, and what is still written for it stays under its own bucket/prefix.
  const dest = run.destination ?? (await legacyDestination(deps.registry, run));
  if (!dest) return { status: 'skipped', reason: `the destination of run ${run.runId} was changed or removed` };
  const part = msg.part ?? 0;
  const port = openTarget(dest, run.runId, settings);
  // One snapshot for the whole run (src/run/lifecycle/shared-snapshot.ts): the first task's worker holds it.
  const shared = new SharedSnapshot({
    ledger,
    runId: run.runId,
    sourceUrl: deps.sourceUrl,
    session: sourceSession(settings),
    applicationName: `dropship ${dest.accountId}`,
    ...(deps.log ? { log: deps.log } : {}),
  });
  const exportOne = (table: string, p: number) =>
    runTableTask({
      task: { runId: run.runId, table, part: p },
      run,
      dest,
      port,
      ledger,
      settings,
      leaseSeconds: settings.DROPSHIP_TASK_LEASE_SECONDS,
      connect: () => shared.connect(),
      snapshotOf: (c) => shared.snapshotOf(c),
      plan: async (client) => {
        // The selection as the run opened (the run's frozen destination; an update cancels the run).
        const selection = run.destination
          ? run.destination.selection
          : ((await ledger.selection(run.runId))?.config ?? dest.selection);
        const selected = await selectTables(
          client,
          dest.sourceSchema,
          await listTables(client, dest.sourceSchema),
          selection,
        );
        if (selected.problems.length > 0) throw new MappingError(selected.problems.join('; '));
        const found = selected.tables.find((t) => t.name === table);
        if (!found)
          throw new MappingError(
            `table ${table} no longer exists in schema ${dest.sourceSchema} or is no longer selected`,
          );
        return { table: found, rowFilter: selected.filters.get(found.name) };
      },
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
      policy: RunPolicy.fanOut,
      faults: deps.faults,
    });
  // A run that failed here ended in the ledger with its outcome event: tell the customer now
  // (src/notify/dispatch.ts; a published receipt is told by finishRun itself).
  const recordFailure = (error: Error) => dispatchRunOutcome({ ledger, settings, port }, run.runId, error);
  try {
    let outcome: Awaited<ReturnType<typeof exportOne>>;
    try {
      outcome = await exportOne(msg.table, part);
      // The holder keeps the snapshot open for the run's other tasks, exporting the pending ones itself.
      await shared.holdAndHelp((t) => exportOne(t.table, t.part), deps.signal);
    } finally {
      await shared.close();
    }
    switch (outcome.state) {
      case 'done': {
        const f = outcome.finish;
        if (f?.status === 'succeeded') return { status: 'succeeded', receiptKey: f.receiptKey };
        if (f?.status === 'pending') return { status: 'retry', reason: f.error.message, delaySeconds: 30 };
        if (f?.status === 'failed') {
          await recordFailure(f.error);
          return { status: 'failed', reason: f.error.message };
        }
        return { status: 'succeeded' };
      }
      case 'released':
        if (outcome.verdict === 'failed') await recordFailure(outcome.error);
        return outcome.verdict === 'retry'
          ? {
              status: 'retry',
              reason: outcome.error.message,
              delaySeconds: retryDelay(settings, await ledger.task({ runId: run.runId, table: msg.table, part })),
            }
          : { status: 'failed', reason: outcome.error.message };
      case 'declined':
        break;
    }
    if (outcome.reason === 'busy') {
      // Held by another attempt: come back when its lease runs out (a dead worker's lease, or a
      // live one's result), not sooner — every receive counts toward the queue's maxReceiveCount.
      const remaining = await ledger.leaseRemaining({ runId: run.runId, table: msg.table, part });
      return { status: 'retry', reason: 'another worker holds this task', delaySeconds: Math.ceil(remaining) + 5 };
    }
    if (outcome.reason === 'done') {
      // A previous finisher may have died after the last task completed: finishing is idempotent.
      const f = await finishRun(ledger, run.runId, dest, port, { settings, faults: deps.faults });
      if (f.status === 'succeeded') return { status: 'succeeded', receiptKey: f.receiptKey };
      if (f.status === 'pending') return { status: 'retry', reason: f.error.message, delaySeconds: 30 };
      return { status: 'skipped', reason: 'already done' };
    }
    return { status: 'skipped', reason: outcome.reason };
  } finally {
    port.close();
  }
}

/**
 * A run opened before runs recorded their destination: the registry's row, only while it is still the
 * generation and version the run serves (undefined otherwise — the run delivers nothing more).
 */
async function legacyDestination(registry: Registry, run: Run): Promise<Destination | undefined> {
  const d = await registry.get(run.accountId).catch((e: unknown) => {
    if (e instanceof DestinationNotFound) return undefined;
    throw e;
  });
  if (!d) return undefined;
  if (run.destinationGeneration !== null && d.generation !== run.destinationGeneration) return undefined;
  if (run.destinationVersion !== null && d.version !== run.destinationVersion) return undefined;
  return d;
}

/** Backoff before the next attempt of a released task: 10 s, 30 s, 90 s … (at most 15 minutes). */
function retryDelay(settings: Settings, task: { attempts: number } | undefined): number {
  return Math.min(900, settings.DROPSHIP_TASK_RETRY_SECONDS * 3 ** Math.max(0, (task?.attempts ?? 1) - 1));
}
