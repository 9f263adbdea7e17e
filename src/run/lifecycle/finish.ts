import { setTimeout as sleep } from 'node:timers/promises';
import type { Destination } from '../../accounts/destination.js';
import { ChangeStateStore } from '../../changes/state.js';
import type { Settings } from '../../config/settings.js';
import { isRetryable } from '../../contracts/errors.js';
import type { DestinationPort } from '../../destinations/port.js';
import { receiptKey } from '../../pipeline/sink/layout.js';
import type { TableResult } from '../../pipeline/table.js';
import { expectedReceiptEtag, nextLink, recordLink, sha256Hex } from '../../receipt/chain.js';
import {
  buildReceipt,
  putReceiptBody,
  ReceiptError,
  ReceiptPlaceTaken,
  ReceiptPreconditionFailed,
  receiptBody,
} from '../../receipt/receipt.js';
import { type Ledger, LedgerError } from '../../store/ledger/ledger.js';
import type { Run } from '../../store/ledger/rows.js';
import { dispatchRunOutcome } from './ended.js';
import { type Faults, noFaults } from './faults.js';

/**
 * Finishing a run: whoever wins the run's transition to `finishing` (Ledger.tryFinish) builds the
 * receipt from the ledger's recorded results, records its exact bytes in the ledger, and only then
 * publishes them (PutObject) and marks the run `succeeded`.
 *
 *   - A retryable failure (S3 5xx after the SDK's retries, a dropped connection, the ledger
 *     unreachable) keeps the run `finishing` with its lease released: the next finisher — a retry,
 *     a worker, the account's next run, the sweeper — publishes the SAME recorded bytes. So a
 *     receipt can be published twice, but both copies are byte-identical.
 *   - Only a failure that proves nothing was published (AccessDenied and other non-retryable S3
 *     answers, a contract violation) fails the run. The ledger never says `failed` for a run whose
 *     receipt may be published.
 */
export type FinishOutcome =
  | { status: 'succeeded'; receiptKey: string }
  /** Not every task has succeeded yet, or another finisher holds the lease. */
  | { status: 'not-ready' }
  /** Finishing failed retryably; the run stays `finishing` for the next finisher. */
  | { status: 'pending'; error: Error }
  /** Refused for good before anything was published: the run is `failed`. */
  | { status: 'failed'; error: Error };

export interface FinishOptions {
  settings: Settings;
  signal?: AbortSignal;
  /** Take over a `finishing` run whose owner is known to be dead, even inside its lease. */
  takeOver?: boolean;
  /** Named points a test may make die or freeze (src/run/lifecycle/faults.ts); none when absent. */
  faults?: Faults;
}

