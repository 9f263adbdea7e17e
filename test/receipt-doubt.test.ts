import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import type { Fault } from '../src/devstack/s3.js';
import { REPO_ROOT } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { machineEnv } from './kit/machine-env.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * A receipt PUT whose answer is lost may have landed (kill, then trust — red team, 2026-12-06). Each of these left a
 * run reported failed or cancelled while its receipt.json was published, and the first two blocked the account for
 * good: every later run was refused as if that receipt.json were the customer's own object.
 *   - The SDK resent the account's first, create-only receipt PUT after its answer was lost; the resend met the object
 *     the first attempt had stored (412). Conditional writes are now sent once, and each attempt is counted in doubt.
 *   - A SIGKILL right after the first PUT, then a destination update or `runs cancel`: the update cancelled the run
 *     (its publication hold died with it), and the chain's not-known-published link was not read as "dropship may have
 *     written here". Now an update spares such a run (it is finished where its files are), and any link at a place
 *     makes the next PUT there a replacing one.
 *   - Every PUT's answer lost until the finishing bound: the run ended "listed by no receipt" while it was.
 */
let h: Harness;
const silent = new LogReporter(createLogger({ level: 'silent' }));

beforeAll(async () => {
  h = await startHarness();
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

async function customer(id: string, awsAccountId: string): Promise<Customer> {
  await h.pool.query(`create schema ${id}; create table ${id}.t (id bigint primary key, secret text);
    insert into ${id}.t select i, 's' || i from generate_series(1, 40) i;`);
  return setupCustomer(h.stack, h.registry, { accountId: id, awsAccountId, bucket: `${id}-data`, schema: id });
}

/** The run id of the receipt.json in place, read as the customer reads it. */
async function receiptInPlace(c: Customer): Promise<string> {
  const s3 = customerS3(h.stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: 'receipt.json' }));
    return (JSON.parse(await res.Body!.transformToString()) as { run_id: string }).run_id;
  } finally {
    s3.destroy();
  }
}

/** Answers to receipt.json PUTs in `bucket` are cut (the object is stored, the answer lost): the first `n`. */
function loseReceiptAnswers(bucket: string, n = Number.POSITIVE_INFINITY): () => void {
  let cut = 0;
  const fault: Fault = (r) =>
    r.bucket === bucket && r.key === 'receipt.json' && r.method === 'PUT' && cut++ < n ? { truncate: true } : undefined;
  h.stack.s3.faults.push(fault);
  return () => void h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
}

function deps(env: Record<string, string> = {}) {
  return { sourceUrl: h.stack.databaseUrl, settings: h.settings(env), reporter: silent, ledger: h.ledger };
}

