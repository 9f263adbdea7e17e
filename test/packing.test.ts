import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import { TaskQueue } from '../src/aws/queue.js';
import type { Settings } from '../src/config/settings.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { DestinationClientCache, roleSessionName } from '../src/destinations/s3/clients.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { runTask } from '../src/run/drivers/task.js';
import { processTaskBatch } from '../src/run/drivers/task-batch.js';
import { exportViaQueue } from '../src/run/drivers/via-queue.js';
import { processDeadLetters } from '../src/run/liveness/dead-letter.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { assertExact } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 25, item 3: small tables of one run travel packed in one task message, and a warm worker
 * reuses a run's destination credentials and S3 client — on the local stack (real Postgres, the
 * SigV4-checking S3, the local STS that records every AssumeRole, the local SQS), read back by DuckDB.
 */
let h: Harness;
let tiny: Customer;
let other: Customer;
const log = createLogger({ level: 'silent' });
const TABLES = 8;

beforeAll(async () => {
  h = await startHarness();
  const ddl = (schema: string) =>
    [`create schema ${schema};`]
      .concat(
        Array.from(
          { length: TABLES },
          (_, i) =>
            `create table ${schema}.t${i} as select g as id, 'row ' || g as label from generate_series(1, ${10 + i}) g;`,
        ),
      )
      .join('\n');
  await h.pool.query(`${ddl('packtiny')}\n${ddl('packother')}`);
  tiny = await setupCustomer(h.stack, h.registry, {
    accountId: 'packtiny',
    awsAccountId: '270000000001',
    bucket: 'packtiny-data',
    schema: 'packtiny',
  });
  other = await setupCustomer(h.stack, h.registry, {
    accountId: 'packother',
    awsAccountId: '270000000002',
    bucket: 'packother-data',
    schema: 'packother',
  });
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

/** AssumeRole calls that named this run's role session. */
const assumeRolesOf = (c: Customer, runId: string) =>
  h.stack.sts.calls.filter((x) => x.ok && x.sessionName === roleSessionName(c.destination.accountId, runId)).length;

/** One account through the production fan-out path with the via-queue worker loops; what it sent. */
async function viaQueue(c: Customer, settings: Settings) {
  const queue = new TaskQueue(h.stack.taskQueueUrl);
  const sent: TaskMessage[] = [];
  const counting = Object.assign(Object.create(queue) as TaskQueue, {
    send: async (m: TaskMessage[]) => {
      sent.push(...m);
      await queue.send(m);
    },
  });
  const outcome = await exportViaQueue(c.destination, {
    sourceUrl: h.stack.databaseUrl,
    settings,
    ledger: h.ledger,
    registry: h.registry,
    queue: counting,
    reporter: new LogReporter(log),
    log,
    workers: 1,
  });
  return { outcome, sent };
}

/** A fan-out run of `destination` opened with `settings`; its task messages are kept, not queued. */
async function openCapturing(destination: Destination, settings: Settings) {
  const messages: TaskMessage[] = [];
  const { run } = await startFanOutRun(destination, {
    sourceUrl: h.stack.databaseUrl,
    ledger: h.ledger,
    settings,
    trigger: 'manual',
    queue: { send: async (m) => void messages.push(...m) },
  });
  return { run, messages };
}

describe('packing small tables into one task message', () => {
  it('8 tiny tables of one run: one message, one AssumeRole in the worker, exact files, one task row per table', async () => {
    // Act
    const { outcome, sent } = await viaQueue(tiny, h.settings());
    // Assess
    expect(outcome.ok, String(!outcome.ok && outcome.error)).toBe(true);
    expect(sent).toHaveLength(1);
    const runId = outcome.runId;
    // The opener's role check, and the worker's one for all 8 tables.
    expect(assumeRolesOf(tiny, runId)).toBe(2);
    const tasks = await h.ledger.tasks(runId);
    expect(tasks.map((t) => [t.table, t.part, t.status, t.attempts])).toEqual(
      Array.from({ length: TABLES }, (_, i) => [`t${i}`, 0, 'succeeded', 1]),
    );
    await assertExact(h, tiny);
  });

  it("one run's tasks in one warm worker share one AssumeRole across messages; with the cache off, one per message", async () => {
    for (const [entries, expected] of [
      ['256', 1],
      ['0', TABLES],
    ] as const) {
      // Prepare: one message per table, and no helping holder (each message's worker exports its own table).
      const settings = h.settings({ DROPSHIP_PACK_BYTES: '0', DROPSHIP_CLIENT_CACHE_ENTRIES: entries });
      const { run, messages } = await openCapturing(tiny.destination, settings);
      expect(messages).toHaveLength(TABLES);
      expect(messages.every((m) => 'table' in m)).toBe(true);
      await h.ledger.snapshot.claimHolder({ runId: run.runId, holder: 'test' });
      await h.ledger.snapshot.record({ runId: run.runId, exportId: 'gone', id: 'gone', at: 'gone' });
      await h.ledger.snapshot.released(run.runId);
      const opener = assumeRolesOf(tiny, run.runId);
      // Act
      for (const m of messages)
        expect(
          (await runTask(m, { sourceUrl: h.stack.databaseUrl, ledger: h.ledger, registry: h.registry, settings }))
            .status,
        ).toBe('succeeded');
      // Assess
      expect(opener).toBe(1);
      expect(assumeRolesOf(tiny, run.runId) - opener, `cache entries ${entries}`).toBe(expected);
      expect((await h.ledger.getRun(run.runId))?.status).toBe('succeeded');
      await assertExact(h, tiny);
    }
  });

  it('DROPSHIP_PACK_MAX_TABLES bounds a message: 8 tables at 3 a message are 3 messages', async () => {
    const { outcome, sent } = await viaQueue(tiny, h.settings({ DROPSHIP_PACK_MAX_TABLES: '3' }));
    expect(outcome.ok).toBe(true);
    expect(sent.map((m) => ('tables' in m ? m.tables.length : 1)).sort()).toEqual([2, 3, 3]);
    expect(assumeRolesOf(tiny, outcome.runId)).toBe(2);
    await assertExact(h, tiny);
  });

  it('a packed message whose table fails retryably comes back; its done tables are skipped on the next delivery', async () => {
    // Prepare: S3 refuses t3's first upload with a 503 (no SDK retry), once.
    const settings = h.settings({ DROPSHIP_AWS_MAX_ATTEMPTS: '1' });
    const { run, messages } = await openCapturing(other.destination, settings);
    expect(messages).toHaveLength(1);
    // No helping holder (a released shared snapshot): each task reads alone, so t3's retry is the message's.
    await h.ledger.snapshot.claimHolder({ runId: run.runId, holder: 'test' });
    await h.ledger.snapshot.record({ runId: run.runId, exportId: 'gone', id: 'gone', at: 'gone' });
    await h.ledger.snapshot.released(run.runId);
    let refused = 0;
    const fault = (r: { bucket: string; key: string; method: string }) =>
      r.bucket === 'packother-data' && r.method === 'PUT' && r.key.includes('/t3/') && refused++ === 0
        ? { status: 503, code: 'ServiceUnavailable', message: 'try again' }
        : undefined;
    h.stack.s3.faults.push(fault);
    try {
      // Act
      const first = await runTask(messages[0]!, {
        sourceUrl: h.stack.databaseUrl,
        ledger: h.ledger,
        registry: h.registry,
        settings,
      });
      const between = await h.ledger.tasks(run.runId);
      const second = await runTask(messages[0]!, {
        sourceUrl: h.stack.databaseUrl,
        ledger: h.ledger,
        registry: h.registry,
        settings,
      });
      // Assess
      expect(refused).toBeGreaterThanOrEqual(1);
      expect(first.status).toBe('retry');
      expect(between.filter((t) => t.status === 'succeeded').map((t) => t.table)).toEqual(
        ['t0', 't1', 't2', 't4', 't5', 't6', 't7'].filter((t) => t !== 't3'),
      );
      expect(between.find((t) => t.table === 't3')).toMatchObject({ status: 'pending', attempts: 1 });
      expect(second).toMatchObject({ status: 'succeeded', receiptKey: expect.any(String) });
      const after = await h.ledger.tasks(run.runId);
      expect(after.map((t) => [t.table, t.attempts])).toEqual(
        Array.from({ length: TABLES }, (_, i) => [`t${i}`, i === 3 ? 2 : 1]),
      );
      expect((await h.ledger.getRun(run.runId))?.status).toBe('succeeded');
      await assertExact(h, other);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
  });

  it("the worker sets a packed message's visibility to the task lease first, so a death between its tables brings it back then", async () => {
    // Prepare
    const settings = h.settings();
    const { run, messages } = await openCapturing(tiny.destination, settings);
    const delays: [string, number, number][] = [];
    // Act
    const out = await processTaskBatch(
      { Records: [{ messageId: 'm1', receiptHandle: 'handle-1', body: JSON.stringify(messages[0]) }] },
      {
        settings,
        registry: h.registry,
        ledger: h.ledger,
        log,
        sourceUrl: h.stack.databaseUrl,
        signal: new AbortController().signal,
        queue: {
          delay: async (handle, seconds) =>
            void delays.push([handle, seconds, (await h.ledger.tasks(run.runId)).filter((t) => t.attempts > 0).length]),
        },
      },
    );
    // Assess: set before any task was claimed; the message was then done (not handed back).
    expect(messages).toHaveLength(1);
    expect(delays).toEqual([['handle-1', settings.DROPSHIP_TASK_LEASE_SECONDS + 5, 0]]);
    expect(out.batchItemFailures).toEqual([]);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('succeeded');
  });

  it('a packed message dead-lettered fails its run once and settles each of its tables', async () => {
    // Prepare: the first two tables were exported; the message then kept failing until SQS gave up.
    const settings = h.settings();
    const { run, messages } = await openCapturing(other.destination, settings);
    expect(messages).toHaveLength(1);
    for (const table of ['t0', 't1']) {
      const claim = await h.ledger.claimTask({ runId: run.runId, table, leaseSeconds: 60 });
      expect(claim.claimed).toBe(true);
      await h.ledger.completeTask({
        runId: run.runId,
        table,
        attempt: 1,
        result: { table, objectName: table, rows: 0, bytes: 0, files: [], columns: [], seconds: 0 } as never,
      });
    }
    const event = (id: string) => ({
      Records: [{ messageId: id, body: JSON.stringify(messages[0]), attributes: { ApproximateReceiveCount: '10' } }],
    });
    // Act: dead-lettered, and (as SQS may) delivered to the dead-letter function twice.
    const one = await processDeadLetters(event('dl-1'), { ledger: h.ledger, log, settings });
    const two = await processDeadLetters(event('dl-2'), { ledger: h.ledger, log, settings });
    // Assess
    expect(one.batchItemFailures).toEqual([]);
    expect(two.batchItemFailures).toEqual([]);
    const ended = await h.ledger.getRun(run.runId);
    expect(ended?.status).toBe('failed');
    expect(ended?.error).toMatch(/table t2: its task message was dead-lettered after 10 receives/);
    const tasks = await h.ledger.tasks(run.runId);
    expect(tasks.map((t) => [t.table, t.status])).toEqual(
      Array.from({ length: TABLES }, (_, i) => [`t${i}`, i < 2 ? 'succeeded' : 'failed']),
    );
  });
});

describe("a warm worker's destination credentials", () => {
  it('reused by one run, never across destinations, versions or runs; renewed 5 minutes before expiry', async () => {
    // Prepare: a clock the test moves; STS issues one-hour sessions.
    let now = Date.now();
    const cache = new DestinationClientCache({ now: () => now });
    const settings = h.settings();
    const a = tiny.destination;
    const b = other.destination;
    const calls = () => h.stack.sts.calls.filter((c) => c.ok && c.sessionName.endsWith('-cache-run')).length;
    const before = calls();
    const creds = async (d: typeof a, runId = 'cache-run') => {
      const { clients, release } = cache.acquire(d, runId, settings);
      try {
        return await clients.credentials();
      } finally {
        release();
      }
    };
    // Act + Assess: one run's tasks in one worker share one AssumeRole.
    const a1 = await creds(a);
    const a2 = await creds(a);
    const a3 = await creds(a);
    expect(a2.accessKeyId).toBe(a1.accessKeyId);
    expect(a3.accessKeyId).toBe(a1.accessKeyId);
    expect(calls() - before).toBe(1);
    // Another destination gets its own credentials, for its own role.
    const b1 = await creds(b);
    expect(b1.accessKeyId).not.toBe(a1.accessKeyId);
    expect(calls() - before).toBe(2);
    const lastTwo = h.stack.sts.calls.filter((c) => c.ok && c.sessionName.endsWith('-cache-run')).slice(-2);
    expect(lastTwo.map((c) => c.roleArn)).toEqual([a.roleArn, b.roleArn]);
    expect((await creds(a)).accessKeyId).toBe(a1.accessKeyId);
    expect((await creds(b)).accessKeyId).toBe(b1.accessKeyId);
    // The same destination at another version (changed between runs) and another run: fresh ones.
    expect((await creds({ ...a, version: a.version + 1 })).accessKeyId).not.toBe(a1.accessKeyId);
    expect((await creds(a, 'cache-run-2')).accessKeyId).not.toBe(a1.accessKeyId);
    // Near expiry (less than 5 minutes left): a new AssumeRole, then reused again.
    const callsBeforeExpiry = calls();
    now = a1.expiration!.getTime() - 4 * 60_000;
    const renewed = await creds(a);
    expect(renewed.accessKeyId).not.toBe(a1.accessKeyId);
    expect(calls() - callsBeforeExpiry).toBe(1);
    now = renewed.expiration!.getTime() - 10 * 60_000;
    expect((await creds(a)).accessKeyId).toBe(renewed.accessKeyId);
    expect(calls() - callsBeforeExpiry).toBe(1);
  });

  it('is bounded: the least recently used entry is dropped first', async () => {
    const cache = new DestinationClientCache();
    const settings = h.settings({ DROPSHIP_CLIENT_CACHE_ENTRIES: '2' });
    for (const run of ['r1', 'r2', 'r1', 'r3']) cache.acquire(tiny.destination, run, settings).release();
    expect(cache.size).toBe(2);
    const before = h.stack.sts.calls.length;
    // r1 was used after r2, so r2 went: r1 is still there, r2 is made again.
    const r1 = cache.acquire(tiny.destination, 'r1', settings);
    const r1Again = cache.acquire(tiny.destination, 'r1', settings);
    expect(r1Again.clients).toBe(r1.clients);
    const r2 = cache.acquire(tiny.destination, 'r2', settings);
    expect(r2.clients).not.toBe(r1.clients);
    expect(cache.size).toBe(2);
    for (const x of [r1, r1Again, r2]) x.release();
    expect(h.stack.sts.calls.length).toBe(before); // acquiring makes no STS call: the first use does
  });
});
