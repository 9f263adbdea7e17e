import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import { createLogger } from '../src/log/logger.js';
import { StatusStore } from '../src/notify/store.js';
import { encryptSecret } from '../src/notify/webhook.js';
import { sweepRuns } from '../src/run/liveness/sweep.js';
import { Ledger } from '../src/store/ledger/ledger.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The sweeper ends abandoned runs and tells their customers — status.json and the webhook with its retries — and
 * re-sends lost task messages of other accounts' runs. Red team (webhooks): it swept one run after another, so each
 * abandoned run of a customer whose endpoint never answers held every later account's run for the webhook's whole
 * timeout. Runs are now swept side by side: another customer's lost tasks are re-sent while the hung endpoint still
 * holds its requests open (no clock in the assertion: with one run after another, the hung requests had all timed out
 * and closed before the re-send).
 */
let h: Harness;
let settings: Settings;
const key = randomBytes(32).toString('base64');
let hung: Server;
let hungUrl = '';
let openHungRequests = 0;
const log = createLogger({ level: 'silent' });

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({
    DROPSHIP_WEBHOOK_KEY: key,
    DROPSHIP_WEBHOOK_ATTEMPTS: '1',
    DROPSHIP_WEBHOOK_TIMEOUT_MS: '3000',
    DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
    DROPSHIP_LOG_LEVEL: 'silent',
  });
  // Accepts every request and never answers; counts the requests still open.
  hung = createServer((req, res) => {
    openHungRequests++;
    res.on('close', () => openHungRequests--); // the client gave up (its timeout): the connection closed
    req.resume();
  });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/hook`;
}, 120_000);
afterAll(async () => {
  hung.closeAllConnections();
  await new Promise((r) => hung.close(r));
  await h?.stop();
});

let n = 0;
async function customer(accountId: string, webhook: boolean): Promise<Customer> {
  n++;
  await h.pool.query(`create schema ${accountId}; create table ${accountId}.t (id bigint primary key, v text);`);
  const c = await setupCustomer(h.stack, h.registry, {
    accountId,
    awsAccountId: `24000000030${n}`,
    bucket: `${accountId}-data`,
    prefix: 'exports',
    schema: accountId,
  });
  if (webhook)
    await new StatusStore(h.pool).setWebhook(
      accountId,
      c.destination.generation,
      hungUrl,
      encryptSecret('whsec_test', Buffer.from(key, 'base64')),
    );
  return c;
}

/** Two abandoned CLI runs of customers whose endpoint never answers, and another customer's fan-out run whose task
 * messages were never sent (its opener died during SendMessage); `tag` keeps each test's accounts apart. */
async function abandonedAndLost(tag: string): Promise<{ hung: string[]; lost: string }> {
  // Prepare: two abandoned CLI runs (their process died) of customers whose endpoint never answers…
  const hungIds = [`hunga${tag}`, `hungb${tag}`];
  for (const id of hungIds) {
    const c = await customer(id, true);
    const runId = `20261123T000000Z-${randomBytes(3).toString('hex')}`;
    const lock = await h.ledger.ownerLock(runId);
    await h.ledger.openRun({
      runId,
      accountId: id,
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
  }
  // …and another customer's fan-out run whose task messages were never sent (its opener died during SendMessage).
  const b = await customer(`bee${tag}`, false);
  const bRun = `20261123T000001Z-${randomBytes(3).toString('hex')}`;
  await h.ledger.openRun({
    runId: bRun,
    accountId: `bee${tag}`,
    trigger: 'schedule',
    layout: b.destination.layout,
    folder: '2026-11-23T00:01',
    startedMicros: BigInt(Date.now()) * 1000n,
    tables: ['t'],
    owner: 'fan-out',
    destination: b.destination,
  });
  await h.pool.query(`update dropship.runs set heartbeat_at = now() - interval '10 minutes' where run_id = $1`, [bRun]);
  return { hung: hungIds, lost: `bee${tag}` };
}

it("a customer's webhook that never answers does not hold another customer's run in the sweeper", async () => {
  // Prepare
  const { lost } = await abandonedAndLost('');
  // Act
  let hungWhenResent = -1;
  let hungSeen = 0;
  hung.on('request', () => hungSeen++);
  const results = await sweepRuns({
    ledger: h.ledger,
    settings,
    log,
    by: 'sweeper',
    destination: (a) => h.registry.get(a),
    resend: async () => {
      // The hung endpoint has been asked (the abandoned runs were ended and told) and still holds a request open.
      await waitFor(() => hungSeen > 0);
      hungWhenResent = openHungRequests;
    },
  });
  // Assess
  expect(results.map((r) => `${r.accountId}:${r.action}`).sort()).toEqual([
    `${lost}:resent`,
    'hunga:ended',
    'hungb:ended',
  ]);
  expect(hungWhenResent).toBeGreaterThan(0);
}, 120_000);

it('the periodic function (tell: false, the Lambdas’ pool of 3) tells nobody while it sweeps: the outcomes wait for its dispatch', async () => {
  // Prepare
  const { hung: hungIds, lost } = await abandonedAndLost('2');
  const small = new pg.Pool({ connectionString: h.stack.databaseUrl, max: 3 });
  small.on('error', () => {});
  let asked = 0;
  const count = () => asked++;
  hung.on('request', count);
  try {
    // Act
    let resent = false;
    const results = await sweepRuns({
      ledger: new Ledger(small),
      settings,
      log,
      by: 'sweeper',
      tell: false,
      destination: (a) => h.registry.get(a),
      resend: async () => {
        resent = true;
      },
    });
    // Assess: the runs are ended and the lost tasks re-sent, and no webhook was asked; the outcomes are queued.
    const mine = results.filter((r) => r.accountId === lost || hungIds.includes(r.accountId));
    expect(mine.map((r) => `${r.accountId}:${r.action}`).sort()).toEqual([
      `${lost}:resent`,
      ...hungIds.map((id) => `${id}:ended`),
    ]);
    expect(resent).toBe(true);
    expect(asked).toBe(0);
    for (const r of mine.filter((x) => x.action === 'ended'))
      expect(await h.ledger.outcomes.get(r.runId)).toMatchObject({ status: 'failed', deliveredAt: null });
  } finally {
    hung.off('request', count);
    await small.end();
  }
}, 120_000);

/** Resolves once `ok()` holds (polled every 20 ms; the test's own timeout bounds it). */
async function waitFor(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setTimeout(r, 20));
}
