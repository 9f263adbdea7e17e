import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Settings } from '../src/config/settings.js';
import { openTarget } from '../src/destinations/open.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import type { Fault } from '../src/devstack/s3.js';
import { refreshStatus } from '../src/notify/outcome.js';
import { buildStatus, StatusPlaceTaken, writeStatus } from '../src/notify/status.js';
import { type DestinationStatusRow, StatusStore, statusPlaces } from '../src/notify/store.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The first status.json at a place is create-only. When S3 stored it and the answer was lost (conditional PUTs are sent
 * once: the lost answer surfaces as an error), the place stayed unrecorded, and every later create-only PUT met
 * dropship's own object: 412, StatusPlaceTaken for ever (red team, notify). The place is now recorded as "maybe written"
 * before that PUT and forgotten only when S3 answered with a refusal.
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

async function customer(id: string, awsAccountId: string): Promise<Customer> {
  await h.pool.query(`create schema ${id}; create table ${id}.t (id bigint primary key);`);
  return setupCustomer(h.stack, h.registry, { accountId: id, awsAccountId, bucket: `${id}-data`, schema: id });
}

/** A status row whose last run is `runId` (succeeded). */
function row(accountId: string, runId: string): DestinationStatusRow {
  return {
    accountId,
    webhookUrl: null,
    webhookSecret: null,
    consecutiveFailures: 0,
    pausedAt: null,
    lastSuccess: { run_id: runId, receipt_key: 'receipt.json', finished_at: new Date().toISOString() },
    lastFailure: null,
    externalIdVerifiedAt: null,
    externalIdVerifiedFor: null,
    lastCheckAt: null,
    webhookVersion: 0,
  };
}

/** Writes status.json saying `runId`, as the dispatcher does (the destination's own credentials, the ledger's places). */
async function write(dest: Destination, runId: string): Promise<string> {
  const port = openTarget(dest, runId, settings);
  try {
    return await writeStatus(port, dest, buildStatus(dest, row(dest.accountId, runId), settings, new Date()), {
      ...statusPlaces(h.pool),
    });
  } finally {
    port.close();
  }
}

async function inPlace(c: Customer): Promise<string> {
  const s3 = customerS3(h.stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: 'status.json' }));
    const body = await res.Body!.transformToString();
    return (JSON.parse(body) as { last_run?: { run_id: string }; mine?: string }).last_run?.run_id ?? body;
  } finally {
    s3.destroy();
  }
}

const placeState = (bucket: string) => statusPlaces(h.pool).state(bucket, 'status.json');

