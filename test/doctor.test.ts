import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Registry } from '../src/accounts/registry.js';
import { loadSettings, type Settings } from '../src/config/settings.js';
import { type DoctorReport, doctor } from '../src/destinations/s3/doctor.js';
import { permissionPolicy, trustPolicy } from '../src/destinations/s3/policies.js';
import type { PolicyDocument } from '../src/devstack/iam.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { checkDestinations } from '../src/notify/drift.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { Ledger } from '../src/store/ledger/ledger.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The destination doctor on the local stack: a correct destination passes; each broken setup a
 * customer can make yields its own failure line and fix; a role assumable without the external ID
 * is refused for export.
 */
let stack: LocalStack;
let pool: pg.Pool;
let registry: Registry;
let settings: Settings;
let h: Harness;
const KMS = 'arn:aws:kms:us-east-1:230000000009:key/1234abcd-12ab-34cd-56ef-1234567890ab';
let account = 0;

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool } = h);
  settings = loadSettings({ ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' });
  registry = h.registry;
  await pool.query('create schema docs; create table docs.t (id int primary key); insert into docs.t values (1), (2);');
});

afterAll(async () => {
  await h?.stop();
});

interface Setup {
  trust?: (d: Destination) => PolicyDocument;
  policies?: (d: Destination) => PolicyDocument[];
  createBucket?: boolean;
  kms?: boolean;
  prefix?: string;
}

/** Registers a destination, then sets up the customer's side — correctly, unless told otherwise. */
async function customer(setup: Setup = {}): Promise<Destination> {
  account++;
  const awsAccountId = `23000000${String(account).padStart(4, '0')}`;
  const id = `doc${account}`;
  // Each account has its own source schema (a schema belongs to one account).
  await pool.query(
    `create schema ${id}; create table ${id}.t (id int primary key); insert into ${id}.t values (1), (2);`,
  );
  const dest = await registry.add({
    accountId: id,
    plan: 'paid',
    bucket: `${id}-bucket`,
    prefix: setup.prefix ?? 'exports',
    region: 'us-east-1',
    roleArn: `arn:aws:iam::${awsAccountId}:role/dropship`,
    sourceSchema: id,
    ...(setup.kms ? { kmsKeyArn: KMS } : {}),
  });
  await stack.applyWorld({
    accounts: {
      [awsAccountId]: {
        buckets: setup.createBucket === false ? [] : [{ name: dest.bucket, region: 'us-east-1' }],
        roles: [
          {
            name: 'dropship',
            trustPolicy: (setup.trust ?? ((d) => trustPolicy(d, stack.platform.arn) as PolicyDocument))(dest),
            policies: (setup.policies ?? ((d) => [permissionPolicy(d) as PolicyDocument]))(dest),
          },
        ],
      },
    },
  });
  return dest;
}

const line = (r: DoctorReport, name: string) => r.checks.find((c) => c.name === name);
const run = (d: Destination, trust?: unknown) =>
  doctor(d, { settings, principalArn: stack.platform.arn, ...(trust !== undefined ? { trustPolicy: trust } : {}) });

