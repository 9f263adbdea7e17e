import pLimit from 'p-limit';
import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import {
  customerMessageOf,
  DropshipError,
  type DropshipErrorOptions,
  INTERNAL_CUSTOMER_MESSAGE,
  repeatsOf,
} from '../../contracts/errors.js';
import { openTarget } from '../../destinations/open.js';
import type { DestinationPort } from '../../destinations/port.js';
import { createLogger, errorFields, type Logger } from '../../log/logger.js';
import { errorText } from '../../notify/reasons.js';
import { folderName } from '../../pipeline/sink/layout.js';
import { listTables } from '../../pipeline/source/catalog.js';
import { receiptSelection, selectTables } from '../../pipeline/source/select.js';
import { type PendingSnapshot, Snapshot, snapshotInfo, sourceSession } from '../../pipeline/source/snapshot.js';
import { prewarmTableExport, type TableResult } from '../../pipeline/table.js';
import { nowMicros } from '../../receipt/receipt.js';
import { DestinationChanged, type Ledger, RunInProgress } from '../../store/ledger/ledger.js';
import type { OpenRun, Run, Trigger } from '../../store/ledger/rows.js';
import { dispatchRunOutcome } from '../lifecycle/ended.js';
import { type Faults, noFaults } from '../lifecycle/faults.js';
import { finishRun } from '../lifecycle/finish.js';
import { newRunId, runTableTask } from '../lifecycle/lifecycle.js';
import { RunPolicy } from '../lifecycle/policy.js';
import { PreflightError, prepareRun } from '../lifecycle/prepare.js';
import { cliOwnerId, OwnerLost, RunOwner } from '../liveness/owner.js';
import { sweepRuns } from '../liveness/sweep.js';
import type { AccountOutcome, Reporter } from '../progress/reporter.js';

/**
 * One account's run: assume the customer's role (fails fast on a wrong role or external ID),
 * open one snapshot, export every table several at a time, and write receipt.json last — only
 * when every table succeeded. A failed run writes no receipt and leaves the previous one as it was.
 */
export class RunError extends DropshipError {
  readonly code: string = 'run';
  constructor(
    message: string,
    /**
     * Each failed table and why. Not dead: the customer's words for the run's failure are chosen
     * from these messages (src/notify/reasons.ts `errorText` reads `failures` of any error in the
     * chain), so a table refused by the bucket tells the customer `write_denied`, not `internal`.
     * `repeats` / `customerMessage` are the table error's own verdict and sentence: one table whose
     * failure repeats (every later run fails it the same way) makes the run's failure repeat.
     */
    readonly failures: { table: string; message: string; repeats?: boolean; customerMessage?: string }[] = [],
    options?: DropshipErrorOptions,
  ) {
    const repeating = failures.find((f) => f.repeats === true);
    super(message, {
      ...(repeating ? { repeats: true, customerMessage: repeating.customerMessage ?? INTERNAL_CUSTOMER_MESSAGE } : {}),
      ...options,
    });
    this.name = 'RunError';
  }
}

export interface AccountRunDeps {
  sourceUrl: string;
  settings: Settings;
  reporter: Reporter;
  /** Every run and table task is recorded here (dropship runs list|show). */
  ledger: Ledger;
  trigger?: Trigger;
  slot?: string;
  signal?: AbortSignal;
  /** Start time in µs (tests pin it to put two runs in one minute's folder). */
  clock?: () => bigint;
  /** Operational lines (an abandoned run ended, a ledger write that failed); silent when absent. */
  log?: Logger;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts, from the wiring); none when absent. */
  faults?: Faults;
}

