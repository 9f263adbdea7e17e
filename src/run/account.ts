import pLimit from 'p-limit';
import type { Destination } from '../accounts/destination.js';
import { DestinationAccessError, destinationClients, verifyAssumeRole } from '../aws/clients.js';
import type { Settings } from '../config/settings.js';
import { ensureExternalIdEnforced } from '../notify/drift.js';
import { recordRunOutcome } from '../notify/outcome.js';
import { nowMicros } from '../receipt/receipt.js';
import { folderName } from '../sink/layout.js';
import { listTables } from '../source/catalog.js';
import { release, Snapshot } from '../source/snapshot.js';
import { finishRun } from './finish.js';
import { type Ledger, RunInProgress, type Trigger } from './ledger.js';
import type { AccountOutcome, Reporter } from './reporter.js';
import { exportTable, type TableResult } from './table.js';
import { coverStaleShards, newRunId } from './task.js';

/**
 * One account's run: assume the customer's role (fails fast on a wrong role or external ID),
 * open one snapshot, export every table several at a time, and write receipt.json last — only
 * when every table succeeded. A failed run writes no receipt and leaves the previous one as it was.
 */
export class RunError extends Error {
  constructor(
    message: string,
    readonly failures: { table: string; message: string }[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
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
}

export async function exportAccount(dest: Destination, deps: AccountRunDeps): Promise<AccountOutcome> {
  const startedMicros = (deps.clock ?? nowMicros)();
  const start = new Date(Number(startedMicros / 1000n));
  const runId = newRunId(start);
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  const { settings, reporter } = deps;
  const failures: { table: string; message: string }[] = [];

  const clients = dest.enabled ? destinationClients(dest, runId, settings) : undefined;
  const fail = async (error: unknown): Promise<AccountOutcome> => {
    const outcome: AccountOutcome = { ok: false, runId, error, failures, seconds: seconds() };
    // status.json, webhook, failure streak / pause, metrics (src/notify/outcome.ts).
    // A run refused because another one is in progress is not a failed delivery.
    if (clients && !(error instanceof RunInProgress))
      await recordRunOutcome(
        { pool: deps.ledger.pool, settings, s3: clients.s3 },
        { accountId: dest.accountId, runId, ok: false, error },
      );
    reporter.accountDone(dest.accountId, outcome);
    return outcome;
  };

  if (!clients) return fail(new RunError(`account ${dest.accountId} is disabled`));
  let snapshot: Snapshot | undefined;
  let opened = false;
  try {
    await verifyAssumeRole(dest, clients);
    await ensureExternalIdEnforced(deps.ledger.pool, dest);
    snapshot = await Snapshot.open(deps.sourceUrl, `dropship ${dest.accountId}`);
    const tables = await listTables(snapshot.holder, dest.sourceSchema);
    if (tables.length === 0) {
      throw new RunError(
        `account ${dest.accountId}: source schema "${dest.sourceSchema}" has no tables or materialized views`,
      );
    }
    const folder = folderName(start, dest.layout);
    await deps.ledger.openRun({
      runId,
      accountId: dest.accountId,
      trigger: deps.trigger ?? 'cli',
      slot: deps.slot ?? null,
      layout: dest.layout,
      folder,
      startedMicros,
      tables: tables.map((t) => t.name),
      maxAttempts: 1,
    });
    opened = true;
    reporter.accountStarted(
      dest.accountId,
      runId,
      tables.map((t) => t.name),
    );
    // A destination problem (role, bucket, permission) fails every table alike: stop early.
    const stop = new AbortController();
    const signal = deps.signal ? AbortSignal.any([deps.signal, stop.signal]) : stop.signal;
    const limit = pLimit(settings.DROPSHIP_TABLE_CONCURRENCY);
    const snap = snapshot;
    const settled = await Promise.allSettled(
      tables.map((table) =>
        limit(async () => {
          signal.throwIfAborted();
          const claim = await deps.ledger.claimTask(runId, table.name, 3600);
          if (!claim.claimed) throw new RunError(`table ${table.name}: could not claim its task (${claim.reason})`);
          const client = await snap.connect(`dropship ${dest.accountId}`);
          let broken = true;
          try {
            const result = await exportTable({
              client,
              schema: dest.sourceSchema,
              table,
              dest,
              s3: clients.s3,
              folder,
              settings,
              signal,
              onProgress: (p) => reporter.tableProgress(dest.accountId, p),
              onShardOpen: async (index) => {
                await deps.ledger.noteShardsStarted(runId, table.name, index + 1);
              },
            });
            broken = false;
            await coverStaleShards(
              deps.ledger,
              { runId, accountId: dest.accountId, folder },
              dest,
              table,
              result,
              clients.s3,
              settings,
              0,
              0,
            );
            await deps.ledger.completeTask(runId, table.name, claim.attempt, result);
            reporter.tableDone(dest.accountId, result);
            return result;
          } catch (e) {
            if (e instanceof Error && e.cause instanceof DestinationAccessError) stop.abort(e.cause);
            await deps.ledger
              .releaseTask(runId, table.name, claim.attempt, (e as Error).message, true, true)
              .catch(() => {});
            reporter.tableFailed(dest.accountId, table.name, e);
            throw e;
          } finally {
            await release(client, broken);
          }
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
          reason?.name === 'AbortError' && stop.signal.aborted
            ? `not exported: the run stopped after a destination error (${(stop.signal.reason as Error).message})`
            : (reason?.message ?? String(reason));
        failures.push({ table: name, message });
      }
    });
    if (failures.length > 0) {
      throw new RunError(
        `account ${dest.accountId}: ${failures.length} of ${tables.length} tables failed; no receipt written`,
        failures,
      );
    }
    const receiptKey = await finishRun(deps.ledger, runId, dest, clients.s3);
    if (!receiptKey)
      throw new RunError(
        `account ${dest.accountId}: run ${runId} could not be finished (see: dropship runs show ${runId})`,
      );
    const outcome: AccountOutcome = { ok: true, runId, receiptKey, tables: results, seconds: seconds() };
    await recordRunOutcome(
      { pool: deps.ledger.pool, settings, s3: clients.s3 },
      { accountId: dest.accountId, runId, ok: true, receiptKey },
    );
    reporter.accountDone(dest.accountId, outcome);
    return outcome;
  } catch (e) {
    if (opened) await deps.ledger.failRun(runId, (e as Error).message).catch(() => {});
    return await fail(e);
  } finally {
    await snapshot?.close();
    clients.s3.destroy();
  }
}

/**
 * Several accounts, a few at a time; each account's failure stays its own.
 */
export async function exportAccounts(dests: Destination[], deps: AccountRunDeps): Promise<Map<string, AccountOutcome>> {
  const limit = pLimit(deps.settings.DROPSHIP_ACCOUNT_CONCURRENCY);
  const outcomes = new Map<string, AccountOutcome>();
  await Promise.all(
    dests.map((d) =>
      limit(async () => {
        outcomes.set(d.accountId, await exportAccount(d, deps));
      }),
    ),
  );
  return outcomes;
}