describe('dropship doctor', () => {
  it('passes on a correct destination, with KMS, and probes under _dropship_probe/ without leaving an upload', async () => {
    const d = await customer({ kms: true });
    // The probe's bytes go as the export's do: unsigned payload, with a CRC32 checksum (src/destinations/s3/upload.ts).
    const probes: string[] = [];
    const watch = (r: { bucket: string; action: string; query: URLSearchParams; headers: Record<string, unknown> }) => {
      if (r.bucket === d.bucket && r.action === 's3:PutObject' && r.query.get('uploads') === null)
        probes.push(`${r.headers['x-amz-content-sha256']} ${r.headers['x-amz-checksum-crc32'] ? 'crc32' : 'none'}`);
      return undefined;
    };
    stack.s3.faults.push(watch);
    const r = await run(d, trustPolicy(d, stack.platform.arn)).finally(() => {
      stack.s3.faults.splice(stack.s3.faults.indexOf(watch), 1);
    });
    expect(probes).toEqual(['UNSIGNED-PAYLOAD crc32', 'UNSIGNED-PAYLOAD crc32', 'UNSIGNED-PAYLOAD crc32']);
    expect(r.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r).toMatchObject({ ok: true, exportAllowed: true });
    expect(line(r, 'assume role')?.detail).toMatch(
      /^assumed arn:aws:sts::\d{12}:assumed-role\/dropship\/dropship-doc\d+-doctor-/,
    );
    expect(line(r, 'lifecycle')?.status).toBe('warn');
    const keys = await stack.s3.keys(d.bucket);
    expect(keys.length).toBe(1);
    expect(keys[0]).toBe('exports/_dropship_probe/doctor.txt');
    expect(stack.s3.encryptionOf(d.bucket, keys[0]!)).toEqual({ sse: 'aws:kms', kmsKeyId: KMS });
    expect(await stack.s3.unfinishedUploads(d.bucket)).toEqual([]);
  });

  it.each([
    ['exports', 'exports/'],
    ['', ''],
  ])(
    'probes leave one object, overwritten run after run, and write nowhere but %j/_dropship_probe/',
    async (prefix, folder) => {
      const d = await customer({ prefix });
      const start = stack.s3.requests.length;
      for (let i = 0; i < 3; i++) {
        const r = await run(d);
        expect(r.checks.filter((c) => c.status === 'fail')).toEqual([]);
      }
      await checkDestinations({ pool, settings }, [d], { forceProbe: true });
      expect(await stack.s3.keys(d.bucket)).toEqual([`${folder}_dropship_probe/doctor.txt`]);
      expect(await stack.s3.unfinishedUploads(d.bucket)).toEqual([]);
      const writes = stack.s3.requests
        .slice(start)
        .filter(
          (q) => q.bucket === d.bucket && /^s3:(PutObject|CreateMultipartUpload|AbortMultipartUpload)$/.test(q.action),
        );
      expect(writes.length).toBeGreaterThan(0);
      expect(new Set(writes.map((q) => q.key))).toEqual(
        new Set([`${folder}_dropship_probe/doctor.txt`, `${folder}_dropship_probe/doctor.multipart`]),
      );
    },
  );

  it('with DROPSHIP_S3_UNSIGNED_PARTS=false it probes as the export then sends: every byte signed', async () => {
    const d = await customer({});
    const probes: string[] = [];
    const watch = (r: { bucket: string; action: string; query: URLSearchParams; headers: Record<string, unknown> }) => {
      if (r.bucket === d.bucket && r.action === 's3:PutObject' && r.query.get('uploads') === null)
        probes.push(String(r.headers['x-amz-content-sha256']));
      return undefined;
    };
    stack.s3.faults.push(watch);
    const r = await doctor(d, {
      settings: { ...settings, DROPSHIP_S3_UNSIGNED_PARTS: false },
      principalArn: stack.platform.arn,
      trustPolicy: trustPolicy(d, stack.platform.arn),
    }).finally(() => {
      stack.s3.faults.splice(stack.s3.faults.indexOf(watch), 1);
    });
    expect(probes).toHaveLength(3);
    expect(probes.every((sha) => /^[0-9a-f]{64}$/.test(sha))).toBe(true);
    expect(r.checks.filter((c) => c.status === 'fail')).toEqual([]);
  });

  it('caller not trusted: AssumeRole fails, and the pasted trust policy shows the principal is missing', async () => {
    const d = await customer({
      trust: (x) => ({
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: 'arn:aws:iam::999999999999:root' },
            Action: 'sts:AssumeRole',
            Condition: { StringEquals: { 'sts:ExternalId': x.externalId } },
          },
        ],
      }),
    });
    const trust = stack.iam.roles.get(d.roleArn)!.trustPolicy;
    const r = await run(d, trust);
    expect(line(r, 'assume role')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('AccessDenied'),
      fix: expect.stringContaining(stack.platform.arn),
    });
    expect(line(r, 'trust policy: principal')).toMatchObject({
      status: 'fail',
      fix: `set "Principal": { "AWS": "${stack.platform.arn}" } in the role's trust policy`,
    });
  });

  it('wrong external ID: AssumeRole fails, and the trust policy check names the external ID', async () => {
    const d = await customer({
      trust: () => ({
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: stack.platform.arn },
            Action: 'sts:AssumeRole',
            Condition: { StringEquals: { 'sts:ExternalId': 'someone-elses-id' } },
          },
        ],
      }),
    });
    const r = await run(d, stack.iam.roles.get(d.roleArn)!.trustPolicy);
    expect(line(r, 'assume role')?.status).toBe('fail');
    expect(line(r, 'trust policy: external ID')).toMatchObject({
      status: 'fail',
      detail: "the trust policy's sts:ExternalId is not this account's external ID",
    });
    expect(r.exportAllowed).toBe(true);
  });

  it('trust without the external-ID condition: flagged as a confused deputy, and exports are refused', async () => {
    const d = await customer({
      trust: () => ({
        Statement: [{ Effect: 'Allow', Principal: { AWS: stack.platform.arn }, Action: 'sts:AssumeRole' }],
      }),
    });
    const r = await run(d);
    expect(line(r, 'external ID enforced')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('confused deputy'),
    });
    expect(r.exportAllowed).toBe(false);
    const outcome = await exportAccount(d, {
      sourceUrl: stack.databaseUrl,
      settings,
      reporter: new LogReporter(createLogger({ level: 'silent' })),
      ledger: new Ledger(pool),
    });
    expect(outcome.ok).toBe(false);
    expect(String((outcome as { error: Error }).error.message)).toContain('refusing to export');
    // Only the doctor's own probe is in the bucket: the export wrote nothing.
    expect((await stack.s3.keys(d.bucket)).filter((k) => !k.startsWith('exports/_dropship_probe/'))).toEqual([]);
  });

  it('missing bucket: its own failure line', async () => {
    const d = await customer({ createBucket: false });
    const r = await run(d);
    expect(line(r, 'bucket')).toMatchObject({ status: 'fail', detail: `bucket "${d.bucket}" does not exist` });
  });

  it('missing PutObject: the put and multipart probes fail with the statement to add', async () => {
    const d = await customer({
      policies: (x) => [
        {
          Statement: [
            { Effect: 'Allow', Action: 's3:AbortMultipartUpload', Resource: `arn:aws:s3:::${x.bucket}/exports/*` },
          ],
        },
      ],
    });
    const r = await run(d);
    expect(line(r, 'put object')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('AccessDenied'),
      fix: expect.stringContaining(
        `s3:PutObject and s3:AbortMultipartUpload on arn:aws:s3:::${d.bucket}/exports/2*, arn:aws:s3:::${d.bucket}/exports/receipt.json`,
      ),
    });
    expect(line(r, 'bucket')?.status).toBe('pass');
  });

  it('missing kms:Decrypt: a single put works, the multipart upload with KMS fails and says what to add', async () => {
    const d = await customer({
      kms: true,
      policies: (x) => [
        {
          Statement: [
            {
              Effect: 'Allow',
              Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
              Resource: `arn:aws:s3:::${x.bucket}/exports/*`,
            },
            { Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: KMS },
          ],
        },
      ],
    });
    const r = await run(d);
    expect(line(r, 'put object')?.status).toBe('pass');
    expect(line(r, 'multipart upload')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining(`allow kms:Decrypt on ${KMS}`),
    });
    expect(await stack.s3.unfinishedUploads(d.bucket)).toEqual([]);
  });

  it('a probe STS cannot answer (throttled every time) proves nothing: exports are refused, not allowed', async () => {
    const d = await customer();
    // Every STS client makes DROPSHIP_AWS_MAX_ATTEMPTS attempts (2 here, to keep the backoff short).
    const twice = { ...settings, DROPSHIP_AWS_MAX_ATTEMPTS: 2 };
    let probes = 0;
    stack.sts.faults.push((action, params) => {
      if (action !== 'AssumeRole' || params.has('ExternalId')) return undefined;
      probes++;
      return { status: 400, code: 'Throttling', message: 'Rate exceeded' };
    });
    try {
      const outcome = await exportAccount(d, {
        sourceUrl: stack.databaseUrl,
        settings: twice,
        reporter: new LogReporter(createLogger({ level: 'silent' })),
        ledger: new Ledger(pool),
      });
      expect(outcome.ok).toBe(false);
      expect(String((outcome as { error: Error }).error.message)).toContain('could not verify that role');
      expect(probes).toBe(2);
      const r = await doctor(d, { settings: twice, principalArn: stack.platform.arn });
      expect(probes).toBe(4);
      expect(line(r, 'external ID enforced')).toMatchObject({
        status: 'fail',
        detail: 'could not be verified: STS answered Throttling',
      });
    } finally {
      stack.sts.faults.length = 0;
    }
  });
});