describe("status.json's first, create-only PUT", () => {
  it('its answer lost (S3 stored it): the place stays "maybe written", and the next write replaces it', async () => {
    // Prepare: the answer to the first status.json PUT in the bucket is cut after S3 stored it.
    const c = await customer('spdoubt', '250000000301');
    let cut = 0;
    const fault: Fault = (r) =>
      r.bucket === 'spdoubt-data' && r.key === 'status.json' && r.method === 'PUT' && cut++ < 1
        ? { truncate: true }
        : undefined;
    h.stack.s3.faults.push(fault);

    // Act: the first write fails (no answer); the next outcome's write.
    let first: unknown;
    try {
      await write(c.destination, 'run-1');
    } catch (e) {
      first = e;
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    const doubt = await placeState('spdoubt-data');
    await write(c.destination, 'run-2');

    // Assess: the first write failed without a refusal, its place kept; the second replaced dropship's own object.
    expect(first).toBeDefined();
    expect(first).not.toBeInstanceOf(StatusPlaceTaken);
    expect(doubt).toBe('maybe');
    expect(await inPlace(c)).toBe('run-2');
    expect(await placeState('spdoubt-data')).toBe('written');
  }, 60_000);

  it('through the status.json lock (refreshStatus): the "maybe written" place outlives the failed write', async () => {
    // Prepare: an outcome recorded; the answer to the first status.json PUT in the bucket is cut after S3 stored it.
    const c = await customer('splock', '250000000303');
    const store = new StatusStore(h.pool);
    await store.recordOutcome(
      {
        accountId: 'splock',
        runId: 'run-1',
        ok: true,
        success: { run_id: 'run-1', receipt_key: 'receipt.json', finished_at: new Date().toISOString() },
      },
      6,
    );
    let cut = 0;
    const fault: Fault = (r) =>
      r.bucket === 'splock-data' && r.key === 'status.json' && r.method === 'PUT' && cut++ < 1
        ? { truncate: true }
        : undefined;
    h.stack.s3.faults.push(fault);

    // Act: a refresh whose answer is lost, then another.
    let first: boolean;
    try {
      first = await refreshStatus({ pool: h.pool, settings }, 'splock');
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    const second = await refreshStatus({ pool: h.pool, settings }, 'splock');

    // Assess: the first not written (no answer), the second replaced it.
    expect([first, second]).toEqual([false, true]);
    expect(await inPlace(c)).toBe('run-1');
    expect(await placeState('splock-data')).toBe('written');
  }, 60_000);

  it("refused (another status.json is there, not recorded as dropship's): the place is forgotten and the object kept", async () => {
    // Prepare: a status.json dropship has no record of (the customer's own) at the bucket root.
    const c = await customer('spowned', '250000000302');
    const planted = openTarget(c.destination, 'planted', settings);
    try {
      await planted.putObject('status.json', '{"mine":"the customer\'s"}', { contentType: 'application/json' });
    } finally {
      planted.close();
    }

    // Act: dropship's first write there.
    const taken = await write(c.destination, 'run-1').catch((e: unknown) => e);

    // Assess: refused, the place not recorded (the next write is create-only again), theirs untouched.
    expect(taken).toBeInstanceOf(StatusPlaceTaken);
    expect(await placeState('spowned-data')).toBeUndefined();
    expect(await inPlace(c)).toBe('{"mine":"the customer\'s"}');
  }, 60_000);

  it("a refusal whose answer was lost (the customer's status.json in place): the next write does not replace it", async () => {
    // Prepare: the customer's own status.json at the bucket root; dropship's first, create-only PUT is refused by S3
    // (412) and that answer is lost (a reset): dropship cannot tell it from its own object's lost answer.
    const c = await customer('spownlost', '250000000304');
    const planted = openTarget(c.destination, 'planted', settings);
    try {
      await planted.putObject('status.json', '{"mine":"the customer\'s"}', { contentType: 'application/json' });
    } finally {
      planted.close();
    }
    let cut = 0;
    const fault: Fault = (r) =>
      r.bucket === 'spownlost-data' && r.key === 'status.json' && r.method === 'PUT' && cut++ < 1
        ? { truncate: true }
        : undefined;
    h.stack.s3.faults.push(fault);

    // Act: the first write (no answer), then the next outcome's.
    try {
      await write(c.destination, 'run-1').catch(() => {});
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    const second = await write(c.destination, 'run-2').catch((e: unknown) => e);

    // Assess: the second is refused (the object in place is not the body dropship sent), theirs untouched.
    expect(second).toBeInstanceOf(StatusPlaceTaken);
    expect(await inPlace(c)).toBe('{"mine":"the customer\'s"}');
    expect(await placeState('spownlost-data')).toBeUndefined();
  }, 60_000);

  it('a place recorded "maybe written" whose PUT never went out (the process died): the customer\'s object stays', async () => {
    // Prepare: the customer's own status.json, and the record a write leaves when it dies before its PUT.
    const c = await customer('spkill', '250000000305');
    const planted = openTarget(c.destination, 'planted', settings);
    try {
      await planted.putObject('status.json', '{"mine":"the customer\'s"}', { contentType: 'application/json' });
    } finally {
      planted.close();
    }
    await statusPlaces(h.pool).maybe('spkill-data', 'status.json', '"0123456789abcdef0123456789abcdef"');

    // Act
    const next = await write(c.destination, 'run-2').catch((e: unknown) => e);

    // Assess
    expect(next).toBeInstanceOf(StatusPlaceTaken);
    expect(await inPlace(c)).toBe('{"mine":"the customer\'s"}');
  }, 60_000);

  it('a place recorded "maybe written" with nothing there (the PUT never went out): the next write creates it', async () => {
    // Prepare
    const c = await customer('spempty', '250000000306');
    await statusPlaces(h.pool).maybe('spempty-data', 'status.json', '"0123456789abcdef0123456789abcdef"');

    // Act
    await write(c.destination, 'run-2');

    // Assess
    expect(await inPlace(c)).toBe('run-2');
    expect(await placeState('spempty-data')).toBe('written');
  }, 60_000);
});
