import pLimit from 'p-limit';
import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import { messageLabel, type TaskMessage } from '../../contracts/task.js';
import { openTarget } from '../../destinations/open.js';
import { errorFields, type Logger } from '../../log/logger.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { ActiveRun } from '../../store/ledger/rows.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';
import { finishRun } from '../lifecycle/finish.js';

/**
 * Ends what died. The same code runs at the start of every run of an account (CLI, schedule,
 * manual: only that account's runs) and in the periodic sweeper Lambda (every account):
 *
 *   in-process run (owner `cli:…`), owner dead — its advisory lock is gone, or its heartbeat is
 *   older than DROPSHIP_RUN_STALE_SECONDS:
 *     - every task succeeded, or it was finishing → finished (its recorded receipt bytes published)
 *     - otherwise → `failed` with "abandoned: …" (no receipt; the next run re-exports everything)
 *   fan-out run (owner `fan-out`):
 *     - finishing with its lease run out, or every task succeeded and silent → finished
 *     - its task messages were never all sent (the opener died during SendMessage) and it has been
 *       silent for the stale bound → the unfinished tasks are sent again (duplicates are harmless)
 *     - a task whose worker died (lease run out) → its message is sent again, with the run's pending
 *       whole tables (a packed message's tables after the dead one); a task out of attempts fails
 *       the run when that message is claimed
 *     - silent for LOST_MESSAGE_SECONDS with tasks still pending → their messages are taken as lost (a purged
 *       queue, a message deleted by hand) and sent again: without it the run stayed open for ever and every later
 *       slot of the account was skipped (red team, fan-out)
 *   Every re-send of a task is at most once per task lease (`takeForResend`).
 *
 * A `finishing` run is never failed here: its receipt may already be published.
 */
/**
 * A dispatched run silent this long with tasks pending has lost their messages: a slot's backlog drains before the
 * next slot (docs/operations/capacity.md), 11 hours at most with the default slots.
 */
export const LOST_MESSAGE_SECONDS = 12 * 3600;

export interface SweepDeps {
  ledger: Ledger;
  settings: Settings;
  log: Logger;
  /**
   * The registry's current destination — used only for runs opened before runs recorded their own
   * (issue 22), and only while it is still the generation and version such a run serves. Every other
   * run is finished with its frozen copy (`run.destination`), never with the destination as it is now.
   */
  destination: (accountId: string) => Promise<Destination>;
  /** Re-sends fan-out task messages (the Lambda sweeper); without it, fan-out runs are only finished. */
  resend?: (messages: TaskMessage[]) => Promise<void>;
  /** Who sweeps (recorded in the error of an ended run): `run <id>` or `sweeper`. */
  by: string;
  /**
   * Tell each ended run's customer at once (status.json, webhook: `dispatchRunOutcome`) — the default. The periodic
   * function passes false: it dispatches every pending outcome right after the sweep, accounts side by side within a
   * budget (src/schedule/tidy.ts), so a customer's webhook that never answers holds no other account's run here (red
   * team, webhooks: ~18 s per such run, one after another, and the Lambda's pool of 3 allows only two sweeps at once).
   */
  tell?: boolean;
}

export type SweepAction = 'alive' | 'ended' | 'finished' | 'finish-pending' | 'finish-failed' | 'resent' | 'waiting';

export interface SweepResult {
  runId: string;
  accountId: string;
  action: SweepAction;
  detail?: string;
}

/**
 * Runs swept side by side, up to 8 (each run is another account's: one active run per account). Ending a run tells its customer
 * (status.json, the webhook with its retries, ~18 s against an endpoint that never answers): swept one after another,
 * each such run held every later account's — a lost task message re-sent, an orphaned receipt published — and ~16 of
 * them used up the sweeper's 300 s (red team, webhooks).
 */
export const SWEEP_CONCURRENCY = 8;

export async function sweepRuns(deps: SweepDeps, opts: { accountId?: string } = {}): Promise<SweepResult[]> {
  // Never more runs at once than the ledger pool has connections to spare (the Lambdas' pool has 3): a sweep whose
  // transaction waits for a second connection always finds one.
  const poolMax = deps.ledger.pool.options?.max ?? 10; // pg's default
  const limit = pLimit(Math.max(1, Math.min(SWEEP_CONCURRENCY, poolMax - 1)));
  return Promise.all(
    (await deps.ledger.activeRuns(opts.accountId)).map((run) =>
      limit(async (): Promise<SweepResult> => {
        try {
          return await sweepRun(run, deps);
        } catch (e) {
          deps.log.error({ accountId: run.accountId, runId: run.runId, ...errorFields(e) }, 'sweeping a run failed');
          return { runId: run.runId, accountId: run.accountId, action: 'waiting', detail: (e as Error).message };
        }
      }),
    ),
  );
}

function isInProcess(run: ActiveRun): boolean {
  return run.owner !== 'fan-out';
}