/**
 * S3 as seen through a proxy in front of the local S3: every request goes through unchanged (SigV4 signs the
 * proxy's host, which it forwards as is), except HeadBucket on `bucket`, which `fault` answers.
 */
async function withS3Proxy<T>(
  bucket: string,
  fault: (res: http.ServerResponse) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const target = new URL(stack.s3.endpoint);
  const proxy = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'HEAD' && (path === `/${bucket}` || path === `/${bucket}/`)) return fault(res);
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const saved = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  try {
    return await fn();
  } finally {
    process.env.AWS_ENDPOINT_URL_S3 = saved;
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  }
}

describe('the doctor passes only what it verified', () => {
  it.each([
    ['HTTP 500', (res: http.ServerResponse) => res.writeHead(500).end(), /answered HTTP 500$/],
    ['a dropped connection', (res: http.ServerResponse) => res.socket?.destroy(), /answered \S+$/],
  ])('a HeadBucket answered with %s is "could not be verified", not a pass', async (_what, fault, tail) => {
    const d = await customer();
    const once = { ...settings, DROPSHIP_AWS_MAX_ATTEMPTS: 1 };
    const r = await withS3Proxy(d.bucket, fault, () => doctor(d, { settings: once, principalArn: stack.platform.arn }));
    expect(line(r, 'put object')?.status).toBe('pass'); // the rest of S3 went through the proxy
    expect(line(r, 'bucket')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(new RegExp(`^could not be verified: HeadBucket on s3://${d.bucket} answered `)),
      fix: expect.stringContaining('run the doctor again'),
    });
    expect(line(r, 'bucket')?.detail).toMatch(tail);
    expect(r.ok).toBe(false);
  });

  it('a HeadBucket answered 403 (exists, not listable) still passes through the same proxy', async () => {
    const d = await customer();
    const r = await withS3Proxy(
      'no-such-bucket-here',
      (res) => res.writeHead(500).end(),
      () => doctor(d, { settings, principalArn: stack.platform.arn }),
    );
    expect(line(r, 'bucket')).toMatchObject({ status: 'pass', detail: expect.stringContaining('not listable') });
  });

  it('a role that cannot be assumed at all: external-ID enforcement is not verified, never a pass', async () => {
    const d = await customer({
      trust: () => ({
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: 'arn:aws:iam::999999999999:root' },
            Action: 'sts:AssumeRole',
            Condition: { StringEquals: { 'sts:ExternalId': 'someone-elses-id' } },
          },
        ],
      }),
    });
    const r = await run(d);
    expect(line(r, 'assume role')?.status).toBe('fail');
    expect(line(r, 'external ID enforced')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^could not be verified: the role cannot be assumed with its external ID/),
    });
    expect(JSON.stringify(r)).not.toContain(d.externalId);
    // Not a confused deputy either: exporting there is not refused for it (it fails at AssumeRole).
    expect(r.exportAllowed).toBe(true);
  });
});

