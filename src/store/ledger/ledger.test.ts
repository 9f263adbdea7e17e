import { describe, expect, it } from 'vitest';
import { useHarness } from '../../../test/kit/harness.js';
import { addDestination, pastTheBound, runOf, runWithTasksDone, taskResult } from '../../../test/kit/runs.js';
import { DestinationChanged, LedgerError, RunInProgress, SlotAlreadyRun } from './ledger.js';

/**
 * The ledger's transitions (dropship.runs, dropship.run_tasks) against a real, throwaway database:
 * one embedded Postgres per file, migrated as `dropship migrate` does; each test has its own
 * account, so tests share the database without seeing each other's runs. Nothing here talks to S3.
 */
const h = useHarness();

/** The date of a slot, from the clock (never a calendar date written in the test). */
const today = () => new Date().toISOString().slice(0, 10);

describe('a run from open to succeeded', () => {
  it('open → claim → complete → finish: one finisher, the first receipt bytes win, then succeeded', async () => {
    // Prepare
    const d = await addDestination(h, 'led-ok');
    const run = await h.ledger.openRun(runOf(d));
    expect(run).toMatchObject({ status: 'running', destinationGeneration: d.generation, destinationVersion: 1 });
    expect((await h.ledger.tasks(run.runId)).map((t) => [t.table, t.status])).toEqual([
      ['a', 'pending'],
      ['b', 'pending'],
    ]);
    const a = await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });
    const b = await h.ledger.claimTask({ runId: run.runId, table: 'b', leaseSeconds: 60 });
    expect(a).toEqual({ claimed: true, attempt: 1 });
    expect(b).toEqual({ claimed: true, attempt: 1 });

    // Act: a completes; the run cannot finish while b runs; b completes; two finishers race.
    expect(await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') })).toBe(
      true,
    );
    const early = await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60 });
    expect(await h.ledger.completeTask({ runId: run.runId, table: 'b', attempt: 1, result: taskResult('b', 5) })).toBe(
      true,
    );
    const [first, second] = await Promise.all([
      h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60 }),
      h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60 }),
    ]);
    const winner = first ?? second;
    const recorded = await h.ledger.recordReceipt({ runId: run.runId, body: '{"first":true}' });
    const again = await h.ledger.recordReceipt({ runId: run.runId, body: '{"second":true}' });
    const publishable = await h.ledger.stillPublishable(run.runId);
    const succeeded = await h.ledger.finishSucceeded({ runId: run.runId, receiptKey: 'receipt.json' });

    // Assess
    expect(early).toBeUndefined();
    expect([first, second].filter(Boolean)).toHaveLength(1);
    expect(winner).toMatchObject({ status: 'finishing', finishAttempts: 1 });
    expect(recorded).toBe('{"first":true}');
    expect(again).toBe('{"first":true}');
    expect(publishable).toEqual({ ok: true });
    expect(succeeded).toBe(true);
    const done = await h.ledger.getRun(run.runId);
    expect(done).toMatchObject({ status: 'succeeded', receiptKey: 'receipt.json', error: null });
    expect(done?.finishedAt).toBeInstanceOf(Date);
    expect((await h.ledger.tasks(run.runId)).map((t) => [t.table, t.status, t.rows])).toEqual([
      ['a', 'succeeded', 10],
      ['b', 'succeeded', 5],
    ]);
    // Ended: nothing moves it any more.
    expect(await h.ledger.finishSucceeded({ runId: run.runId, receiptKey: 'other.json' })).toBe(false);
    expect(await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60, takeOver: true })).toBeUndefined();
    expect(await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 })).toEqual({
      claimed: false,
      reason: 'done',
    });
    expect(await h.ledger.heartbeat(run.runId)).toBe('succeeded');
  });

  it('a finisher whose lease ran out is taken over; a retryable failure releases the lease at once', async () => {
    // Prepare
    const d = await addDestination(h, 'led-takeover');
    const run = await runWithTasksDone(h.ledger, d, { tables: ['a'] }, { finishing: true });

    // Act + Assess: while the lease holds, nobody else finishes; once released, the next one does.
    expect(await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 600 })).toBeUndefined();
    await h.ledger.finishPending({ runId: run.runId, error: 'SlowDown' });
    const next = await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 600 });
    expect(next).toMatchObject({ status: 'finishing', finishAttempts: 2, error: 'SlowDown' });
  });
});

