import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, type Settings } from '../src/config/settings.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import type { FaultAction, S3RequestInfo } from '../src/devstack/s3.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import type { TableProgress } from '../src/pipeline/table.js';
import { exportAccount, exportAccounts } from '../src/run/drivers/in-process.js';
import { LogReporter, type Reporter } from '../src/run/progress/reporter.js';
import type { Ledger } from '../src/store/ledger/ledger.js';
import { compareTable, downloadReceiptFiles } from './compare.js';
import { assertExact, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Faults between the exporter and S3, and in Postgres. Deterministic: every fault is decided by
 * per-request counters, never by chance. Under each fault the run either completes with exact data,
 * or fails with no receipt (the previous one untouched) and no unfinished multipart upload — and a
 * rerun succeeds.
 */
let stack: LocalStack;
let pool: pg.Pool;
let ledger: Ledger;
let settings: Settings;
let a: Customer;
let b: Customer;
const dir = mkdtempSync(join(tmpdir(), 'dropship-faults-'));
let h: Harness;
const silent = new LogReporter(createLogger({ level: 'silent' }));

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool } = h);
  settings = loadSettings({
    ...stack.env(),
    DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
    DROPSHIP_PART_SIZE_BYTES: String(5 * 1024 * 1024),
    DROPSHIP_SHARD_TARGET_BYTES: String(64 * 1024 * 1024),
  });
  ledger = h.ledger;
  await pool.query(`create schema fa;
    create table fa.blobs as select i as id, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) as a, md5(i::text)::uuid as u
      from generate_series(1, 250000) i;
    create table fa.small (id int primary key, note text);
    insert into fa.small select i, 'note ' || i from generate_series(1, 100) i;
    create schema fb;
    create table fb.items (id int primary key, name text);
    insert into fb.items select i, 'item ' || i from generate_series(1, 500) i;`);
  const registry = h.registry;
  a = await setupCustomer(stack, registry, {
    accountId: 'faulta',
    awsAccountId: '250000000001',
    bucket: 'faulta-data',
    schema: 'fa',
  });
  b = await setupCustomer(stack, registry, {
    accountId: 'faultb',
    awsAccountId: '250000000002',
    bucket: 'faultb-data',
    schema: 'fb',
  });
});

afterEach(() => {
  stack.s3.faults.length = 0;
});

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const deps = (extra: Partial<Parameters<typeof exportAccount>[1]> = {}) => ({
  sourceUrl: stack.databaseUrl,
  settings,
  reporter: silent,
  ledger,
  ...extra,
});

/** A fault that fires on the first `times` attempts of requests matching `when`. */
function onFirst(times: number, when: (r: S3RequestInfo) => boolean, action: FaultAction) {
  const seen = new Map<string, number>();
  const fired: string[] = [];
  const fault = (r: S3RequestInfo): FaultAction | undefined => {
    if (!when(r)) return undefined;
    const id = `${r.key}#${r.query.get('partNumber') ?? ''}`;
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    if (n > times) return undefined;
    fired.push(id);
    return action;
  };
  stack.s3.faults.push(fault);
  return fired;
}

const isPart = (r: S3RequestInfo) => r.bucket === 'faulta-data' && r.query.has('partNumber');