/** The in-process driver: one snapshot, tables p-limited, each through the shared task lifecycle. */
export async function exportAccount(dest: Destination, deps: AccountRunDeps): Promise<AccountOutcome> {
  const startedMicros = (deps.clock ?? nowMicros)();
  const start = new Date(Number(startedMicros / 1000n));
  const runId = newRunId(start);
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  const { settings, reporter, ledger } = deps;
  const log = deps.log ?? createLogger({ level: 'silent' });
  const faults = deps.faults ?? noFaults;
  const failures: RunError['failures'][number][] = [];
  prewarmTableExport(dest); // the compression worker's start overlaps the run's opening

  // The destination's port for this run (src/destinations/: S3 behind an assumed role, or a local directory).
  let port: DestinationPort | undefined;
  let unopened: unknown;
  try {
    port = openTarget(dest, runId, settings);
  } catch (e) {
    unopened = e;
  }
  // Whether the ledger has the run (set once it is recorded).
  let opened = false;
  /**
   * A run refused before it opened (its pre-flight: the role, the bucket, the source schema) is recorded ended in the
   * ledger, as the fan-out path records one — `runs list/show` show it, as its webhook and the failure streak name it
   * (red team: the run id a customer's `delivery.failed` carried was unknown to `dropship runs show`). Only the outcome
   * event when the ledger cannot take the run; false when the destination changed meanwhile (nothing to tell).
   */
  const recordRefused = async (error: unknown): Promise<boolean> => {
    try {
      await ledger.openRun({
        runId,
        accountId: dest.accountId,
        trigger: deps.trigger ?? 'cli',
        slot: deps.slot ?? null,
        layout: dest.layout,
        folder: '',
        startedMicros,
        tables: [],
        owner: cliOwnerId(),
        staleSeconds: settings.DROPSHIP_RUN_STALE_SECONDS,
        destination: dest,
        refused: errorText(error),
      });
      return true;
    } catch (e) {
      if (e instanceof DestinationChanged) return false;
      await ledger.outcomes
        .failedBeforeOpening({ runId, destination: dest, error: errorText(error) })
        .catch((err: unknown) =>
          log.error({ accountId: dest.accountId, runId, ...errorFields(err) }, 'could not record the run outcome'),
        );
      return true;
    }
  };
  const fail = async (error: unknown): Promise<AccountOutcome> => {
    const outcome: AccountOutcome = { ok: false, runId, error, failures, seconds: seconds() };
    // The run's end is in the ledger with its outcome event (a run that failed before it opened gets
    // one here): status.json, webhook, failure streak / pause, metrics (src/notify/dispatch.ts).
    // A run refused because another one is in progress, or because its destination changed while it
    // was opening (the copy it was given is no longer current), is not a failed delivery; nor is
    // anything told to a disabled account.
    // Nor a run its operator interrupted before it opened (Ctrl-C on `export --due` while it waited its turn or was
    // in its pre-flight): nothing of it was recorded, and the customer has nothing to hear.
    const interruptedUnopened = !opened && deps.signal?.aborted === true;
    if (
      port &&
      !interruptedUnopened &&
      !(error instanceof PreflightError && error.check === 'disabled') &&
      !(error instanceof RunInProgress) &&
      !(error instanceof DestinationChanged)
    ) {
      if (!opened && !(await recordRefused(error))) {
        reporter.accountDone(dest.accountId, outcome);
        return outcome;
      }
      await dispatchRunOutcome({ ledger, settings, log, port }, runId, error);
    }
    reporter.accountDone(dest.accountId, outcome);
    return outcome;
  };

  if (unopened || !port) return fail(unopened);
  const target = port;
  const session = sourceSession(settings);
  let snapshot: Snapshot | undefined;
  let owner: RunOwner | undefined;
  // Opened while the pre-flight's checks wait (its `warm`): the snapshot holder's connection and the owner's lock.
  let holder: PendingSnapshot | undefined;
  let locking: Promise<RunOwner> | undefined;
  const lockOwner = (): Promise<RunOwner> =>
    RunOwner.lock(ledger, runId, {
      staleSeconds: settings.DROPSHIP_RUN_STALE_SECONDS,
      idleInTransactionSeconds: settings.DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS,
      log,
    });
  // A destination problem (role, bucket, permission) fails every table alike: stop early.
  const stop = new AbortController();
  let signal: AbortSignal = deps.signal ? AbortSignal.any([deps.signal, stop.signal]) : stop.signal;
  try {
    const sweep = () =>
      sweepRuns(
        { ledger, settings, log, destination: async () => dest, by: `run ${runId}` },
        { accountId: dest.accountId },
      );
    // Enabled, leftovers swept, role and external ID checked, selection read in the run's snapshot.
    const selected = await prepareRun(dest, {
      settings,
      pool: ledger.pool,
      port: target,
      sweep,
      signal,
      warm: () => {
        holder = Snapshot.connectHolder(deps.sourceUrl, `dropship ${dest.accountId}`, session);
        locking = lockOwner();
        locking.catch(() => {}); // awaited below; a run refused before then closes what it got (finally)
      },
      select: async () => {
        const opened = await (
          holder ?? Snapshot.connectHolder(deps.sourceUrl, `dropship ${dest.accountId}`, session)
        ).open();
        snapshot = opened;
        return selectTables(
          opened.holder,
          dest.sourceSchema,
          await listTables(opened.holder, dest.sourceSchema),
          dest.selection,
        );
      },
    });
    const snap = snapshot;
    if (!snap) throw new Error('the pre-flight returned without reading the selection');
    const tables = selected.tables;
    // The first tables' readers join the snapshot while the run is recorded (as many as start at once; given back if
    // another run of the account is active and this one must wait for it).
    snap.prejoin(Math.min(settings.DROPSHIP_TABLE_CONCURRENCY, tables.length), `dropship ${dest.accountId}`);
    owner = await (locking ?? lockOwner());
    const { folder } = await openRunAfterSweep(
      sweep,
      {
        runId,
        accountId: dest.accountId,
        trigger: deps.trigger ?? 'cli',
        slot: deps.slot ?? null,
        layout: dest.layout,
        folder: folderName(start, dest.layout),
        laterFolder: (minutes) => folderName(new Date(start.getTime() + minutes * 60_000), dest.layout),
        startedMicros,
        tables: tables.map((t) => t.name),
        maxAttempts: 1,
        owner: cliOwnerId(),
        ownerLock: true,
        staleSeconds: settings.DROPSHIP_RUN_STALE_SECONDS,
        destination: dest,
        selection: { config: dest.selection, receipt: receiptSelection(dest.selection, selected) },
      },
      ledger,
      () => snap.unjoin(),
    );
    opened = true;
    owner.start(() => snap.ping());
    signal = AbortSignal.any([signal, owner.signal]);
    await faults.at('after-open-run');
    signal.throwIfAborted();
    reporter.accountStarted(
      dest.accountId,
      runId,
      tables.map((t) => t.name),
      // A tenant's share of a table is unknown to the planner's per-table estimate.
      tables.map((t) => (selected.filters.has(t.name) ? null : t.estimatedRows)),
    );
    const limit = pLimit(settings.DROPSHIP_TABLE_CONCURRENCY);
    const run = { runId, accountId: dest.accountId, folder, destinationGeneration: dest.generation };
    const settled = await Promise.allSettled(
      tables.map((table) =>
        limit(async () => {
          const outcome = await runTableTask({
            task: { runId, table: table.name },
            run,
            dest,
            port: target,
            ledger,
            settings,
            leaseSeconds: 3600,
            connect: () => snap.connect(`dropship ${dest.accountId}`),
            source: { url: deps.sourceUrl, session, applicationName: `dropship ${dest.accountId}` },
            // The id as the reading transaction reports it (so the receipt states what was read, not what was meant).
            snapshotOf: async (c) => ({ id: (await snapshotInfo(c)).id, at: snap.info.at }),
            plan: async () => ({ table, rowFilter: selected.filters.get(table.name) }),
            signal,
            onProgress: (p) => reporter.tableProgress(dest.accountId, p),
            policy: RunPolicy.inProcess,
            faults,
          });
          if (outcome.state === 'declined') {
            const e = new RunError(`table ${table.name}: could not claim its task (${outcome.reason})`);
            reporter.tableFailed(dest.accountId, table.name, e);
            throw e;
          }
          if (outcome.state === 'released') {
            const e = outcome.error;
            if (target.deniesAccess(e.cause)) stop.abort(e.cause);
            reporter.tableFailed(dest.accountId, table.name, e);
            throw e;
          }
          reporter.tableDone(dest.accountId, outcome.result);
          return outcome.result;
        }),
      ),
    );
    const results: TableResult[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') results.push(s.value);
      else {
        const name = tables[i]!.name;
        const reason = s.reason as Error;
        const message =
          // The abort reaches the table directly, or wrapped in its TableExportError.
          stop.signal.aborted && (reason?.name === 'AbortError' || (reason?.cause as Error)?.name === 'AbortError')
            ? `not exported: the run stopped after a destination error (${(stop.signal.reason as Error).message})`
            : (reason?.message ?? String(reason));
        failures.push({
          table: name,
          message,
          repeats: repeatsOf(reason),
          customerMessage: customerMessageOf(reason),
        });
      }
    });
    // Stopped (Ctrl-C, SIGTERM, cancelled) after the last COPY: no receipt.
    deps.signal?.throwIfAborted();
    owner.signal.throwIfAborted();
    // Ended by someone else (cancelled) before the owner's next heartbeat noticed: say so.
    const now = await ledger.getRun(runId);
    if (now && now.status !== 'running')
      throw stopped(dest, new OwnerLost(`run ${runId} was ${now.status}: ${now.error ?? 'no reason recorded'}`));
    if (failures.length > 0) {
      throw new RunError(
        `account ${dest.accountId}: ${failures.length} of ${tables.length} tables failed; no receipt written`,
        failures,
      );
    }
    await faults.at('after-last-task');
    // Publishing the receipt also records the outcome (status.json, webhook, metrics: finishRun).
    const receiptKey = await finishWithRetries(dest, runId, target, { ledger, settings, signal, faults });
    const outcome: AccountOutcome = {
      ok: true,
      runId,
      receiptKey,
      tables: results,
      seconds: seconds(),
      leftOut: selected.leftOut,
    };
    reporter.accountDone(dest.accountId, outcome);
    return outcome;
  } catch (e) {
    const external = [deps.signal, owner?.signal].find((s) => s?.aborted);
    const error = external ? stopped(dest, external.reason) : e;
    if (opened) {
      try {
        // Stopped by its operator (Ctrl-C, SIGTERM, SIGHUP): cancelled, as `dropship runs cancel` would — told to
        // the customer, never counted toward the pause (several interrupted runs paused a customer's deliveries).
        const interrupted = external !== undefined && external === deps.signal;
        await ledger.failRun({
          runId,
          error: (error as Error).message,
          ...(interrupted ? { status: 'cancelled' } : {}),
        });
      } catch (err) {
        log.error(
          { accountId: dest.accountId, runId, ...errorFields(err) },
          'could not record the failed run; the next run or the sweeper ends it as abandoned',
        );
      }
    }
    return await fail(error);
  } finally {
    owner ??= await locking?.catch(() => undefined);
    await owner?.close();
    await snapshot?.close();
    await holder?.close();
    port.close();
  }
}