describe('a run that fails', () => {
  it('failRun ends a running run and fails its unfinished tasks; a finished task keeps its result', async () => {
    // Prepare
    const d = await addDestination(h, 'led-fail');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a', 'b', 'c'] }));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });
    await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') });
    await h.ledger.claimTask({ runId: run.runId, table: 'b', leaseSeconds: 60 });

    // Act
    const failed = await h.ledger.failRun({ runId: run.runId, error: 'table c: boom' });

    // Assess
    expect(failed).toBe(true);
    expect(await h.ledger.getRun(run.runId)).toMatchObject({ status: 'failed', error: 'table c: boom' });
    expect((await h.ledger.tasks(run.runId)).map((t) => [t.table, t.status, t.error])).toEqual([
      ['a', 'succeeded', null],
      ['b', 'failed', 'run ended before this task finished'],
      ['c', 'failed', 'run ended before this task finished'],
    ]);
    // The owner's heartbeat learns it must stop; nothing more is recorded for the run.
    expect(await h.ledger.heartbeat(run.runId)).toBe('failed');
    expect(await h.ledger.completeTask({ runId: run.runId, table: 'b', attempt: 1, result: taskResult('b') })).toBe(
      false,
    );
    expect(await h.ledger.failRun({ runId: run.runId, error: 'again' })).toBe(false);
    expect((await h.ledger.getRun(run.runId))?.error).toBe('table c: boom');
  });

  it('a finishing run is not failed, unless its receipt was refused for good before it was stored', async () => {
    // Prepare
    const d = await addDestination(h, 'led-failfin');
    const run = await runWithTasksDone(h.ledger, d, { tables: ['a'] }, { finishing: true });

    // Act + Assess
    expect(await h.ledger.failRun({ runId: run.runId, error: 'late' })).toBe(false);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('finishing');
    expect(await h.ledger.failRun({ runId: run.runId, error: 'AccessDenied', finishingRefused: true })).toBe(true);
    expect(await h.ledger.getRun(run.runId)).toMatchObject({ status: 'failed', error: 'AccessDenied' });
  });

  it('releaseTask: a retry gives the attempt back while attempts are left; then the task fails, the run only with failRun', async () => {
    // Prepare
    const d = await addDestination(h, 'led-release');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a', 'b'], maxAttempts: 2 }));
    const ref = { runId: run.runId, table: 'a' };

    // Act
    await h.ledger.claimTask({ ...ref, leaseSeconds: 60 });
    const first = await h.ledger.releaseTask({ ...ref, attempt: 1, error: 'SlowDown', retry: true, failRun: false });
    await h.ledger.claimTask({ ...ref, leaseSeconds: 60 });
    const second = await h.ledger.releaseTask({ ...ref, attempt: 2, error: 'SlowDown', retry: true, failRun: false });
    const runAfterInProcess = await h.ledger.getRun(run.runId);
    await h.ledger.claimTask({ runId: run.runId, table: 'b', leaseSeconds: 60 });
    const third = await h.ledger.releaseTask({
      runId: run.runId,
      table: 'b',
      attempt: 1,
      error: 'AccessDenied',
      retry: false,
      failRun: true,
    });

    // Assess
    expect(first).toBe('retry');
    expect(second).toBe('failed');
    expect(runAfterInProcess?.status).toBe('running');
    expect(third).toBe('failed');
    expect(await h.ledger.getRun(run.runId)).toMatchObject({ status: 'failed', error: 'table b: AccessDenied' });
    expect((await h.ledger.task(ref))?.attempts).toBe(2);
  });

  it('a dead-lettered task fails with its run; a task that already succeeded is left alone', async () => {
    // Prepare
    const d = await addDestination(h, 'led-dlq');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a', 'b', 'c'] }));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });
    await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') });

    // Act
    const ignored = await h.ledger.deadLetter({ runId: run.runId, table: 'a', detail: 'dead-lettered' });
    const failed = await h.ledger.deadLetter({ runId: run.runId, table: 'b', detail: 'dead-lettered after 5' });

    // Assess
    expect(ignored).toBe('ignored');
    expect(failed).toBe('failed');
    expect(await h.ledger.getRun(run.runId)).toMatchObject({
      status: 'failed',
      error: 'table b: dead-lettered after 5',
    });
    expect((await h.ledger.tasks(run.runId)).map((t) => [t.table, t.status])).toEqual([
      ['a', 'succeeded'],
      ['b', 'failed'],
      ['c', 'failed'],
    ]);
  });
});

