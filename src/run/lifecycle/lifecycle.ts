import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Destination } from '../../accounts/destination.js';
import { deliverChanges } from '../../changes/changes.js';
import type { Settings } from '../../config/settings.js';
import { isRetryable } from '../../contracts/errors.js';
import type { ReadSnapshot } from '../../contracts/receipt.js';
import type { DestinationPort } from '../../destinations/port.js';
import { writeEmptyShard } from '../../pipeline/sink/table-sink.js';
import type { TablePlan } from '../../pipeline/source/catalog.js';
import type { RowFilter } from '../../pipeline/source/select.js';
import { release } from '../../pipeline/source/snapshot.js';
import { exportTable, type SplitSource, type TableProgress, type TableResult } from '../../pipeline/table.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { Claim, Run, Task, TaskRef } from '../../store/ledger/rows.js';
import { type Faults, noFaults } from './faults.js';
import { type FinishOutcome, finishRun } from './finish.js';
import type { RunPolicy } from './policy.js';

/**
 * One table task's lifecycle, shared by both drivers — the in-process driver (`dropship export`:
 * one snapshot, tables p-limited, src/run/drivers/in-process.ts) and the fan-out driver (Lambda workers,
 * src/run/drivers/fan-out.ts, src/run/drivers/task.ts):
 *
 *   claim ──(not claimed)──────────────────────────────▶ declined
 *     │ claimed (attempt n, lease)
 *     ▼
 *   export ──(error / abort)──▶ release ──▶ retry | failed
 *     │ shards uploaded
 *     ▼
 *   cover (stale shards of earlier attempts/runs overwritten with empty files)
 *     │
 *     ▼
 *   complete ──(claim lost / run ended)──▶ declined
 *     │ recorded
 *     ▼
 *   finish (fan-out: the last task writes the receipt; in-process: the driver finishes once) ─▶ done
 *
 * Every transition is one ledger statement fenced by the attempt number, so a dead or late attempt
 * can never overwrite a live one's result.
 */
export type LifecycleState = 'claim' | 'export' | 'cover' | 'complete' | 'finish' | 'release';

export type LifecycleOutcome =
  | { state: 'done'; result: TableResult; finish?: FinishOutcome }
  | { state: 'declined'; reason: Exclude<Claim, { claimed: true }>['reason'] | 'lost-claim' }
  | { state: 'released'; verdict: 'retry' | 'failed'; error: Error };

export interface LifecycleInput {
  task: TaskRef;
  run: Pick<Run, 'runId' | 'accountId' | 'folder'> & Partial<Pick<Run, 'destinationGeneration'>>;
  /** The destination the run was opened for (its frozen copy: issue 22). */
  dest: Destination;
  /** The destination's port, opened for the run (src/destinations/). */
  port: DestinationPort;
  ledger: Ledger;
  settings: Settings;
  /** The task's lease: longer than any attempt can live (see docs/design/run-lifecycle.md). */
  leaseSeconds: number;
  /** A connection reading the source (in the run's snapshot, or in its own transaction). */
  connect: () => Promise<pg.Client>;
  /** How a second thread reads the source (a large table on two cores: src/pipeline/threads/split.ts). */
  source?: SplitSource | undefined;
  /** The snapshot the connection reads in (recorded in the task's result, and so in the receipt). */
  snapshotOf: (client: pg.Client) => Promise<ReadSnapshot>;
  /**
   * The table's plan, resolved on the claimed connection (so catalog and data agree), and in tenant
   * mode the filter that keeps only the tenant's rows (src/pipeline/source/select.ts).
   */
  plan: (client: pg.Client) => Promise<{ table: TablePlan; rowFilter?: RowFilter | undefined }>;
  signal?: AbortSignal;
  onProgress?: (p: TableProgress) => void;
  /**
   * The driver's policy (src/run/lifecycle/policy.ts): whether a retryable failure is retried, a final one
   * fails the run, the task finishes the run after completing, and how often it watches its run.
   */
  policy: RunPolicy;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts); none when absent. */
  faults?: Faults;
  /** Observes every state entered (tests, logs). */
  onState?: (s: LifecycleState) => void;
}

/** Shards of part p are numbered from p × 1,000,000 (the 12-digit index leaves room for both). */
const PART_SHARD_BLOCK = 1_000_000;

