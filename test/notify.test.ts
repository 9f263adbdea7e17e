import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Settings } from '../src/config/settings.js';
import type { TaskMessage } from '../src/contracts/task.js';
import { permissionPolicy, trustPolicy } from '../src/destinations/s3/policies.js';
import { type Customer, customerS3, setupCustomer } from '../src/devstack/demo.js';
import type { PolicyDocument } from '../src/devstack/iam.js';
import { REPO_ROOT } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { checkDestinations } from '../src/notify/drift.js';
import { deliverPending } from '../src/notify/outcome.js';
import { type StatusDocument, validateStatus } from '../src/notify/status.js';
import { StatusStore } from '../src/notify/store.js';
import { encryptSecret, sign } from '../src/notify/webhook.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { startFanOutRun } from '../src/run/drivers/fan-out.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { runTask } from '../src/run/drivers/task.js';
import { dispatchRunOutcome } from '../src/run/lifecycle/ended.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { tidy } from '../src/schedule/tidy.js';
import { dropship } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * Issue 13 acceptance on the real local stack (Postgres, S3 behind the SigV4/IAM guard, STS) with a
 * real HTTP receiver on 127.0.0.1: signed webhooks verified by the docs' own verifier (docs/customer/webhooks.md), retries,
 * status.json after success and failure, automatic pause and resume, drift checks before the slot,
 * the receipt chain, and runs list --failed.
 */
interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}
let h: Harness;
let settings: Settings;
let server: Server;
let hookUrl = '';
const received: Received[] = [];
let failNext = 0;
const key = randomBytes(32).toString('base64');
let hooked: Customer;
let secret = '';
const receipts: Buffer[] = [];
const dir = mkdtempSync(join(tmpdir(), 'dropship-notify-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
let verifyDropship: (body: Buffer | string, header: string, secret: string, tol?: number, now?: number) => boolean;
const KMS = 'arn:aws:kms:us-east-1:240000000003:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function cli(args: string[], stdin?: Buffer, extraEnv: Record<string, string> = {}) {
  return dropship(h.stack, args, {
    env: {
      DROPSHIP_WEBHOOK_KEY: key,
      DROPSHIP_WEBHOOK_BACKOFF_MS: '20',
      // The receiver is a local http server: development mode (production refuses loopback).
      DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
      DROPSHIP_LOG_LEVEL: 'silent',
      ...extraEnv,
    },
    ...(stdin ? { stdin } : {}),
  });
}

const deps = () => ({ sourceUrl: h.stack.databaseUrl, settings, reporter: silent, ledger: h.ledger });
const header = (r: Received) => String(r.headers['dropship-signature']);
const events = () => received.map((r) => JSON.parse(r.body.toString('utf8')) as Record<string, unknown>);

async function customerObject(c: Customer, name: string): Promise<Buffer> {
  const s3 = customerS3(h.stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: `exports/${name}` }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } finally {
    s3.destroy();
  }
}
const statusOf = async (c: Customer) =>
  JSON.parse((await customerObject(c, 'status.json')).toString()) as StatusDocument;

