import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Settings } from '../src/config/settings.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { dispatchOutcomes } from '../src/notify/dispatch.js';
import type { StatusDocument } from '../src/notify/status.js';
import { StatusStore } from '../src/notify/store.js';
import { encryptSecret } from '../src/notify/webhook.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { processDeadLetters } from '../src/run/liveness/dead-letter.js';
import { catchUpSlots } from '../src/schedule/slots.js';
import { tidy } from '../src/schedule/tidy.js';
import type { OutcomeEvent } from '../src/store/ledger/outbox.js';
import { dropship } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 24, "one way a run ends": every way a run ends — the sweeper ending a run whose owner is gone,
 * a dead-lettered task, an operator's cancel, a missed slot — writes exactly one outcome event (in the
 * ledger's transaction) and reaches the customer exactly once (status.json, one signed webhook), with
 * no reconcile (the check function is never called here). A dispatcher killed mid-delivery is finished
 * by the next tidy, without a second webhook event. Real Postgres, S3 behind the guard, a real HTTP
 * receiver on 127.0.0.1.
 */
let h: Harness;
let settings: Settings;
let server: Server;
let hookUrl = '';
const received: { runId: string; id: string; type: string }[] = [];
const key = randomBytes(32).toString('base64');
const log = createLogger({ level: 'silent' });
const customers = new Map<string, Customer>();

const env = {
  DROPSHIP_WEBHOOK_KEY: key,
  DROPSHIP_WEBHOOK_BACKOFF_MS: '20',
  DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
  DROPSHIP_LOG_LEVEL: 'silent',
};

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings(env);
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ev = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      received.push({ runId: ev.run_id, id: ev.id, type: ev.type });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await h?.stop();
});

let n = 0;
async function customer(accountId: string): Promise<Customer> {
  n++;
  // One source schema per account (a schema belongs to one destination).
  await h.pool.query(`create schema ${accountId}; create table ${accountId}.t (id bigint primary key, v text);
    create table ${accountId}.u (id bigint primary key, v text);
    insert into ${accountId}.t select i, 'v' || i from generate_series(1, 40) i;
    insert into ${accountId}.u select i, 'u' || i from generate_series(1, 40) i;`);
  const c = await setupCustomer(h.stack, h.registry, {
    accountId,
    awsAccountId: `24000000010${n}`,
    bucket: `${accountId}-data`,
    prefix: 'exports',
    schema: accountId,
  });
  await new StatusStore(h.pool).setWebhook(
    accountId,
    c.destination.generation,
    hookUrl,
    encryptSecret('whsec_test', Buffer.from(key, 'base64')),
  );
  customers.set(accountId, c);
  return c;
}

const newRunId = () => `20261123T000000Z-${randomBytes(3).toString('hex')}`;
const statusPuts = (bucket: string) =>
  h.stack.s3.events.filter((e) => e.bucket === bucket && e.key === 'exports/status.json').length;
const outcomeRows = async (runId: string) =>
  (await h.pool.query('select * from dropship.outcome_events where run_id = $1', [runId])).rows;
const hooksOf = (runId: string) => received.filter((r) => r.runId === runId);

async function statusOf(c: Customer): Promise<StatusDocument> {
  const s3 = customerS3(h.stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: 'exports/status.json' }));
    return JSON.parse(Buffer.from(await res.Body!.transformToByteArray()).toString());
  } finally {
    s3.destroy();
  }
}

/** Opens a run the way the in-process driver does: frozen destination, owner lock held elsewhere. */
async function openRun(dest: Destination, opts: { ownerLock?: boolean } = {}): Promise<string> {
  const runId = newRunId();
  await h.ledger.openRun({
    runId,
    accountId: dest.accountId,
    trigger: 'cli',
    layout: dest.layout,
    folder: '2026-11-23T00:00',
    startedMicros: BigInt(Date.now()) * 1000n,
    tables: ['t'],
    owner: 'cli:test:1',
    ownerLock: opts.ownerLock ?? false,
    destination: dest,
  });
  return runId;
}

/** Whatever the customer heard about one run, read only after everything settled. */
async function settleHooks(): Promise<void> {
  await new Promise((r) => setTimeout(r, 100));
}

const tidyDeps = (now?: () => Date) => ({
  ledger: h.ledger,
  registry: h.registry,
  settings,
  log,
  queue: { send: async () => {} },
  opens: { send: async () => {} },
  sourceUrl: h.stack.databaseUrl,
  gauges: () => {},
  ...(now ? { now } : {}),
});