export function newRunId(start: Date): string {
  const stamp = start.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${stamp}Z-${randomBytes(3).toString('hex')}`;
}

export async function runTableTask(input: LifecycleInput): Promise<LifecycleOutcome> {
  const { ledger, settings, run, dest, task, policy } = input;
  const faults = input.faults ?? noFaults;
  const part = task.part ?? 0;
  const ref = { runId: run.runId, table: task.table, part };
  const enter = (s: LifecycleState): void => input.onState?.(s);

  enter('claim');
  input.signal?.throwIfAborted();
  const claim = await ledger.claimTask({ ...ref, leaseSeconds: input.leaseSeconds });
  if (!claim.claimed) return { state: 'declined', reason: claim.reason };

  let client: pg.Client | undefined;
  let broken = true;
  // A test's fault hook may stop the task once rows are flowing (mid-copy): it dies, or freezes.
  const freeze = new AbortController();
  let frozen = false;
  const closed = new AbortController();
  const signal = AbortSignal.any([freeze.signal, closed.signal, ...(input.signal ? [input.signal] : [])]);
  let watch: NodeJS.Timeout | undefined;
  const watchEveryMs = policy.watchEveryMs(settings);
  if (watchEveryMs) {
    watch = setInterval(() => {
      ledger.getRun(run.runId).then(
        (r) => {
          if (r && r.status !== 'running' && !closed.signal.aborted)
            closed.abort(new Error(`run ${run.runId} was ${r.status}${r.error ? ` (${r.error})` : ''}`));
        },
        () => {},
      );
    }, watchEveryMs);
    watch.unref();
  }
  try {
    enter('export');
    client = await input.connect();
    const snapshot = await input.snapshotOf(client);
    const { table, rowFilter } = await input.plan(client);
    const row: Task | undefined = await ledger.task({ runId: run.runId, table: task.table, part });
    const shardBase = part * PART_SHARD_BLOCK;
    let copying = false;
    const result = await exportTable({
      ...(row?.keyColumn && row.rangeLo !== null && row.rangeHi !== null
        ? {
            range: {
              keyColumn: row.keyColumn,
              lo: row.rangeLo,
              hi: row.rangeHi,
              first: row.part === 0,
              last: row.part === row.parts - 1,
            },
            shardBase,
          }
        : {}),
      client,
      schema: dest.sourceSchema,
      table,
      rowFilter,
      threads: input.source,
      dest,
      port: input.port,
      folder: run.folder,
      settings,
      signal,
      onProgress: (p) => {
        if (!copying && p.rows > 0) {
          copying = true;
          if (faults.stops('mid-copy')) {
            frozen = true;
            freeze.abort(new Error('frozen at a test fault point'));
          }
        }
        input.onProgress?.(p);
      },
      onShardOpen: async (index) => {
        await ledger.noteShardsStarted({ ...ref, count: index - shardBase + 1 });
      },
    });
    broken = false;
    result.snapshot = snapshot;
    // The COPY may have ended just as the run was stopped: check before anything is recorded.
    signal.throwIfAborted();

    enter('cover');
    await coverStaleShards({
      ledger,
      run,
      dest,
      table,
      result,
      port: input.port,
      settings,
      part,
      shardBase,
    });
    signal.throwIfAborted();
    if (dest.changes && part === 0) {
      // Change set of the whole table, in the same snapshot (src/changes/changes.ts).
      broken = true;
      const changes = await deliverChanges({
        client,
        db: ledger.pool,
        lastSucceededRun: (q) => ledger.lastSucceededRun(q),
        runsEndedBadly: (ids) => ledger.runsEndedBadly(ids),
        schema: dest.sourceSchema,
        table,
        rowFilter,
        dest,
        port: input.port,
        run,
        settings,
        signal,
      });
      broken = false;
      result.changes = changes;
      signal.throwIfAborted();
    }

    enter('complete');
    clearInterval(watch);
    if (!(await ledger.completeTask({ ...ref, attempt: claim.attempt, result }))) {
      return { state: 'declined', reason: 'lost-claim' };
    }
    if (!policy.finishAfterTask) return { state: 'done', result };
    enter('finish');
    await faults.at('after-last-task');
    // The task is complete: a finish that throws (deadline, ledger hiccup) leaves the run for the next
    // finisher (any late delivery, the account's next run, the sweeper); it never releases this task.
    const finish = await finishRun(ledger, run.runId, dest, input.port, {
      settings,
      faults,
      ...(input.signal ? { signal: input.signal } : {}),
    }).catch(
      (e: unknown): FinishOutcome => ({ status: 'pending', error: e instanceof Error ? e : new Error(String(e)) }),
    );
    return { state: 'done', result, finish };
  } catch (e) {
    if (frozen) await faults.at('mid-copy'); // never returns: the task stays claimed, as a dead worker's
    enter('release');
    const error = e instanceof Error ? e : new Error(String(e));
    const verdict = await ledger.releaseTask({
      ...ref,
      attempt: claim.attempt,
      error: error.message,
      retry: policy.retryRetryable && isRetryable(e),
      failRun: policy.failRunOnFinalFailure,
    });
    return { state: 'released', verdict, error };
  } finally {
    clearInterval(watch);
    if (client) await release(client, broken);
  }
}

/**
 * An earlier attempt of this task may have started more shards than this attempt wrote (the table shrank meanwhile).
 * Customers load whole folders, and dropship may not delete, so each such key is overwritten with a valid Parquet file
 * of the same schema and no rows, and listed in the result: the folder, the receipt and the data agree. No other run
 * writes into this folder (`OpenRun.folder`: a folder holds one run), so this run's own attempts are all there is to
 * cover. Each part covers its own block of shard indexes.
 */
async function coverStaleShards({
  ledger,
  run,
  dest,
  table,
  result,
  port,
  settings,
  part,
  shardBase,
}: {
  ledger: Ledger;
  run: Pick<Run, 'runId' | 'accountId' | 'folder'>;
  dest: Destination;
  table: TablePlan;
  /** This attempt's result: the covering empty shards are appended to its files. */
  result: TableResult;
  port: DestinationPort;
  settings: Settings;
  part: number;
  /** The shard index this part's files start at. */
  shardBase: number;
}): Promise<void> {
  const started = await ledger.shardsStarted({ runId: run.runId, table: table.name, part });
  for (let i = result.files.length; i < started; i++)
    result.files.push(
      await writeEmptyShard({
        port,
        dest,
        folder: run.folder,
        objectName: result.objectName,
        specs: table.columns.map((c) => c.spec),
        settings,
        index: shardBase + i,
      }),
    );
  result.bytes = result.files.reduce((n, f) => n + f.bytes, 0);
}