describe('a run that is cancelled', () => {
  it('a running run: cancelled, its tasks fail as cancelled, a live attempt cannot record its result', async () => {
    // Prepare
    const d = await addDestination(h, 'led-cancel');
    const run = await h.ledger.openRun(runOf(d));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });

    // Act
    const res = await h.ledger.cancelRun({ runId: run.runId, by: 'an operator' });

    // Assess
    expect(res).toEqual({ ok: true });
    expect(await h.ledger.getRun(run.runId)).toMatchObject({ status: 'cancelled', error: 'cancelled by an operator' });
    expect((await h.ledger.tasks(run.runId)).map((t) => [t.table, t.status, t.error])).toEqual([
      ['a', 'failed', 'run cancelled'],
      ['b', 'failed', 'run cancelled'],
    ]);
    expect(await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') })).toBe(
      false,
    );
    expect(await h.ledger.claimTask({ runId: run.runId, table: 'b', leaseSeconds: 60 })).toEqual({
      claimed: false,
      reason: 'failed',
    });
    expect(await h.ledger.cancelRun({ runId: run.runId, by: 'twice' })).toEqual({ ok: false, status: 'cancelled' });
  });

  it('while finishing: the finisher’s last look sees it; the run is never marked succeeded', async () => {
    // Prepare: the receipt's bytes are recorded and its PUT is under way.
    const d = await addDestination(h, 'led-cancelfin');
    const run = await runWithTasksDone(h.ledger, d, { tables: ['a'] }, { finishing: true });
    await h.ledger.recordReceipt({ runId: run.runId, body: '{"sequence":1}' });
    expect(await h.ledger.receiptPutStarts(run.runId)).toBe(true);

    // Act
    const res = await h.ledger.cancelRun({ runId: run.runId, by: 'an operator' });

    // Assess
    expect(res).toEqual({ ok: true });
    expect(await h.ledger.stillPublishable(run.runId)).toEqual({
      ok: false,
      why: `run ${run.runId} was cancelled: cancelled by an operator`,
    });
    expect(await h.ledger.finishSucceeded({ runId: run.runId, receiptKey: 'receipt.json' })).toBe(false);
    expect(await h.ledger.receiptPutStarts(run.runId)).toBe(false);
    await expect(h.ledger.recordReceipt({ runId: run.runId, body: '{}' })).rejects.toBeInstanceOf(LedgerError);
    expect(await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60, takeOver: true })).toBeUndefined();
    expect((await h.ledger.getRun(run.runId))?.status).toBe('cancelled');
    // Its PUT was in doubt: the receipt may be out, so its chain link is kept, marked not known published.
    const link = await h.pool.query('select sequence, published from dropship.receipt_chain where run_id = $1', [
      run.runId,
    ]);
    expect(link.rows).toEqual([{ sequence: '1', published: false }]);
  });

  it('a succeeded run cannot be cancelled', async () => {
    // Prepare
    const d = await addDestination(h, 'led-cancelok');
    const run = await h.ledger.openRun(runOf(d, { tables: [] }));
    await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60 });
    await h.ledger.finishSucceeded({ runId: run.runId, receiptKey: 'receipt.json' });

    // Act + Assess
    expect(await h.ledger.cancelRun({ runId: run.runId, by: 'late' })).toEqual({ ok: false, status: 'succeeded' });
  });
});