describe('one way a run ends: one outcome event, one notification, no reconcile', () => {
  it('the sweeper ends a run whose owner is gone', async () => {
    // Prepare: an in-process run whose owner held its advisory lock and died (its session ended).
    const c = await customer('swept');
    const runId = newRunId();
    const lock = await h.ledger.ownerLock(runId);
    await h.ledger.openRun({
      runId,
      accountId: 'swept',
      trigger: 'cli',
      layout: c.destination.layout,
      folder: '2026-11-23T00:00',
      startedMicros: BigInt(Date.now()) * 1000n,
      tables: ['t'],
      owner: 'cli:test:1',
      ownerLock: true,
      destination: c.destination,
    });
    lock.release();
    const before = statusPuts('swept-data');
    // Act: the periodic function, twice (the second finds nothing more to tell).
    const first = await tidy(tidyDeps());
    const second = await tidy(tidyDeps());
    await settleHooks();
    // Assess
    expect(first.runs).toMatchObject([{ runId, action: 'ended' }]);
    expect(second.runs).toEqual([]);
    expect((await h.ledger.getRun(runId))?.status).toBe('failed');
    const rows = await outcomeRows(runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'failed', attempts: 1 });
    expect(rows[0].delivered_at).not.toBeNull();
    expect(hooksOf(runId)).toEqual([{ runId, id: expect.any(String), type: 'delivery.failed' }]);
    expect(statusPuts('swept-data') - before).toBe(1);
    expect((await statusOf(c)).last_run).toMatchObject({ run_id: runId, status: 'failed' });
  });

  it('a dead-lettered task fails its run', async () => {
    const c = await customer('lettered');
    const messages: TaskMessage[] = [];
    const { run } = await startFanOutRun(c.destination, {
      sourceUrl: h.stack.databaseUrl,
      ledger: h.ledger,
      // One message per table (a packed message in the dead-letter queue: test/packing.test.ts).
      settings: { ...settings, DROPSHIP_PACK_BYTES: 0 },
      trigger: 'manual',
      queue: { send: async (batch) => void messages.push(...batch) },
      log,
    });
    expect(messages.length).toBe(2);
    const before = statusPuts('lettered-data');
    // Act: SQS gave up on one task message; the other one is dead-lettered too (a duplicate).
    const dl = (m: TaskMessage, id: string) =>
      processDeadLetters(
        { Records: [{ messageId: id, body: JSON.stringify(m), attributes: { ApproximateReceiveCount: '10' } }] },
        { ledger: h.ledger, log, settings },
      );
    expect((await dl(messages[0]!, 'dl-1')).batchItemFailures).toEqual([]);
    expect((await dl(messages[1]!, 'dl-2')).batchItemFailures).toEqual([]);
    // The dead-letter function itself told the customer (no periodic function yet).
    expect((await outcomeRows(run.runId))[0]?.delivered_at).not.toBeNull();
    await tidy(tidyDeps());
    await settleHooks();
    // Assess
    expect((await h.ledger.getRun(run.runId))?.status).toBe('failed');
    expect(await outcomeRows(run.runId)).toHaveLength(1);
    expect(hooksOf(run.runId)).toEqual([{ runId: run.runId, id: expect.any(String), type: 'delivery.failed' }]);
    expect(statusPuts('lettered-data') - before).toBe(1);
    expect((await statusOf(c)).last_run).toMatchObject({ run_id: run.runId, status: 'failed' });
  });

  it('an operator cancels a run (dropship runs cancel): told, not counted toward the pause', async () => {
    const c = await customer('cancelled');
    const runId = await openRun(c.destination);
    const before = statusPuts('cancelled-data');
    // Act: the real CLI, in its own process.
    const r = await dropship(h.stack, ['runs', 'cancel', runId, '--by', 'jane-at-ops-7'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The CLI process that cancelled told the customer before it exited.
    expect((await outcomeRows(runId))[0]?.delivered_at).not.toBeNull();
    await tidy(tidyDeps());
    await settleHooks();
    // Assess
    expect((await h.ledger.getRun(runId))?.status).toBe('cancelled');
    const rows = await outcomeRows(runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'cancelled' });
    expect(rows[0].delivered_at).not.toBeNull();
    expect(hooksOf(runId)).toEqual([{ runId, id: expect.any(String), type: 'delivery.failed' }]);
    expect(statusPuts('cancelled-data') - before).toBe(1);
    const status = await statusOf(c);
    expect(status.last_run).toMatchObject({ run_id: runId, status: 'failed' });
    // The operator's name never reaches the customer; a cancel is not the customer's failure.
    expect(JSON.stringify(status)).not.toContain('jane');
    expect(status.consecutive_failures).toBe(0);
  });

  it('a missed slot', async () => {
    const c = await customer('missed');
    // Two days after the account was created, 4 hours after the 15:00 slot (the catch-up window is 3 h):
    // that day's 04:00 and 15:00 slots are recorded as missed.
    const day = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const now = new Date(`${day}T19:00:00Z`);
    const before = statusPuts('missed-data');
    // Act: the sweeper's catch-up, then the periodic function at the same (future) moment.
    const missed = (await catchUpSlots({ ...tidyDeps(), queue: { send: async () => {} } }, now)).filter(
      (s) => s.accountId === 'missed',
    );
    await tidy(tidyDeps(() => now));
    await settleHooks();
    // Assess
    expect(missed.map((m) => m.status)).toEqual(['missed', 'missed']);
    for (const m of missed) {
      const rows = await outcomeRows(m.runId!);
      expect(rows).toHaveLength(1);
      expect(rows[0]?.delivered_at, JSON.stringify(rows[0])).not.toBeNull();
      expect(hooksOf(m.runId!)).toEqual([{ runId: m.runId, id: expect.any(String), type: 'delivery.failed' }]);
    }
    expect(statusPuts('missed-data') - before).toBe(2);
    expect((await statusOf(c)).consecutive_failures).toBe(2);
  });
});