beforeAll(async () => {
  h = await startHarness();
  settings = h.settings({
    DROPSHIP_WEBHOOK_KEY: key,
    DROPSHIP_WEBHOOK_BACKOFF_MS: '20',
    DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
    DROPSHIP_PAUSE_AFTER_FAILURES: '3',
    DROPSHIP_LOG_LEVEL: 'silent',
  });
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end('try later');
      } else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/dropship`;
  await h.pool.query(`create schema hooked; create table hooked.orders (id bigint primary key, total numeric(10,2));
    insert into hooked.orders select i, i * 1.5 from generate_series(1, 50) i;`);
  hooked = await setupCustomer(h.stack, h.registry, {
    accountId: 'hooked',
    awsAccountId: '240000000001',
    bucket: 'hooked-data',
    prefix: 'exports',
    schema: 'hooked',
  });
  // The customer docs' verifier, exactly as printed there.
  const doc = readFileSync(join(REPO_ROOT, 'docs/customer/webhooks.md'), 'utf8');
  const code = /<!-- verifier:start -->\s*```js\n([\s\S]*?)```\s*<!-- verifier:end -->/.exec(doc)?.[1];
  expect(code, 'docs/customer/webhooks.md verifier block').toBeTruthy();
  expect(code!.trim().split('\n').length).toBeLessThanOrEqual(10);
  writeFileSync(join(dir, 'verifier.mjs'), code!);
  ({ verifyDropship } = await import(join(dir, 'verifier.mjs')));
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('webhooks, status.json, pause, receipt chain', () => {
  it('sets a webhook from the CLI: http only to loopback, the secret printed once, stored encrypted', async () => {
    const production = { DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'false' };
    const bad = await cli(
      ['destinations', 'update', 'hooked', '--webhook-url', 'http://hooks.example.com/x'],
      undefined,
      production,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('must use https');
    // Outside development mode a loopback receiver is refused (the Lambda Runtime API listens there).
    const loopback = await cli(['destinations', 'update', 'hooked', '--webhook-url', hookUrl], undefined, production);
    expect(loopback.code).toBe(2);
    expect(loopback.stderr).toContain('127.0.0.1 is a loopback address');
    const r = await cli(['destinations', 'update', 'hooked', '--webhook-url', hookUrl]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    secret = /^Webhook signing secret: (whsec_[A-Za-z0-9_-]{43})$/m.exec(r.stdout)![1]!;
    const stored = (await h.pool.query('select webhook_secret from dropship.destination_status')).rows[0]
      .webhook_secret;
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain(secret.slice(6));
  });

  it('a successful export delivers one signed delivery.succeeded; status.json says so; receipt sequence 1', async () => {
    const before = Date.now();
    const outcome = await exportAccount(hooked.destination, deps());
    expect(outcome.ok).toBe(true);
    expect(received).toHaveLength(1);
    const [ev] = events();
    expect(ev).toMatchObject({
      type: 'delivery.succeeded',
      account: 'hooked',
      run_id: outcome.runId,
      receipt_key: 'exports/receipt.json',
    });
    expect(received[0]!.headers['content-type']).toBe('application/json');
    expect(header(received[0]!)).toMatch(/^t=\d{10},v1=[0-9a-f]{64}$/);
    expect(verifyDropship(received[0]!.body, header(received[0]!), secret)).toBe(true);

    const status = await statusOf(hooked);
    expect(validateStatus(status)).toEqual([]);
    expect(status).toMatchObject({
      account: 'hooked',
      last_run: { run_id: outcome.runId, status: 'succeeded' },
      last_success: { run_id: outcome.runId, receipt_key: 'exports/receipt.json' },
      last_failure: null,
      consecutive_failures: 0,
      paused: false,
    });
    expect(status.next_slot).toMatch(/T(04|15):00:00Z$/);
    // The next slot after the moment status.json was written (a slot may pass between then and now).
    const written = Date.parse(status.updated_at);
    expect(written).toBeGreaterThanOrEqual(before);
    expect(Date.parse(status.next_slot!)).toBeGreaterThan(written);
    expect(Date.parse(status.next_slot!) - written).toBeLessThanOrEqual(24 * 3600_000);

    const receipt = await customerObject(hooked, 'receipt.json');
    receipts.push(receipt);
    expect(JSON.parse(receipt.toString())).toMatchObject({ sequence: 1, previous_receipt_sha256: null });
    expect(validateReceipt(JSON.parse(receipt.toString()))).toEqual([]);
  });

  it('a 500 is retried: three signed attempts of the same event, the last one accepted', async () => {
    received.length = 0;
    failNext = 2;
    const outcome = await exportAccount(hooked.destination, deps());
    expect(outcome.ok).toBe(true);
    expect(received).toHaveLength(3);
    const ids = events().map((e) => e.id);
    expect(new Set(ids).size).toBe(1);
    for (const r of received) expect(verifyDropship(r.body, header(r), secret)).toBe(true);
    const [row] = await new StatusStore(h.pool).events('hooked', 1);
    expect(row).toMatchObject({ id: ids[0], attempts: 3, last_error: null });
    expect(row!.delivered_at).toBeInstanceOf(Date);

    const receipt = await customerObject(hooked, 'receipt.json');
    receipts.push(receipt);
    expect(JSON.parse(receipt.toString())).toMatchObject({ sequence: 2 });
  });

  it('a replayed or altered body fails verification (documented verifier and dropship webhook verify)', async () => {
    const r = received.at(-1)!;
    const t = Number(/t=(\d+)/.exec(header(r))![1]);
    expect(verifyDropship(r.body, header(r), secret, 300, t + 10)).toBe(true);
    // Replayed later than the tolerance.
    expect(verifyDropship(r.body, header(r), secret, 300, t + 301)).toBe(false);
    // Altered body, or another secret.
    const altered = Buffer.from(r.body.toString().replace('"hooked"', '"hooker"'));
    expect(verifyDropship(altered, header(r), secret)).toBe(false);
    expect(verifyDropship(r.body, header(r), `whsec_${'A'.repeat(43)}`)).toBe(false);

    const ok = await cli(['webhook', 'verify', '--secret', secret, '--header', header(r)], r.body);
    expect(ok.stdout).toContain('valid: signed at');
    expect(ok.code).toBe(0);
    const bad = await cli(['webhook', 'verify', '--secret', secret, '--header', header(r)], altered);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid: the signature does not match');
    // A capture replayed an hour later: correctly signed back then, refused now.
    const replayed = await cli(
      ['webhook', 'verify', '--secret', secret, '--header', sign(secret, r.body.toString(), t - 3600)],
      r.body,
    );
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toContain('outside the 300 s tolerance (replayed?)');
  });

  it('a failed export (from the CLI, which delivers before it exits) sends one delivery.failed; status.json says why, in the customer’s words', async () => {
    received.length = 0;
    await h.pool.query(
      `create table hooked.bad_numbers (id int, x numeric(10,2)); insert into hooked.bad_numbers values (1, 'NaN');`,
    );
    const before = await statusOf(hooked);
    const r = await cli(['export', '--account', 'hooked']);
    expect(r.code).toBe(1);
    // The process has exited: the event is already here.
    expect(received).toHaveLength(1);
    const [ev] = events();
    expect(verifyDropship(received[0]!.body, header(received[0]!), secret)).toBe(true);
    expect(ev).toMatchObject({
      type: 'delivery.failed',
      account: 'hooked',
      // A NaN in numeric(10,2) fails every run the same way: the customer is told operators must act,
      // not that the next run will fix it (issue 22, finding 12).
      reason: 'a table holds a column or value that dropship cannot export exactly; dropship’s operators are alerted',
      fix: expect.stringContaining('nothing to do on your side'),
    });
    expect(ev!.fix).toContain('dropship’s operators must act');
    expect(ev!.fix).toContain('you will be told');
    expect(ev!.fix).not.toContain('retries automatically');
    const status = await statusOf(hooked);
    expect(validateStatus(status)).toEqual([]);
    expect(status).toMatchObject({
      last_run: { run_id: ev!.run_id, status: 'failed' },
      last_success: before.last_success,
      last_failure: { run_id: ev!.run_id, reason: ev!.reason, fix: ev!.fix },
      consecutive_failures: 1,
      paused: false,
    });
    // No internals: not the table, the value, the error text or the external ID.
    const text = JSON.stringify(status) + received[0]!.body.toString();
    for (const secretish of ['bad_numbers', 'NaN', 'numeric', hooked.destination.externalId, 'Error'])
      expect(text).not.toContain(secretish);
    expect(JSON.parse((await customerObject(hooked, 'receipt.json')).toString()).run_id).toBe(
      before.last_success!.run_id,
    );
  });

  it('pauses after N consecutive failures (notified, status.json says so), and destinations enable resumes', async () => {
    received.length = 0;
    for (let i = 0; i < 2; i++) expect((await exportAccount(hooked.destination, deps())).ok).toBe(false);
    expect(events().map((e) => e.type)).toEqual(['delivery.failed', 'delivery.failed', 'destination.paused']);
    for (const r of received) expect(verifyDropship(r.body, header(r), secret)).toBe(true);
    expect(events()[2]!.reason).toContain('paused after 3 consecutive failed runs');
    const paused = await h.registry.get('hooked');
    expect(paused.enabled).toBe(false);
    expect((await h.registry.due('04:00')).map((d) => d.accountId)).not.toContain('hooked');
    const status = await statusOf(hooked);
    expect(status).toMatchObject({ paused: true, next_slot: null, consecutive_failures: 3 });
    expect(status.paused_at).not.toBeNull();

    const shown = await cli(['destinations', 'show', 'hooked']);
    expect(shown.stdout).toMatch(/failures\s+3 in a row\s+\(paused since/);
    const resumed = await cli(['destinations', 'enable', 'hooked']);
    expect(resumed.code).toBe(0);
    // status.json no longer says paused, right away (not only after the next run).
    expect(await statusOf(hooked)).toMatchObject({ paused: false, paused_at: null, consecutive_failures: 0 });
    expect((await new StatusStore(h.pool).get('hooked')).consecutiveFailures).toBe(0);
    expect((await h.registry.due('04:00')).map((d) => d.accountId)).toContain('hooked');

    await h.pool.query('drop table hooked.bad_numbers');
    received.length = 0;
    const ok = await exportAccount(await h.registry.get('hooked'), deps());
    expect(ok.ok).toBe(true);
    expect(events().map((e) => e.type)).toEqual(['delivery.succeeded']);
    expect(await statusOf(hooked)).toMatchObject({ paused: false, paused_at: null, consecutive_failures: 0 });
    receipts.push(await customerObject(hooked, 'receipt.json'));
  });

  it('a chain of three receipts verifies; a gap and a replaced receipt are detected', async () => {
    expect(receipts.map((r) => JSON.parse(r.toString()).sequence)).toEqual([1, 2, 3]);
    const files = receipts.map((r, i) => {
      const f = join(dir, `receipt-${i + 1}.json`);
      writeFileSync(f, r);
      return f;
    });
    const ok = await cli(['receipt', 'verify-chain', ...files]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(2);
    const gap = await cli(['receipt', 'verify-chain', files[0]!, files[2]!]);
    expect(gap.code).toBe(1);
    expect(gap.stderr).toContain('gap: 1 receipt missing between sequence 1 and 3');
    const replaced = join(dir, 'receipt-2-replaced.json');
    writeFileSync(replaced, receipts[1]!.toString().replace('"row_count": 50', '"row_count": 49'));
    const bad = await cli(['receipt', 'verify-chain', files[0]!, replaced, files[2]!]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('does not chain to');
    expect(bad.stderr).toContain('replaced or altered');
  });

  it('runs list --failed --since 24h lists the failed runs only', async () => {
    const r = await cli(['runs', 'list', '--failed', '--since', '24h']);
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.includes('hooked'));
    expect(rows).toHaveLength(3);
    for (const l of rows) expect(l).toContain('failed');
    const none = await cli(['runs', 'list', '--failed', '--since', '2999-01-01T00:00:00Z']);
    expect(none.stdout).toContain('No runs yet.');
  });

  it('rotating the secret: the next event verifies with the new secret only', async () => {
    const r = await cli(['destinations', 'rotate-webhook-secret', 'hooked']);
    expect(r.code).toBe(0);
    const rotated = /^Webhook signing secret: (whsec_\S+)$/m.exec(r.stdout)![1]!;
    expect(rotated).not.toBe(secret);
    received.length = 0;
    expect((await exportAccount(await h.registry.get('hooked'), deps())).ok).toBe(true);
    expect(received).toHaveLength(1);
    expect(verifyDropship(received[0]!.body, header(received[0]!), rotated)).toBe(true);
    expect(verifyDropship(received[0]!.body, header(received[0]!), secret)).toBe(false);
    secret = rotated;
    receipts.push(await customerObject(hooked, 'receipt.json'));
  });

  it('destinations add --webhook-url prints the secret; without DROPSHIP_WEBHOOK_KEY nothing is registered', async () => {
    await h.pool.query('create schema addhook; create table addhook.t (id int);');
    const args = [
      'destinations',
      'add',
      '--account',
      'addhook',
      '--plan',
      'free',
      '--bucket',
      'addhook-data',
      '--region',
      'us-east-1',
      '--role-arn',
      'arn:aws:iam::240000000009:role/dropship',
      '--source-schema',
      'addhook',
      '--webhook-url',
      'https://hooks.example.com/dropship',
    ];
    const noKey = await cli(args, undefined, { DROPSHIP_WEBHOOK_KEY: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('DROPSHIP_WEBHOOK_KEY is not set');
    await expect(h.registry.get('addhook')).rejects.toThrow(/No destination/);
    const ok = await cli(args);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Registered addhook.');
    expect(ok.stdout).toMatch(/^Webhook signing secret: whsec_[A-Za-z0-9_-]{43}$/m);
    expect((await new StatusStore(h.pool).get('addhook')).webhookUrl).toBe('https://hooks.example.com/dropship');
    await h.registry.remove('addhook');
  });

  it('the Lambda fan-out path records its outcome too: webhook, status.json and one EMF metrics line', async () => {
    received.length = 0;
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'dropship-test-worker';
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).includes('"_aws"')) lines.push(String(chunk));
      else return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      return true;
    }) as typeof process.stdout.write;
    try {
      const dest = await h.registry.get('hooked');
      const messages: TaskMessage[] = [];
      const { run } = await startFanOutRun(dest, {
        ...deps(),
        trigger: 'manual',
        queue: { send: async (batch) => void messages.push(...batch) },
      });
      for (const m of messages) await runTask(m, { ...deps(), registry: h.registry });
      expect((await h.ledger.getRun(run.runId))?.status).toBe('succeeded');
      expect(events()).toMatchObject([{ type: 'delivery.succeeded', run_id: run.runId }]);
      expect((await statusOf(hooked)).last_success?.run_id).toBe(run.runId);
      expect(lines).toHaveLength(1);
      const emf = JSON.parse(lines[0]!);
      expect(emf._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'Dropship', Dimensions: [['AccountId'], []] });
      expect(emf).toMatchObject({ AccountId: 'hooked', Rows: 50, FailedRuns: 0, SucceededRuns: 1 });
      expect(emf.Bytes).toBeGreaterThan(0);
      expect(JSON.parse((await customerObject(hooked, 'receipt.json')).toString()).sequence).toBe(5);
    } finally {
      process.stdout.write = write;
      delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    }
  });
});

describe('drift checks before the slot', () => {
  async function broken(
    n: number,
    opts: {
      trust?: (d: Destination) => PolicyDocument;
      policies?: (d: Destination) => PolicyDocument[];
      kms?: boolean;
    },
  ): Promise<Destination> {
    const id = `drift${n}`;
    const aws = `24000000001${n}`;
    await h.pool.query(
      `create schema ${id}; create table ${id}.t (id int primary key); insert into ${id}.t values (1);`,
    );
    const dest = await h.registry.add({
      accountId: id,
      plan: 'paid',
      bucket: `${id}-bucket`,
      prefix: 'exports',
      region: 'us-east-1',
      roleArn: `arn:aws:iam::${aws}:role/dropship`,
      sourceSchema: id,
      ...(opts.kms ? { kmsKeyArn: KMS } : {}),
    });
    await h.stack.applyWorld({
      accounts: {
        [aws]: {
          buckets: [{ name: dest.bucket, region: 'us-east-1' }],
          roles: [
            {
              name: 'dropship',
              trustPolicy: (opts.trust ?? ((d) => trustPolicy(d, h.stack.platform.arn) as PolicyDocument))(dest),
              policies: (opts.policies ?? ((d) => [permissionPolicy(d) as PolicyDocument]))(dest),
            },
          ],
        },
      },
    });
    await new StatusStore(h.pool).setWebhook(
      id,
      dest.generation,
      hookUrl,
      encryptSecret(secret, Buffer.from(key, 'base64')),
    );
    return dest;
  }

  it('catches a trust policy without the external-ID condition and a missing KMS permission, and notifies', async () => {
    const noCondition = await broken(1, {
      trust: () => ({
        Statement: [{ Effect: 'Allow', Principal: { AWS: h.stack.platform.arn }, Action: 'sts:AssumeRole' }],
      }),
    });
    const noDecrypt = await broken(2, {
      kms: true,
      policies: (d) => [
        {
          Statement: [
            {
              Effect: 'Allow',
              Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
              Resource: `arn:aws:s3:::${d.bucket}/exports/*`,
            },
            { Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: KMS },
          ],
        },
      ],
    });
    received.length = 0;
    // The scheduled check an hour before the 15:00 slot (handlers/check.ts) checks every destination due then.
    Object.assign(process.env, {
      DROPSHIP_WEBHOOK_KEY: key,
      DROPSHIP_WEBHOOK_BACKOFF_MS: '20',
      DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
      DROPSHIP_LOG_LEVEL: 'silent',
    });
    const { handler } = await import('../handlers/check.js');
    const out = (await handler({ time: '2026-11-23T14:00:00Z' })) as {
      slots: string[];
      checked: number;
      failed: { accountId: string; failures: { code: string; reason: string; fix: string }[] }[];
    };
    expect(out.slots).toEqual(['15:00']);
    expect(out.checked).toBe(3); // hooked, drift1, drift2 (paid)
    expect(out.failed.map((f) => f.accountId).sort()).toEqual(['drift1', 'drift2']);
    const f1 = out.failed.find((f) => f.accountId === 'drift1')!.failures;
    expect(f1.map((f) => f.code)).toEqual(['external_id_not_enforced']);
    const f2 = out.failed.find((f) => f.accountId === 'drift2')!.failures;
    expect(f2).toEqual([
      expect.objectContaining({ code: 'kms_denied', reason: expect.stringContaining('does not allow kms:Decrypt') }),
    ]);
    // The customers were told, with the fix, by signed events.
    const evs = events();
    expect(evs.map((e) => [e.type, e.account]).sort()).toEqual([
      ['destination.check_failed', 'drift1'],
      ['destination.check_failed', 'drift2'],
    ]);
    for (const r of received) expect(verifyDropship(r.body, header(r), secret)).toBe(true);
    expect(evs.find((e) => e.account === 'drift1')).toMatchObject({
      run_id: null,
      fix: expect.stringContaining('sts:ExternalId'),
    });
    expect(evs.find((e) => e.account === 'drift2')!.fix).toContain(`kms:Decrypt on ${KMS}`);
    // The same from the command line, for one account.
    const checked = await cli(['destinations', 'check', '--account', 'drift2']);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain('✗ drift2');
    expect(checked.stdout).toMatch(/✗ multipart upload: .*AccessDenied/);
    expect(checked.stdout).toContain('customer told: the KMS key');
    // Non-invasive: nothing left in the buckets, no unfinished upload.
    for (const d of [noCondition, noDecrypt]) {
      expect(await h.stack.s3.keys(d.bucket)).toEqual([]);
      expect(await h.stack.s3.unfinishedUploads(d.bucket)).toEqual([]);
    }
    void noCondition;
  });

  it('probes the external ID at most daily: a second check and a run do not probe again', async () => {
    const probes = () => h.stack.sts.calls.filter((c) => !c.hadExternalId && c.roleArn.includes('240000000001')).length;
    const before = probes();
    const [r] = await checkDestinations({ pool: h.pool, settings }, [await h.registry.get('hooked')]);
    expect(r).toMatchObject({ ok: true, probed: false });
    expect((await exportAccount(await h.registry.get('hooked'), deps())).ok).toBe(true);
    expect(probes()).toBe(before);
    // The CloudTrail-visible probe is named for dropship and the account.
    const named = h.stack.sts.calls.filter(
      (c) => !c.hadExternalId && c.sessionName.startsWith('dropship-drift1-extid-probe-'),
    );
    expect(named.length).toBe(1);
    // Forced (or after a day) it runs again.
    const [forced] = await checkDestinations({ pool: h.pool, settings }, [await h.registry.get('hooked')], {
      forceProbe: true,
    });
    expect(forced!.probed).toBe(true);
    expect(probes()).toBe(before + 1);
  });
});

describe('a webhook endpoint that never answers (red team, API: one held each check past the API’s 29 s, and every account after it)', () => {
  it('a check queues its events and sends none itself; the outbox sends accounts side by side, within its budget', async () => {
    // Prepare: an endpoint that accepts connections and never answers; two destinations whose checks fail (no role),
    // one with that endpoint, one with the healthy receiver; a delivery to the dead one costs 2 attempts × 1 s.
    const dead = createNetServer(() => {});
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(dead.address() as { port: number }).port}/hook`;
    const slow = { ...settings, DROPSHIP_WEBHOOK_TIMEOUT_MS: 1000, DROPSHIP_WEBHOOK_ATTEMPTS: 2 };
    const store = new StatusStore(h.pool);
    const dests: Destination[] = [];
    for (const [i, url] of [deadUrl, hookUrl].entries()) {
      const id = `hang${i}`;
      await h.pool.query(`create schema ${id}; create table ${id}.t (id int primary key)`);
      const d = await h.registry.add({
        accountId: id,
        plan: 'paid',
        bucket: `${id}-data`,
        region: 'us-east-1',
        roleArn: `arn:aws:iam::24000000007${i}:role/nobody-made-it`,
        sourceSchema: id,
      });
      await store.setWebhook(id, d.generation, url, encryptSecret(secret, Buffer.from(key, 'base64')));
      dests.push(d);
    }
    received.length = 0;
    try {
      // Act 1: the checks, the dead endpoint's account first.
      const checked = [
        ...(await checkDestinations({ pool: h.pool, settings: slow }, [dests[0]!])),
        ...(await checkDestinations({ pool: h.pool, settings: slow }, [dests[1]!])),
      ];
      // Assess 1: both failed and queued an event; nothing was sent by the checks.
      expect(checked.map((r) => [r.ok, r.events?.length])).toEqual([
        [false, 1],
        [false, 1],
      ]);
      expect(received).toEqual([]);
      // Act 2: a call whose budget is spent starts nothing; the rest is left for the next.
      const none = await deliverPending(
        { pool: h.pool, settings: slow },
        { ids: checked.flatMap((r) => r.events!) },
        undefined,
        {
          budgetMs: 0,
        },
      );
      expect(none).toEqual({ delivered: 0, failed: 0, left: 2 });
      // Act 3: the outbox; the healthy account's event arrives while the dead one's attempts are still running.
      const t0 = Date.now();
      let arrived = Number.NaN;
      const sending = deliverPending({ pool: h.pool, settings: slow }, { ids: checked.flatMap((r) => r.events!) });
      while (received.length === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
      arrived = Date.now() - t0;
      const sent = await sending;
      // Assess 3: delivered the one, the other not yet (it stays pending); the healthy one did not wait for the dead.
      expect(sent).toEqual({ delivered: 1, failed: 1 });
      expect(events().map((e) => [e.type, e.account])).toEqual([['destination.check_failed', 'hang1']]);
      expect(arrived).toBeLessThan(1000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
      const pending = await h.pool.query(
        `select 1 from dropship.webhook_events where account_id = 'hang0' and delivered_at is null and given_up_at is null`,
      );
      expect(pending.rowCount).toBe(1);
    } finally {
      dead.close();
      for (const d of dests) await h.registry.remove(d.accountId);
    }
  });
});

describe('a drift check across a removal and a new registration of its account (review)', () => {
  it("tells the new registration's webhook nothing about the old one's role", async () => {
    // Prepare: an account whose role cannot be assumed (nobody created it): a check fails and would tell the customer.
    await h.pool.query('create schema driftgen; create table driftgen.t (id int primary key)');
    const input = {
      accountId: 'driftgen',
      plan: 'paid' as const,
      bucket: 'driftgen-data',
      region: 'us-east-1',
      roleArn: 'arn:aws:iam::240000000009:role/dropship-export-driftgen',
      sourceSchema: 'driftgen',
    };
    const old = await h.registry.add(input);
    // The check read the old registration; meanwhile the account was removed and registered again, with a webhook.
    await h.registry.remove('driftgen');
    const now = await h.registry.add(input);
    await new StatusStore(h.pool).setWebhook(
      'driftgen',
      now.generation,
      hookUrl,
      encryptSecret(secret, Buffer.from(key, 'base64')),
    );
    received.length = 0;
    // Act
    const [r] = await checkDestinations({ pool: h.pool, settings }, [old]);
    // Assess: the check failed, and no event was written or sent for it.
    expect(r!.ok).toBe(false);
    expect(received).toEqual([]);
    const rows = await h.pool.query(`select 1 from dropship.webhook_events where account_id = 'driftgen'`);
    expect(rows.rowCount).toBe(0);
    // Nor is the old registration's check the new one's "last check".
    expect((await new StatusStore(h.pool).get('driftgen')).lastCheckAt).toBeNull();
    // The same check of the current registration queues an event for it, sent with the outbox.
    const [current] = await checkDestinations({ pool: h.pool, settings }, [now]);
    expect(current!.ok).toBe(false);
    expect(current!.events).toHaveLength(1);
    await deliverPending({ pool: h.pool, settings }, { ids: current!.events! });
    expect(events().map((e) => e.type)).toEqual(['destination.check_failed']);
  });
});

describe('not a failure', () => {
  it('a run refused because another is in progress is not counted, told or written', async () => {
    const busy = `20261123T000001Z-${randomBytes(3).toString('hex')}`;
    await h.ledger.openRun({
      runId: busy,
      accountId: 'hooked',
      trigger: 'schedule',
      layout: 'dreamdata',
      folder: '2026-11-23T00:00',
      startedMicros: BigInt(Date.now()) * 1000n,
      tables: ['orders'],
    });
    try {
      received.length = 0;
      const before = await statusOf(hooked);
      const outcome = await exportAccount(await h.registry.get('hooked'), deps());
      expect(outcome.ok).toBe(false);
      expect(String((outcome as { error: Error }).error.message)).toContain('already has a run in progress');
      expect(received).toEqual([]);
      expect(await statusOf(hooked)).toEqual(before);
      expect((await new StatusStore(h.pool).get('hooked')).consecutiveFailures).toBe(0);
    } finally {
      await h.pool.query('delete from dropship.runs where run_id = $1', [busy]);
    }
  });
});

describe('not a failure (yet)', () => {
  it('a run the ledger still has running or finishing has no outcome yet: dispatching it tells nothing', async () => {
    // Prepare: a run that is still open in the ledger (its receipt may yet be published by the
    // next finisher). A cancelled run is told (test/outcome.test.ts).
    const open = `20261123T000002Z-${randomBytes(3).toString('hex')}`;
    await h.ledger.openRun({
      runId: open,
      accountId: 'hooked',
      trigger: 'cli',
      layout: 'dreamdata',
      folder: '2026-11-23T00:00',
      startedMicros: BigInt(Date.now()) * 1000n,
      tables: ['orders'],
    });
    try {
      received.length = 0;
      const before = await statusOf(hooked);
      const streak = (await new StatusStore(h.pool).get('hooked')).consecutiveFailures;
      // Act
      const tell = () => dispatchRunOutcome({ ledger: h.ledger, settings }, open, new Error('receipt not written yet'));
      const running = await tell();
      await h.pool.query(`update dropship.runs set status = 'finishing' where run_id = $1`, [open]);
      const finishing = await tell();
      // Assess: nothing delivered, no event, status.json unchanged, no failure counted, no outcome recorded.
      expect([running.delivered, finishing.delivered]).toEqual([[], []]);
      expect(received).toEqual([]);
      expect(await statusOf(hooked)).toEqual(before);
      expect((await new StatusStore(h.pool).get('hooked')).consecutiveFailures).toBe(streak);
      expect((await h.pool.query('select 1 from dropship.run_outcomes where run_id = $1', [open])).rowCount).toBe(0);
      expect((await h.pool.query('select 1 from dropship.outcome_events where run_id = $1', [open])).rowCount).toBe(0);
    } finally {
      await h.pool.query('delete from dropship.runs where run_id = $1', [open]);
    }
  });
});

describe('kill it, then trust it', () => {
  it('a run whose process died after the ledger committed its end is notified by the periodic function, once', async () => {
    // Prepare: the ledger says the run failed (its outcome event written with it), but the process
    // died before telling anyone.
    const runId = `20261123T000000Z-${randomBytes(3).toString('hex')}`;
    await h.ledger.openRun({
      runId,
      accountId: 'hooked',
      trigger: 'cli',
      layout: 'dreamdata',
      folder: '2026-11-23T00:00',
      startedMicros: BigInt(Date.now()) * 1000n,
      tables: ['orders'],
    });
    await h.ledger.failRun({ runId, error: 'table orders: connection terminated' });
    received.length = 0;
    // Act: the periodic function (handlers/sweeper.ts), twice.
    const deps = {
      ledger: h.ledger,
      registry: h.registry,
      settings,
      log: createLogger({ level: 'silent' }),
      queue: { send: async () => {} },
      opens: { send: async () => {} },
      sourceUrl: h.stack.databaseUrl,
      gauges: () => {},
    };
    const first = await tidy(deps);
    const again = await tidy(deps);
    // Assess
    expect(first.outcomes.delivered).toEqual([runId]);
    expect(again.outcomes.delivered).toEqual([]);
    expect(events()).toMatchObject([{ type: 'delivery.failed', run_id: runId, account: 'hooked' }]);
    expect(verifyDropship(received[0]!.body, header(received[0]!), secret)).toBe(true);
    expect((await statusOf(hooked)).last_run).toMatchObject({ run_id: runId, status: 'failed' });
  });
});

describe('destinations update with fields and a webhook', () => {
  it('changes both in one write and prints both; --no-webhook with a field removes the webhook in the same change', async () => {
    // Prepare: an account of its own, with a webhook.
    await h.pool.query('create schema upd_hook; create table upd_hook.t (id int primary key)');
    await h.registry.add({
      accountId: 'upd-hook',
      plan: 'paid',
      bucket: 'upd-hook-data',
      prefix: 'exports',
      region: 'eu-west-1',
      roleArn: 'arn:aws:iam::240000000009:role/dropship-export',
      sourceSchema: 'upd_hook',
    });
    const before = await h.registry.get('upd-hook');
    // Act
    const set = await cli(['destinations', 'update', 'upd-hook', '--plan', 'free', '--webhook-url', hookUrl]);
    const off = await cli(['destinations', 'update', 'upd-hook', '--prefix', 'moved', '--no-webhook']);
    // Assess
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^Webhook signing secret: whsec_/m);
    expect(set.stdout).toContain('Updated upd-hook.');
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toContain('upd-hook: webhook removed');
    expect(off.stdout).toContain('Updated upd-hook.');
    const after = await h.registry.get('upd-hook');
    expect(after).toMatchObject({ plan: 'free', prefix: 'moved', externalId: before.externalId });
    const row = await h.pool.query(`select webhook_url from dropship.destination_status where account_id = 'upd-hook'`);
    expect(row.rows).toEqual([{ webhook_url: null }]);
    // A webhook that cannot be written (Postgres refuses it here): the fields given with it are not changed either.
    await h.pool.query(`create function public.refuse_hook() returns trigger language plpgsql as $$
        begin
          if new.webhook_url like '%refused%' then raise exception 'connection terminated (injected)'; end if;
          return new;
        end $$;
      create trigger refuse_hook before update on dropship.destination_status
        for each row execute function public.refuse_hook();`);
    try {
      const refused = await cli([
        'destinations',
        'update',
        'upd-hook',
        '--prefix',
        'elsewhere',
        '--webhook-url',
        'http://127.0.0.1:9/refused',
      ]);
      expect(refused.code).not.toBe(0);
      expect(refused.stdout).not.toContain('Updated');
      expect(await h.registry.get('upd-hook')).toEqual(after);
    } finally {
      await h.pool.query('drop trigger refuse_hook on dropship.destination_status; drop function public.refuse_hook()');
    }
  });
});