/**
 * Opens the run; if another run of the account is still active, sweeps again for up to 2 s first.
 * A process killed a moment ago still holds its advisory lock until Postgres has finished ending its
 * session (milliseconds): an operator's immediate rerun must not be refused for that.
 */
async function openRunAfterSweep(
  sweep: () => Promise<unknown>,
  run: OpenRun,
  ledger: Ledger,
  /** Called once when another run is active: what the run opened ahead for its tables is given back while it waits. */
  onBusy: () => Promise<void>,
): Promise<Run> {
  for (let i = 0; ; i++) {
    try {
      return await ledger.openRun(run);
    } catch (e) {
      if (!(e instanceof RunInProgress) || i >= 10) throw e;
      if (i === 0) await onBusy();
      await new Promise((r) => setTimeout(r, 200));
      await sweep();
    }
  }
}

/** An account of several that an interruption reached before its run started. */
function notStarted(dest: Destination, reason: unknown): AccountOutcome {
  const why = reason instanceof Error ? reason.message : String(reason);
  const error = new RunError(`account ${dest.accountId}: not started (${why}); nothing recorded`, [], {
    cause: reason,
  });
  return { ok: false, runId: '', error, failures: [], seconds: 0, notStarted: true };
}

function stopped(dest: Destination, reason: unknown): RunError {
  const why = reason instanceof Error ? reason.message : String(reason);
  return new RunError(`account ${dest.accountId}: run stopped (${why}); no receipt written`, [], { cause: reason });
}

