import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../../test/kit/stack-harness.js';
import type { Destination } from '../../accounts/destination.js';
import { loadSettings } from '../../config/settings.js';
import type { TaskMessage } from '../../contracts/task.js';
import { openTarget } from '../../destinations/open.js';
import type { DestinationPort } from '../../destinations/port.js';
import { type Customer, setupCustomer } from '../../devstack/demo.js';
import { listTables } from '../../pipeline/source/catalog.js';
import { MappingError } from '../../pipeline/source/errors.js';
import { connectSource, snapshotInfo, sourceClient } from '../../pipeline/source/snapshot.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { ReleaseTask } from '../../store/ledger/rows.js';
import { startFanOutRun } from '../drivers/fan-out.js';
import { runTableTask } from './lifecycle.js';
import { RunPolicy } from './policy.js';

/**
 * The two policies drive the shared task lifecycle (src/run/lifecycle/lifecycle.ts): a fake ledger records
 * what the lifecycle asks of it when a task's export fails, and how often it looks at the run.
 */
function fakeLedger() {
  const released: ReleaseTask[] = [];
  let runLooks = 0;
  const ledger = {
    claimTask: async () => ({ claimed: true as const, attempt: 1 }),
    releaseTask: async (r: ReleaseTask) => {
      released.push(r);
      return r.retry ? ('retry' as const) : ('failed' as const);
    },
    getRun: async () => {
      runLooks++;
      return { status: 'running', error: null };
    },
  };
  return { ledger: ledger as unknown as Ledger, released, looks: () => runLooks };
}

/** One task whose source connection fails with `error` (after `delayMs`): the lifecycle releases it. */
async function failingTask(policy: RunPolicy, error: Error, delayMs = 0) {
  const fake = fakeLedger();
  const outcome = await runTableTask({
    task: { runId: 'r1', table: 'events' },
    run: { runId: 'r1', accountId: 'acme', folder: '2026-01-01T00:00' },
    dest: { accountId: 'acme' } as Destination,
    port: {} as DestinationPort,
    ledger: fake.ledger,
    settings: loadSettings({ DROPSHIP_RUN_STALE_SECONDS: '2' }),
    leaseSeconds: 60,
    connect: async () => {
      await new Promise((r) => setTimeout(r, delayMs));
      throw error;
    },
    snapshotOf: async () => ({ id: 'x', at: 'y' }),
    plan: async () => {
      throw new Error('not reached');
    },
    policy,
  });
  return { outcome, released: fake.released, looks: fake.looks() };
}

const transient = () => new Error('read ECONNRESET');
const permanent = () => new MappingError('column x: numeric NaN has no Parquet DECIMAL value');

describe('RunPolicy', () => {
  it('fan-out: a retryable failure is released for a retry; a final one fails the run', async () => {
    const retry = await failingTask(RunPolicy.fanOut, transient());
    expect(retry.released).toEqual([expect.objectContaining({ retry: true, failRun: true })]);
    expect(retry.outcome).toMatchObject({ state: 'released', verdict: 'retry' });
    const final = await failingTask(RunPolicy.fanOut, permanent());
    expect(final.released).toEqual([expect.objectContaining({ retry: false, failRun: true })]);
    expect(final.outcome).toMatchObject({ state: 'released', verdict: 'failed' });
  });

  it('in-process: no failure is retried, and the run is left to the driver', async () => {
    for (const error of [transient(), permanent()]) {
      const { released, outcome } = await failingTask(RunPolicy.inProcess, error);
      expect(released).toEqual([expect.objectContaining({ retry: false, failRun: false })]);
      expect(outcome).toMatchObject({ state: 'released', verdict: 'failed' });
    }
  });

  it('fan-out: an exporting task looks at its run (every 500 ms at a 2 s bound); in-process it never does', async () => {
    const fanOut = await failingTask(RunPolicy.fanOut, transient(), 1_300);
    expect(fanOut.looks).toBeGreaterThanOrEqual(2);
    const inProcess = await failingTask(RunPolicy.inProcess, transient(), 1_300);
    expect(inProcess.looks).toBe(0);
  });

  it('the watch interval follows the driver and the bound', () => {
    const settings = loadSettings({ DROPSHIP_RUN_STALE_SECONDS: '120' });
    expect(RunPolicy.fanOut.watchEveryMs(settings)).toBe(30_000);
    expect(RunPolicy.fanOut.watchEveryMs(loadSettings({ DROPSHIP_RUN_STALE_SECONDS: '1' }))).toBe(500);
    expect(RunPolicy.inProcess.watchEveryMs(settings)).toBeUndefined();
  });
});

describe('RunPolicy on the real stack: who finishes the run', () => {
  let h: Harness;
  let c: Customer;
  beforeAll(async () => {
    h = await startHarness();
    await h.pool.query(`create schema pol;
      create table pol.events as select g as id, 'e' || g as name from generate_series(1, 50) g;`);
    c = await setupCustomer(h.stack, h.registry, {
      accountId: 'pol',
      awsAccountId: '270000000002',
      bucket: 'pol-data',
      schema: 'pol',
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** A fan-out run of the one table, its task then exported through the lifecycle under `policy`. */
  async function exportUnder(policy: RunPolicy) {
    const settings = h.settings();
    const sent: TaskMessage[] = [];
    const { run } = await startFanOutRun(c.destination, {
      sourceUrl: h.stack.databaseUrl,
      ledger: h.ledger,
      settings,
      queue: { send: async (m) => void sent.push(...m) },
      trigger: 'manual',
    });
    expect(sent).toHaveLength(1);
    const port = openTarget(c.destination, run.runId, settings);
    try {
      const outcome = await runTableTask({
        task: { runId: run.runId, table: 'events' },
        run,
        dest: c.destination,
        port,
        ledger: h.ledger,
        settings,
        leaseSeconds: 60,
        connect: async () => {
          const client = sourceClient(h.stack.databaseUrl, 'policy.test');
          await connectSource(client);
          return client;
        },
        snapshotOf: (client) => snapshotInfo(client),
        plan: async (client) => ({ table: (await listTables(client, 'pol')).find((t) => t.name === 'events')! }),
        policy,
      });
      return { outcome, run: await h.ledger.getRun(run.runId) };
    } finally {
      port.close();
    }
  }

  it('fan-out: the task that completes the last one writes the receipt; in-process: the driver finishes, not the task', async () => {
    const fanOut = await exportUnder(RunPolicy.fanOut);
    expect(fanOut.outcome).toMatchObject({ state: 'done', finish: { status: 'succeeded' } });
    expect(fanOut.run?.status).toBe('succeeded');

    const inProcess = await exportUnder(RunPolicy.inProcess);
    expect(inProcess.outcome.state).toBe('done');
    expect(inProcess.outcome).not.toHaveProperty('finish');
    expect(inProcess.run?.status).toBe('running');
    await h.ledger.cancelRun({ runId: inProcess.run!.runId, by: 'policy.test' });
  });
});