export async function finishRun(
  ledger: Ledger,
  runId: string,
  dest: Destination,
  port: DestinationPort,
  opts: FinishOptions,
): Promise<FinishOutcome> {
  opts.signal?.throwIfAborted();
  const run = await ledger.tryFinish({
    runId,
    leaseSeconds: opts.settings.DROPSHIP_RUN_STALE_SECONDS,
    ...(opts.takeOver ? { takeOver: true } : {}),
  });
  if (!run) return { status: 'not-ready' };
  // The run's own destination (issue 22): its receipt goes where its files went, or nowhere. A caller
  // holding another version of the destination (a stale or a newer copy) publishes nothing.
  if (run.destination && !sameDelivery(run.destination, dest)) {
    await ledger.finishPending({ runId, error: 'finisher held another version of the destination' }).catch(() => {});
    return {
      status: 'failed',
      error: new LedgerError(
        `run ${runId} serves version ${run.destination.version} of destination generation ${run.destination.generation}, not the one this finisher was given; nothing published`,
        undefined,
        { retryable: false },
      ),
    };
  }
  let body = run.receiptBody;
  try {
    if (body === null) {
      if (opts.signal?.aborted) {
        // Stopped before anything was recorded: nothing can have been published.
        await ledger.unfinish({ runId, error: null });
        opts.signal.throwIfAborted();
      }
      const tasks = await ledger.tasks(runId);
      // Parts of a split table become one receipt entry: files in key order, totals summed.
      const byTable = new Map<string, TableResult>();
      for (const t of tasks) {
        const r = t.result as TableResult;
        const prev = byTable.get(t.table);
        if (!prev) byTable.set(t.table, { ...r, files: [...r.files] });
        else {
          prev.files.push(...r.files);
          prev.rows += r.rows;
          prev.bytes += r.bytes;
          prev.seconds = Math.max(prev.seconds, r.seconds);
          if (r.changes) prev.changes = r.changes; // computed once per table, by part 0
        }
      }
      const results = [...byTable.values()];
      const reads = tasks.map((t) => ({ table: t.table, part: t.part, snapshot: (t.result as TableResult).snapshot }));
      await withoutMixedChangeSets(ledger, runId, results, reads);
      for (const r of results) r.files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      // The receipt chain's link is fixed with the bytes: a retried finish publishes the same link.
      const link = await nextLink(ledger.pool, run.accountId, runId, run.destinationGeneration ?? 0);
      const receipt = {
        ...buildReceipt(
          run.runId,
          run.startedMicros,
          results,
          run.layout,
          (await ledger.selection(runId))?.receipt,
          reads,
        ),
        ...link,
      };
      body = await ledger.recordReceipt({ runId, body: receiptBody(receipt, { prefix: dest.prefix }) });
    }
  } catch (e) {
    if (e instanceof ReceiptError) {
      await ledger.failRun({ runId, error: e.message, finishingRefused: true });
      return { status: 'failed', error: e };
    }
    if (opts.signal?.aborted) throw e;
    await ledger.finishPending({ runId, error: (e as Error).message }).catch(() => {});
    return { status: 'pending', error: e as Error };
  }
  await (opts.faults ?? noFaults).at('before-receipt-put');
  // The last look before publishing, kept for the PUT: the run is still finishing and still serves its
  // account's current destination version, and an update or removal of the destination (which cancels
  // the account's open runs in the transaction of the change) waits until this run's outcome is recorded.
  const held = await ledger.holdForPublication(runId, run.accountId).catch((e: unknown) => e as Error);
  if (held instanceof Error) {
    await ledger.finishPending({ runId, error: held.message }).catch(() => {});
    return { status: 'pending', error: held };
  }
  if (!held.ok) return { status: 'failed', error: new LedgerError(held.why, undefined, { retryable: false }) };
  let published: FinishOutcome;
  try {
    published = await publishAndRecord(ledger, run, dest, port, body, opts);
  } finally {
    await held.hold.release();
  }
  if (published.status !== 'succeeded') return published;
  // The run ended in the ledger with its outcome event: tell the customer now (src/notify/dispatch.ts; never throws).
  await dispatchRunOutcome({ ledger, settings: opts.settings, port }, runId);
  return published;
}

/**
 * The receipt's publication, under the finisher's hold: the PUT (its doubt counted first), then the chain
 * link and the `succeeded` mark — or the run's failure when the destination refused the PUT.
 */