describe('at most one open run per account, one run per scheduled slot', () => {
  it('a second run of an account while one is open is refused; once it ended, the next opens', async () => {
    // Prepare
    const d = await addDestination(h, 'led-one');
    const other = await addDestination(h, 'led-one-other');
    const first = await h.ledger.openRun(runOf(d));

    // Act
    const second = h.ledger.openRun(runOf(d));

    // Assess
    await expect(second).rejects.toBeInstanceOf(RunInProgress);
    await expect(h.ledger.openRun(runOf(d))).rejects.toMatchObject({ retryable: true });
    expect((await h.ledger.openRun(runOf(other))).status).toBe('running');
    await h.ledger.failRun({ runId: first.runId, error: 'done with it' });
    expect((await h.ledger.openRun(runOf(d))).status).toBe('running');
    expect((await h.ledger.activeRuns(d.accountId)).map((r) => r.status)).toEqual(['running']);
  });

  it('a scheduled slot runs once a day, even after its run ended; a missed slot occupies it too', async () => {
    // Prepare
    const d = await addDestination(h, 'led-slot');
    const slot = { trigger: 'schedule' as const, slot: '04:00', slotDate: today() };
    const run = await h.ledger.openRun(runOf(d, slot));
    await h.ledger.failRun({ runId: run.runId, error: 'failed' });

    // Act
    const again = await h.ledger.openRun(runOf(d, slot)).then(
      () => undefined,
      (e: unknown) => e,
    );
    const missSlot = async () =>
      (
        await h.ledger.recordMissedSlots({ slot: '15:00', slotDate: today(), error: 'missed' }, [
          { runId: runOf(d).runId, accountId: d.accountId, layout: d.layout },
        ])
      ).has(d.accountId);
    const missed = await missSlot();
    const missedTwice = await missSlot();

    // Assess
    expect(again).toBeInstanceOf(SlotAlreadyRun);
    expect(again).toMatchObject({ retryable: false });
    expect(missed).toBe(true);
    expect(missedTwice).toBe(false);
    await expect(h.ledger.openRun(runOf(d, { ...slot, slot: '15:00' }))).rejects.toBeInstanceOf(SlotAlreadyRun);
    expect(await h.ledger.slotRuns({ slot: '15:00', slotDate: today() })).toContain(d.accountId);
    // A hand-run export of the same account is not a slot's run.
    expect((await h.ledger.openRun(runOf(d))).status).toBe('running');
  });
});

describe('a task claimed twice', () => {
  it('is busy while the first lease holds; after it, the next attempt takes over and the late one is fenced off', async () => {
    // Prepare
    const d = await addDestination(h, 'led-twice');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a'] }));
    const ref = { runId: run.runId, table: 'a' };
    const first = await h.ledger.claimTask({ ...ref, leaseSeconds: 60 });

    // Act
    const busy = await h.ledger.claimTask({ ...ref, leaseSeconds: 60 });
    await pastTheBound(h.pool, run.runId);
    const expired = await h.ledger.expiredTasks(run.runId);
    const second = await h.ledger.claimTask({ ...ref, leaseSeconds: 60 });
    const late = await h.ledger.completeTask({ ...ref, attempt: 1, result: taskResult('a', 1) });
    const current = await h.ledger.completeTask({ ...ref, attempt: 2, result: taskResult('a', 2) });

    // Assess
    expect(first).toEqual({ claimed: true, attempt: 1 });
    expect(busy).toEqual({ claimed: false, reason: 'busy' });
    expect(expired.map((t) => t.table)).toEqual(['a']);
    expect(second).toEqual({ claimed: true, attempt: 2 });
    expect(late).toBe(false);
    expect(current).toBe(true);
    expect(await h.ledger.task(ref)).toMatchObject({ status: 'succeeded', attempts: 2, rows: 2 });
  });

  it('out of attempts: the claim after the last lease ran out fails the task and the run', async () => {
    // Prepare
    const d = await addDestination(h, 'led-exhausted');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a'], maxAttempts: 1 }));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });
    await pastTheBound(h.pool, run.runId);

    // Act
    const claim = await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });

    // Assess
    expect(claim).toEqual({ claimed: false, reason: 'exhausted' });
    expect((await h.ledger.task({ runId: run.runId, table: 'a' }))?.status).toBe('failed');
    const ended = await h.ledger.getRun(run.runId);
    expect(ended?.status).toBe('failed');
    expect(ended?.error).toMatch(/^table a: gave up after 1 attempts/);
  });

  it('an unknown task, and a task of an ended run, are declined with the reason', async () => {
    // Prepare
    const d = await addDestination(h, 'led-declined');
    const run = await runWithTasksDone(h.ledger, d, { tables: ['a'] }, { finishing: true });

    // Act + Assess
    expect(await h.ledger.claimTask({ runId: run.runId, table: 'nope', leaseSeconds: 60 })).toEqual({
      claimed: false,
      reason: 'unknown',
    });
    const other = await addDestination(h, 'led-declined2');
    const closed = await h.ledger.openRun(runOf(other, { tables: ['a'] }));
    await h.pool.query(`update dropship.runs set status = 'finishing' where run_id = $1`, [closed.runId]);
    expect(await h.ledger.claimTask({ runId: closed.runId, table: 'a', leaseSeconds: 60 })).toEqual({
      claimed: false,
      reason: 'run-closed',
    });
  });
});

