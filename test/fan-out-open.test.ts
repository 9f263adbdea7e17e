import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskMessage } from '../src/contracts/task.js';
import { setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { processTaskBatch } from '../src/run/drivers/task-batch.js';
import type { Faults } from '../src/run/lifecycle/faults.js';
import { sweepRuns } from '../src/run/liveness/sweep.js';
import { openSlotBatch } from '../src/schedule/open.js';
import { pastTheBound } from './kit/runs.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The fan-out opener where it can die or wait (red-team pass on fan-out, 2026-12-05): a run its pre-flight refuses
 * is recorded ended in the statement that opens it; the selection is recorded with the run; a customer's locked
 * table gives up that account's opening, not the open message's other accounts.
 */
let h: Harness;
const log = createLogger({ level: 'silent' });
const sent: TaskMessage[] = [];
/** A fault that never returns at `point`: the opener is abandoned there (a Lambda timed out, its process frozen). */
const hangAt = (point: string): Faults => ({
  at: (p) => (p === point ? new Promise<void>(() => {}) : Promise.resolve()),
  stops: () => false,
});
const deps = (faults?: Faults) => ({
  sourceUrl: h.stack.databaseUrl,
  ledger: h.ledger,
  settings: h.settings(),
  queue: { send: async (m: TaskMessage[]) => void sent.push(...m) },
  trigger: 'manual' as const,
  log,
  ...(faults ? { faults } : {}),
});
const sweep = () =>
  sweepRuns({
    ledger: h.ledger,
    settings: h.settings(),
    log,
    destination: (id) => h.registry.get(id),
    resend: async (m) => void sent.push(...m),
    by: 'sweeper',
  });
/** Works every task message sent so far, as the worker Lambda does. */
async function work(): Promise<void> {
  while (sent.length > 0)
    for (const [i, m] of sent.splice(0, sent.length).entries())
      await processTaskBatch(
        { Records: [{ messageId: `m${i}`, body: JSON.stringify(m) }] },
        {
          settings: h.settings(),
          registry: h.registry,
          ledger: h.ledger,
          log,
          sourceUrl: h.stack.databaseUrl,
          queue: { delay: async () => {} },
          signal: new AbortController().signal,
        },
      );
}
async function latestRun(accountId: string, other?: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const r = (await h.ledger.listRuns({ accountId, limit: 1 }))[0];
    if (r && r.runId !== other) return r.runId;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no run of ${accountId}`);
}

beforeAll(async () => {
  h = await startHarness();
  // A destination whose role cannot be assumed: the pre-flight refuses it.
  await h.pool.query('create schema norole; create table norole.a (id int primary key)');
  await h.registry.add({
    accountId: 'norole',
    plan: 'paid',
    bucket: 'norole-data',
    region: 'us-east-1',
    roleArn: 'arn:aws:iam::259999999999:role/dropship-export-norole',
    sourceSchema: 'norole',
  });
  await h.pool.query(`create schema sel; create table sel.a (id int primary key, secret text, name text);
    insert into sel.a select g, 's' || g, 'n' || g from generate_series(1, 20) g;`);
  await setupCustomer(h.stack, h.registry, {
    accountId: 'sel',
    awsAccountId: '251111111111',
    bucket: 'sel-data',
    schema: 'sel',
    selection: { excludeColumns: 'a.secret' },
  });
  for (const [i, id] of ['slow', 'fast'].entries()) {
    await h.pool.query(
      `create schema ${id}; create table ${id}.a (id int primary key); insert into ${id}.a values (1);`,
    );
    await setupCustomer(h.stack, h.registry, {
      accountId: id,
      awsAccountId: `25222222222${i}`,
      bucket: `${id}-data`,
      schema: id,
    });
  }
}, 240_000);

afterAll(async () => {
  await h?.stop();
});

describe('the fan-out opener', () => {
  it('records a run its pre-flight refuses as failed at once: nothing is left running, the next run opens', async () => {
    // Act: an opener abandoned right after it opened the run left it running with no task, for ever
    const dest = await h.registry.get('norole');
    void startFanOutRun(dest, deps(hangAt('after-open-run'))).catch(() => {});
    const runId = await latestRun('norole');
    // Assess: already ended, with the reason; the account's next run is not refused as "already has a run in progress"
    const run = await h.ledger.getRun(runId);
    expect(run?.status).toBe('failed');
    expect(run?.error).toMatch(/cannot assume role/);
    expect(await h.ledger.tasks(runId)).toEqual([]);
    const next = await startFanOutRun(dest, deps());
    expect(next.run.status).toBe('failed');
    expect(next.run.runId).not.toBe(runId);
  });

  it('the sweeper ends a running run with no task once it is silent (one a previous release left behind)', async () => {
    // Prepare: opened with no task, its opener gone
    const dest = await h.registry.get('norole');
    const run = await h.ledger.openRun({
      runId: '20261205T000000Z-0a0a0a',
      accountId: 'norole',
      trigger: 'manual',
      layout: 'dreamdata',
      folder: '2026-12-05T00:00',
      startedMicros: 1n,
      tables: [],
      owner: 'fan-out',
      destination: dest,
    });
    await pastTheBound(h.pool, run.runId);
    // Act
    const swept = (await sweep()).filter((s) => s.runId === run.runId);
    // Assess
    expect(swept.map((s) => s.action)).toEqual(['ended']);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('failed');
  });

  it('records the selection with the run: an opener abandoned right after opening still gets a receipt that says it', async () => {
    // Act: abandoned after the run opened; the sweeper sends its tasks; the workers finish it
    const dest = await h.registry.get('sel');
    void startFanOutRun(dest, deps(hangAt('after-open-run'))).catch(() => {});
    const runId = await latestRun('sel');
    await new Promise((r) => setTimeout(r, 300));
    await pastTheBound(h.pool, runId);
    expect((await sweep()).find((s) => s.runId === runId)?.action).toBe('resent');
    await work();
    // Assess: the receipt names the excluded column, and the file has no such column
    const run = await h.ledger.getRun(runId);
    expect(run?.status).toBe('succeeded');
    const receipt = JSON.parse(run!.receiptBody!) as {
      selection?: { exclude_columns: string[] };
      tables: Record<string, { columns: { name: string }[] }>;
    };
    expect(receipt.selection?.exclude_columns).toEqual(['a.secret']);
    expect(receipt.tables.a!.columns.map((c) => c.name)).toEqual(['id', 'name']);
  });

  it("one customer's locked table gives up that account's opening, not the open message's others", async () => {
    // Prepare: an ACCESS EXCLUSIVE lock on slow.a, held by another session (an ALTER, a VACUUM FULL)
    const locker = await h.pool.connect();
    try {
      await locker.query('begin; lock table slow.a in access exclusive mode');
      // Act
      const opened = await openSlotBatch(
        {
          registry: h.registry,
          ledger: h.ledger,
          settings: h.settings(),
          queue: { send: async (m: TaskMessage[]) => void sent.push(...m) },
          sourceUrl: h.stack.databaseUrl,
          log,
        },
        { kind: 'open', slot: '04:00', slotDate: '2026-01-01', by: 'schedule', accountIds: ['slow', 'fast'] },
      );
      // Assess: slow gave up after the planning's lock timeout (PLANNING_LOCK_TIMEOUT_SECONDS); fast opened (it waited
      // for the lock's release before: here, never)
      expect(opened.runs.map((r) => [r.accountId, r.status])).toEqual([
        ['slow', 'error'],
        ['fast', 'running'],
      ]);
      expect(opened.runs[0]!.error).toMatch(/lock timeout/);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    sent.length = 0;
  }, 120_000);
});
