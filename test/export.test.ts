import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from '../src/accounts/registry.js';
import type { Settings } from '../src/config/settings.js';
import { destinationClients } from '../src/destinations/s3/clients.js';
import { type Customer, createDemoSchema, setupCustomer } from '../src/devstack/demo.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { listTables } from '../src/pipeline/source/catalog.js';
import { release, Snapshot } from '../src/pipeline/source/snapshot.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { exportAccount, exportAccounts } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { Ledger } from '../src/store/ledger/ledger.js';
import { assertExact, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

let stack: LocalStack;
let pool: pg.Pool;
let registry: Registry;
let ledger: Ledger;
let settings: Settings;
let acme: Customer;
let globex: Customer;
let bulk: Customer;
const silent = new LogReporter(createLogger({ level: 'silent' }));
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool, registry, ledger } = h);
  settings = h.settings({
    DROPSHIP_SHARD_TARGET_BYTES: String(1024 * 1024),
    DROPSHIP_ROW_GROUP_ROWS: '10000',
    DROPSHIP_PART_SIZE_BYTES: String(5 * 1024 * 1024),
  });
  const client = await pool.connect();
  try {
    await createDemoSchema(client, 'acme', 40_000, 0.1);
    await createDemoSchema(client, 'globex', 5_000, 0.2);
    // Incompressible rows, so one shard spans several 5 MiB parts (a real multipart upload).
    await client.query(`create schema bulk;
      create table bulk.blobs as select i as id, md5(random()::text) || md5(random()::text) as a, gen_random_uuid() as u
        from generate_series(1, 160000) i;`);
  } finally {
    client.release();
  }
  acme = await setupCustomer(stack, registry, {
    accountId: 'acme',
    awsAccountId: '222222222222',
    bucket: 'acme-data',
    prefix: 'dropship/exports',
    schema: 'acme',
  });
  globex = await setupCustomer(stack, registry, {
    accountId: 'globex',
    awsAccountId: '333333333333',
    bucket: 'globex-data',
    region: 'eu-west-1',
    schema: 'globex',
    plan: 'free',
  });
  bulk = await setupCustomer(stack, registry, {
    accountId: 'bulk',
    awsAccountId: '444444444444',
    bucket: 'bulk-data',
    schema: 'bulk',
  });
});

afterAll(async () => {
  await h?.stop();
});

/** One export of `dest` with this file's settings (or overrides). */
const run = (dest: Customer['destination'], extra: Partial<Parameters<typeof exportAccount>[1]> = {}) =>
  exportAccount(dest, { sourceUrl: stack.databaseUrl, settings, reporter: silent, ledger, ...extra });

