import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenMessage } from '../src/contracts/open.js';
import { setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { StatusStore } from '../src/notify/store.js';
import { newRunId } from '../src/run/lifecycle/lifecycle.js';
import { openSlotBatch } from '../src/schedule/open.js';
import { slotStatus } from '../src/schedule/slot-status.js';
import { catchUpSlots, type SlotDeps } from '../src/schedule/slots.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The catch-up records a slot as missed only for accounts that were due in it and had no run across it (red team,
 * fan-out): an account disabled at the slot (an automatic pause) and resumed since, or free then and upgraded since,
 * was not due; an account whose own on-demand run was going at the slot was skipped by the opening, not forgotten.
 * The slot is a minute just past on the real clock (the registry records its changes with the database's time), and
 * the catch-up looks at it 4 hours later (past DROPSHIP_SLOT_CATCHUP_SECONDS' 3 hours), with that time injected.
 */
let h: Harness;
const log = createLogger({ level: 'silent' });
const IDS = ['cumissed', 'curesumed', 'cuupgraded', 'cuownrun', 'custuck'];
const minute = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 60_000;
const at = new Date(minute);
const slot = at.toISOString().slice(11, 16);
const slotDate = at.toISOString().slice(0, 10);
const other = new Date(minute + 30 * 60_000).toISOString().slice(11, 16);
let deps: SlotDeps;
const sent: OpenMessage[] = [];

/** A registry row (its role is never assumed here), registered a day before the slot. */
async function registeredADayAgo(id: string, plan: 'paid' | 'free' = 'paid') {
  await h.pool.query(`create schema ${id}; create table ${id}.a (id int primary key); insert into ${id}.a values (1);`);
  const d = await h.registry.add({
    accountId: id,
    plan,
    bucket: `${id}-data`,
    region: 'us-east-1',
    roleArn: `arn:aws:iam::259999999998:role/dropship-export-${id}`,
    sourceSchema: id,
  });
  await h.pool.query(
    `update dropship.destinations set created_at = now() - interval '1 day', due_since = now() - interval '1 day'
      where account_id = $1`,
    [id],
  );
  return d;
}

beforeAll(async () => {
  h = await startHarness();
  for (const id of IDS) await registeredADayAgo(id, id === 'cuupgraded' ? 'free' : 'paid');
  deps = {
    registry: h.registry,
    ledger: h.ledger,
    settings: h.settings({ DROPSHIP_PAID_SLOTS: slot, DROPSHIP_FREE_SLOTS: other }),
    queue: { send: async () => {} },
    opens: { send: async (m) => void sent.push(...m), backlog: async () => 0 },
    sourceUrl: h.stack.databaseUrl,
    log,
  };
}, 240_000);

afterAll(async () => {
  await h?.stop();
});

const missed = async (accountId: string) =>
  (
    await h.pool.query<{ error: string }>(
      `select error from dropship.runs where account_id = $1 and trigger = 'schedule' and slot = $2 and slot_date = $3`,
      [accountId, slot, slotDate],
    )
  ).rows.map((r) => r.error);

describe('the catch-up past its window', () => {
  it('records the slot missed only for an account due in it without a run across it', async () => {
    // Prepare: after the slot, one account is resumed (it was paused at the slot), one upgraded from free, and one
    // has its own on-demand run going.
    await h.registry.setEnabled('curesumed', false);
    await h.registry.setEnabled('curesumed', true);
    await h.registry.update('cuupgraded', { plan: 'paid' });
    const own = await h.ledger.openRun({
      runId: newRunId(new Date()),
      accountId: 'cuownrun',
      trigger: 'cli',
      layout: 'dreamdata',
      folder: slot,
      startedMicros: BigInt(Date.now()) * 1000n,
      tables: ['a'],
    });
    expect(own.status).toBe('running');
    // A run stuck open since long before the slot (past the catch-up window) excuses nothing.
    const stuck = await h.ledger.openRun({
      runId: newRunId(new Date(minute - 5 * 3_600_000)),
      accountId: 'custuck',
      trigger: 'cli',
      layout: 'dreamdata',
      folder: slot,
      startedMicros: BigInt(minute - 5 * 3_600_000) * 1000n,
      tables: ['a'],
    });
    await h.pool.query(`update dropship.runs set started_at = $2 where run_id = $1`, [
      stuck.runId,
      new Date(minute - 5 * 3_600_000),
    ]);
    // Act
    const out = await catchUpSlots(deps, new Date(minute + 4 * 3_600_000));
    // Assess: the account that was due and had no run gets its failed "missed" run, and only it.
    expect(out.map((r) => [r.accountId, r.status])).toEqual([
      ['cumissed', 'missed'],
      ['custuck', 'missed'],
    ]);
    expect(await missed('cumissed')).toEqual([
      `slot ${slot} of ${slotDate} missed: no run started within DROPSHIP_SLOT_CATCHUP_SECONDS (10800 s)`,
    ]);
    for (const id of ['curesumed', 'cuupgraded', 'cuownrun']) {
      expect(await missed(id), id).toEqual([]);
      expect((await new StatusStore(h.pool).get(id)).consecutiveFailures, id).toBe(0);
    }
    expect(sent).toEqual([]);
  });

  it('an opening of the slot for an account whose own run is going skips it before the pre-flight (no AssumeRole)', async () => {
    const before = h.stack.sts.calls.length;
    const res = await openSlotBatch(deps, { kind: 'open', slot, slotDate, by: 'catch-up', accountIds: ['cuownrun'] });
    expect(res.runs).toEqual([
      expect.objectContaining({
        accountId: 'cuownrun',
        status: 'skipped',
        error: expect.stringMatching(/in progress/),
      }),
    ]);
    expect(res.retry).toEqual([]);
    expect(h.stack.sts.calls.length).toBe(before);
  });
});

describe('a slot opening while STS throttles', () => {
  it('records no failed run: the open message comes back, and the next delivery opens the run', async () => {
    // Prepare: a real customer (role, bucket, table); STS throttles its AssumeRole through every SDK attempt.
    await h.pool.query(
      'create schema custs; create table custs.a (id int primary key); insert into custs.a values (1);',
    );
    await setupCustomer(h.stack, h.registry, {
      accountId: 'custs',
      awsAccountId: '253333333334',
      bucket: 'custs-data',
      schema: 'custs',
    });
    const d = { ...deps, settings: h.settings({ DROPSHIP_AWS_MAX_ATTEMPTS: '2' }) };
    const message = { kind: 'open' as const, slot, slotDate, by: 'schedule' as const, accountIds: ['custs'] };
    let throttled = 0;
    h.stack.sts.faults.push((action, params) => {
      if (action !== 'AssumeRole' || !params.get('RoleArn')?.includes('custs')) return undefined;
      throttled++;
      return { status: 400, code: 'Throttling', message: 'Rate exceeded' };
    });
    let first: Awaited<ReturnType<typeof openSlotBatch>>;
    try {
      // Act
      first = await openSlotBatch(d, message);
    } finally {
      h.stack.sts.faults.length = 0;
    }
    // Assess: STS was asked (and throttled); the message is to come back; the slot holds no run; no failure counted.
    expect(throttled).toBeGreaterThan(0);
    expect(first.retry).toEqual(['custs']);
    expect(first.runs).toEqual([expect.objectContaining({ accountId: 'custs', status: 'error' })]);
    expect(await missed('custs')).toEqual([]);
    expect((await new StatusStore(h.pool).get('custs')).consecutiveFailures).toBe(0);
    // STS answers again: the message delivered again opens the slot's run.
    const again = await openSlotBatch(d, message);
    expect(again.runs).toEqual([expect.objectContaining({ accountId: 'custs', status: 'running' })]);
    await h.ledger.failRun({ runId: again.runs[0]!.runId!, error: 'test over: nobody works the task queue here' });
  });
});

describe('a destination changed while its slot run is open', () => {
  it('the cancelled run gives the slot back: the catch-up opens it again for the new version, and never records it missed', async () => {
    // Prepare: a paid account due at the slot, whose scheduled run is open when the operator changes its codec.
    const dest = await registeredADayAgo('cuchanged');
    const slotRun = {
      accountId: 'cuchanged',
      trigger: 'schedule' as const,
      slot,
      slotDate,
      layout: 'dreamdata' as const,
      folder: slot,
      startedMicros: BigInt(minute) * 1000n,
      tables: ['a'],
    };
    const first = await h.ledger.openRun({
      ...slotRun,
      runId: newRunId(at),
      destination: await h.registry.get('cuchanged'),
    });
    // Act
    await h.registry.update('cuchanged', { compression: 'zstd' });
    // Assess: cancelled; inside the window the catch-up sends the slot again; a new run of the slot may open.
    expect((await h.ledger.getRun(first.runId))?.status).toBe('cancelled');
    // The slot's status: the released run is not the slot's run; the account is not opened (yet).
    const status = await slotStatus(
      { ledger: h.ledger, registry: h.registry, settings: deps.settings },
      { slot, date: slotDate, now: new Date() },
    );
    expect(status.notOpened).toContain('cuchanged');
    expect(status.cancelled).toBe(0);
    sent.length = 0;
    const inside = await catchUpSlots(deps, new Date(minute + 10 * 60_000));
    expect(inside.filter((r) => r.accountId === 'cuchanged').map((r) => r.status)).toEqual(['queued']);
    expect(sent.flatMap((m) => m.accountIds)).toContain('cuchanged');
    const again = await h.ledger.openRun({
      ...slotRun,
      runId: newRunId(new Date()),
      destination: await h.registry.get('cuchanged'),
    });
    expect(again.status).toBe('running');
    expect(dest.version).not.toBe((await h.registry.get('cuchanged')).version);
    // The second run of the slot holds it: a duplicate open of the slot is refused as such.
    await expect(
      h.ledger.openRun({ ...slotRun, runId: newRunId(new Date()), destination: await h.registry.get('cuchanged') }),
    ).rejects.toThrow(/slot|in progress/);
    await h.ledger.failRun({ runId: again.runId, error: 'test over' });
    // Past the window, the slot had its runs: not missed.
    const past = await catchUpSlots(deps, new Date(minute + 4 * 3_600_000));
    expect(past.filter((r) => r.accountId === 'cuchanged')).toEqual([]);
    expect((await missed('cuchanged')).filter((e) => /missed/.test(e))).toEqual([]);
  });
});

describe('a plan change between two plans that both have the slot (review)', () => {
  it('the account was due at the slot all the same: the catch-up opens it', async () => {
    await registeredADayAgo('cuboth', 'free');
    // Both plans have the slot (as 04:00 by default); the account is upgraded after the slot, before the catch-up.
    const both = { ...deps, settings: h.settings({ DROPSHIP_PAID_SLOTS: slot, DROPSHIP_FREE_SLOTS: slot }) };
    await h.registry.update('cuboth', { plan: 'paid' });
    const queuedFor = async (d: SlotDeps) => {
      sent.length = 0;
      await catchUpSlots(d, new Date(minute + 10 * 60_000));
      return sent.filter((m) => m.slot === slot && m.slotDate === slotDate).flatMap((m) => m.accountIds);
    };
    expect(await queuedFor(both)).toContain('cuboth');
    // With the slot in the paid plan only, the same account (free at the slot) was not due at it.
    expect(await queuedFor(deps)).not.toContain('cuboth');
  });
});
