import { describe, expect, it } from 'vitest';
import { useHarness } from '../../../test/kit/harness.js';
import {
  addDestination,
  dropOwnerConnection,
  pastTheBound,
  runOf,
  runWithTasksDone,
  taskResult,
} from '../../../test/kit/runs.js';
import type { TaskMessage } from '../../contracts/task.js';
import { createLogger } from '../../log/logger.js';
import { LOST_MESSAGE_SECONDS, type SweepDeps, sweepRuns } from './sweep.js';

/**
 * The sweep (src/run/liveness/sweep.ts) against a real ledger in a throwaway database, with fakes for what it
 * calls outside: the task queue (`resend` records the messages) and the log (lines captured). Every
 * test sweeps only its own account. The paths that publish a receipt (finishing an orphaned run)
 * need S3 and are covered by test/crash/ and test/finishing.test.ts.
 */
const h = useHarness();

type Message = TaskMessage;

/** The sweep's dependencies with a recording queue and a captured log. */
function sweeper(opts: { resend?: boolean; destination?: SweepDeps['destination'] } = {}) {
  const sent: Message[] = [];
  const lines: { level: string; msg: string; runId?: string }[] = [];
  const log = createLogger({
    level: 'info',
    destination: { write: (m: string) => void lines.push(JSON.parse(m)) },
  });
  const deps: SweepDeps = {
    ledger: h.ledger,
    settings: h.settings(),
    log,
    destination: opts.destination ?? ((accountId) => h.registry.get(accountId)),
    ...(opts.resend === false ? {} : { resend: async (m: Message[]) => void sent.push(...m) }),
    by: 'sweeper',
  };
  return { deps, sent, lines };
}

describe('in-process runs (owner cli:…)', () => {
  it('owner gone (its lock released with its connection): the run is ended as abandoned', async () => {
    // Prepare: the owner took its lock, then its connection died.
    const d = await addDestination(h, 'sw-gone');
    const run = await h.ledger.openRun(runOf(d, { owner: 'cli:host:42', ownerLock: true }));
    const lock = await h.ledger.ownerLock(run.runId);
    const { deps, lines } = sweeper();
    const whileAlive = await sweepRuns(deps, { accountId: d.accountId });
    await dropOwnerConnection(h.pool, lock);

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });

    // Assess
    expect(whileAlive).toEqual([{ runId: run.runId, accountId: d.accountId, action: 'alive' }]);
    expect(swept).toEqual([
      {
        runId: run.runId,
        accountId: d.accountId,
        action: 'ended',
        detail: 'abandoned: its owner cli:host:42 is gone (its database session ended); ended by sweeper',
      },
    ]);
    const ended = await h.ledger.getRun(run.runId);
    expect(ended?.status).toBe('failed');
    expect(ended?.error).toBe(swept[0]!.detail);
    expect((await h.ledger.tasks(run.runId)).every((t) => t.status === 'failed')).toBe(true);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: 'abandoned run ended', runId: run.runId }),
    );
  });

  it('a silent owner (heartbeat past the stale bound) is ended even though its lock is held (a frozen process)', async () => {
    // Prepare
    const d = await addDestination(h, 'sw-silent');
    const run = await h.ledger.openRun(runOf(d, { owner: 'cli:host:43', ownerLock: true, staleSeconds: 120 }));
    const lock = await h.ledger.ownerLock(run.runId);
    try {
      await pastTheBound(h.pool, run.runId);
      const { deps } = sweeper();

      // Act
      const [swept] = await sweepRuns(deps, { accountId: d.accountId });

      // Assess
      expect(swept?.action).toBe('ended');
      expect(swept?.detail).toMatch(
        /^abandoned: its owner cli:host:43 has not been heard from for \d+ s \(DROPSHIP_RUN_STALE_SECONDS=120\); ended by sweeper$/,
      );
      expect((await h.ledger.getRun(run.runId))?.status).toBe('failed');
      // The frozen owner's next heartbeat tells it to stop.
      expect(await h.ledger.heartbeat(run.runId)).toBe('failed');
    } finally {
      lock.release();
    }
  });

  it('a sweep of one account leaves the other accounts’ runs alone', async () => {
    // Prepare
    const mine = await addDestination(h, 'sw-mine');
    const theirs = await addDestination(h, 'sw-theirs');
    const run = await h.ledger.openRun(runOf(mine, { owner: 'cli:host:44', ownerLock: true }));
    const other = await h.ledger.openRun(runOf(theirs, { owner: 'cli:host:45', ownerLock: true }));
    const { deps } = sweeper();

    // Act
    const swept = await sweepRuns(deps, { accountId: mine.accountId });

    // Assess
    expect(swept.map((s) => [s.runId, s.action])).toEqual([[run.runId, 'ended']]);
    expect((await h.ledger.getRun(other.runId))?.status).toBe('running');
  });
});

