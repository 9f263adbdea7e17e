import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, type Settings } from '../src/config/settings.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { runTask } from '../src/run/drivers/task.js';
import { currentSlot, type SlotStatus, slotMetricsLine, slotStatus } from '../src/schedule/slot-status.js';
import { runSlot } from '../src/schedule/slots.js';
import { dropship } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 23: the operator's view of a slot. One slot of the schedule's own code (runSlot, then every
 * task message run as a worker would) over three destinations: one delivers, one fails on the
 * customer's side (its role was never created — as if removed), one fails on ours (a numeric NaN has
 * no Parquet DECIMAL). `slot status` counts each under its cause; `runs list` filters the slot.
 */
let h: Harness;
let settings: Settings;
// The slot's day: a label of the ledger's key, taken from the clock (never a fixed calendar date).
const date = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  h = await startHarness();
  settings = loadSettings({ ...h.stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' });
  await h.pool.query(`
    create schema ssok; create table ssok.t (id int primary key); insert into ssok.t values (1), (2);
    create schema ssrole; create table ssrole.t (id int primary key); insert into ssrole.t values (1);
    create schema ssours; create table ssours.t (id int primary key, amount numeric(10, 2));
    insert into ssours.t values (1, 1.5), (2, 'NaN');`);
  await setupCustomer(h.stack, h.registry, {
    accountId: 'ssok',
    awsAccountId: '240000000001',
    bucket: 'ssok-data',
    schema: 'ssok',
  });
  await setupCustomer(h.stack, h.registry, {
    accountId: 'ssours',
    awsAccountId: '240000000003',
    bucket: 'ssours-data',
    schema: 'ssours',
  });
  // The customer never created (or removed) the role.
  await h.registry.add({
    accountId: 'ssrole',
    plan: 'paid',
    bucket: 'ssrole-data',
    region: 'us-east-1',
    roleArn: 'arn:aws:iam::240000000002:role/removed',
    sourceSchema: 'ssrole',
  });
  await h.registry.add({
    accountId: 'sspaused',
    plan: 'paid',
    bucket: 'sspaused-data',
    region: 'us-east-1',
    roleArn: 'arn:aws:iam::240000000004:role/x',
    sourceSchema: 'public',
  });
  await h.pool.query(`update dropship.destinations set enabled = false where account_id = 'sspaused';
    insert into dropship.destination_status (account_id, paused_at, consecutive_failures) values ('sspaused', now(), 6)`);
});

afterAll(async () => h?.stop());

describe('slot status', () => {
  it('counts a slot’s destinations under the right causes: delivered, the customer’s side, ours, paused', async () => {
    const sent: TaskMessage[] = [];
    const log = createLogger({ level: 'silent' });
    const opened = await runSlot(
      {
        registry: h.registry,
        ledger: h.ledger,
        settings,
        queue: { send: async (m: TaskMessage[]) => void sent.push(...m) },
        sourceUrl: h.stack.databaseUrl,
        log,
      },
      '04:00',
      date,
    );
    expect(opened.map((o) => o.accountId).sort()).toEqual(['ssok', 'ssours', 'ssrole']);
    for (const m of sent)
      await runTask(m, { sourceUrl: h.stack.databaseUrl, ledger: h.ledger, registry: h.registry, settings });

    const s: SlotStatus = await slotStatus(
      { ledger: h.ledger, registry: h.registry, settings },
      { slot: '04:00', date, now: new Date() },
    );
    expect(s).toMatchObject({
      slot: '04:00',
      date,
      due: 3,
      succeeded: 1,
      failed: { customer: 1, ours: 1, byCode: { role_not_assumable: 1, internal: 1 } },
      running: 0,
      stuck: 0,
      missed: 0,
      notOpened: [],
    });
    expect(s.paused.map((p) => p.accountId)).toEqual(['sspaused']);
    expect(s.longest.map((r) => r.accountId).sort()).toEqual(['ssok', 'ssours', 'ssrole']);

    // The same facts as CloudWatch gauges (what the alarms watch).
    const emf = JSON.parse(slotMetricsLine(s, 'Dropship/test', new Date()));
    expect(emf).toMatchObject({ SlotDue: 3, SlotSucceeded: 1, SlotFailedCustomer: 1, SlotFailedOurs: 1, Paused: 1 });
    expect(emf._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name)).toContain('SlotFailedOurs');
  });

  it('as an operator sees it: slot status, runs list of the slot (filtered, paged), destinations list --paused', async () => {
    const status = await dropship(h.stack, ['slot', 'status', '--slot', '04:00', '--date', date]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`slot 04:00 of ${date} (UTC)`);
    expect(status.stdout).toContain('failures by cause: role_not_assumable 1, internal 1');
    expect(status.stdout).toContain('paused: sspaused');

    const failed = await dropship(h.stack, ['runs', 'list', '--slot', '04:00', '--date', date, '--status', 'failed']);
    expect(failed.code, failed.stderr).toBe(0);
    expect(failed.stdout).toMatch(/ssrole/);
    expect(failed.stdout).toMatch(/ssours/);
    expect(failed.stdout).not.toMatch(/ssok/);

    const page1 = await dropship(h.stack, ['runs', 'list', '--slot', '04:00', '--date', date, '--limit', '2']);
    const next = /--before (\S+)/.exec(page1.stdout)?.[1];
    expect(next).toBeDefined();
    const page2 = await dropship(h.stack, [
      'runs',
      'list',
      '--slot',
      '04:00',
      '--date',
      date,
      '--limit',
      '2',
      '--before',
      next!,
    ]);
    const ids = (t: string) => [...t.matchAll(/\d{8}T\d{6}Z-[0-9a-f]{6}/g)].map((m) => m[0]);
    const all = [...new Set([...ids(page1.stdout), ...ids(page2.stdout)])];
    expect(all).toHaveLength(3);

    const paused = await dropship(h.stack, ['destinations', 'list', '--paused']);
    expect(paused.stdout.trim().split('\n')).toHaveLength(1);
    expect(paused.stdout).toMatch(/^sspaused\s+paid\s+paused/);

    const bad = await dropship(h.stack, ['runs', 'list', '--status', 'done']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--status is one of running, finishing, succeeded, failed, cancelled');
  });

  it('the latest slot that has started, across midnight', () => {
    const at = (iso: string) => new Date(iso);
    const slots = ['04:00', '15:00'];
    expect(currentSlot(slots, at('2030-01-01T03:59:59Z'))).toEqual({ slot: '15:00', date: '2029-12-31' });
    expect(currentSlot(slots, at('2030-01-01T04:00:00Z'))).toEqual({ slot: '04:00', date: '2030-01-01' });
    expect(currentSlot(slots, at('2030-01-01T23:59:59Z'))).toEqual({ slot: '15:00', date: '2030-01-01' });
    expect(currentSlot(slots, at('2028-03-01T01:00:00Z'))).toEqual({ slot: '15:00', date: '2028-02-29' });
  });
});