describe('a receipt PUT whose answer is lost', () => {
  it('the first receipt: one lost answer, the run succeeds with its receipt in place, and the next run delivers', async () => {
    // Prepare
    const c = await customer('rdfirst', '250000000093');
    const restore = loseReceiptAnswers('rdfirst-data', 1);
    // Act
    let first: Awaited<ReturnType<typeof exportAccount>>;
    try {
      first = await exportAccount(c.destination, deps());
    } finally {
      restore();
    }
    const second = await exportAccount(await h.registry.get('rdfirst'), deps());
    // Assess
    const run1 = await h.ledger.getRun(first.runId);
    expect({ status: run1?.status, error: run1?.error }).toEqual({ status: 'succeeded', error: null });
    expect(second.ok).toBe(true);
    expect(await receiptInPlace(c)).toBe(second.runId);
  }, 180_000);

  it('every answer lost until the finishing bound: the run says its receipt may be in place, and the next run replaces it', async () => {
    // Prepare: one good delivery, then one whose receipt PUTs all lose their answers.
    const c = await customer('rdbound', '250000000094');
    expect((await exportAccount(c.destination, deps())).ok).toBe(true);
    const restore = loseReceiptAnswers('rdbound-data');
    // Act
    let second: Awaited<ReturnType<typeof exportAccount>>;
    try {
      second = await exportAccount(
        c.destination,
        deps({ DROPSHIP_FINISH_MAX_ATTEMPTS: '2', DROPSHIP_AWS_MAX_ATTEMPTS: '2' }),
      );
    } finally {
      restore();
    }
    const inPlace = await receiptInPlace(c);
    const third = await exportAccount(await h.registry.get('rdbound'), deps());
    // Assess: the receipt in place is that run's, and the ledger never says it is listed by no receipt.
    const run2 = await h.ledger.getRun(second.runId);
    expect(inPlace).toBe(second.runId);
    expect(run2?.status).toBe('failed');
    expect(run2?.error).toMatch(/receipt not confirmed .* may be this run's/);
    expect(run2?.error).not.toMatch(/listed by no receipt/);
    expect(third.ok).toBe(true);
    expect(await receiptInPlace(c)).toBe(third.runId);
  }, 180_000);

  it('a lost answer, then a refusal: the run fails saying its receipt may be in place, and the next run replaces it', async () => {
    // Prepare: the first PUT is stored and its answer lost; the retry is refused (the role lost its permission).
    const c = await customer('rdrefuse', '250000000095');
    let n = 0;
    const fault: Fault = (r) => {
      if (r.bucket !== 'rdrefuse-data' || r.key !== 'receipt.json' || r.method !== 'PUT') return undefined;
      n++;
      if (n === 1) return { truncate: true };
      return n === 2 ? { status: 403, code: 'AccessDenied', message: 'Access Denied (injected by test)' } : undefined;
    };
    h.stack.s3.faults.push(fault);
    // Act
    let first: Awaited<ReturnType<typeof exportAccount>>;
    try {
      first = await exportAccount(c.destination, deps());
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    const inPlace = await receiptInPlace(c);
    const second = await exportAccount(await h.registry.get('rdrefuse'), deps());
    // Assess
    const run1 = await h.ledger.getRun(first.runId);
    expect(inPlace).toBe(first.runId);
    expect(run1?.status).toBe('failed');
    expect(run1?.error).toMatch(/may be this run's/);
    expect(second.ok).toBe(true);
    expect(await receiptInPlace(c)).toBe(second.runId);
  }, 180_000);
});

/** `dropship export --account <id>` in a child process, with the test crash point `env` names. */
function spawnExport(accountId: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'src/cli/bin.mjs'), 'export', '--account', accountId], {
    env: { ...machineEnv(), ...h.stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  return new Promise<{ signal: NodeJS.Signals | null; stderr: string }>((r) =>
    child.on('exit', (_c, signal) => r({ signal, stderr })),
  );
}

describe('the first receipt is out and its owner is SIGKILLed', () => {
  it('then the destination is updated: the run is cancelled (its hold died with it), and the account delivers on', async () => {
    // Prepare
    const c = await customer('rdupd', '250000000091');
    const died = await spawnExport('rdupd', { DROPSHIP_TEST_CRASH_AT: 'after-receipt-put' });
    expect(died.signal, died.stderr).toBe('SIGKILL');
    const dead = (await h.ledger.listRuns({ accountId: 'rdupd', limit: 1 }))[0]!;
    expect(dead.status).toBe('finishing');
    // Act
    await h.registry.update('rdupd', { selection: { excludeColumns: ['t.secret'] } });
    const results = [];
    for (let i = 0; i < 2; i++) results.push(await exportAccount(await h.registry.get('rdupd'), deps()));
    // Assess: the next runs deliver (the dead run's possible receipt is replaced, not taken for the customer's own).
    expect((await h.ledger.getRun(dead.runId))?.status).toBe('cancelled');
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(await receiptInPlace(c)).toBe(results[1]!.runId);
  }, 240_000);

  it('then an operator cancels the run: the run stays cancelled, and the account still delivers', async () => {
    // Prepare
    const c = await customer('rdcancel', '250000000092');
    const died = await spawnExport('rdcancel', { DROPSHIP_TEST_CRASH_AT: 'after-receipt-put' });
    expect(died.signal, died.stderr).toBe('SIGKILL');
    const dead = (await h.ledger.listRuns({ accountId: 'rdcancel', limit: 1 }))[0]!;
    // Act
    expect(await h.ledger.cancelRun({ runId: dead.runId, by: 'operator' })).toEqual({ ok: true });
    const results = [];
    for (let i = 0; i < 2; i++) results.push(await exportAccount(await h.registry.get('rdcancel'), deps()));
    // Assess
    expect((await h.ledger.getRun(dead.runId))?.status).toBe('cancelled');
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(await receiptInPlace(c)).toBe(results[1]!.runId);
  }, 240_000);
});
