import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../src/accounts/registry.js';
import { OpenQueue } from '../src/aws/open-queue.js';
import { loadSettings } from '../src/config/settings.js';
import { type Customer, createDemoSchema, setupCustomer } from '../src/devstack/demo.js';
import { LocalStack } from '../src/devstack/stack.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { Wiring } from '../src/run/wiring.js';
import { type OpenHandler, playOpenQueue } from '../src/schedule/play.js';
import type { SlotEnqueued, SlotRun } from '../src/schedule/slots.js';
import type { Ledger } from '../src/store/ledger/ledger.js';
import { readReceipt } from './kit/index.js';

/**
 * The Lambda handlers, driven with synthesized EventBridge and SQS events on the real local stack
 * (Postgres, S3, STS, SQS). The test plays the SQS event source mapping: receive, invoke the worker,
 * delete what it did not report as a batch item failure.
 */
let stack: LocalStack;
let wiring: Wiring;
let pool: pg.Pool;
let ledger: Ledger;
let sqs: SQSClient;
let opens: OpenQueue;
const savedEnv = { ...process.env };
let paid: Customer;
let free: Customer;
let dup: Customer;
let slow: Customer;
let split: Customer;
type Handler = (event: unknown, context?: { getRemainingTimeInMillis(): number }) => Promise<unknown>;
let schedule: Handler;
let openRuns: Handler;
let worker: Handler;
let exportAccountHandler: Handler;
let deadLetter: Handler;
const generous = { getRemainingTimeInMillis: () => 15 * 60_000 };
/**
 * The test's own calendar: the slot days it plays are days after the day it started (UTC), one
 * day per test, so every slot lies after its accounts were created, on whatever day it runs.
 */
const started = new Date();
const day = (n: number): string => new Date(started.getTime() + n * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  stack = await LocalStack.start();
  Object.assign(process.env, stack.env(), {
    DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
    DROPSHIP_DEADLINE_MARGIN_SECONDS: '0',
    DROPSHIP_LOG_LEVEL: 'silent',
    DROPSHIP_SPLIT_ROWS: '50000',
    DROPSHIP_TASK_RETRY_SECONDS: '0',
  });
  wiring = new Wiring({ settings: loadSettings(), databaseUrl: stack.databaseUrl });
  pool = await wiring.pool();
  ledger = await wiring.ledger();
  const registry = await wiring.registry();
  const client = await pool.connect();
  try {
    await createDemoSchema(client, 'paidco', 3000, 0.3);
    await createDemoSchema(client, 'freeco', 2000, 0.4);
    await createDemoSchema(client, 'dupco', 2000, 0.5);
    await client.query(`create schema slowco;
      create table slowco.big as select i as id, md5(random()::text) || md5(random()::text) || md5(random()::text) as a, gen_random_uuid() as u
        from generate_series(1, 600000) i;
      create schema splitco;
      create table splitco.t (id bigint primary key, label text not null);
      insert into splitco.t select i * 3 - 7, 'row ' || i from generate_series(1, 120000) i;
      create table splitco.small (id int primary key);
      insert into splitco.small select generate_series(1, 10);
      analyze splitco.t;`);
  } finally {
    client.release();
  }
  paid = await setupCustomer(stack, registry, {
    accountId: 'paidco',
    awsAccountId: '210000000001',
    bucket: 'paidco-data',
    schema: 'paidco',
    plan: 'paid',
  });
  free = await setupCustomer(stack, registry, {
    accountId: 'freeco',
    awsAccountId: '210000000002',
    bucket: 'freeco-data',
    schema: 'freeco',
    plan: 'free',
  });
  dup = await setupCustomer(stack, registry, {
    accountId: 'dupco',
    awsAccountId: '210000000003',
    bucket: 'dupco-data',
    schema: 'dupco',
    plan: 'paid',
  });
  slow = await setupCustomer(stack, registry, {
    accountId: 'slowco',
    awsAccountId: '210000000004',
    bucket: 'slowco-data',
    schema: 'slowco',
    plan: 'paid',
  });
  split = await setupCustomer(stack, registry, {
    accountId: 'splitco',
    awsAccountId: '210000000005',
    bucket: 'splitco-data',
    schema: 'splitco',
    plan: 'paid',
  });
  // Only the accounts each test is about are enabled while it runs.
  for (const c of [dup, slow, split]) await registry.setEnabled(c.destination.accountId, false);
  sqs = new SQSClient({ region: 'us-east-1' });
  opens = new OpenQueue(stack.openQueueUrl);
  schedule = (await import('../handlers/schedule.js')).handler as Handler;
  openRuns = (await import('../handlers/open-runs.js')).handler as Handler;
  worker = (await import('../handlers/worker.js')).handler as Handler;
  exportAccountHandler = (await import('../handlers/export-account.js')).handler as Handler;
  deadLetter = (await import('../handlers/dead-letter.js')).handler as Handler;
});

