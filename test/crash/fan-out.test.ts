import { describe, expect, it } from 'vitest';
import type { Fault } from '../../src/devstack/s3.js';
import type { CrashPoint } from '../../src/run/lifecycle/crash.js';
import {
  base,
  crashAt,
  deliver,
  drain,
  instance,
  nextExportIsExact,
  openedRun,
  receive,
  receiveFor,
  terminateLambdaSessions,
} from './lambda.js';
import {
  assertLedgerAndReceipts,
  exportAccountHandler,
  h,
  lam,
  lamBig,
  pastTheBound,
  published,
  sweeper,
  useCrashStack,
  worker,
} from './setup.js';

/**
 * The crash matrix of the fan-out driver (Lambda): the opener or a worker abandoned at every point,
 * or the run cancelled by invoke; the sweeper sends tasks again and the run completes (shared setup:
 * ./setup.ts, the Lambda side: ./lambda.ts).
 */
useCrashStack();

describe('crash matrix: Lambda (the handler abandoned, its database sessions terminated)', () => {
  const openPoints: CrashPoint[] = ['after-open-run', 'during-send', 'after-send'];
  it.each(openPoints)('opener dies at %s: the sweeper sends the tasks again; the run completes', async (point) => {
    // Act
    await crashAt(point, () => exportAccountHandler({ accountId: 'crashlam' }));
    const runId = await openedRun(lam);
    expect((await h.ledger.getRun(runId))?.dispatchedAt).toBeNull();
    await pastTheBound(runId);
    const swept = (await sweeper({})) as { runs: { runId: string; action: string }[] };
    // Assess
    expect(swept.runs).toEqual([expect.objectContaining({ runId, action: 'resent' })]);
    await drain(runId);
    expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    await assertLedgerAndReceipts(lam);
    await nextExportIsExact(lam);
  });

  it('a worker dies mid-COPY: after its lease the sweeper sends the task again; the run completes', async () => {
    await instance();
    const { runId } = (await exportAccountHandler({ accountId: 'crashbig' })) as { runId: string };
    const [m] = await receiveFor(runId, 1);
    await crashAt('mid-copy', () => worker({ Records: [m] }, base));
    const task = (await h.ledger.tasks(runId))[0]!;
    expect(task).toMatchObject({ status: 'running', attempts: 1 });
    // A delivery while the dead attempt's lease is still valid answers "busy" and puts the message back
    // until that lease runs out — one receive, not one per visibility timeout until it is dead-lettered.
    await deliver(m!);
    const queued = h.stack.sqs.queues.get(h.stack.taskQueueUrl)!.messages.find((x) => x.body === m!.body)!;
    const back = (queued.visibleAt - Date.now()) / 1000;
    expect(back).toBeGreaterThan(900);
    expect(back).toBeLessThan(970);
    expect((await h.ledger.tasks(runId))[0]).toMatchObject({ status: 'running', attempts: 1 });
    await pastTheBound(runId);
    const swept = (await sweeper({})) as { runs: { runId: string; action: string }[] };
    expect(swept.runs).toEqual([expect.objectContaining({ runId, action: 'resent' })]);
    await drain(runId);
    expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    expect((await h.ledger.tasks(runId))[0]).toMatchObject({ status: 'succeeded', attempts: 2 });
    await assertLedgerAndReceipts(lamBig);
    await nextExportIsExact(lamBig);
  });

  it('a worker dies mid-upload: the redelivery completes the run; the dead upload is aborted, not left', async () => {
    await instance();
    const { runId } = (await exportAccountHandler({ accountId: 'crashbig' })) as { runId: string };
    const [m] = await receiveFor(runId, 1);
    let release = (): void => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    let held = false;
    let reached = (): void => {};
    const atPart = new Promise<void>((r) => {
      reached = r;
    });
    const fault = (r: { bucket: string; query: URLSearchParams }) => {
      if (held || r.bucket !== 'crashbig-data' || !r.query.has('partNumber')) return undefined;
      held = true;
      reached();
      return { hold };
    };
    h.stack.s3.faults.push(fault);
    const abandoned = worker({ Records: [m] }, base).catch(() => {});
    try {
      await atPart;
      await terminateLambdaSessions();
      await instance();
      await pastTheBound(runId);
      await sweeper({});
      await drain(runId);
      expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
      release();
    }
    // The dead attempt's connection to S3 is cut: its upload is aborted; its late ledger writes are fenced.
    await abandoned;
    expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    await assertLedgerAndReceipts(lamBig);
    await nextExportIsExact(lamBig);
  });

  it('cancel by Lambda invoke while a worker exports: the worker stops within seconds, no receipt, no upload left', async () => {
    // Prepare: a short bound (the worker checks its run every 500 ms) and slow parts.
    await instance();
    process.env.DROPSHIP_RUN_STALE_SECONDS = '2';
    const slow: Fault = (r) =>
      r.bucket === 'crashbig-data' && r.query.has('partNumber') ? { delayMs: 1000 } : undefined;
    h.stack.s3.faults.push(slow);
    try {
      const { runId } = (await exportAccountHandler({ accountId: 'crashbig' })) as { runId: string };
      const [m] = await receiveFor(runId, 1);
      const { lambdaDeps } = await import('../../src/run/lambda.js');
      const { runTask } = await import('../../src/run/drivers/task.js');
      const deps = await lambdaDeps();
      const working = runTask(JSON.parse(m!.body), { ...deps, signal: new AbortController().signal });
      for (let i = 0; i < 100 && (await h.ledger.tasks(runId))[0]?.status !== 'running'; i++)
        await new Promise((r) => setTimeout(r, 50));
      // Act
      const res = (await sweeper({ cancel: runId })) as { status: string };
      const t0 = Date.now();
      await working;
      // Assess
      expect(res.status).toBe('cancelled');
      expect(Date.now() - t0).toBeLessThan(5_000);
      // It stopped because it saw the run cancelled (not because its result was refused afterwards).
      expect(await working).toMatchObject({ status: 'failed', reason: expect.stringMatching(/was cancelled/) });
      expect((await h.ledger.getRun(runId))?.status).toBe('cancelled');
      expect((await h.ledger.tasks(runId))[0]?.status).toBe('failed');
      expect(published.get(runId)).toBeUndefined();
      await assertLedgerAndReceipts(lamBig);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
      delete process.env.DROPSHIP_RUN_STALE_SECONDS;
      await instance();
    }
  });

  it('cancel by Lambda invoke: the run is cancelled, its tasks do nothing, no receipt', async () => {
    await instance();
    const { runId } = (await exportAccountHandler({ accountId: 'crashlam' })) as { runId: string };
    const res = (await sweeper({ cancel: runId })) as { status: string };
    expect(res.status).toBe('cancelled');
    for (let i = 0; i < 3; i++) for (const m of await receive()) await deliver(m);
    expect((await h.ledger.getRun(runId))?.status).toBe('cancelled');
    expect(published.get(runId)).toBeUndefined();
    expect((await h.ledger.tasks(runId)).every((t) => t.status === 'failed' && t.attempts === 0)).toBe(true);
    await assertLedgerAndReceipts(lam);
  });
});