describe('the doctor in production: the check function for one account', () => {
  it('`{"accountId": …}` runs the doctor as the function’s principal and returns every check; a broken setup fails', async () => {
    const good = await customer();
    const noBucket = await customer({ createBucket: false });
    const saved = { ...process.env };
    Object.assign(process.env, stack.env(), { DROPSHIP_S3_FORCE_PATH_STYLE: 'true', DROPSHIP_LOG_LEVEL: 'silent' });
    const { resetLambdaDeps } = await import('../src/run/lambda.js');
    try {
      const { handler } = await import('../handlers/check.js');
      const ok = (await handler({ accountId: good.accountId })) as {
        ok: boolean;
        report: DoctorReport;
      };
      expect(ok.ok).toBe(true);
      expect(ok.report.checks.map((c) => c.name)).toContain('assume role');
      expect(ok.report.checks.every((c) => c.status !== 'fail')).toBe(true);
      const bad = (await handler({ accountId: noBucket.accountId })) as { ok: boolean; report: DoctorReport };
      expect(bad.ok).toBe(false);
      expect(bad.report.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toContain('bucket');
      await expect(handler({ accountId: 'nobody' })).rejects.toThrow(
        /No destination is registered for account "nobody"/,
      );
    } finally {
      await resetLambdaDeps();
      process.env = saved;
    }
  });
});

describe('the doctor looks at a whole-schema destination’s tables too', () => {
  it('a materialized view never populated and a table without columns: the selection check fails naming each and the fix', async () => {
    // Prepare: a correct customer setup whose source schema (the whole of it) gains two relations no run can deliver.
    const d = await customer();
    const { diagnose } = await import('../src/schedule/checks.js');
    const look = () => diagnose(d, { settings, pool, sourceUrl: stack.databaseUrl });
    const before = await look();
    expect(before.selection.problems).toEqual([]);
    expect(before.ok).toBe(true);
    await pool.query(
      `create materialized view ${d.sourceSchema}.later as select 1 as x with no data; create table ${d.sourceSchema}.bare ();`,
    );
    // Act
    const after = await look();
    // Assess
    expect(after.ok).toBe(false);
    expect(after.report.ok).toBe(true);
    expect(after.selection.problems).toEqual([
      'table "bare" has no columns, and a Parquet file needs one: leave it out (--exclude-tables) or give it a column',
      'materialized view "later" has never been populated (created WITH NO DATA): REFRESH MATERIALIZED VIEW it, or leave it out (--exclude-tables)',
    ]);
  });
});

describe('the doctor never waits without bound behind a lock in the source', () => {
  it.each([
    ['held', 'held'],
    ['queued behind a reader', 'waited for (queued behind a longer transaction)'],
  ])(
    'an ACCESS EXCLUSIVE lock on a partition (%s): "source busy" naming it, in the doctor and POST …/check',
    async (how, said) => {
      // Prepare: a correct customer whose schema has a partitioned table, one partition locked by a customer session.
      const d = await customer();
      const schema = d.sourceSchema;
      await pool.query(
        `create table ${schema}.parted (id int, at date) partition by range (at);
       create table ${schema}.parted_2026 partition of ${schema}.parted for values from ('2026-01-01') to ('2027-01-01');`,
      );
      const { diagnose } = await import('../src/schedule/checks.js');
      const { checkDestination } = await import('../src/operations/check.js');
      const { DOCTOR_LOCK_TIMEOUT_SECONDS } = await import('../src/pipeline/source/select.js');
      const reader = await pool.connect();
      const locker = await pool.connect();
      let queued: Promise<unknown> | undefined;
      try {
        if (how === 'held') {
          await locker.query('begin');
          await locker.query(`lock table ${schema}.parted_2026 in access exclusive mode`);
        } else {
          // A long reader holds ACCESS SHARE; an ALTER-like request queues behind it, and every later reader behind that.
          await reader.query('begin');
          await reader.query(`select count(*) from ${schema}.parted_2026`);
          await locker.query('begin');
          queued = locker.query(`lock table ${schema}.parted_2026 in access exclusive mode`);
          await expect
            .poll(async () => (await pool.query(`select count(*)::int as n from pg_locks where not granted`)).rows[0].n)
            .toBe(1);
        }
        // Act: the doctor (dropship doctor, the check function) and the API's POST /destinations/{id}/check, together.
        const t0 = Date.now();
        const result = await Promise.race([
          Promise.all([
            diagnose(d, { settings, pool, sourceUrl: stack.databaseUrl }),
            checkDestination({ settings, pool, sourceUrl: stack.databaseUrl }, d).then((c) => c.doctor),
          ]),
          new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 25_000)),
        ]);
        const seconds = (Date.now() - t0) / 1000;
        // Assess
        expect(result).not.toBe('still waiting');
        if (result === 'still waiting') return;
        expect(seconds).toBeGreaterThanOrEqual(DOCTOR_LOCK_TIMEOUT_SECONDS - 0.5);
        for (const r of result) {
          expect(r.ok).toBe(false);
          expect(r.report.ok).toBe(true);
          expect(r.selection.summary).toBe(`not checked: the source was busy (schema "${schema}")`);
          expect(r.selection.problems).toEqual([
            expect.stringMatching(
              new RegExp(
                `^source busy: a lock on ${schema}\\.parted_2026 ${said.replace(/[()]/g, '\\$&')} longer than ${DOCTOR_LOCK_TIMEOUT_SECONDS} s `,
              ),
            ),
          ]);
        }
        // Nothing of the doctor is left waiting in the source.
        const left = await pool.query(
          `select count(*)::int as n from pg_stat_activity where application_name = 'dropship doctor'`,
        );
        expect(left.rows[0].n).toBe(0);
      } finally {
        await reader.query('rollback').catch(() => {});
        await queued?.catch(() => {});
        await locker.query('rollback').catch(() => {});
        reader.release();
        locker.release();
      }
      // Released: the same check reads the schema again.
      const after = await diagnose(d, { settings, pool, sourceUrl: stack.databaseUrl });
      expect(after.selection.problems).toEqual([]);
      expect(after.ok).toBe(true);
    },
    60_000,
  );
});
