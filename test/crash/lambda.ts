import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { expect } from 'vitest';
import { forgetDestinationClients } from '../../src/destinations/open.js';
import type { Customer } from '../../src/devstack/demo.js';
import { resetLambdaDeps } from '../../src/run/lambda.js';
import { type CrashPoint, onCrashPoint } from '../../src/run/lifecycle/crash.js';
import { assertExact, assertLedgerAndReceipts, exportAccountHandler, h, latestRun, sqs, worker } from './setup.js';

/**
 * The Lambda side of the crash matrix: fresh handler instances with a crash point, the event source
 * mapping played by hand (receive, deliver, drain), and the owner abandoned at a point with its
 * database sessions terminated (as when AWS reclaims a frozen instance).
 */
export const base = { getRemainingTimeInMillis: () => 15 * 60_000 };

/** A fresh Lambda instance with this crash point (or none). */
export async function instance(point?: CrashPoint): Promise<void> {
  await resetLambdaDeps();
  forgetDestinationClients(); // a new instance keeps no credentials or clients of the old one
  process.env.DROPSHIP_TEST_CRASH_MODE = 'hang';
  if (point) process.env.DROPSHIP_TEST_CRASH_AT = point;
  else delete process.env.DROPSHIP_TEST_CRASH_AT;
}

/** Everything a dead Lambda had open in Postgres is gone (as when its instance is reclaimed). */
export async function terminateLambdaSessions(): Promise<void> {
  await h.pool.query(
    `select pg_terminate_backend(pid) from pg_stat_activity
      where pid <> pg_backend_pid()
        and (application_name = 'dropship-lambda' or application_name like 'dropship crash%'
             or application_name like 'dropship publication %')`,
  );
}

export async function receive(max = 10): Promise<{ messageId: string; receiptHandle: string; body: string }[]> {
  // The real queue's visibility timeout is 6 × the worker timeout: an unanswered message stays away.
  const res = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: h.stack.taskQueueUrl, MaxNumberOfMessages: max, VisibilityTimeout: 5400 }),
  );
  return (res.Messages ?? []).map((m) => ({
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body!,
  }));
}

/** The next `n` messages of this run (messages of earlier runs — resent duplicates — are delivered on the way). */
export async function receiveFor(
  runId: string,
  n: number,
): Promise<{ messageId: string; receiptHandle: string; body: string }[]> {
  const mine: { messageId: string; receiptHandle: string; body: string }[] = [];
  for (let round = 0; round < 20 && mine.length < n; round++) {
    for (const m of await receive(n - mine.length)) {
      if ((JSON.parse(m.body) as { runId: string }).runId === runId) mine.push(m);
      else await deliver(m);
    }
  }
  return mine;
}

export async function deliver(m: { messageId: string; receiptHandle: string; body: string }): Promise<void> {
  const out = (await worker({ Records: [m] }, base)) as { batchItemFailures: { itemIdentifier: string }[] };
  if (out.batchItemFailures.length === 0)
    await sqs.send(new DeleteMessageCommand({ QueueUrl: h.stack.taskQueueUrl, ReceiptHandle: m.receiptHandle }));
}

/** The event source mapping, until the run has ended. */
export async function drain(runId: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const run = await h.ledger.getRun(runId);
    if (run && run.status !== 'running' && run.status !== 'finishing') return;
    const batch = await receive();
    if (batch.length === 0) await new Promise((r) => setTimeout(r, 100));
    for (const m of batch) await deliver(m);
  }
}

/** Runs `act` until it reaches the crash point, then abandons it. */
export async function crashAt(point: CrashPoint, act: () => Promise<unknown>): Promise<void> {
  await instance(point);
  let off: () => unknown = () => {};
  const reached = new Promise<void>((resolve) => {
    off = onCrashPoint((p) => p === point && resolve());
  });
  void act().catch(() => {});
  await reached;
  off();
  await terminateLambdaSessions();
  await instance();
}

export async function openedRun(c: Customer): Promise<string> {
  return (await latestRun(c)).runId;
}

export async function nextExportIsExact(c: Customer): Promise<void> {
  const opened = (await exportAccountHandler({ accountId: c.destination.accountId })) as { runId: string };
  await drain(opened.runId);
  expect((await h.ledger.getRun(opened.runId))?.status).toBe('succeeded');
  await assertExact(c);
  await assertLedgerAndReceipts(c);
}