async function sweepRun(run: ActiveRun, deps: SweepDeps): Promise<SweepResult> {
  const { ledger, log } = deps;
  const base = { runId: run.runId, accountId: run.accountId };
  const silent = run.silentSeconds > run.staleSeconds;
  const allDone = run.tasksTotal > 0 && run.tasksSucceeded === run.tasksTotal;

  if (isInProcess(run)) {
    const dead = run.ownerGone || silent;
    if (!dead) return { ...base, action: 'alive' };
    const why = run.ownerGone
      ? `its owner ${run.owner ?? '(unknown)'} is gone (its database session ended)`
      : `its owner ${run.owner ?? '(unknown)'} has not been heard from for ${Math.round(run.silentSeconds)} s (DROPSHIP_RUN_STALE_SECONDS=${run.staleSeconds})`;
    if (run.status === 'finishing' || allDone) return finish(run, deps, why, true);
    const error = `abandoned: ${why}; ended by ${deps.by}`;
    if (await ledger.failRun({ runId: run.runId, error })) {
      log.warn({ ...base, owner: run.owner, reason: why }, 'abandoned run ended');
      if (deps.tell !== false) await dispatchRunOutcome(deps, run.runId);
      return { ...base, action: 'ended', detail: error };
    }
    return { ...base, action: 'waiting', detail: 'the run changed state meanwhile' };
  }

  if (run.status === 'finishing') {
    if (!run.finishLeaseExpired) return { ...base, action: 'alive' };
    return finish(run, deps, 'its finisher stopped before the run was marked succeeded', false);
  }
  if (allDone && silent) return finish(run, deps, 'every task succeeded but nobody finished the run', false);
  // A running fan-out run with no task has nothing to send or finish: ended once silent (a release before runs
  // refused by their pre-flight were recorded failed at once opened them with no task, then failed them apart).
  if (run.tasksTotal === 0 && run.status === 'running' && silent) {
    const error = `ended by ${deps.by}: the run has no task and its opener stopped before it ended it`;
    if (await ledger.failRun({ runId: run.runId, error })) {
      log.warn(base, 'run with no task ended');
      if (deps.tell !== false) await dispatchRunOutcome(deps, run.runId);
      return { ...base, action: 'ended', detail: error };
    }
    return { ...base, action: 'waiting', detail: 'the run changed state meanwhile' };
  }
  if (!deps.resend) return { ...base, action: silent ? 'waiting' : 'alive' };

  // Re-sent tasks travel one per message (the ledger has no size estimates to pack by; duplicates of
  // tasks whose messages are still queued find them done or busy, which is harmless).
  const message = (t: { table: string; part: number }): TaskMessage => ({
    runId: run.runId,
    accountId: run.accountId,
    table: t.table,
    ...(t.part ? { part: t.part } : {}),
  });
  const candidates: { table: string; part: number }[] = [];
  if (run.dispatchedAt === null && silent) {
    for (const t of await ledger.tasks(run.runId))
      if (t.status === 'pending' || t.status === 'running') candidates.push(t);
  } else {
    const expired = await ledger.expiredTasks(run.runId);
    candidates.push(...expired);
    // A dead worker of a packed message leaves the tables after its current one pending, and the
    // message itself stays invisible for the queue's visibility timeout: send the run's pending whole
    // tables again with the expired tasks (whole tables only: key-range parts are never packed).
    if (expired.length > 0) {
      for (const t of await ledger.tasks(run.runId)) if (t.status === 'pending' && t.parts === 1) candidates.push(t);
    } else if (run.silentSeconds > LOST_MESSAGE_SECONDS) {
      for (const t of await ledger.tasks(run.runId)) if (t.status === 'pending') candidates.push(t);
    }
  }
  // Each task at most once per task lease: its re-sent message may wait in a backed-up queue past the next sweeps.
  const taken = await ledger.takeForResend(run.runId, candidates, deps.settings.DROPSHIP_TASK_LEASE_SECONDS);
  const resend = taken.map(message);
  if (resend.length === 0) return { ...base, action: 'alive' };
  try {
    await deps.resend(resend);
  } catch (e) {
    await ledger.untakeResend(run.runId, taken).catch(() => {});
    throw e;
  }
  await ledger.markDispatched(run.runId);
  log.warn(
    { ...base, tasks: resend.map(messageLabel) },
    run.dispatchedAt === null ? 'undelivered tasks sent again' : 'tasks of dead workers sent again',
  );
  return { ...base, action: 'resent', detail: `${resend.length} task(s)` };
}

async function finish(run: ActiveRun, deps: SweepDeps, why: string, takeOver: boolean): Promise<SweepResult> {
  const base = { runId: run.runId, accountId: run.accountId };
  const dest = run.destination ?? (await deps.destination(run.accountId));
  if (
    !run.destination &&
    ((run.destinationGeneration !== null && dest.generation !== run.destinationGeneration) ||
      (run.destinationVersion !== null && dest.version !== run.destinationVersion))
  )
    return { ...base, action: 'waiting', detail: 'the run serves a destination version that is no longer current' };
  const port = openTarget(dest, run.runId, deps.settings);
  try {
    const outcome = await finishRun(deps.ledger, run.runId, dest, port, { settings: deps.settings, takeOver });
    switch (outcome.status) {
      case 'succeeded':
        deps.log.warn(
          { ...base, owner: run.owner, reason: why, receiptKey: outcome.receiptKey },
          'orphaned run finished',
        );
        return { ...base, action: 'finished', detail: why };
      case 'pending':
        deps.log.warn(
          { ...base, reason: why, ...errorFields(outcome.error) },
          'orphaned run could not be finished yet',
        );
        return { ...base, action: 'finish-pending', detail: outcome.error.message };
      case 'failed':
        deps.log.error({ ...base, reason: why, ...errorFields(outcome.error) }, 'orphaned run failed while finishing');
        if (deps.tell !== false) await dispatchRunOutcome({ ...deps, port }, run.runId, outcome.error);
        return { ...base, action: 'finish-failed', detail: outcome.error.message };
      default:
        return { ...base, action: 'waiting', detail: 'another finisher holds the run' };
    }
  } finally {
    port.close();
  }
}