/**
 * Finishing in-process: a retryable failure is retried a few times (the SDK already retried each
 * request); if it still fails, the run stays `finishing` and the account's next run or the sweeper
 * publishes the same recorded receipt bytes.
 */
async function finishWithRetries(
  dest: Destination,
  runId: string,
  port: DestinationPort,
  deps: { ledger: Ledger; settings: Settings; signal: AbortSignal; faults: Faults },
): Promise<string> {
  let last: Error | undefined;
  for (let round = 0; round < 3; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, 500 * 3 ** (round - 1)));
    const outcome = await finishRun(deps.ledger, runId, dest, port, {
      settings: deps.settings,
      signal: deps.signal,
      faults: deps.faults,
    });
    if (outcome.status === 'succeeded') return outcome.receiptKey;
    if (outcome.status === 'failed')
      throw new RunError(`account ${dest.accountId}: ${outcome.error.message}`, [], { cause: outcome.error });
    if (outcome.status === 'not-ready')
      throw new RunError(
        `account ${dest.accountId}: run ${runId} could not be finished (see: dropship runs show ${runId})`,
      );
    last = outcome.error;
  }
  throw new RunError(
    `account ${dest.accountId}: run ${runId} is finishing but its receipt could not be written yet (${last?.message}); ` +
      'the next run of the account or the sweeper will publish it',
    [],
    { cause: last },
  );
}