describe('kill it, then trust it', () => {
  it('a dispatcher killed after status.json, before the webhook: the next tidy delivers it, one event id', async () => {
    // Prepare: a run that failed; its process dies before telling anyone.
    const c = await customer('killed');
    const runId = await openRun(c.destination);
    await h.ledger.failRun({ runId, error: 'table t: connection terminated' });
    const before = statusPuts('killed-data');
    // Act 1: a dispatcher that "dies" right after status.json (it never returns: no delivered mark, no release).
    let kill: (e: Error) => void = () => {};
    const zombie = dispatchOutcomes(
      {
        pool: h.pool,
        settings,
        outbox: h.ledger.outcomes,
        log,
        leaseSeconds: 60,
        fault: (point, ev: OutcomeEvent) =>
          point === 'after-status' && ev.runId === runId
            ? new Promise<void>((_, reject) => {
                kill = reject;
              })
            : undefined,
      },
      { runId },
    );
    for (let i = 0; i < 100 && statusPuts('killed-data') === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(statusPuts('killed-data') - before).toBe(1);
    await settleHooks();
    expect(hooksOf(runId)).toEqual([]);
    // A tidy inside the dead dispatcher's lease leaves the event alone …
    const early = await tidy(tidyDeps());
    expect(early.outcomes.delivered).not.toContain(runId);
    // Its customer not told 16 minutes on: the gauge behind OutcomesUndeliveredAlarm counts it.
    const soon = new Date(Date.now() + 16 * 60_000);
    expect((await h.ledger.outcomes.backlog(soon)).late).toBe(1);
    // Act 2: … the next tidy after the lease delivers it.
    const gauges: string[] = [];
    const later = await tidy({ ...tidyDeps(() => new Date(Date.now() + 61_000)), gauges: (l) => gauges.push(l) });
    expect(gauges.map((l) => JSON.parse(l)).find((g) => 'OutcomesUndelivered' in g)).toMatchObject({
      OutcomesUndelivered: 0,
      OutcomesGivenUp: 0,
    });
    expect(await h.ledger.outcomes.backlog(soon)).toEqual({ late: 0, givenUp: 0 });
    await settleHooks();
    // The dead dispatcher wakes up failing: fenced by the attempt number, it changes nothing.
    kill(new Error('killed'));
    await zombie;
    // Assess
    expect(later.outcomes.delivered).toContain(runId);
    const rows = await outcomeRows(runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ attempts: 2, given_up_at: null, last_error: null });
    expect(rows[0].delivered_at).not.toBeNull();
    const hooks = hooksOf(runId);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.type).toBe('delivery.failed');
    const stored = await new StatusStore(h.pool).events('killed');
    expect(stored.filter((e) => JSON.parse(e.body).run_id === runId).map((e) => e.id)).toEqual([hooks[0]!.id]);
    // status.json written again by the delivering tidy (same content), the streak counted once.
    expect(statusPuts('killed-data') - before).toBe(2);
    expect((await statusOf(c)).consecutive_failures).toBe(1);
  });
});
