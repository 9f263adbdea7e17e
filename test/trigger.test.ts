import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../src/accounts/registry.js';
import { loadSettings } from '../src/config/settings.js';
import { type Customer, createDemoSchema, setupCustomer } from '../src/devstack/demo.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { Ledger } from '../src/store/ledger/ledger.js';
import { readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The receipt-trigger example end to end on the local stack: dropship delivers; S3 notifies a
 * queue about receipt.json; the example Lambda, with the customer's own read credentials, loads
 * every table into a fresh Postgres database and into DuckDB with the receipt's row counts.
 */
let stack: LocalStack;
let pool: pg.Pool;
let customer: Customer;
let h: Harness;
const dir = mkdtempSync(join(tmpdir(), 'dropship-trigger-'));

beforeAll(async () => {
  h = await startHarness();
  ({ stack, pool } = h);
  const client = await pool.connect();
  try {
    await createDemoSchema(client, 'loadco', 4000, 0.6);
  } finally {
    client.release();
  }
  customer = await setupCustomer(stack, new Registry(pool), {
    accountId: 'loadco',
    awsAccountId: '240000000001',
    bucket: 'loadco-data',
    prefix: 'dropship',
    schema: 'loadco',
  });
  // The customer's bucket notification: ObjectCreated with suffix receipt.json → their queue.
  const queue = stack.sqs.createQueue('dropship-receipts', 30);
  stack.s3.notifications.push({
    bucket: 'loadco-data',
    suffix: 'receipt.json',
    send: (body) => stack.sqs.deliver(queue.url, body),
  });
  await pool.query('create database analytics');
});

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('examples/receipt-trigger', () => {
  it('loads every table of a delivery into a fresh database when receipt.json lands', async () => {
    // Prepare: a delivery.
    const settings = loadSettings({ ...stack.env(), DROPSHIP_S3_FORCE_PATH_STYLE: 'true' });
    const outcome = await exportAccount(customer.destination, {
      sourceUrl: stack.databaseUrl,
      settings,
      reporter: new LogReporter(createLogger({ level: 'silent' })),
      ledger: new Ledger(pool),
    });
    expect(outcome.ok).toBe(true);
    const receipt = await readReceipt(stack, customer);
    // The S3 event arrived on the queue (and only for receipt.json).
    const sqs = new SQSClient({ region: 'us-east-1' });
    const queueUrl = [...stack.sqs.queues.values()].find((q) => q.name === 'dropship-receipts')!.url;
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    expect(got.Messages).toHaveLength(1);
    const message = got.Messages![0]!;
    expect(JSON.parse(message.Body!).Records[0].s3.object.key).toBe('dropship/receipt.json');

    // Act: the example Lambda, running with the customer's read-only credentials.
    const analytics = stack.databaseUrl.replace(/\/dropship$/, '/analytics');
    const duckFile = join(dir, 'analytics.duckdb');
    const { handler } = await import('../examples/receipt-trigger/handler.js');
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: customer.reader.accessKeyId,
      AWS_SECRET_ACCESS_KEY: customer.reader.secretAccessKey,
      AWS_REGION: 'us-east-1',
      RECEIPT_BUCKET: 'loadco-data',
      RECEIPT_PREFIX: 'dropship',
    });
    try {
      for (const target of [analytics, `duckdb:${duckFile}`]) {
        process.env.TARGET_DATABASE_URL = target;
        process.env.WAREHOUSE_SQL_DIALECT = 'athena';
        const res = await handler({ Records: [{ messageId: message.MessageId!, body: message.Body! }] });
        expect(res.batchItemFailures).toEqual([]);
        // Athena reads exactly the receipt's files through a symlink manifest, never the folder.
        expect(res.loaded[0]!.sql).toContain('SymlinkTextInputFormat');
        expect(res.loaded[0]!.sql).not.toContain(`LOCATION 's3://loadco-data/`);
        const events = res.loaded[0]!.manifests!.find((m) => m.table === 'events')!;
        expect(events.body.trim().split('\n')).toEqual(
          receipt.tables.events!.files.map((f) => `s3://loadco-data/${f.key}`),
        );
        expect(res.loaded[0]!.tables.map((t) => t.table).sort()).toEqual(Object.keys(receipt.tables).sort());
      }
      // Another key ending in receipt.json (another writer's, another prefix's) is never loaded (red team).
      const elsewhere = JSON.parse(message.Body!) as { Records: { s3: { object: { key: string } } }[] };
      for (const key of ['dropship-staging/receipt.json', 'dropship/2x/receipt.json', 'receipt.json']) {
        elsewhere.Records[0]!.s3.object.key = key;
        const res = await handler({ Records: [{ messageId: 'other', body: JSON.stringify(elsewhere) }] });
        expect(res.batchItemFailures, key).toEqual([]);
        expect(res.loaded, key).toEqual([]);
      }
    } finally {
      process.env = saved;
    }
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    sqs.destroy();

    // Assess: every table, with the receipt's row count, in both databases; values survive the round trip.
    const target = new pg.Client({ connectionString: analytics });
    await target.connect();
    const duck = await DuckDBInstance.create(duckFile);
    const conn = await duck.connect();
    try {
      for (const [name, t] of Object.entries(receipt.tables)) {
        expect(Number((await target.query(`select count(*) as n from "${name}"`)).rows[0].n), name).toBe(t.row_count);
        expect(
          Number((await conn.runAndReadAll(`select count(*)::bigint as n from "${name}"`)).getRowObjectsJS()[0]!.n),
          name,
        ).toBe(t.row_count);
      }
      const src = await pool.query(
        `select sum(revenue)::text as s, count(tags) as t, max(occurred_at)::text as m, count(*) filter (where tags = '{}') as empty from loadco.events`,
      );
      const dst = await target.query(
        `select sum(revenue)::text as s, count(tags) as t, max(occurred_at)::text as m, count(*) filter (where tags = '{}') as empty from events`,
      );
      expect(dst.rows[0]).toEqual(src.rows[0]);
      const types = await target.query(
        `select column_name, data_type from information_schema.columns where table_name = 'events' order by ordinal_position`,
      );
      expect(types.rows.find((r) => r.column_name === 'revenue')?.data_type).toBe('numeric');
      expect(types.rows.find((r) => r.column_name === 'tags')?.data_type).toBe('ARRAY');
    } finally {
      conn.closeSync();
      duck.closeSync();
      await target.end();
    }
  });
});
