import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OpenQueue } from '../src/aws/open-queue.js';
import { type OpenMessage, openMessageSchema } from '../src/contracts/open.js';
import { setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { resetLambdaDeps } from '../src/run/lambda.js';
import type { Faults } from '../src/run/lifecycle/faults.js';
import { processOpenEvent } from '../src/schedule/open.js';
import { type OpenHandler, openSlotViaQueue, playOpenQueue } from '../src/schedule/play.js';
import { catchUpSlots, type OpenDeps, type SlotEnqueued, type SlotRun } from '../src/schedule/slots.js';
import { runOf } from './kit/runs.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 25, item 2: a slot opens through the open queue, not in one function's serial loop. The
 * schedule function (handlers/schedule.ts) only enqueues; the openRuns function (handlers/open-runs.ts)
 * opens the runs, message by message — on the real local stack (Postgres ledger, SQS, STS, S3), the
 * event source mapping played by `playOpenQueue`. Exactly once: whatever is delivered twice, whoever
 * dies in between, the ledger holds one run per account, slot and day.
 */
let h: Harness;
let opens: OpenQueue;
type Handler = (event: unknown) => Promise<unknown>;
let schedule: Handler;
let openRuns: Handler;
let deps: OpenDeps;
const log = createLogger({ level: 'silent' });
/** Registry rows only (their role cannot be assumed: each run is opened and failed by its pre-flight). */
const ROWS = 200;
/** Real customers (role, bucket, tables): their runs open and their tasks go to the task queue. */
const REAL = ['soreal1', 'soreal2', 'soreal3'];
const started = new Date();
const day = (n: number): string => new Date(started.getTime() + n * 86_400_000).toISOString().slice(0, 10);
const rowIds = Array.from({ length: ROWS }, (_, i) => `sorow${String(i).padStart(4, '0')}`);

beforeAll(async () => {
  h = await startHarness();
  await h.pool.query(rowIds.map((id) => `create schema ${id};`).join('\n'));
  for (const [i, id] of REAL.entries()) {
    await h.pool.query(`create schema ${id}; create table ${id}.a (id int primary key); insert into ${id}.a values (1), (2);
      create table ${id}.b (id int primary key); insert into ${id}.b values (3);`);
    await setupCustomer(h.stack, h.registry, {
      accountId: id,
      awsAccountId: `25000000000${i}`,
      bucket: `${id}-data`,
      schema: id,
    });
  }
  for (const id of rowIds)
    await h.registry.add({
      accountId: id,
      plan: 'paid',
      bucket: `${id}-data`,
      region: 'us-east-1',
      roleArn: `arn:aws:iam::259999999999:role/dropship-export-${id}`,
      sourceSchema: id,
    });
  process.env.DROPSHIP_LOG_LEVEL = 'silent';
  await resetLambdaDeps();
  opens = new OpenQueue(h.stack.openQueueUrl);
  schedule = (await import('../handlers/schedule.js')).handler as Handler;
  openRuns = (await import('../handlers/open-runs.js')).handler as Handler;
  const settings = h.settings();
  deps = {
    registry: h.registry,
    ledger: h.ledger,
    settings,
    queue: { send: async () => {} },
    sourceUrl: h.stack.databaseUrl,
    log,
  };
}, 240_000);

afterAll(async () => {
  opens?.destroy();
  await resetLambdaDeps();
  await h?.stop();
});

const everyone = [...REAL, ...rowIds].sort();

// Nobody works the task queue here: each test ends the runs it left open, so the next slot's
// accounts have no live run in the way (a live run leaves its account's slot to the catch-up).
afterEach(async () => {
  const live = await h.pool.query<{ run_id: string }>(
    `select run_id from dropship.runs where status in ('running', 'finishing')`,
  );
  for (const r of live.rows) await h.ledger.failRun({ runId: r.run_id, error: 'test over' });
});

/** Runs of the slot per account, from the ledger. */
async function runsOf(slot: string, slotDate: string): Promise<Map<string, number>> {
  const res = await h.pool.query<{ account_id: string; n: number }>(
    `select account_id, count(*)::int as n from dropship.runs where slot = $1 and slot_date = $2 group by 1`,
    [slot, slotDate],
  );
  return new Map(res.rows.map((r) => [r.account_id, r.n]));
}

const pendingOpens = (): OpenMessage[] =>
  h.stack.sqs.pending(h.stack.openQueueUrl).map((m) => openMessageSchema.parse(JSON.parse(m.body)));

/** The openRuns function's event source mapping until the open queue is empty. */
async function open(handle: OpenHandler = openRuns as OpenHandler, openers = 2): Promise<SlotRun[]> {
  return (await playOpenQueue(opens, handle, { openers, timeoutSeconds: 300 })).runs;
}

describe('a slot opens through the open queue', () => {
  it('the schedule function sends ⌈N/10⌉ messages and opens nothing; delivering them opens one run per account; again, nothing more', async () => {
    const slotDate = day(1);
    const event = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: `${slotDate}T04:00:00Z` };
    // Act: the schedule event
    const enqueued = (await schedule(event)) as SlotEnqueued;
    // Assess: messages only
    const N = ROWS + REAL.length;
    expect(enqueued).toMatchObject({ slot: '04:00', slotDate, due: N, alreadyOpened: 0, accounts: N });
    expect(enqueued.messages).toBe(Math.ceil(N / 10));
    const sent = pendingOpens();
    expect(sent).toHaveLength(Math.ceil(N / 10));
    expect(sent.every((m) => m.accountIds.length <= 10 && m.slot === '04:00' && m.slotDate === slotDate)).toBe(true);
    expect(sent.flatMap((m) => m.accountIds).sort()).toEqual(everyone);
    expect((await runsOf('04:00', slotDate)).size).toBe(0);
    expect(h.stack.sqs.pending(h.stack.taskQueueUrl)).toEqual([]);

    // Act: the openRuns function, message by message
    const opened = await open();
    // Assess: one run per account; the real customers' tasks (2 tables each) are on the task queue
    expect(opened.map((r) => r.accountId).sort()).toEqual(everyone);
    const runs = await runsOf('04:00', slotDate);
    expect([...runs.keys()].sort()).toEqual(everyone);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    for (const id of REAL)
      expect(opened.find((r) => r.accountId === id)).toMatchObject({ status: 'running', tasks: 2 });
    expect(opened.filter((r) => r.status === 'failed')).toHaveLength(ROWS); // refused by the pre-flight (no role)
    const tasks = h.stack.sqs.pending(h.stack.taskQueueUrl).map((m) => JSON.parse(m.body) as { accountId: string });
    // Two small tables each, packed into one task message per account (DROPSHIP_PACK_BYTES).
    expect(tasks.map((t) => t.accountId).sort()).toEqual([...REAL].sort());

    // Act: the same messages delivered again, and the schedule event again
    const again = (await openRuns({
      Records: sent.map((m, i) => ({ messageId: `again-${i}`, body: JSON.stringify(m) })),
    })) as { batchItemFailures: unknown[]; runs: SlotRun[] };
    const late = (await schedule(event)) as SlotEnqueued;
    // Assess: nothing more
    expect(again.batchItemFailures).toEqual([]);
    expect(again.runs).toHaveLength(N);
    expect(again.runs.every((r) => r.status === 'duplicate')).toBe(true);
    expect(late).toMatchObject({ due: N, alreadyOpened: N, accounts: 0, messages: 0 });
    expect(pendingOpens()).toEqual([]);
    expect(await runsOf('04:00', slotDate)).toEqual(runs);
    expect(h.stack.sqs.pending(h.stack.taskQueueUrl)).toHaveLength(tasks.length);
  }, 300_000);

  it('the schedule event twice before opening: every account still gets one run', async () => {
    const slotDate = day(2);
    const event = { time: `${slotDate}T15:00:00Z` };
    const [a, b] = (await Promise.all([schedule(event), schedule(event)])) as SlotEnqueued[];
    expect(a!.messages + b!.messages).toBe(2 * Math.ceil((ROWS + REAL.length) / 10));
    const opened = await open(openRuns as OpenHandler, 3);
    const runs = await runsOf('15:00', slotDate);
    expect([...runs.keys()].sort()).toEqual(everyone);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(opened.filter((r) => r.status === 'duplicate')).toHaveLength(ROWS + REAL.length);
  }, 300_000);

  it('openSlotViaQueue: the production way locally — every account opened once, the schedule’s own time apart', async () => {
    const slotDate = day(7);
    const sent: string[] = [];
    const out = await openSlotViaQueue(
      { ...deps, opens, queue: { send: async (m) => void sent.push(...m.map((t) => t.accountId)) } },
      '15:00',
      slotDate,
      { openers: 2 },
    );
    expect(out.enqueued).toMatchObject({
      accounts: ROWS + REAL.length,
      messages: Math.ceil((ROWS + REAL.length) / 10),
    });
    expect(out.runs.map((r) => r.accountId).sort()).toEqual(everyone);
    expect(out.invocations).toBe(out.enqueued.messages);
    expect(out.failures).toBe(0);
    expect(out.enqueueSeconds).toBeLessThan(out.openSeconds);
    expect(sent.sort()).toEqual([...REAL].sort()); // one packed task message per account
    const runs = await runsOf('15:00', slotDate);
    expect([...runs.keys()].sort()).toEqual(everyone);
    expect(pendingOpens()).toEqual([]);
  }, 300_000);

  it('an opener that dies mid-message: the redelivered message opens the rest, each account once', async () => {
    const slotDate = day(3);
    await schedule({ time: `${slotDate}T04:00:00Z` });
    // The first message's opener freezes (a Lambda killed) after the ledger opened its 4th account's run.
    const [first] = await opens.receive(1, 0, undefined, 1);
    const message = openMessageSchema.parse(JSON.parse(first!.body));
    let reached!: () => void;
    const frozen = new Promise<void>((r) => {
      reached = r;
    });
    let opened = 0;
    const dying: Faults = {
      stops: () => false,
      at: async (point) => {
        if (point !== 'after-open-run' || ++opened < 4) return;
        reached();
        await new Promise<never>(() => {});
      },
    };
    void processOpenEvent({ Records: [first!] }, { ...deps, faults: dying });
    await frozen;
    const before = await runsOf('04:00', slotDate);
    expect([...before.keys()].sort()).toEqual(message.accountIds.slice(0, 4).sort());
    // Act: the message comes back (its visibility ran out) with the others, to a live opener.
    const all = await open();
    // Assess
    const runs = await runsOf('04:00', slotDate);
    expect([...runs.keys()].sort()).toEqual(everyone);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    const redelivered = all.filter((r) => message.accountIds.includes(r.accountId));
    expect(redelivered.filter((r) => r.status === 'duplicate').map((r) => r.accountId)).toEqual(
      message.accountIds.slice(0, 4),
    );
  }, 300_000);

  it('one account failing stops no other; only an unreachable database makes the message come back', async () => {
    const slotDate = day(4);
    // soreal1 has a live run of its own (the slot leaves it to the catch-up); soreal2's registry
    // read fails once as if Postgres had dropped the connection.
    await h.ledger.openRun(runOf(await h.registry.get('soreal1')));
    let dropped = 0;
    const registry = Object.create(h.registry) as typeof h.registry;
    registry.get = async (id: string) => {
      if (id === 'soreal2' && dropped++ === 0)
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      return h.registry.get(id);
    };
    const flaky = { ...deps, registry };
    const message = openMessageSchema.parse({
      kind: 'open',
      slot: '04:00',
      slotDate,
      by: 'schedule',
      accountIds: ['soreal1', 'soreal2', 'soreal3', rowIds[0]],
    });
    const record = { messageId: 'm-1', body: JSON.stringify(message) };
    // Act
    const first = await processOpenEvent({ Records: [record] }, flaky);
    const second = await processOpenEvent({ Records: [record] }, flaky);
    // Assess
    expect(first.runs.map((r) => [r.accountId, r.status])).toEqual([
      ['soreal1', 'skipped'],
      ['soreal2', 'error'],
      ['soreal3', 'running'],
      [rowIds[0], 'failed'],
    ]);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm-1' }]);
    expect(second.runs.map((r) => [r.accountId, r.status])).toEqual([
      ['soreal1', 'skipped'],
      ['soreal2', 'running'],
      ['soreal3', 'duplicate'],
      [rowIds[0], 'duplicate'],
    ]);
    // A live run in progress is not the database failing: the message is done with.
    expect(second.batchItemFailures).toEqual([]);
    expect([...(await runsOf('04:00', slotDate)).entries()].sort()).toEqual([
      ['soreal2', 1],
      ['soreal3', 1],
      [rowIds[0], 1],
    ]);
  }, 120_000);

  it('a malformed message is dropped, not retried', async () => {
    const out = await processOpenEvent(
      {
        Records: [
          { messageId: 'bad-1', body: '{"kind":"open"}' },
          {
            messageId: 'bad-2',
            body: JSON.stringify({
              kind: 'open',
              slot: '04:00',
              slotDate: day(5),
              by: 'schedule',
              accountIds: ['x', 'x'],
            }),
          },
        ],
      },
      deps,
    );
    expect(out).toEqual({ batchItemFailures: [], runs: [] });
  });

  it('the catch-up enqueues the missing accounts (it opens none itself), and waits while the open queue is busy', async () => {
    const slotDate = day(6);
    const now = new Date(`${slotDate}T04:10:00Z`);
    const catchUpDeps = {
      ...deps,
      opens,
      settings: h.settings({ DROPSHIP_PAID_SLOTS: '04:00', DROPSHIP_FREE_SLOTS: '04:00' }),
    };
    // The open queue is busy (a slot being opened): the catch-up sends nothing.
    await opens.send([
      openMessageSchema.parse({ kind: 'open', slot: '04:00', slotDate, by: 'schedule', accountIds: ['soreal3'] }),
    ]);
    const waiting = await catchUpSlots(catchUpDeps, now);
    expect(waiting).toEqual([]);
    expect(pendingOpens()).toHaveLength(1);
    await open();
    // Act: the queue is empty; the slot's 04:00 event never came for the others.
    const caught = await catchUpSlots(catchUpDeps, now);
    // Assess
    expect(caught.map((r) => r.accountId).sort()).toEqual(everyone.filter((id) => id !== 'soreal3'));
    expect(caught.every((r) => r.status === 'queued')).toBe(true);
    expect(pendingOpens().every((m) => m.by === 'catch-up')).toBe(true);
    expect((await runsOf('04:00', slotDate)).size).toBe(1);
    await open();
    const runs = await runsOf('04:00', slotDate);
    expect([...runs.keys()].sort()).toEqual(everyone);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  }, 300_000);
});