async function publishAndRecord(
  ledger: Ledger,
  run: Run,
  dest: Destination,
  port: DestinationPort,
  body: string,
  opts: FinishOptions,
): Promise<FinishOutcome> {
  const runId = run.runId;
  // Each attempt is one PUT, counted in doubt before it is sent: conditional writes are sent once by the SDK
  // (src/destinations/s3/adapter.ts), so its retries are these, with its backoff.
  const attempts = Math.max(1, opts.settings.DROPSHIP_AWS_MAX_ATTEMPTS);
  let put: { key: string; etag: string | undefined } | undefined;
  for (let attempt = 1; put === undefined; attempt++) {
    if (!(await ledger.receiptPutStarts(runId)))
      return {
        status: 'failed',
        error: new LedgerError(`run ${runId} is no longer finishing`, undefined, { retryable: false }),
      };
    try {
      put = await publishReceipt(ledger, run, dest, port, body);
    } catch (e) {
      const error = e as Error;
      // The destination answered with a refusal: that PUT wrote nothing (no answer — a dropped connection — stays in doubt).
      const refused =
        error instanceof ReceiptPreconditionFailed || error instanceof ReceiptPlaceTaken || port.refused(error);
      if (refused) await ledger.receiptPutRefused(runId).catch(() => {});
      if (isRetryable(error) && attempt < attempts && !opts.signal?.aborted) {
        await sleep(retryDelayMs(attempt), undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => {});
        continue;
      }
      return await receiptNotWritten(ledger, run, error, refused, opts);
    }
  }
  const key = put.key;
  await (opts.faults ?? noFaults).at('after-receipt-put');
  const { sequence } = JSON.parse(body) as { sequence: number };
  await recordLink(ledger.pool, {
    accountId: run.accountId,
    generation: run.destinationGeneration ?? 0,
    runId,
    sequence,
    receiptKey: key,
    sha256: sha256Hex(body),
    etag: put.etag,
    bucket: port.container,
  });
  if (!(await ledger.finishSucceeded({ runId, receiptKey: key }))) {
    // Cancelled (an operator, a change of the destination) while its receipt was being published: the
    // receipt is out there and its chain link is kept, but the run is not a delivery to report.
    return {
      status: 'failed',
      error: new LedgerError(
        `run ${runId} was ended while its receipt was published; not reported as a delivery`,
        undefined,
        {
          retryable: false,
        },
      ),
    };
  }
  return { status: 'succeeded', receiptKey: key };
}

/** The receipt's PUT failed (after its attempts): the run fails when that is final, else stays `finishing`. */
async function receiptNotWritten(
  ledger: Ledger,
  run: Run,
  error: Error,
  refused: boolean,
  opts: FinishOptions,
): Promise<FinishOutcome> {
  const runId = run.runId;
  if (error instanceof ReceiptPreconditionFailed) {
    // A newer receipt is in place (this finisher went on after its run was ended, and a newer run
    // published): this one must not replace it.
    const why = `receipt not written: a newer receipt is already published at ${error.message.split(' ')[0]}; this run's would have replaced it`;
    await ledger.failRun({ runId, error: why, finishingRefused: true });
    return { status: 'failed', error: new LedgerError(why, { cause: error }, { retryable: false }) };
  }
  // Whether an earlier PUT of the run got no answer (it may have landed): then no failure may say "not written".
  const inDoubt = async (): Promise<boolean> => !refused || (await ledger.receiptPutsInDoubt(runId).catch(() => 1)) > 0;
  // The destination refuses (role, bucket, region, permissions): a retry cannot fix it.
  if (!isRetryable(error)) {
    const why = (await inDoubt())
      ? `receipt not confirmed: ${error.message}; an earlier PUT got no answer, so the receipt.json in place may be this run's; the next delivery's receipt replaces it`
      : `receipt not written: ${error.message}`;
    await ledger.failRun({ runId, error: why, finishingRefused: true });
    return { status: 'failed', error };
  }
  // The bound (issue 23): a receipt that cannot be published in DROPSHIP_FINISH_MAX_ATTEMPTS attempts
  // ends the run failed — the customer is told, the account is free for its next run. When the last PUT got no
  // answer, it may have landed: the message says so (the run's chain link is kept as not known to be published, so
  // the next receipt replaces it), never that the files are listed by no receipt.
  if (run.finishAttempts >= opts.settings.DROPSHIP_FINISH_MAX_ATTEMPTS) {
    const why = !(await inDoubt())
      ? `receipt not written after ${run.finishAttempts} attempts (DROPSHIP_FINISH_MAX_ATTEMPTS); the last: ${error.message}. The run's files stay in its folder, listed by no receipt`
      : `receipt not confirmed after ${run.finishAttempts} attempts (DROPSHIP_FINISH_MAX_ATTEMPTS): a PUT got no answer (the last: ${error.message}), so the receipt.json in place may be this run's; the next delivery's receipt replaces it`;
    await ledger.failRun({ runId, error: why, finishingRefused: true });
    return { status: 'failed', error: new ReceiptError(why, { cause: error }) };
  }
  await ledger
    .finishPending({ runId, error: `receipt not written yet (will be retried): ${error.message}` })
    .catch(() => {});
  return { status: 'pending', error };
}