describe('faults between the exporter and S3', () => {
  it('503 SlowDown on parts and a 500 on the receipt are retried; the run completes exactly', async () => {
    const slowdowns = onFirst(1, (r) => isPart(r) && ['1', '3'].includes(r.query.get('partNumber')!), {
      status: 503,
      code: 'SlowDown',
      message: 'Please reduce your request rate.',
    });
    const errors = onFirst(1, (r) => r.bucket === 'faulta-data' && r.key === 'receipt.json', {
      status: 500,
      code: 'InternalError',
      message: 'We encountered an internal error. Please try again.',
    });
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok, JSON.stringify((outcome as { failures?: unknown }).failures)).toBe(true);
    expect(slowdowns.length).toBeGreaterThanOrEqual(2);
    expect(errors).toEqual(['receipt.json#']);
    await assertExact(h, a);
  });

  it('parts are signed without hashing their bytes, and carry a CRC32 checksum the local S3 verifies', async () => {
    const seen: { sha: string; crc: string | undefined }[] = [];
    stack.s3.faults.push((r) => {
      if (isPart(r))
        seen.push({
          sha: String(r.headers['x-amz-content-sha256']),
          crc: r.headers['x-amz-checksum-crc32'] as string | undefined,
        });
      return undefined;
    });
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok, JSON.stringify((outcome as { failures?: unknown }).failures)).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((p) => p.sha === 'UNSIGNED-PAYLOAD' && /^[A-Za-z0-9+/]{6}==$/.test(p.crc ?? ''))).toBe(true);
    await assertExact(h, a);
  });

  it('with DROPSHIP_S3_UNSIGNED_PARTS=false every part is signed with the SHA-256 of its bytes (a policy requiring it)', async () => {
    const seen: string[] = [];
    stack.s3.faults.push((r) => {
      if (isPart(r)) seen.push(String(r.headers['x-amz-content-sha256']));
      return undefined;
    });
    const outcome = await exportAccount(
      a.destination,
      deps({ settings: { ...settings, DROPSHIP_S3_UNSIGNED_PARTS: false } }),
    );
    expect(outcome.ok, JSON.stringify((outcome as { failures?: unknown }).failures)).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((sha) => /^[0-9a-f]{64}$/.test(sha))).toBe(true);
    await assertExact(h, a);
  });

  it('a connection dropped mid-part is retried; the run completes exactly', async () => {
    const dropped = onFirst(1, (r) => isPart(r) && r.query.get('partNumber') === '2', { drop: true });
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok).toBe(true);
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    await assertExact(h, a);
  });

  it('a part whose response is cut off after S3 stored it is retried; the run completes exactly', async () => {
    const truncated = onFirst(1, (r) => isPart(r) && r.query.get('partNumber') === '2', { truncate: true });
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok).toBe(true);
    expect(truncated.length).toBeGreaterThanOrEqual(1);
    await assertExact(h, a);
  });

  it('a CompleteMultipartUpload whose response is cut off after S3 completed it is retried, as S3 answers a repeated Complete: the run completes exactly', async () => {
    const isComplete = (r: S3RequestInfo) =>
      r.bucket === 'faulta-data' && r.method === 'POST' && r.query.has('uploadId') && r.key.includes('/blobs/');
    const truncated = onFirst(1, isComplete, { truncate: true });
    const events = stack.s3.events.length;
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok).toBe(true);
    expect(truncated.length).toBeGreaterThanOrEqual(1);
    await assertExact(h, a);
    // One creation event per object: the repeated Complete stored nothing again.
    const created = stack.s3.events.slice(events).map((e) => e.key);
    expect(created.length).toBe(new Set(created).size);
    expect(created.filter((k) => truncated.includes(`${k}#`)).length).toBe(truncated.length);
  });

  it('a slow S3 (every part delayed) still completes exactly', async () => {
    const delayed = onFirst(1, isPart, { delayMs: 150 });
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok).toBe(true);
    expect(delayed.length).toBeGreaterThanOrEqual(4);
    await assertExact(h, a);
  });

  it('AccessDenied is not retried: one attempt, a clear message, no receipt change, no unfinished upload', async () => {
    const before = await readReceipt(stack, a);
    const denied = onFirst(99, (r) => isPart(r) && r.query.get('partNumber') === '1', {
      status: 403,
      code: 'AccessDenied',
      message: 'Access Denied',
    });
    const outcome = await exportAccount(a.destination, deps());
    expect(outcome.ok).toBe(false);
    expect(new Set(denied).size).toBeGreaterThanOrEqual(1);
    expect(denied.length).toBe(new Set(denied).size); // every denied part was tried exactly once
    const failures = (outcome as { failures: { table: string; message: string }[] }).failures;
    expect(failures.find((f) => f.table === 'blobs')?.message).toContain('access denied writing s3://faulta-data/');
    expect(await readReceipt(stack, a)).toEqual(before);
    expect(await stack.s3.unfinishedUploads('faulta-data')).toEqual([]);
  });

  it("one account's failure never affects another's export in the same slot", async () => {
    onFirst(99, (r) => r.bucket === 'faulta-data', { status: 403, code: 'AccessDenied', message: 'Access Denied' });
    const outcomes = await exportAccounts([a.destination, b.destination], deps());
    expect(outcomes.get('faulta')?.ok).toBe(false);
    expect(outcomes.get('faultb')?.ok).toBe(true);
    await assertExact(h, b);
  });
});