afterAll(async () => {
  sqs?.destroy();
  opens?.destroy();
  await wiring?.close();
  await stack?.stop();
  process.env = savedEnv;
});

interface Received {
  messageId: string;
  receiptHandle: string;
  body: string;
}

async function receive(max = 10, visibility = 1): Promise<Received[]> {
  const res = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: stack.taskQueueUrl,
      MaxNumberOfMessages: max,
      VisibilityTimeout: visibility,
    }),
  );
  return (res.Messages ?? []).map((m) => ({ messageId: m.MessageId!, receiptHandle: m.ReceiptHandle!, body: m.Body! }));
}

/** The event source mapping: one message per invocation; delete unless reported as a failure. */
async function deliver(m: Received, context = generous): Promise<boolean> {
  const out = (await worker(
    { Records: [{ messageId: m.messageId, receiptHandle: m.receiptHandle, body: m.body }] },
    context,
  )) as {
    batchItemFailures: { itemIdentifier: string }[];
  };
  const failed = out.batchItemFailures.some((f) => f.itemIdentifier === m.messageId);
  if (!failed)
    await sqs.send(new DeleteMessageCommand({ QueueUrl: stack.taskQueueUrl, ReceiptHandle: m.receiptHandle }));
  return !failed;
}

async function drain(): Promise<number> {
  let delivered = 0;
  for (let round = 0; round < 50; round++) {
    const batch = await receive();
    if (batch.length === 0) {
      if (stack.sqs.pending(stack.taskQueueUrl).length === 0) break;
      await new Promise((r) => setTimeout(r, 300));
      continue;
    }
    for (const m of batch) if (await deliver(m)) delivered++;
  }
  return delivered;
}

/** The openRuns function's event source mapping, until the open queue is empty: every account's outcome. */
async function open(): Promise<SlotRun[]> {
  return (await playOpenQueue(opens, openRuns as OpenHandler, { openers: 1, timeoutSeconds: 60 })).runs;
}

const receiptEvents = (bucket: string) =>
  stack.s3.events.filter((e) => e.bucket === bucket && e.key.endsWith('receipt.json'));

