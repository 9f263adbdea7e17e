import type pg from 'pg';
import type { Destination } from '../../accounts/destination.js';
import { DestinationNotFound, type Registry } from '../../accounts/registry.js';
import type { Settings } from '../../config/settings.js';
import { messageTasks, type TaskMessage } from '../../contracts/task.js';
import { openTarget } from '../../destinations/open.js';
import type { Logger } from '../../log/logger.js';
import { listTables } from '../../pipeline/source/catalog.js';
import { MappingError } from '../../pipeline/source/errors.js';
import { type SelectedTables, selectTables } from '../../pipeline/source/select.js';
import { sourceSession } from '../../pipeline/source/snapshot.js';
import { prewarmTableExport, type TableProgress } from '../../pipeline/table.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { Run } from '../../store/ledger/rows.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';
import type { Faults } from '../lifecycle/faults.js';
import { finishRun } from '../lifecycle/finish.js';
import { runTableTask } from '../lifecycle/lifecycle.js';
import { RunPolicy } from '../lifecycle/policy.js';
import { SharedSnapshot } from '../lifecycle/shared-snapshot.js';

/**
 * The fan-out driver's task execution (Lambda workers): one task message — a table, one key range
 * of it, or several small whole tables packed together (src/run/drivers/pack.ts), one after another
 * on one destination port and one snapshot session — each exported through the shared task lifecycle (src/run/lifecycle/lifecycle.ts). The ledger makes
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
  prewarmTableExport(dest); // the compression worker's start overlaps the task's opening
  // One port (credentials, clients) and one snapshot session for every task the message carries.
  // A warm worker keeps the run's credentials and S3 client for its next tasks (src/destinations/s3/clients.ts).
  const port = openTarget(dest, run.runId, settings, { reuseClients: true });
  // One snapshot for the whole run (src/run/lifecycle/shared-snapshot.ts): the first task's worker holds it.
  const shared = new SharedSnapshot({
    ledger,
    runId: run.runId,
    sourceUrl: deps.sourceUrl,
    session: sourceSession(settings),
    applicationName: `dropship ${dest.accountId}`,
    ...(deps.log ? { log: deps.log } : {}),
  });
  // The run's selection resolved against the catalog, once per snapshot: connections reading in the
  // same snapshot see the same catalog (a task reading in its own snapshot resolves it again).
  const selections = new Map<string, Promise<SelectedTables>>();
  const selectionIn = (client: pg.Client, snapshot: string): Promise<SelectedTables> => {
    let s = selections.get(snapshot);
    if (!s) {
      s = (async () => {
        // The selection as the run opened (the run's frozen destination; an update cancels the run).
        const selection = run.destination
          ? run.destination.selection
          : ((await ledger.selection(run.runId))?.config ?? dest.selection);
        return selectTables(client, dest.sourceSchema, await listTables(client, dest.sourceSchema), selection);
      })();
      selections.set(snapshot, s);
      s.catch(() => selections.delete(snapshot));
    }
    return s;
  };
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
      source: { url: deps.sourceUrl, session: sourceSession(settings), applicationName: `dropship ${dest.accountId}` },
      snapshotOf: (c) => shared.snapshotOf(c),
      plan: async (client) => {
        const selected = await selectionIn(client, (await shared.snapshotOf(client)).id);
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

  /** What one task's lifecycle outcome means for its message. */
  const judge = async (
    task: { table: string; part: number },
    outcome: Awaited<ReturnType<typeof exportOne>>,
  ): Promise<TaskOutcome> => {
    const ref = { runId: run.runId, table: task.table, part: task.part };
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
              delaySeconds: retryDelay(settings, await ledger.task(ref)),
            }
          : { status: 'failed', reason: outcome.error.message };
      case 'declined':
        break;
    }
    if (outcome.reason === 'busy') {
      // Held by another attempt: come back when its lease runs out (a dead worker's lease, or a
      // live one's result), not sooner — every receive counts toward the queue's maxReceiveCount.
      const remaining = await ledger.leaseRemaining(ref);
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
  };

  try {
    const outcomes: { task: { table: string; part: number }; outcome: TaskOutcome }[] = [];
    try {
      // A packed message's tables one after another, each through its own claim, lease and attempt;
      // a run that ended (failed, cancelled) stops the rest (they decline as run-closed anyway).
      for (const task of messageTasks(msg)) {
        if (outcomes.length > 0 && deps.signal?.aborted) {
          // The deadline came between two tables: the rest wait for the message's next delivery.
          outcomes.push({
            task,
            outcome: { status: 'retry', reason: 'the worker stopped at its deadline', delaySeconds: 0 },
          });
          continue;
        }
        const outcome = await judge(task, await exportOne(task.table, task.part));
        outcomes.push({ task, outcome });
        if (outcome.status === 'failed') break;
      }
      // The holder keeps the snapshot open for the run's other tasks, exporting the pending ones itself.
      await shared.holdAndHelp((t) => exportOne(t.table, t.part), deps.signal);
    } finally {
      await shared.close();
    }
    // A task that was to come back may have ended meanwhile (this worker helped with it as the run's
    // snapshot holder, or another attempt finished it): the message need not come back for it.
    for (const o of outcomes) {
      if (o.outcome.status !== 'retry' || outcomes.length === 1) continue;
      const now = await ledger.task({ runId: run.runId, ...o.task });
      if (now?.status === 'succeeded') o.outcome = { status: 'succeeded' };
      else if (now?.status === 'failed') o.outcome = { status: 'failed', reason: now.error ?? 'failed' };
    }
    return combine(outcomes.map((o) => o.outcome));
  } finally {
    port.close();
  }
}

/**
 * One answer for a message from its tasks' outcomes: it comes back if any task needs another
 * attempt (when the last of them can be claimed: a sooner receive would find it busy and count toward
 * maxReceiveCount; its tasks already done are then skipped), it failed if one failed its run, it
 * succeeded if any task did (with the receipt, if its last task published one), else skipped.
 */
export function combine(outcomes: TaskOutcome[]): TaskOutcome {
  const retries = outcomes.filter((o) => o.status === 'retry');
  if (retries.length > 0)
    return {
      status: 'retry',
      reason: retries.map((r) => r.reason).join('; '),
      delaySeconds: Math.max(...retries.map((r) => r.delaySeconds)),
    };
  const failed = outcomes.find((o) => o.status === 'failed');
  if (failed) return failed;
  const succeeded = outcomes.filter((o) => o.status === 'succeeded');
  if (succeeded.length > 0) return succeeded.find((o) => o.receiptKey) ?? succeeded[0]!;
  return outcomes[outcomes.length - 1] ?? { status: 'skipped', reason: 'no task in the message' };
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