describe('faults in Postgres', () => {
  it('a backend terminated mid-COPY fails the run cleanly; the rerun succeeds', async () => {
    const before = await readReceipt(stack, a);
    let killed = false;
    const killer: Reporter = {
      ...silent,
      accountStarted: () => {},
      tableDone: () => {},
      tableFailed: () => {},
      accountDone: () => {},
      tableProgress: (_acct: string, p: TableProgress) => {
        if (killed || p.table !== 'blobs' || p.rows === 0) return;
        killed = true;
        void pool.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'dropship faulta' and query ilike 'COPY%'`,
        );
      },
    };
    const outcome = await exportAccount(a.destination, deps({ reporter: killer }));
    expect(killed).toBe(true);
    expect(outcome.ok).toBe(false);
    expect(
      (outcome as { failures: { table: string; message: string }[] }).failures.find((f) => f.table === 'blobs')
        ?.message,
    ).toMatch(/terminat|connection/i);
    expect(await readReceipt(stack, a)).toEqual(before);
    expect(await stack.s3.unfinishedUploads('faulta-data')).toEqual([]);
    const rerun = await exportAccount(a.destination, deps());
    expect(rerun.ok).toBe(true);
    await assertExact(h, a);
  });

  it('a statement timeout fails the run cleanly; the rerun succeeds', async () => {
    const before = await readReceipt(stack, a);
    const outcome = await exportAccount(
      a.destination,
      deps({ sourceUrl: `${stack.databaseUrl}?options=-c%20statement_timeout%3D200` }),
    );
    expect(outcome.ok).toBe(false);
    expect(JSON.stringify((outcome as { failures: unknown }).failures)).toContain('statement timeout');
    expect(await readReceipt(stack, a)).toEqual(before);
    expect(await stack.s3.unfinishedUploads('faulta-data')).toEqual([]);
    expect((await exportAccount(a.destination, deps())).ok).toBe(true);
  });

  it('a refused connection fails the run with a clear error and writes nothing', async () => {
    const before = (await stack.s3.keys('faultb-data')).length;
    const outcome = await exportAccount(
      b.destination,
      deps({ sourceUrl: 'postgres://postgres:postgres@127.0.0.1:1/dropship' }),
    );
    expect(outcome.ok).toBe(false);
    expect(String((outcome as { error: Error }).error.message)).toMatch(
      /cannot open a snapshot on the source database: .*ECONNREFUSED/,
    );
    expect((await stack.s3.keys('faultb-data')).length).toBe(before);
  });
});

describe('reruns', () => {
  it("a rerun in the same minute as a failed run gets a folder of its own (the next minute): no stale shard in the receipt's folder", async () => {
    // Prepare: a table that spans several shards, and a table that makes the first run fail.
    await pool.query(`create schema fc;
      create table fc.shrinking as select i as id, md5(i::text) || md5((i * 3)::text) as a from generate_series(1, 60000) i;
      create table fc.bad (id int primary key, x numeric(10,2));
      insert into fc.bad values (1, 1.5), (2, 'NaN');`);
    const c = await setupCustomer(stack, h.registry, {
      accountId: 'faultc',
      awsAccountId: '250000000003',
      bucket: 'faultc-data',
      schema: 'fc',
    });
    const small = h.settings({ DROPSHIP_SHARD_TARGET_BYTES: String(1024 * 1024), DROPSHIP_ROW_GROUP_ROWS: '5000' });
    const minute = BigInt(Date.UTC(2026, 10, 23, 4, 0, 30)) * 1000n;
    // Act 1: fails (bad), after writing several shards of `shrinking`.
    const first = await exportAccount(c.destination, deps({ settings: small, clock: () => minute }));
    expect(first.ok).toBe(false);
    const stale = (await stack.s3.keys('faultc-data')).filter((k) => k.startsWith('2026-11-23T04:00/shrinking/'));
    expect(stale.length).toBeGreaterThanOrEqual(2);
    // Act 2: the data shrank and the bad row is fixed; the rerun starts in the same minute.
    await pool.query(`delete from fc.shrinking where id > 5000; delete from fc.bad where id = 2;`);
    const second = await exportAccount(c.destination, deps({ settings: small, clock: () => minute + 20_000_000n }));
    expect(second.ok, JSON.stringify((second as { failures?: unknown }).failures)).toBe(true);
    // Assess: the rerun's folder is the next minute's; every key in it is in the receipt, and together they hold
    // exactly the current rows; the failed run's shards stay where they were, in no receipt.
    const receipt = await readReceipt(stack, c);
    const t = receipt.tables.shrinking!;
    expect(t.folder).toBe('2026-11-23T04:01/shrinking');
    const inFolder = (await stack.s3.keys('faultc-data')).filter((k) => k.startsWith(`${t.folder}/`));
    expect(t.files.map((f) => f.key).sort()).toEqual(inFolder);
    expect(t.files.every((f) => !stale.includes(f.key))).toBe(true);
    expect((await stack.s3.keys('faultc-data')).filter((k) => k.startsWith('2026-11-23T04:00/shrinking/'))).toEqual(
      stale,
    );
    const files = await downloadReceiptFiles(
      stack.s3.endpoint,
      'us-east-1',
      c.reader,
      'faultc-data',
      receipt,
      join(dir, 'faultc'),
    );
    const client = await pool.connect();
    try {
      const d = await compareTable(client, 'fc', 'shrinking', t.columns, files.get('shrinking')!);
      expect(d.examples).toEqual([]);
      expect(d.parquetRows).toBe(5000);
    } finally {
      client.release();
    }
  });

  it("an account removed and another registered at its bucket and prefix in the same minute: the new account's folder holds none of the removed one's shards", async () => {
    // Prepare: the first account's run fails after writing shards (the second table cannot be read), then the account
    // is removed and another is registered at the very same bucket and prefix (the customer's bucket, a new account id).
    await pool.query(`create schema fd;
      create table fd.shrinking as select i as id, md5(i::text) || md5((i * 3)::text) as a from generate_series(1, 60000) i;
      create table fd.bad (id int primary key, x numeric(10,2));
      insert into fd.bad values (1, 1.5), (2, 'NaN');`);
    const first = await setupCustomer(stack, h.registry, {
      accountId: 'faultd',
      awsAccountId: '250000000004',
      bucket: 'faultd-data',
      prefix: 'exports',
      schema: 'fd',
    });
    const small = h.settings({ DROPSHIP_SHARD_TARGET_BYTES: String(1024 * 1024), DROPSHIP_ROW_GROUP_ROWS: '5000' });
    const minute = BigInt(Date.UTC(2026, 10, 24, 4, 0, 10)) * 1000n;
    const failed = await exportAccount(first.destination, deps({ settings: small, clock: () => minute }));
    expect(failed.ok).toBe(false);
    const stale = (await stack.s3.keys('faultd-data')).filter((k) => k.startsWith('exports/2026-11-24T04:00/'));
    expect(stale.length).toBeGreaterThanOrEqual(2);
    await h.registry.remove('faultd');
    await pool.query(`delete from fd.shrinking where id > 5000; delete from fd.bad where id = 2;`);
    const second = await setupCustomer(stack, h.registry, {
      accountId: 'faulte',
      awsAccountId: '250000000004',
      bucket: 'faultd-data',
      prefix: 'exports',
      schema: 'fd',
    });
    // Act: the new account's first run starts in the same minute.
    const run = await exportAccount(second.destination, deps({ settings: small, clock: () => minute + 20_000_000n }));
    expect(run.ok, JSON.stringify((run as { failures?: unknown }).failures)).toBe(true);
    // Assess: its folder is the next minute's and holds exactly its receipt's files; the removed account's shards stay
    // where they were, in no receipt.
    const receipt = await readReceipt(stack, second);
    const t = receipt.tables.shrinking!;
    expect(t.folder).toBe('2026-11-24T04:01/shrinking');
    const inFolder = (await stack.s3.keys('faultd-data')).filter((k) => k.startsWith('exports/2026-11-24T04:01/'));
    const named = Object.values(receipt.tables).flatMap((x) => (x.files ?? []).map((f) => f.key));
    expect(named.sort()).toEqual(inFolder);
    expect((await stack.s3.keys('faultd-data')).filter((k) => k.startsWith('exports/2026-11-24T04:00/'))).toEqual(
      stale,
    );
    expect(t.row_count).toBe(5000);
  });
});

/** The customer's own S3 client with every right on `bucket` (a user of AWS account `awsAccountId`). */
async function bucketOwner(awsAccountId: string, bucket: string) {
  const users = await stack.applyWorld({
    accounts: {
      [awsAccountId]: {
        buckets: [],
        roles: [],
        users: [
          {
            name: 'owner',
            policies: [
              {
                Statement: [
                  { Effect: 'Allow', Action: 's3:*', Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] },
                ],
              },
            ],
          },
        ],
      },
    },
  });
  return customerS3(stack.s3.endpoint, 'us-east-1', [...users.values()][0]!);
}

describe('a destination at the bucket root', () => {
  it('never replaces a receipt.json dropship did not write: the run fails naming it; once it is moved away, the next run writes its own (red team, retention)', async () => {
    // Prepare: the customer keeps a receipt.json of their own at the root of the bucket the destination writes to.
    await pool.query('create schema froot; create table froot.t (id int primary key); insert into froot.t values (1);');
    const c = await setupCustomer(stack, h.registry, {
      accountId: 'faultroot',
      awsAccountId: '250000000005',
      bucket: 'faultroot-data',
      schema: 'froot',
    });
    const owner = await bucketOwner('250000000005', 'faultroot-data');
    const mine = '{"my":"purchase receipt"}';
    try {
      await owner.send(new PutObjectCommand({ Bucket: 'faultroot-data', Key: 'receipt.json', Body: mine }));
      // Act
      const first = await exportAccount(c.destination, deps());
      // Assess: failed, saying why; the customer's object is as it was.
      expect(first.ok).toBe(false);
      expect(String((first as { error: Error }).error.message)).toMatch(
        /s3:\/\/faultroot-data\/receipt\.json is already there and dropship never wrote a receipt at this place/,
      );
      const kept = await owner.send(new GetObjectCommand({ Bucket: 'faultroot-data', Key: 'receipt.json' }));
      expect(await kept.Body!.transformToString()).toBe(mine);
      // The customer moves it away: the next run delivers.
      await owner.send(new DeleteObjectCommand({ Bucket: 'faultroot-data', Key: 'receipt.json' }));
      const second = await exportAccount(c.destination, deps());
      expect(second.ok).toBe(true);
      expect((await readReceipt(stack, c)).run_id).toBe((second as { runId: string }).runId);
      // Later receipts replace dropship's own (conditional on its recorded ETag), as before.
      const third = await exportAccount(c.destination, deps());
      expect(third.ok).toBe(true);
      expect((await readReceipt(stack, c)).run_id).toBe((third as { runId: string }).runId);
    } finally {
      owner.destroy();
    }
  });
});

describe('status.json at the bucket root', () => {
  it('never replaces a status.json dropship did not write: the delivery goes on without it; once it is moved away, dropship writes and then keeps rewriting its own', async () => {
    // Prepare: the customer keeps a status.json of their own at the root of the bucket the destination writes to.
    await pool.query('create schema sroot; create table sroot.t (id int primary key); insert into sroot.t values (1);');
    const c = await setupCustomer(stack, h.registry, {
      accountId: 'statusroot',
      awsAccountId: '250000000006',
      bucket: 'statusroot-data',
      schema: 'sroot',
    });
    const owner = await bucketOwner('250000000006', 'statusroot-data');
    const mine = '{"my":"service status page"}';
    const statusNow = async () =>
      (await owner
        .send(new GetObjectCommand({ Bucket: 'statusroot-data', Key: 'status.json' }))
        .then((o) => o.Body!.transformToString())) as string;
    try {
      await owner.send(new PutObjectCommand({ Bucket: 'statusroot-data', Key: 'status.json', Body: mine }));
      // Act
      const first = await exportAccount(c.destination, deps());
      // Assess: delivered (status.json is not the delivery), the customer's object as it was, the outcome told.
      expect(first.ok).toBe(true);
      expect(await statusNow()).toBe(mine);
      const told = await pool.query('select delivered_at from dropship.outcome_events where run_id = $1', [
        first.runId,
      ]);
      expect(told.rows[0]?.delivered_at).not.toBeNull();
      // The customer moves it away: the next outcome writes dropship's, and the one after replaces it.
      await owner.send(new DeleteObjectCommand({ Bucket: 'statusroot-data', Key: 'status.json' }));
      const second = await exportAccount(c.destination, deps());
      expect(JSON.parse(await statusNow()).last_run.run_id).toBe(second.runId);
      const third = await exportAccount(c.destination, deps());
      expect(JSON.parse(await statusNow()).last_run.run_id).toBe(third.runId);
    } finally {
      owner.destroy();
    }
  });
});