describe('export of a demo account on the local stack', () => {
  it('delivers every table exactly, with receipt.json last and agreeing with the shards', async () => {
    // Act
    const outcome = await run(acme.destination);
    // Assess
    expect(outcome.ok, outcome.ok ? '' : String((outcome as { error: unknown }).error)).toBe(true);
    const receipt = await readReceipt(stack, acme);
    expect(validateReceipt(receipt)).toEqual([]);
    expect(Object.keys(receipt.tables)).toEqual([
      'companies',
      'contacts',
      'events',
      'events_daily',
      'paid_ads',
      'revenue',
      'revenue_attribution',
    ]);
    expect(receipt.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(receipt.format).toBe('parquet');
    expect(receipt.compression).toBe('gzip');
    const folder = receipt.timestamp.slice(0, 16);
    expect(receipt.tables.events!.folder).toBe(`${folder}/events`);
    expect(receipt.tables.events!.total_file_count).toBeGreaterThan(1);

    // Every shard in the bucket is in the receipt and vice versa; keys follow the layout.
    const keys = await stack.s3.keys('acme-data');
    const listed = Object.values(receipt.tables).flatMap((t) => t.files.map((f) => f.key));
    expect(keys).toEqual([...listed, 'dropship/exports/receipt.json', 'dropship/exports/status.json'].sort());
    for (const [name, t] of Object.entries(receipt.tables)) {
      t.files.forEach((f, i) => {
        expect(f.key).toBe(`dropship/exports/${t.folder}/${name}_${String(i).padStart(12, '0')}.parquet.gz`);
      });
      expect(t.files.reduce((n, f) => n + f.rows, 0)).toBe(t.row_count);
      expect(t.total_file_count).toBe(t.files.length);
    }

    // receipt.json is the last object of the delivery, after every shard (S3 event order); then
    // status.json tells where deliveries stand.
    const events = stack.s3.events.filter((e) => e.bucket === 'acme-data');
    expect(events.slice(-2).map((e) => e.key)).toEqual([
      'dropship/exports/receipt.json',
      'dropship/exports/status.json',
    ]);
    expect(new Set(events.slice(0, -2).map((e) => e.key))).toEqual(new Set(listed));

    // Downloaded with the customer's own credentials: checksums match, and DuckDB reads back
    // exactly what Postgres holds, table by table, value by value.
    await assertExact({ stack, pool }, acme);
    const events40k = receipt.tables.events!;
    expect(events40k.row_count).toBe(40_000);
    expect(events40k.columns.find((c) => c.name === 'revenue')).toMatchObject({
      postgres_type: 'numeric(18,4)',
      parquet_type: 'INT64 DECIMAL(18,4)',
      nullable: true,
    });
    expect(events40k.columns.find((c) => c.name === 'occurred_at')).toMatchObject({
      parquet_type: 'INT64 TIMESTAMP(MICROS,UTC)',
      nullable: false,
    });
  });

  it('refuses a role whose trust policy has another external ID: AccessDenied, clear error, no object', async () => {
    // Prepare: the customer pasted a wrong external ID into the trust policy.
    const role = stack.iam.roles.get(globex.destination.roleArn)!;
    const original = role.trustPolicy;
    role.trustPolicy = JSON.parse(JSON.stringify(original).replace(globex.destination.externalId, 'not-the-right-id'));
    const before = stack.s3.requests.filter((r) => r.bucket === 'globex-data').length;
    try {
      // Act
      const outcome = await run(globex.destination);
      // Assess
      expect(outcome.ok).toBe(false);
      const message = String((outcome as { error: Error }).error.message);
      expect(message).toContain(
        'cannot assume role arn:aws:iam::333333333333:role/dropship-export-globex (AccessDenied)',
      );
      expect(message).toContain('sts:ExternalId');
      expect(message).not.toContain(globex.destination.externalId);
      // The refused run is in the ledger (`runs show` knows the run id its webhook and failure streak name).
      const recorded = await ledger.getRun(outcome.runId);
      expect(recorded).toMatchObject({ status: 'failed', accountId: 'globex' });
      expect(recorded?.error).toContain('AccessDenied');
      expect(recorded?.error).not.toContain(globex.destination.externalId);
      expect(await ledger.outcomes.get(outcome.runId)).toMatchObject({ status: 'failed', accountId: 'globex' });
      expect(await stack.s3.keys('globex-data')).toEqual([]);
      expect(stack.s3.requests.filter((r) => r.bucket === 'globex-data').length).toBe(before);
    } finally {
      role.trustPolicy = original;
    }
    // And with the trust policy fixed, the same account exports.
    const retry = await run(globex.destination);
    expect(retry.ok).toBe(true);
    expect((await readReceipt(stack, globex)).tables.events!.row_count).toBe(5_000);
  });

  it('writes every object with SSE-KMS under the registered key, and names the missing KMS permission', async () => {
    // Prepare
    const kmsKeyArn = 'arn:aws:kms:us-east-1:777777777777:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    await pool.query(
      `create schema vault; create table vault.secrets_meta as select i as id, 'row ' || i as label from generate_series(1, 1000) i;`,
    );
    const vault = await setupCustomer(stack, registry, {
      accountId: 'vault',
      awsAccountId: '777777777777',
      bucket: 'vault-data',
      schema: 'vault',
      kmsKeyArn,
    });
    // Act
    const outcome = await run(vault.destination);
    // Assess
    expect(outcome.ok).toBe(true);
    const keys = await stack.s3.keys('vault-data');
    expect(keys).toContain('receipt.json');
    for (const key of keys)
      expect(stack.s3.encryptionOf('vault-data', key), key).toEqual({ sse: 'aws:kms', kmsKeyId: kmsKeyArn });

    // The customer's role lacks the KMS statement: the run fails, saying which permission is missing.
    const role = stack.iam.roles.get(vault.destination.roleArn)!;
    const policies = role.policies;
    role.policies = [
      {
        Statement: [
          {
            Effect: 'Allow',
            Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
            Resource: 'arn:aws:s3:::vault-data/*',
          },
        ],
      },
    ];
    try {
      const failed = await run(vault.destination);
      expect(failed.ok).toBe(false);
      const message = (failed as { failures: { message: string }[] }).failures[0]!.message;
      expect(message).toContain('access denied writing s3://vault-data/');
      expect(message).toContain(`kms:GenerateDataKey + kms:Decrypt on ${kmsKeyArn}`);
    } finally {
      role.policies = policies;
    }
  });

  it("keeps accounts apart: account A's credentials cannot write account B's bucket", async () => {
    // Prepare
    const a = destinationClients(acme.destination, 'isolation-test', settings);
    // Act
    const put = (Bucket: string, Key: string) =>
      a.s3.send(new PutObjectCommand({ Bucket, Key, Body: 'x' })).then(
        () => 'written',
        (e: Error) => e.name,
      );
    const own = await put('acme-data', 'dropship/exports/2000-01-01T00:00/probe.txt');
    // Under the prefix but outside dropship's keys (a customer's own object): not writable either.
    const customers = await put('acme-data', 'dropship/exports/customer-report.csv');
    const otherSameRegion = await put('bulk-data', 'probe.txt');
    const otherRegion = await put('globex-data', 'probe.txt');
    const outsidePrefix = await put('acme-data', 'elsewhere/probe.txt');
    // Assess
    expect(own).toBe('written');
    expect(otherSameRegion).toBe('AccessDenied');
    expect(otherRegion).toMatch(/AccessDenied|AuthorizationHeaderMalformed/);
    expect(outsidePrefix).toBe('AccessDenied');
    expect(customers).toBe('AccessDenied');
    expect(await stack.s3.keys('bulk-data')).not.toContain('probe.txt');
    a.s3.destroy();
  });

  it('a forced upload failure leaves no receipt and no unfinished multipart upload', async () => {
    // Prepare: a first run succeeds; then part 2 of every upload fails.
    const first = await run(bulk.destination, {
      settings: { ...settings, DROPSHIP_SHARD_TARGET_BYTES: 64 * 1024 * 1024 },
    });
    expect(first.ok).toBe(true);
    const receiptBefore = await readReceipt(stack, bulk);
    expect(stack.s3.requests.some((r) => r.bucket === 'bulk-data' && r.action === 's3:CreateMultipartUpload')).toBe(
      true,
    );
    const fault = (req: { bucket: string; query: URLSearchParams }) =>
      req.bucket === 'bulk-data' && req.query.get('partNumber') === '2'
        ? { status: 403, code: 'AccessDenied', message: 'Access Denied (injected by test)' }
        : undefined;
    stack.s3.faults.push(fault);
    try {
      // Act
      const second = await run(bulk.destination, {
        settings: { ...settings, DROPSHIP_SHARD_TARGET_BYTES: 64 * 1024 * 1024 },
      });
      // Assess
      expect(second.ok).toBe(false);
      const failures = (second as { failures: { table: string; message: string }[] }).failures;
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({
        table: 'blobs',
        message: expect.stringContaining('access denied writing s3://bulk-data/'),
      });
      expect(await stack.s3.unfinishedUploads('bulk-data')).toEqual([]);
      expect(
        stack.s3.requests.some(
          (r) => r.bucket === 'bulk-data' && r.action === 's3:AbortMultipartUpload' && r.status === 204,
        ),
      ).toBe(true);
      expect(await readReceipt(stack, bulk)).toEqual(receiptBefore);
    } finally {
      stack.s3.faults.splice(stack.s3.faults.indexOf(fault), 1);
    }
  });
});