describe('the destination changed (generation and version)', () => {
  it('a run opened with a stale copy of the destination is refused', async () => {
    // Prepare
    const d = await addDestination(h, 'led-stale');
    const updated = await h.registry.update(d.accountId, { bucket: 'led-stale-moved' });

    // Act
    const opening = h.ledger.openRun(runOf(d));

    // Assess
    expect(updated.version).toBe(d.version + 1);
    await expect(opening).rejects.toBeInstanceOf(DestinationChanged);
    expect((await h.ledger.openRun(runOf(updated))).destinationVersion).toBe(updated.version);
  });

  it('an update of where data goes cancels the open run: nothing more is recorded or finished for it', async () => {
    // Prepare
    const d = await addDestination(h, 'led-moved');
    const run = await h.ledger.openRun(runOf(d));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });

    // Act
    await h.registry.update(d.accountId, { bucket: 'led-moved-elsewhere' });

    // Assess
    const ended = await h.ledger.getRun(run.runId);
    expect(ended?.status).toBe('cancelled');
    expect(ended?.error).toMatch(/^the destination was changed \(bucket\) while this run was open/);
    expect(await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') })).toBe(
      false,
    );
    expect(await h.ledger.claimTask({ runId: run.runId, table: 'b', leaseSeconds: 60 })).toEqual({
      claimed: false,
      reason: 'failed',
    });
    expect(await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60, takeOver: true })).toBeUndefined();
  });

  it('an update that does not change where data goes (the plan) leaves the run open', async () => {
    // Prepare
    const d = await addDestination(h, 'led-plan');
    const run = await h.ledger.openRun(runOf(d));

    // Act
    const updated = await h.registry.update(d.accountId, { plan: 'free' });

    // Assess
    expect(updated.version).toBe(d.version);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('running');
    expect((await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 })).claimed).toBe(true);
  });

  it('a run that no longer serves the current version can neither complete a task nor finish', async () => {
    // Prepare: the version moves without the registry's cancel (as a run opened by an older release
    // would see it): the ledger's own fence holds.
    const d = await addDestination(h, 'led-fenced');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a'] }));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });
    await h.pool.query(`update dropship.destinations set bucket = 'led-fenced-moved' where account_id = $1`, [
      d.accountId,
    ]);

    // Act
    const completed = await h.ledger.completeTask({
      runId: run.runId,
      table: 'a',
      attempt: 1,
      result: taskResult('a'),
    });
    await h.pool.query(`update dropship.run_tasks set status = 'succeeded' where run_id = $1`, [run.runId]);
    const finishing = await h.ledger.tryFinish({ runId: run.runId, leaseSeconds: 60 });

    // Assess
    expect(completed).toBe(false);
    expect(finishing).toBeUndefined();
    expect((await h.ledger.getRun(run.runId))?.status).toBe('running');
  });

  it('a task of a run that no longer serves the current version is not claimable: run-closed, not busy', async () => {
    // Prepare: as above, the version moves without the registry's cancel.
    const d = await addDestination(h, 'led-closed');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a'] }));
    await h.pool.query(`update dropship.destinations set bucket = 'led-closed-moved' where account_id = $1`, [
      d.accountId,
    ]);

    // Act
    const claim = await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 60 });

    // Assess: a worker drops the message (a busy answer would send it back again and again)
    expect(claim).toEqual({ claimed: false, reason: 'run-closed' });
    expect((await h.ledger.task({ runId: run.runId, table: 'a' }))?.attempts).toBe(0);
  });

  it('removing the destination cancels its open run', async () => {
    // Prepare
    const d = await addDestination(h, 'led-removed');
    const run = await h.ledger.openRun(runOf(d));

    // Act
    await h.registry.remove(d.accountId);

    // Assess
    const ended = await h.ledger.getRun(run.runId);
    expect(ended?.status).toBe('cancelled');
    expect(ended?.error).toMatch(/^the destination was removed while this run was open/);
  });
});