describe('fan-out runs (owner fan-out)', () => {
  it('the opener died before every message was sent: once silent, every unfinished task is sent again', async () => {
    // Prepare
    const d = await addDestination(h, 'sw-undelivered');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a', 'b', 'c'] }));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 600 });
    await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') });
    const { deps, sent, lines } = sweeper();
    const early = await sweepRuns(deps, { accountId: d.accountId });
    await pastTheBound(h.pool, run.runId);

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });

    // Assess
    expect(early.map((s) => s.action)).toEqual(['alive']);
    expect(swept).toEqual([{ runId: run.runId, accountId: d.accountId, action: 'resent', detail: '2 task(s)' }]);
    expect(sent).toEqual([
      { runId: run.runId, accountId: d.accountId, table: 'b' },
      { runId: run.runId, accountId: d.accountId, table: 'c' },
    ]);
    expect((await h.ledger.getRun(run.runId))?.dispatchedAt).toBeInstanceOf(Date);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'undelivered tasks sent again', runId: run.runId }));
  });

  it('a worker died: only its task (lease run out) is sent again, with its part', async () => {
    // Prepare
    const d = await addDestination(h, 'sw-worker');
    const run = await h.ledger.openRun(
      runOf(d, {
        tables: ['a'],
        parts: [
          { table: 'big', part: 0, parts: 2, keyColumn: 'id', lo: 0n, hi: 100n },
          { table: 'big', part: 1, parts: 2, keyColumn: 'id', lo: 100n, hi: 200n },
        ],
      }),
    );
    await h.ledger.markDispatched(run.runId);
    await h.ledger.claimTask({ runId: run.runId, table: 'big', part: 1, leaseSeconds: 600 });
    await pastTheBound(h.pool, run.runId);
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 600 }); // a live worker
    const { deps, sent } = sweeper();

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });

    // Assess
    expect(swept.map((s) => [s.action, s.detail])).toEqual([['resent', '1 task(s)']]);
    expect(sent).toEqual([{ runId: run.runId, accountId: d.accountId, table: 'big', part: 1 }]);
  });

  it("a packed message's worker died: its expired task and the run's pending whole tables are sent again, one a message", async () => {
    // Prepare: a packed message [a, b, c] whose worker finished a, died in b (lease run out), never reached c;
    // the split table's parts are still queued in their own messages.
    const d = await addDestination(h, 'sw-packed');
    const run = await h.ledger.openRun(
      runOf(d, {
        tables: ['a', 'b', 'c'],
        parts: [
          { table: 'big', part: 0, parts: 2, keyColumn: 'id', lo: 0n, hi: 100n },
          { table: 'big', part: 1, parts: 2, keyColumn: 'id', lo: 100n, hi: 200n },
        ],
      }),
    );
    await h.ledger.markDispatched(run.runId);
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 600 });
    await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') });
    await h.ledger.claimTask({ runId: run.runId, table: 'b', leaseSeconds: 600 });
    await pastTheBound(h.pool, run.runId);
    const { deps, sent } = sweeper();

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });

    // Assess
    expect(swept.map((s) => [s.action, s.detail])).toEqual([['resent', '2 task(s)']]);
    expect(sent).toEqual([
      { runId: run.runId, accountId: d.accountId, table: 'b' },
      { runId: run.runId, accountId: d.accountId, table: 'c' },
    ]);
  });

  it('a dead worker while the task queue is backed up: each task is sent again once per task lease, not at every sweep (red team, fan-out)', async () => {
    // Prepare: 50 small tables in one packed message; its worker died in the first; nothing of the run is received
    // for the next sweeps (the workers are busy with the slot).
    const d = await addDestination(h, 'sw-backlog');
    const tables = Array.from({ length: 50 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    const run = await h.ledger.openRun(runOf(d, { tables }));
    await h.ledger.markDispatched(run.runId);
    await h.ledger.claimTask({ runId: run.runId, table: 't00', leaseSeconds: 600 });
    await pastTheBound(h.pool, run.runId);
    const { deps, sent } = sweeper();
    // Act: three sweeps (15 minutes, within the task lease).
    const per: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = sent.length;
      await sweepRuns(deps, { accountId: d.accountId });
      per.push(sent.length - before);
    }
    // Assess: every task once; after a lease without a worker, once more.
    expect(per).toEqual([50, 0, 0]);
    expect(new Set(sent.map((m) => (m as { table: string }).table)).size).toBe(50);
    await h.pool.query(
      `update dropship.run_tasks set resent_at = now() - make_interval(secs => $2) where run_id = $1`,
      [run.runId, deps.settings.DROPSHIP_TASK_LEASE_SECONDS + 1],
    );
    await sweepRuns(deps, { accountId: d.accountId });
    expect(sent).toHaveLength(100);
  });

  it('a dispatched run whose pending task has no message left (a purged queue): after LOST_MESSAGE_SECONDS silent, the task is sent again (red team, fan-out)', async () => {
    const d = await addDestination(h, 'sw-lost');
    const run = await h.ledger.openRun(runOf(d, { tables: ['a', 'b'] }));
    await h.ledger.markDispatched(run.runId);
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 600 });
    await h.ledger.completeTask({ runId: run.runId, table: 'a', attempt: 1, result: taskResult('a') });
    const { deps, sent } = sweeper();
    // Silent past the stale bound but not the lost-message bound: b's message may still be queued behind a slot.
    await h.pool.query(`update dropship.runs set heartbeat_at = now() - interval '3 hours' where run_id = $1`, [
      run.runId,
    ]);
    expect((await sweepRuns(deps, { accountId: d.accountId })).map((s) => s.action)).toEqual(['alive']);
    // Act: silent for longer than any backlog lasts.
    await h.pool.query(`update dropship.runs set heartbeat_at = now() - make_interval(secs => $2) where run_id = $1`, [
      run.runId,
      LOST_MESSAGE_SECONDS + 60,
    ]);
    const swept = await sweepRuns(deps, { accountId: d.accountId });
    // Assess
    expect(swept.map((s) => [s.action, s.detail])).toEqual([['resent', '1 task(s)']]);
    expect(sent).toEqual([{ runId: run.runId, accountId: d.accountId, table: 'b' }]);
  });

  it('without a queue to resend to, a silent fan-out run waits; a finishing run with its lease is alive', async () => {
    // Prepare
    const d = await addDestination(h, 'sw-noqueue');
    const run = await h.ledger.openRun(runOf(d));
    await pastTheBound(h.pool, run.runId);
    const fin = await addDestination(h, 'sw-finishing');
    const finishing = await h.ledger.openRun(runOf(fin, { tables: [] }));
    await h.ledger.tryFinish({ runId: finishing.runId, leaseSeconds: 600 });
    const { deps, sent } = sweeper({ resend: false });

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });
    const sweptFinishing = await sweepRuns(deps, { accountId: fin.accountId });

    // Assess
    expect(swept.map((s) => s.action)).toEqual(['waiting']);
    expect(sent).toEqual([]);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('running');
    expect(sweptFinishing.map((s) => s.action)).toEqual(['alive']);
  });

  it('a run opened before runs kept their destination, whose destination has changed since, is not finished', async () => {
    // Prepare: every task done and silent; the run has no frozen destination copy (an older
    // release's run) and the registry's destination moved to another version meanwhile.
    const d = await addDestination(h, 'sw-legacy');
    const run = await runWithTasksDone(h.ledger, d, { tables: ['a'] });
    await h.pool.query('update dropship.runs set destination = null where run_id = $1', [run.runId]);
    await h.pool.query(`update dropship.destinations set bucket = 'sw-legacy-moved' where account_id = $1`, [
      d.accountId,
    ]);
    await pastTheBound(h.pool, run.runId);
    const { deps } = sweeper();

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });

    // Assess
    expect(swept).toEqual([
      {
        runId: run.runId,
        accountId: d.accountId,
        action: 'waiting',
        detail: 'the run serves a destination version that is no longer current',
      },
    ]);
    expect((await h.ledger.getRun(run.runId))?.status).toBe('running');
  });

  it('a run that cannot be swept (its destination cannot be read) is reported, and the others are still swept', async () => {
    // Prepare
    const d = await addDestination(h, 'sw-broken');
    const run = await runWithTasksDone(h.ledger, d, { tables: ['a'] });
    await h.pool.query('update dropship.runs set destination = null where run_id = $1', [run.runId]);
    await pastTheBound(h.pool, run.runId);
    const { deps, lines } = sweeper({
      destination: async () => {
        throw new Error('registry unavailable');
      },
    });

    // Act
    const swept = await sweepRuns(deps, { accountId: d.accountId });

    // Assess
    expect(swept).toEqual([
      { runId: run.runId, accountId: d.accountId, action: 'waiting', detail: 'registry unavailable' },
    ]);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'sweeping a run failed', runId: run.runId }),
    );
  });
});