/**
 * How many accounts run at once: `DROPSHIP_ACCOUNT_CONCURRENCY`, but fewer than the ledger pool's connections. Each
 * running account holds one of them for its owner's lock for the whole run (src/run/liveness/owner.ts), from its
 * first moment; with as many accounts running as the pool has connections, none could make another statement and
 * every one would wait forever (the CLI's pool follows the setting: src/cli/app.ts).
 */
function accountConcurrency(deps: AccountRunDeps): number {
  const wanted = deps.settings.DROPSHIP_ACCOUNT_CONCURRENCY;
  const poolMax = deps.ledger.pool.options?.max ?? 10; // pg's default
  if (wanted < poolMax) return wanted;
  const fits = Math.max(1, poolMax - 1);
  deps.log?.warn(
    { wanted, poolMax, concurrency: fits },
    `DROPSHIP_ACCOUNT_CONCURRENCY ${wanted} needs more than the registry pool's ${poolMax} connections (one per running account holds its run's lock): ${fits} at a time`,
  );
  return fits;
}

/**
 * Several accounts, a few at a time; each account's failure stays its own.
 */
export async function exportAccounts(dests: Destination[], deps: AccountRunDeps): Promise<Map<string, AccountOutcome>> {
  const limit = pLimit(accountConcurrency(deps));
  const outcomes = new Map<string, AccountOutcome>();
  await Promise.all(
    dests.map((d) =>
      limit(async () => {
        // Interrupted while it waited its turn: not started, nothing recorded or told.
        if (deps.signal?.aborted) {
          outcomes.set(d.accountId, notStarted(d, deps.signal.reason));
          return;
        }
        outcomes.set(d.accountId, await exportAccount(d, deps));
      }),
    ),
  );
  return outcomes;
}