describe('run mechanics', () => {
  it('refreshes destination credentials when they near expiry during a run', async () => {
    // Prepare: STS hands out 20-second sessions, inside the SDK's refresh window.
    stack.sts.sessionSecondsOverride = 20;
    const callsBefore = stack.sts.calls.filter((c) => c.roleArn === globex.destination.roleArn && c.ok).length;
    try {
      // Act
      const outcome = await run(globex.destination);
      // Assess
      expect(outcome.ok).toBe(true);
      const calls =
        stack.sts.calls.filter((c) => c.roleArn === globex.destination.roleArn && c.ok).length - callsBefore;
      expect(calls).toBeGreaterThan(1);
      const names = new Set(stack.sts.calls.slice(-calls).map((c) => c.sessionName));
      expect([...names].every((n) => n.startsWith('dropship-globex-'))).toBe(true);
    } finally {
      stack.sts.sessionSecondsOverride = undefined;
    }
  });

  it('reads every table of a run in one snapshot: rows committed after it starts are not seen', async () => {
    // Prepare
    const snapshot = await Snapshot.open(stack.databaseUrl);
    const other = await pool.connect();
    try {
      const before = Number((await other.query('select count(*) from acme.revenue')).rows[0].count);
      // Act: a concurrent writer commits after the snapshot was taken.
      await other.query(
        'insert into acme.revenue select id + 1000000, company_id, amount, currency, closed_on, stage from acme.revenue limit 10',
      );
      const reader = await snapshot.connect();
      const seen = Number((await reader.query('select count(*) from acme.revenue')).rows[0].count);
      const tables = await listTables(reader, 'acme');
      await release(reader, false);
      // Assess
      expect(seen).toBe(before);
      expect(tables.map((t) => `${t.name}:${t.kind}`)).toContain('events_daily:materialized view');
    } finally {
      await other.query('delete from acme.revenue where id > 1000000');
      other.release();
      await snapshot.close();
    }
  });
  /** Connections to the source with this application_name, as the server lists them (state, and whether in a snapshot). */
  async function sessions(name: string): Promise<{ state: string; xmin: boolean }[]> {
    const res = await pool.query<{ state: string; xmin: boolean }>(
      `select state, backend_xmin is not null as xmin from pg_stat_activity where application_name = $1`,
      [name],
    );
    return res.rows;
  }
  /** Polls until `check` holds (the server ends a closed session's backend a moment after the client leaves). */
  async function until<T>(read: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
    let v = await read();
    for (let i = 0; i < 100 && !check(v); i++) {
      await new Promise((r) => setTimeout(r, 20));
      v = await read();
    }
    return v;
  }
  /** The sessions with this application_name once there are `n` of them (or as they are after ~2 s). */
  const sessionsSettle = (name: string, n: number) =>
    until(
      () => sessions(name),
      (s) => s.length === n,
    );

  it('a holder connected ahead reads nothing and takes no snapshot until opened; closed unopened, it leaves', async () => {
    // Prepare: the holder connects (as a run does while it checks the customer's role).
    const pending = Snapshot.connectHolder(stack.databaseUrl, 'ahead-holder');
    const before = await until(
      () => sessions('ahead-holder'),
      (s) => s.length === 1 && s[0]!.state === 'idle',
    );
    const other = await pool.connect();
    try {
      // Act: a writer commits after the holder connected but before it was opened.
      await other.query(
        'insert into acme.revenue select id + 1000000, company_id, amount, currency, closed_on, stage from acme.revenue limit 10',
      );
      const snapshot = await pending.open();
      const reader = await snapshot.connect();
      const seen = Number((await reader.query('select count(*) from acme.revenue where id > 1000000')).rows[0].count);
      await release(reader, false);
      await snapshot.close();
      await pending.close(); // opened: the snapshot's own close ended it
      const unopened = Snapshot.connectHolder(stack.databaseUrl, 'ahead-unopened');
      await sessionsSettle('ahead-unopened', 1);
      await unopened.close();
      // Assess: connected, idle, outside any transaction; the snapshot is the moment of open(), not of connect().
      expect(before).toEqual([{ state: 'idle', xmin: false }]);
      expect(seen).toBe(10);
      expect(await sessionsSettle('ahead-unopened', 0)).toEqual([]);
      expect(await sessionsSettle('ahead-holder', 0)).toEqual([]);
    } finally {
      await other.query('delete from acme.revenue where id > 1000000');
      other.release();
    }
  });

  it('a holder whose connection was lost before it was opened connects again, once, and opens', async () => {
    // Prepare: connected ahead, then its server process ends (a restart, a proxy's idle limit) before open().
    const pending = Snapshot.connectHolder(stack.databaseUrl, 'ahead-lost');
    await until(
      () => sessions('ahead-lost'),
      (s) => s.length === 1 && s[0]!.state === 'idle',
    );
    const killed = await pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'ahead-lost'`,
    );
    await sessionsSettle('ahead-lost', 0);
    // Act
    const snapshot = await pending.open();
    try {
      const reader = await snapshot.connect();
      const rows = Number((await reader.query('select count(*) from acme.revenue')).rows[0].count);
      await release(reader, false);
      // Assess
      expect(killed.rowCount).toBe(1);
      expect(rows).toBeGreaterThan(0);
      expect(await sessions('ahead-lost')).toEqual([{ state: 'idle in transaction', xmin: true }]);
    } finally {
      await snapshot.close();
    }
  });

  it('readers joined ahead are in the snapshot, handed out first, replaced when lost, ended when unused', async () => {
    // Prepare: three readers join ahead (as a run's first tables' readers do while the run is recorded).
    const snapshot = await Snapshot.open(stack.databaseUrl, 'prejoin-holder');
    snapshot.prejoin(3, 'prejoin-reader');
    const joined = await until(
      () => sessions('prejoin-reader'),
      (s) => s.length === 3 && s.every((r) => r.state === 'idle in transaction'),
    );
    const other = await pool.connect();
    try {
      await other.query(
        'insert into acme.revenue select id + 1000000, company_id, amount, currency, closed_on, stage from acme.revenue limit 10',
      );
      // One reader joined ahead loses its connection while it waits.
      const killed = await pool.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'prejoin-reader' and pid = (
           select min(pid) from pg_stat_activity where application_name = 'prejoin-reader')`,
      );
      await sessionsSettle('prejoin-reader', 2);
      // Act: four readers asked for.
      const readers = [];
      for (let i = 0; i < 4; i++) readers.push(await snapshot.connect('prejoin-new'));
      const seen = await Promise.all(
        readers.map(async (r) =>
          Number((await r.query('select count(*) from acme.revenue where id > 1000000')).rows[0].count),
        ),
      );
      const names = await sessionsSettle('prejoin-new', 2);
      for (const r of readers) await release(r, false);
      // Assess: all four read in the snapshot (the row committed after it is not seen); two came from ahead, the
      // lost one and the fourth were joined anew.
      expect(joined).toHaveLength(3);
      expect(killed.rowCount).toBe(1);
      expect(seen).toEqual([0, 0, 0, 0]);
      expect(names).toHaveLength(2);
      // Readers joined ahead and never asked for are given back by unjoin() (a run that must wait for another), and
      // whatever was joined since ends with the snapshot; a reader asked for after unjoin() is joined anew.
      snapshot.prejoin(2, 'prejoin-given-back');
      await sessionsSettle('prejoin-given-back', 2);
      await snapshot.unjoin();
      expect(await sessionsSettle('prejoin-given-back', 0)).toEqual([]);
      const fresh = await snapshot.connect('prejoin-after');
      const freshSeen = Number(
        (await fresh.query('select count(*) from acme.revenue where id > 1000000')).rows[0].count,
      );
      await release(fresh, false);
      expect(freshSeen).toBe(0);
      snapshot.prejoin(1, 'prejoin-unused');
      await sessionsSettle('prejoin-unused', 1);
      await snapshot.close();
      expect(await sessionsSettle('prejoin-unused', 0)).toEqual([]);
    } finally {
      await other.query('delete from acme.revenue where id > 1000000');
      other.release();
      await snapshot.close();
    }
  });
});

