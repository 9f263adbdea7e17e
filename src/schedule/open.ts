import { DestinationNotFound } from '../accounts/registry.js';
import { type OpenMessage, openRecords } from '../contracts/open.js';
import { errorFields } from '../log/logger.js';
import { startFanOutRun } from '../run/drivers/fan-out.js';
import { PreflightError, passingPreflight } from '../run/lifecycle/prepare.js';
import { RunInProgress, SlotAlreadyRun } from '../store/ledger/ledger.js';
import type { OpenDeps, SlotRun } from './slots.js';

/**
 * The open-runs function's work (handlers/open-runs.ts): one open message (src/contracts/open.ts) is
 * a few accounts of one slot; each gets its run exactly as the schedule opened them before
 * (`startFanOutRun`: pre-flight, the run and its tasks in the ledger, one task message per large table or part, small tables packed together).
 *
 * Exactly once: the ledger's unique (account, slot, slot date) key. An account that already has the
 * slot's run — the message was delivered again, the schedule event came twice, an opener died after
 * opening some of its accounts — is a `duplicate` and nothing is done for it (looked up first in one
 * query, and refused by `openRun` if two openers race). So the whole message may always be delivered
 * again: only its accounts not opened yet are opened.
 *
 * Per account, as before: a live run of the account leaves the slot to the sweeper's catch-up
 * (`skipped`); any other error is logged and the others go on (`error`). Only an error that a
 * redelivery can cure without anyone acting — the ledger or the source unreachable, before the run was
 * opened — makes the message a batch item failure, so SQS delivers it again.
 */
export interface OpenBatchResult {
  runs: SlotRun[];
  /** Accounts not opened for a passing infrastructure failure: the message must be delivered again. */
  retry: string[];
}

export async function openSlotBatch(deps: OpenDeps, message: OpenMessage): Promise<OpenBatchResult> {
  const { slot, slotDate, by } = message;
  const opened = await deps.ledger.slotRuns({ slot, slotDate, accountIds: message.accountIds });
  const runs: SlotRun[] = [];
  const retry: string[] = [];
  for (const accountId of message.accountIds) {
    if (opened.has(accountId)) {
      runs.push({
        accountId,
        status: 'duplicate',
        tasks: 0,
        error: new SlotAlreadyRun(accountId, slot, slotDate).message,
      });
      deps.log.info({ accountId, slot, slotDate, by }, 'slot already has a run (duplicate event or message)');
      continue;
    }
    try {
      const dest = await deps.registry.get(accountId);
      if (!dest.enabled) {
        runs.push({ accountId, status: 'skipped', tasks: 0, error: `account ${accountId} is disabled` });
        deps.log.info(
          { accountId, slot, slotDate, by },
          'slot not started: the account was disabled since the slot was enqueued',
        );
        continue;
      }
      // The account's own run is going (an on-demand run started before the slot): skipped before the pre-flight
      // (an AssumeRole, the external-ID probe, the source's planning), not after it, at every catch-up attempt.
      if (await deps.ledger.hasActiveRun(accountId)) {
        runs.push({ accountId, status: 'skipped', tasks: 0, error: new RunInProgress(accountId).message });
        deps.log.info(
          { accountId, slot, slotDate, by },
          'slot not started: a live run is in progress (the sweeper catches the slot up)',
        );
        continue;
      }
      const { run, tasks } = await startFanOutRun(dest, {
        sourceUrl: deps.sourceUrl,
        ledger: deps.ledger,
        settings: deps.settings,
        queue: deps.queue,
        trigger: 'schedule',
        slot,
        slotDate,
        log: deps.log,
        faults: deps.faults,
      });
      runs.push({ accountId, runId: run.runId, status: run.status, tasks, ...(run.error ? { error: run.error } : {}) });
      deps.log.info({ accountId, runId: run.runId, slot, slotDate, by, tasks, status: run.status }, 'run opened');
    } catch (e) {
      if (e instanceof SlotAlreadyRun) {
        runs.push({ accountId, status: 'duplicate', tasks: 0, error: e.message });
        deps.log.info({ accountId, slot, slotDate, by }, 'slot already has a run (duplicate event or message)');
        continue;
      }
      if (e instanceof DestinationNotFound) {
        runs.push({ accountId, status: 'skipped', tasks: 0, error: e.message });
        deps.log.info(
          { accountId, slot, slotDate, by },
          'slot not started: the account was removed since the slot was enqueued',
        );
        continue;
      }
      const again = isPassingInfrastructureFailure(e);
      if (again) retry.push(accountId);
      const status = e instanceof RunInProgress ? 'skipped' : 'error';
      runs.push({ accountId, status, tasks: 0, error: (e as Error).message });
      deps.log.error(
        { accountId, slot, slotDate, by, ...errorFields(e) },
        status === 'skipped'
          ? 'slot not started: a live run is in progress (the sweeper catches the slot up)'
          : again
            ? 'could not open run: the ledger or the source is unreachable (the message is delivered again)'
            : 'could not open run',
      );
    }
  }
  return { runs, retry };
}

/**
 * An SQS event of open messages (the open-runs function): each message's accounts opened in turn;
 * a message with an account to retry (or that could not be worked at all) is reported as a batch
 * item failure and comes back after the queue's visibility timeout. A malformed message is logged
 * and dropped.
 */
export async function processOpenEvent(
  event: unknown,
  deps: OpenDeps,
): Promise<{ batchItemFailures: { itemIdentifier: string }[]; runs: SlotRun[] }> {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  const runs: SlotRun[] = [];
  const records = openRecords(event, (record, e) =>
    deps.log.error({ messageId: record.messageId, ...errorFields(e) }, 'malformed open message dropped'),
  );
  for (const { record, message } of records) {
    try {
      const res = await openSlotBatch(deps, message);
      runs.push(...res.runs);
      if (res.retry.length > 0) batchItemFailures.push({ itemIdentifier: record.messageId });
    } catch (e) {
      deps.log.error(
        { messageId: record.messageId, slot: message.slot, slotDate: message.slotDate, ...errorFields(e) },
        'could not work an open message (it is delivered again)',
      );
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures, runs };
}

/** Node's socket errors and PostgreSQL's connection, shutdown and resource SQLSTATEs: gone by themselves. */
const PASSING_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);
const PASSING_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/**
 * Did the database (ledger, registry or source) fail to answer — not refuse? Then the same work
 * succeeds later without anyone acting. Looks at the error and its causes.
 */
export function isPassingInfrastructureFailure(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c && depth < 6; depth++) {
    // A refusal is recorded on the opened run; a check AWS could not answer is tried again.
    if (c instanceof PreflightError) return passingPreflight(c);
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && (PASSING_CODES.has(code) || code.startsWith('08'))) return true;
    if (c instanceof Error && PASSING_MESSAGES.test(c.message)) return true;
    if (c instanceof AggregateError && c.errors.some((x) => isPassingInfrastructureFailure(x))) return true;
    c = (c as { cause?: unknown }).cause;
  }
  return false;
}
