import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, type Settings } from '../src/config/settings.js';
import { openTarget } from '../src/destinations/open.js';
import { type Customer, setupCustomer } from '../src/devstack/demo.js';
import type { Fault } from '../src/devstack/s3.js';
import { createLogger } from '../src/log/logger.js';
import { ReceiptPreconditionFailed } from '../src/receipt/receipt.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { publishReceipt } from '../src/run/lifecycle/finish.js';
import { sweepRuns } from '../src/run/liveness/sweep.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 23: `finishing` has a bound, and publication is conditional. A run whose receipt PUT keeps
 * failing ends `failed` after DROPSHIP_FINISH_MAX_ATTEMPTS (its account free again); an operator can
 * cancel a finishing run; and receipt.json is written with If-Match on the receipt it follows, so a
 * finisher that goes on after its run ended never puts an older receipt over a newer one — while a
 * newer run does replace such a stray older receipt. The local S3 implements S3's conditional writes
 * (412 PreconditionFailed) in front of s3rver.
 */
let h: Harness;
let settings: Settings;
let cust: Customer;
const silent = new LogReporter(createLogger({ level: 'silent' }));

beforeAll(async () => {
  h = await startHarness();
  settings = loadSettings({
    ...h.stack.env(),
    DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
    DROPSHIP_AWS_MAX_ATTEMPTS: '1',
    DROPSHIP_FINISH_MAX_ATTEMPTS: '2',
  });
  await h.pool.query(`create schema fin; create table fin.t (id int primary key, v text);
    insert into fin.t select i, 'v' || i from generate_series(1, 50) i;`);
  cust = await setupCustomer(h.stack, h.registry, {
    accountId: 'fin',
    awsAccountId: '260000000001',
    bucket: 'fin-data',
    schema: 'fin',
  });
});

afterEach(() => {
  h.stack.s3.faults.length = 0;
});

afterAll(async () => h?.stop());

/** receipt.json answers 500 to every PUT while installed. */
const receiptDown: Fault = (r) =>
  r.bucket === 'fin-data' && r.key === 'receipt.json' && r.method === 'PUT'
    ? { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' }
    : undefined;

const exportNow = (s: Settings = settings) =>
  exportAccount(cust.destination, { sourceUrl: h.stack.databaseUrl, settings: s, reporter: silent, ledger: h.ledger });

async function latestRunId(): Promise<string> {
  return (await h.ledger.listRuns({ accountId: 'fin', limit: 1 }))[0]!.runId;
}

describe('finishing', () => {
  it('a receipt that cannot be published ends the run failed after DROPSHIP_FINISH_MAX_ATTEMPTS; the account is free', async () => {
    h.stack.s3.faults.push(receiptDown);
    await exportNow();
    const stuck = await latestRunId();
    // The export's own finishing rounds, then the sweeper's: bounded, not forever.
    await sweepRuns(
      {
        ledger: h.ledger,
        settings,
        log: createLogger({ level: 'silent' }),
        by: 'test',
        destination: async () => cust.destination,
      },
      { accountId: 'fin' },
    ).catch(() => {});
    const run = await h.ledger.getRun(stuck);
    expect(run?.status).toBe('failed');
    expect(run?.error).toMatch(/receipt not written after \d+ attempts \(DROPSHIP_FINISH_MAX_ATTEMPTS\)/);
    expect(run?.finishAttempts).toBeLessThanOrEqual(3);
    h.stack.s3.faults.length = 0;
    const next = await exportNow();
    expect(next.ok).toBe(true);
    expect((await readReceipt(h.stack, cust)).run_id).toBe(await latestRunId());
  });

  it('an operator can cancel a finishing run; the next run publishes', async () => {
    h.stack.s3.faults.push(receiptDown);
    await exportNow(
      loadSettings({ ...h.stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true', DROPSHIP_AWS_MAX_ATTEMPTS: '1' }),
    );
    const stuck = await latestRunId();
    expect((await h.ledger.getRun(stuck))?.status).toBe('finishing');
    expect(await h.ledger.cancelRun({ runId: stuck, by: 'test' })).toEqual({ ok: true });
    expect((await h.ledger.getRun(stuck))?.status).toBe('cancelled');
    h.stack.s3.faults.length = 0;
    expect((await exportNow()).ok).toBe(true);
    expect((await readReceipt(h.stack, cust)).run_id).not.toBe(stuck);
  });

  it('a late finisher never replaces a newer receipt; a newer run replaces a stray older one', async () => {
    // A run whose receipt bytes are recorded but not published (the PUT fails), then ended by an operator.
    h.stack.s3.faults.push(receiptDown);
    await exportNow(
      loadSettings({ ...h.stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true', DROPSHIP_AWS_MAX_ATTEMPTS: '1' }),
    );
    const lateId = await latestRunId();
    await h.ledger.cancelRun({ runId: lateId, by: 'test' });
    h.stack.s3.faults.length = 0;
    const late = (await h.ledger.getRun(lateId))!;
    const port = openTarget(cust.destination, lateId, settings);
    try {
      // Its finisher went on after the last look (the window the ledger cannot close): its PUT replaces
      // the receipt it follows — the newest — so the stray receipt is published.
      await publishReceipt(h.ledger, late, cust.destination, port, late.receiptBody!);
      expect((await readReceipt(h.stack, cust)).run_id).toBe(lateId);

      // A newer run publishes over the stray older receipt (it knows its bytes from the ledger).
      expect((await exportNow()).ok).toBe(true);
      const newer = await latestRunId();
      expect((await readReceipt(h.stack, cust)).run_id).toBe(newer);

      // The late finisher once more: the receipt in place is newer than the one it follows — refused.
      await expect(publishReceipt(h.ledger, late, cust.destination, port, late.receiptBody!)).rejects.toBeInstanceOf(
        ReceiptPreconditionFailed,
      );
      expect((await readReceipt(h.stack, cust)).run_id).toBe(newer);
    } finally {
      port.close();
    }
  });

  it('a receipt the customer deleted, or a bucket new to the chain, does not block publication (If-Match answered 404)', async () => {
    expect((await exportNow()).ok).toBe(true);
    // The customer deletes receipt.json (s3rver's store, as the bucket owner would).
    await (
      h.stack.s3 as unknown as { server: { store: { deleteObject: (b: string, k: string) => Promise<void> } } }
    ).server.store.deleteObject('fin-data', 'receipt.json');
    expect(await h.stack.s3.keys('fin-data')).not.toContain('receipt.json');
    const next = await exportNow();
    expect(next.ok).toBe(true);
    expect((await readReceipt(h.stack, cust)).run_id).toBe(await latestRunId());
  });
});