describe('several accounts at once', () => {
  it('never runs as many accounts as the ledger pool has connections (each running account holds one for its lock)', async () => {
    // Prepare: a ledger pool of 2 connections and DROPSHIP_ACCOUNT_CONCURRENCY 4: two accounts running at once would
    // hold both connections for their owners' locks, and neither could make another statement.
    const small = new pg.Pool({ connectionString: stack.databaseUrl, max: 2 });
    small.on('error', () => {});
    const warnings: string[] = [];
    const log = createLogger({ level: 'warn', destination: { write: (line: string) => void warnings.push(line) } });
    try {
      // Act
      const outcome = await Promise.race([
        exportAccounts([acme.destination, globex.destination], {
          sourceUrl: stack.databaseUrl,
          settings: h.settings({ DROPSHIP_ACCOUNT_CONCURRENCY: '4' }),
          reporter: silent,
          ledger: new Ledger(small),
          log,
        }),
        new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 60_000)),
      ]);
      // Assess: both delivered (one at a time), and the operator is told why fewer ran at once than asked.
      expect(outcome).not.toBe('stuck');
      const outcomes = outcome as Map<string, { ok: boolean }>;
      expect([...outcomes].map(([id, o]) => [id, o.ok])).toEqual([
        ['acme', true],
        ['globex', true],
      ]);
      expect(warnings.join('')).toContain("DROPSHIP_ACCOUNT_CONCURRENCY 4 needs more than the registry pool's 2");
    } finally {
      await small.end();
    }
  });
});