/** The SDK's standard backoff: full jitter on 100 ms × 2^(attempt − 1), at most 20 s. */
function retryDelayMs(attempt: number): number {
  return Math.random() * Math.min(20_000, 100 * 2 ** (attempt - 1));
}

/**
 * Publishes receipt.json as an S3 conditional write: it replaces only the receipt this one follows
 * in the chain (If-Match on that receipt's recorded ETag, same bucket and key). When S3 finds another
 * object in place (412) or none (404), the ledger decides: if a run that started after this one has
 * recorded receipt bytes, the object may be newer and this PUT fails with `ReceiptPreconditionFailed`
 * (a finisher that went on after its run was ended never replaces a newer receipt); otherwise the
 * object in place is this run's own earlier attempt whose answer was lost, an older run's, or the
 * customer deleted it — and it is replaced. Without a known ETag (the first receipt in a bucket, one
 * published before ETags were recorded) the PUT is unconditional and the ledger alone fences finishers
 * (one finishing run per account, the last look before the PUT).
 */
export async function publishReceipt(
  ledger: Ledger,
  run: { runId: string; accountId: string; destinationGeneration: number | null },
  dest: Destination,
  port: DestinationPort,
  body: string,
): Promise<{ key: string; etag: string | undefined }> {
  const { sequence } = JSON.parse(body) as { sequence: number };
  const expected = await expectedReceiptEtag(ledger.pool, {
    accountId: run.accountId,
    generation: run.destinationGeneration ?? 0,
    bucket: port.container,
    receiptKey: receiptKey(dest),
    sequence,
  });
  if (!expected) {
    // The account's first receipt anywhere, at a place no receipt was recorded at, by a run with no earlier PUT in
    // doubt: create-only (red team, retention: a bucket-root destination replaced the customer's own receipt.json).
    if (
      await ledger.firstReceiptHere({
        runId: run.runId,
        accountId: run.accountId,
        bucket: port.container,
        receiptKey: receiptKey(dest),
      })
    )
      try {
        return await putReceiptBody(port, dest, body, { ifNoneMatch: '*' });
      } catch (e) {
        if (e instanceof ReceiptPreconditionFailed)
          throw new ReceiptPlaceTaken(`s3://${port.container}/${receiptKey(dest)}`, { cause: e });
        throw e;
      }
    return putReceiptBody(port, dest, body);
  }
  try {
    return await putReceiptBody(port, dest, body, { ifMatch: expected });
  } catch (e) {
    if (!(e instanceof ReceiptPreconditionFailed)) throw e;
    if (await ledger.newerReceiptRecorded(run.runId)) throw e;
    return putReceiptBody(port, dest, body);
  }
}

/**
 * A table whose parts were read in different snapshots (the run's shared snapshot was lost: `consistency: table`)
 * has no change set: part 0 computed it, and its state, from part 0's snapshot alone, so applying it to the previous
 * delivery did not give this one (rows another part read after a later commit), and the next change set would be
 * taken against a state that is not what was delivered. The table says so (`available: false`), and its state of this
 * run is forgotten, so the next change set is a full refresh (red-team pass on change sets).
 */
async function withoutMixedChangeSets(
  ledger: Ledger,
  runId: string,
  results: TableResult[],
  reads: { table: string; snapshot?: { id: string } | undefined }[],
): Promise<void> {
  for (const r of results) {
    if (!r.changes) continue;
    const snapshots = new Set(reads.filter((x) => x.table === r.table).map((x) => x.snapshot?.id ?? ''));
    if (snapshots.size <= 1) continue;
    // Whatever part 0 said (a change set, a full refresh, none after its fallback): the state it wrote is of its
    // snapshot alone, never the base of a later change set.
    await new ChangeStateStore(ledger.pool).forgetRun(runId, r.table);
    if (!r.changes.available) continue;
    r.changes = {
      available: false,
      reason: "the table's parts were read in different snapshots; load this delivery's snapshot",
    };
  }
}

/** Two copies of a destination describe the same delivery: the same generation and version. */
function sameDelivery(a: Destination, b: Destination): boolean {
  return a.accountId === b.accountId && a.generation === b.generation && a.version === b.version;
}
