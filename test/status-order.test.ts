import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Settings } from '../src/config/settings.js';
import type { DestinationPort } from '../src/destinations/port.js';
import { createLogger } from '../src/log/logger.js';
import { deliverOutcome } from '../src/notify/dispatch.js';
import { StatusStore } from '../src/notify/store.js';
import type { OutcomeEvent } from '../src/store/ledger/outbox.js';
import { addDestination } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * status.json never goes back in time (red team, notify: rt-status-order). Two dispatchers of one account recorded run 1
 * then run 2; run 1's slower PUT landed last, and status.json showed the older outcome. Now each status.json write runs
 * under the account's status.json lock and re-reads right before its PUT: the last PUT is never older than the newest
 * recorded outcome. The bucket is an in-memory port whose PUTs complete when the test lets them.
 */
let h: Harness;
let settings: Settings;
beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({ DROPSHIP_LOG_LEVEL: 'silent' });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

/** A port over `landed` (the run ids of the status.json PUTs, in the order they landed); `hold` delays a PUT's landing. */
function port(d: Destination, landed: string[], hold: () => Promise<void> = async () => {}, started?: () => void) {
  return {
    container: d.bucket,
    putObject: async (key: string, body: string) => {
      started?.();
      await hold();
      landed.push(JSON.parse(body).last_run.run_id);
      return { key, etag: undefined };
    },
  } as unknown as DestinationPort;
}

function outcome(d: Destination, runId: string, ok: boolean, endedAt: Date): OutcomeEvent {
  return {
    runId,
    accountId: d.accountId,
    status: ok ? 'succeeded' : 'failed',
    generation: d.generation,
    destination: d,
    receiptKey: ok ? 'receipt.json' : null,
    error: ok ? null : 'boom',
    rows: 1,
    bytes: 1,
    seconds: 1,
    endedAt,
    attempts: 1,
    notice: ok ? null : { code: 'internal', reason: 'the export failed on dropship’s side', fix: 'nothing to do' },
  } as OutcomeEvent;
}

/** Polls until `cond` holds (no time limit of its own: the test's timeout is the bound). */
async function until(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 10));
}

/** How many sessions wait for an advisory lock (the status.json lock). */
async function lockWaiters(): Promise<number> {
  const res = await h.pool.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and wait_event = 'advisory'`,
  );
  return res.rows[0]!.n;
}

const deps = () => ({ pool: h.pool, settings, outbox: {} as never, log: createLogger({ level: 'silent' }) });

describe('status.json order', () => {
  it("run 1's PUT still in flight when run 2 is recorded: the last PUT to land is run 2's", async () => {
    // Prepare: run 1's outcome is recorded and its PUT started, held.
    const d = await addDestination(h, 'order1');
    const landed: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let started = false;
    const t = Date.now();
    const older = deliverOutcome(
      {
        ...deps(),
        port: port(
          d,
          landed,
          () => held,
          () => (started = true),
        ),
      },
      outcome(d, '20261123T000000Z-aaaaaa', false, new Date(t - 60_000)),
      undefined,
    );
    await until(async () => started);

    // Act: run 2's outcome is delivered meanwhile; run 1's PUT lands once run 2's has landed or waits behind it.
    const newer = deliverOutcome(
      { ...deps(), port: port(d, landed) },
      outcome(d, '20261123T010000Z-bbbbbb', true, new Date(t)),
      undefined,
    );
    await until(async () => landed.length > 0 || (await lockWaiters()) > 0);
    release();
    await Promise.all([older, newer]);

    // Assess: both written, run 2's last.
    expect(landed).toEqual(['20261123T000000Z-aaaaaa', '20261123T010000Z-bbbbbb']);
  }, 60_000);

  it('run 1 recorded before run 2 but writing after it: run 1 writes nothing', async () => {
    // Prepare: the account's status.json lock is held, so run 1's dispatcher records its outcome, then waits.
    const d = await addDestination(h, 'order2');
    const landed: string[] = [];
    const store = new StatusStore(h.pool);
    const t = Date.now();
    let older!: Promise<void>;
    let newer!: Promise<void>;
    await store.underStatusLock(d.accountId, async () => {
      older = deliverOutcome(
        { ...deps(), port: port(d, landed) },
        outcome(d, '20261123T000000Z-cccccc', false, new Date(t - 60_000)),
        undefined,
      );
      await until(async () => landed.length > 0 || (await lockWaiters()) === 1);

      // Act: run 2's outcome is recorded and waits too; then the lock is released (run 1's dispatcher first in line).
      newer = deliverOutcome(
        { ...deps(), port: port(d, landed) },
        outcome(d, '20261123T010000Z-dddddd', true, new Date(t)),
        undefined,
      );
      await until(async () => landed.length > 1 || (await lockWaiters()) === 2);
    });
    await Promise.all([older, newer]);

    // Assess: run 1's re-read saw run 2's outcome: only run 2's status.json was written.
    expect(landed).toEqual(['20261123T010000Z-dddddd']);
  }, 60_000);
});
