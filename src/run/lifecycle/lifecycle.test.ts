import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useHarness } from '../../../test/kit/harness.js';
import { addDestination, runOf } from '../../../test/kit/runs.js';
import type { Destination } from '../../accounts/destination.js';
import type { DestinationPort } from '../../destinations/port.js';
import { LedgerError } from '../../store/ledger/ledger.js';
import type { Run } from '../../store/ledger/rows.js';
import { type LifecycleInput, type LifecycleState, runTableTask } from './lifecycle.js';
import { RunPolicy } from './policy.js';

/**
 * One table task's lifecycle (src/run/lifecycle/lifecycle.ts: claim → export → … or release) against a real
 * ledger in a throwaway database. The source connection, the snapshot and the plan are injected, so
 * a test decides where the export fails; the destination's port is never used on these paths (any
 * use of it throws, failing the test). The whole path to a receipt (export, cover,
 * complete, finish) needs S3 and Postgres data: test/export.test.ts, test/lambda.test.ts, test/crash/.
 */
const h = useHarness();
const port = new Proxy({} as DestinationPort, {
  get: (_, name) => {
    throw new Error(`the destination port was used (${String(name)}) on a path that must not write`);
  },
});

/** The fan-out policy (retry what a retry can fix, fail the run with a task) unless overridden. */
function input(d: Destination, run: Run, over: Partial<LifecycleInput> & { states?: LifecycleState[] } = {}) {
  const { states = [], ...rest } = over;
  return {
    task: { runId: run.runId, table: 'a' },
    run,
    dest: d,
    port,
    ledger: h.ledger,
    settings: h.settings(),
    leaseSeconds: 600,
    connect: async () => {
      throw new Error('the source is down');
    },
    snapshotOf: async () => {
      throw new Error('not reached');
    },
    plan: async () => {
      throw new Error('not reached');
    },
    policy: RunPolicy.fanOut,
    onState: (s: LifecycleState) => void states.push(s),
    ...rest,
  } satisfies LifecycleInput;
}

describe('claim', () => {
  it('a task another attempt holds is declined (busy), and nothing is exported', async () => {
    // Prepare
    const d = await addDestination(h, 'lc-busy');
    const run = await h.ledger.openRun(runOf(d));
    await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 600 });
    const states: LifecycleState[] = [];
    let connected = false;

    // Act
    const out = await runTableTask(
      input(d, run, {
        states,
        connect: async () => {
          connected = true;
          throw new Error('not reached');
        },
      }),
    );

    // Assess
    expect(out).toEqual({ state: 'declined', reason: 'busy' });
    expect(states).toEqual(['claim']);
    expect(connected).toBe(false);
    expect(await h.ledger.task({ runId: run.runId, table: 'a' })).toMatchObject({ status: 'running', attempts: 1 });
  });

  it('a task of a cancelled run is declined; an aborted caller claims nothing', async () => {
    // Prepare
    const d = await addDestination(h, 'lc-cancelled');
    const run = await h.ledger.openRun(runOf(d));
    await h.ledger.cancelRun({ runId: run.runId, by: 'test' });
    const other = await addDestination(h, 'lc-aborted');
    const open = await h.ledger.openRun(runOf(other));

    // Act
    const declined = await runTableTask(input(d, run));
    const aborted = runTableTask(input(other, open, { signal: AbortSignal.abort(new Error('stopping')) }));

    // Assess
    expect(declined).toEqual({ state: 'declined', reason: 'failed' });
    await expect(aborted).rejects.toThrow('stopping');
    expect(await h.ledger.task({ runId: open.runId, table: 'a' })).toMatchObject({ status: 'pending', attempts: 0 });
  });
});

describe('release', () => {
  it('fan-out: an export that fails with a retryable error gives the task back for another attempt', async () => {
    // Prepare
    const d = await addDestination(h, 'lc-retry');
    const run = await h.ledger.openRun(runOf(d));
    const states: LifecycleState[] = [];

    // Act
    const out = await runTableTask(input(d, run, { states }));

    // Assess
    expect(out).toMatchObject({ state: 'released', verdict: 'retry', error: { message: 'the source is down' } });
    expect(states).toEqual(['claim', 'export', 'release']);
    expect(await h.ledger.task({ runId: run.runId, table: 'a' })).toMatchObject({
      status: 'pending',
      attempts: 1,
      error: 'the source is down',
    });
    expect((await h.ledger.getRun(run.runId))?.status).toBe('running');
    // The next delivery claims attempt 2.
    expect(await h.ledger.claimTask({ runId: run.runId, table: 'a', leaseSeconds: 600 })).toEqual({
      claimed: true,
      attempt: 2,
    });
  });

  it('fan-out: an error a retry cannot fix fails the task and the run with it', async () => {
    // Prepare
    const d = await addDestination(h, 'lc-final');
    const run = await h.ledger.openRun(runOf(d));
    const refused = new LedgerError('access denied for good', { retryable: false });

    // Act
    const out = await runTableTask(
      input(d, run, {
        connect: async () => {
          throw refused;
        },
      }),
    );

    // Assess
    expect(out).toEqual({ state: 'released', verdict: 'failed', error: refused });
    expect((await h.ledger.task({ runId: run.runId, table: 'a' }))?.status).toBe('failed');
    expect(await h.ledger.getRun(run.runId)).toMatchObject({
      status: 'failed',
      error: 'table a: access denied for good',
    });
  });

  it('in-process: every failure is final for the task, and the run is left to its driver', async () => {
    // Prepare
    const d = await addDestination(h, 'lc-inproc');
    const run = await h.ledger.openRun(runOf(d, { owner: 'cli:host:1' }));

    // Act: a retryable error, under the in-process policy.
    const out = await runTableTask(input(d, run, { policy: RunPolicy.inProcess }));

    // Assess
    expect(out).toMatchObject({ state: 'released', verdict: 'failed' });
    expect((await h.ledger.task({ runId: run.runId, table: 'a' }))?.status).toBe('failed');
    expect((await h.ledger.getRun(run.runId))?.status).toBe('running');
  });

  it('a failure after the source connection opened closes that connection', async () => {
    // Prepare
    const d = await addDestination(h, 'lc-close');
    const run = await h.ledger.openRun(runOf(d));
    let client: pg.Client | undefined;
    let closed = false;

    // Act
    const out = await runTableTask(
      input(d, run, {
        connect: async () => {
          client = new pg.Client({ connectionString: h.stack.databaseUrl });
          client.on('end', () => {
            closed = true;
          });
          await client.connect();
          return client;
        },
        snapshotOf: async () => ({ id: 'none', at: new Date().toISOString() }),
        plan: async () => {
          throw new Error('the table was dropped');
        },
      }),
    );

    // Assess
    expect(out).toMatchObject({ state: 'released', verdict: 'retry', error: { message: 'the table was dropped' } });
    expect(client).toBeDefined();
    expect(closed).toBe(true);
  });
});