describe('Lambda handlers on the local stack', () => {
  it('a 15:00 slot exports exactly the due accounts (paid), 04:00 both paid and free', async () => {
    // Act: the EventBridge event of the 15:00 rule.
    const at15 = (await schedule({
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      time: `${day(1)}T15:00:00Z`,
    })) as SlotEnqueued;
    // The schedule function only enqueues: one open message, no run, no task yet.
    expect(at15).toMatchObject({ slot: '15:00', slotDate: day(1), due: 1, accounts: 1, messages: 1 });
    expect(stack.sqs.pending(stack.openQueueUrl)).toHaveLength(1);
    expect(stack.sqs.pending(stack.taskQueueUrl)).toHaveLength(0);
    // The openRuns function opens the run and fans its tasks out.
    const opened = await open();
    expect(opened.map((r) => r.accountId)).toEqual(['paidco']);
    expect(opened[0]!.tasks).toBe(7);
    // 7 small tables, one packed message (DROPSHIP_PACK_BYTES).
    expect(stack.sqs.pending(stack.taskQueueUrl)).toHaveLength(1);
    await drain();
    // Assess
    expect(receiptEvents('paidco-data')).toHaveLength(1);
    expect(receiptEvents('freeco-data')).toHaveLength(0);
    const run = await ledger.getRun(opened[0]!.runId!);
    expect(run).toMatchObject({ status: 'succeeded', trigger: 'schedule', slot: '15:00', receiptKey: 'receipt.json' });

    const at04 = (await schedule({ time: `${day(2)}T04:00:00Z` })) as SlotEnqueued;
    expect(at04).toMatchObject({ accounts: 2, messages: 1 });
    expect((await open()).map((r) => r.accountId).sort()).toEqual(['freeco', 'paidco']);
    await drain();
    expect(receiptEvents('paidco-data')).toHaveLength(2);
    expect(receiptEvents('freeco-data')).toHaveLength(1);
  });

  it('duplicate and concurrent deliveries of the same tasks still yield one correct receipt', async () => {
    // Prepare: an on-demand run, as `serverless invoke -f exportAccount` starts it.
    await new Registry(pool).setEnabled('dupco', true);
    const opened = (await exportAccountHandler({ accountId: 'dupco' })) as { runId: string; tasks: number };
    expect(opened.tasks).toBe(7);
    const messages = await receive(10, 60);
    // 7 small tables, one packed message (DROPSHIP_PACK_BYTES).
    expect(messages).toHaveLength(1);
    expect(JSON.parse(messages[0]!.body).tables).toHaveLength(7);
    // Act: every message is delivered twice at the same time, then once more afterwards.
    await Promise.all(messages.flatMap((m) => [deliver(m), deliver({ ...m, messageId: `${m.messageId}-dup` })]));
    await Promise.all(messages.map((m) => deliver({ ...m, messageId: `${m.messageId}-late` })));
    await drain();
    // Assess
    expect(receiptEvents('dupco-data')).toHaveLength(1);
    const run = await ledger.getRun(opened.runId);
    expect(run?.status).toBe('succeeded');
    const tasks = await ledger.tasks(opened.runId);
    expect(tasks.every((t) => t.status === 'succeeded')).toBe(true);
    // The lease kept every duplicate from claiming a task that was already running or done.
    expect(tasks.map((t) => t.attempts)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    const keys = await stack.s3.keys('dupco-data');
    const receiptFiles = tasks.flatMap((t) => t.result!.files.map((f) => f.key));
    expect(keys).toEqual([...receiptFiles, 'receipt.json', 'status.json'].sort());
    expect(await stack.s3.unfinishedUploads('dupco-data')).toEqual([]);
  });

  it('a task stopped at its deadline leaves no receipt and no unfinished upload; the retry completes the run', async () => {
    // Prepare
    await new Registry(pool).setEnabled('slowco', true);
    const opened = (await exportAccountHandler({ accountId: 'slowco' })) as { runId: string };
    const [message] = await receive(1, 1);
    expect(message).toBeDefined();
    // Act: a Lambda with 1 s left (the deadline margin is 0 here) cannot finish 600k rows.
    const first = await deliver(message!, { getRemainingTimeInMillis: () => 1_000 });
    // Assess the stop
    expect(first).toBe(false);
    expect(receiptEvents('slowco-data')).toHaveLength(0);
    expect(await stack.s3.unfinishedUploads('slowco-data')).toEqual([]);
    const [task] = await ledger.tasks(opened.runId);
    expect(task).toMatchObject({ status: 'pending', attempts: 1 });
    expect(task!.error).toMatch(/abort/i);
    // The message comes back after its visibility timeout; this time the worker has time.
    await drain();
    expect(receiptEvents('slowco-data')).toHaveLength(1);
    const run = await ledger.getRun(opened.runId);
    expect(run?.status).toBe('succeeded');
    const tasks = await ledger.tasks(opened.runId);
    expect(tasks[0]).toMatchObject({ status: 'succeeded', attempts: 2, rows: 600000 });
    const files = tasks[0]!.result!.files;
    expect(await stack.s3.keys('slowco-data')).toEqual(
      [...files.map((f) => f.key), 'receipt.json', 'status.json'].sort(),
    );
    const receipt = await readReceipt(stack, slow);
    expect(validateReceipt(receipt)).toEqual([]);
    expect(receipt.tables.big!.row_count).toBe(600000);
    expect(free.destination.accountId).toBe('freeco');
    expect(paid.destination.accountId).toBe('paidco');
  });

  it('splits a very large table into key ranges, one task each, merged into one receipt entry', async () => {
    // Prepare: DROPSHIP_SPLIT_ROWS is 50,000 here; splitco.t has 120,000 rows with an integer key.
    await new Registry(pool).setEnabled('splitco', true);
    const opened = (await exportAccountHandler({ accountId: 'splitco' })) as { runId: string; tasks: number };
    // Act
    expect(opened.tasks).toBe(4); // t in 3 key ranges + small whole
    await drain();
    // Assess
    const run = await ledger.getRun(opened.runId);
    expect(run?.status).toBe('succeeded');
    const parts = (await ledger.tasks(opened.runId)).filter((t) => t.table === 't');
    expect(parts.map((t) => [t.part, t.parts, t.status])).toEqual([
      [0, 3, 'succeeded'],
      [1, 3, 'succeeded'],
      [2, 3, 'succeeded'],
    ]);
    expect(parts.reduce((n, t) => n + (t.rows ?? 0), 0)).toBe(120000);
    const receipt = await readReceipt(stack, split);
    expect(validateReceipt(receipt)).toEqual([]);
    expect(receipt.tables.t!.row_count).toBe(120000);
    expect(receipt.tables.t!.files.map((f: { key: string }) => f.key.split('/').pop())).toEqual([
      't_000000000000.parquet.gz',
      't_000001000000.parquet.gz',
      't_000002000000.parquet.gz',
    ]);
    expect(receipt.tables.small!.total_file_count).toBe(1);
  });

  it('the same schedule event delivered twice (or retried) opens one run per account', async () => {
    // Prepare: only paidco and freeco are due.
    const registry = new Registry(pool);
    for (const c of [dup, slow, split]) await registry.setEnabled(c.destination.accountId, false);
    const before = { paid: receiptEvents('paidco-data').length, free: receiptEvents('freeco-data').length };
    const event = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: `${day(3)}T04:00:00Z` };
    // Act: the event twice before anything is opened (both enqueue), then once more after the slot ran.
    const first = (await schedule(event)) as SlotEnqueued;
    const again = (await schedule(event)) as SlotEnqueued;
    const opened = await open();
    await drain();
    const late = (await schedule(event)) as SlotEnqueued;
    // Assess
    expect([first.accounts, again.accounts]).toEqual([2, 2]);
    expect(opened.map((r) => [r.accountId, r.status])).toEqual([
      ['freeco', 'running'],
      ['paidco', 'running'],
      ['freeco', 'duplicate'],
      ['paidco', 'duplicate'],
    ]);
    // Once the slot has its runs, a late event sends nothing.
    expect(late).toMatchObject({ due: 2, alreadyOpened: 2, accounts: 0, messages: 0 });
    expect(stack.sqs.pending(stack.openQueueUrl)).toEqual([]);
    expect(receiptEvents('paidco-data')).toHaveLength(before.paid + 1);
    expect(receiptEvents('freeco-data')).toHaveLength(before.free + 1);
    const runs = await pool.query(
      `select account_id, count(*)::int as n from dropship.runs where slot = '04:00' and slot_date = $1 group by 1 order by 1`,
      [day(3)],
    );
    expect(runs.rows).toEqual([
      { account_id: 'freeco', n: 1 },
      { account_id: 'paidco', n: 1 },
    ]);
  });

  it('a slot whose event never came is caught up by the sweeper; past the window it is recorded as missed', async () => {
    // Prepare
    const { catchUpSlots } = await import('../src/schedule/slots.js');
    const { lambdaDeps } = await import('../src/run/lambda.js');
    const deps = await lambdaDeps();
    // The slots played: day 5's, after a day 4 nobody ran; both after the accounts were created.
    const [yesterday, today] = [day(4), day(5)];
    const created = await pool.query<{ latest: Date }>('select max(created_at) as latest from dropship.destinations');
    expect(created.rows[0]!.latest.getTime()).toBeLessThan(Date.parse(`${yesterday}T15:00:00Z`));
    // Act: 10 minutes after a 04:00 slot that never fired
    const caught = await catchUpSlots(deps, new Date(`${today}T04:10:00Z`));
    const opened = await open();
    await drain();
    // …and 4 hours after a 15:00 slot (the catch-up window is 3 hours)
    const missed = await catchUpSlots(deps, new Date(`${today}T19:00:00Z`));
    const again = await catchUpSlots(deps, new Date(`${today}T19:05:00Z`));
    // Assess
    // (the accounts already existed at the 15:00 slot of the day before, which nobody ran either)
    // The catch-up enqueues (the openRuns function opens them) and records what is past its window.
    expect(caught.map((r) => [r.accountId, r.status])).toEqual([
      ['freeco', 'queued'],
      ['paidco', 'queued'],
      ['paidco', 'missed'],
    ]);
    expect(opened.map((r) => [r.accountId, r.status])).toEqual([
      ['freeco', 'running'],
      ['paidco', 'running'],
    ]);
    for (const r of opened) expect((await ledger.getRun(r.runId!))?.status).toBe('succeeded');
    expect(caught[2]!.error).toContain(`slot 15:00 of ${yesterday} missed`);
    expect(missed.map((r) => [r.accountId, r.status])).toEqual([['paidco', 'missed']]);
    expect((await ledger.getRun(missed[0]!.runId!))?.error).toContain(`slot 15:00 of ${today} missed`);
    expect(again).toEqual([]);
  });

  it('a dead-lettered task fails its run with a clear error; its other tasks then do nothing', async () => {
    // Prepare
    const before = receiptEvents('paidco-data').length;
    const opened = (await exportAccountHandler({ accountId: 'paidco' })) as { runId: string; tasks: number };
    const [first, ...rest] = await receive(10, 60);
    // Act: SQS gave up on the first message.
    const out = (await deadLetter({
      Records: [{ messageId: 'dl-1', body: first!.body, attributes: { ApproximateReceiveCount: '10' } }],
    })) as { batchItemFailures: unknown[] };
    for (const m of rest) await deliver(m);
    // Assess
    expect(out.batchItemFailures).toEqual([]);
    const run = await ledger.getRun(opened.runId);
    expect(run?.status).toBe('failed');
    expect(run?.error).toMatch(/dead-lettered after 10 receives/);
    expect(receiptEvents('paidco-data')).toHaveLength(before);
    const tasks = await ledger.tasks(opened.runId);
    expect(tasks.every((t) => t.status === 'failed')).toBe(true);
    expect(tasks.every((t) => t.attempts === 0)).toBe(true);
  });
});
