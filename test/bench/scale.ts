/**
 * The scale bench (issue 25, item 1): one slot of N destinations through the production fan-out path
 * on the local stack, then checks of what landed in S3, and one JSON line.
 *
 *   npm run bench -- --scale [--destinations 10000] [--workers 8] [--large-share 0.01] [--large-rows 1000000]
 *                             [--tables 3] [--rows 3] [--per-bucket 2] [--validate-sample 1000] [--timeout 7200]
 *                             [--repeat-event]
 *
 * Each destination is what a customer would have: its own source schema (`--tables` small tables of
 * `--rows` rows; a `--large-share` of them one more table of `--large-rows` rows), registered through
 * the registry's `add` (the code behind `dropship destinations add`, with its external ID), its own
 * role in its own AWS account (trust policy with that external ID, permission policy for its
 * bucket/prefix, exactly as dropship prints them), and its bucket: `--per-bucket K` destinations of
 * one customer account share a bucket, each under its own prefix (K = 1: a bucket of its own, no
 * prefix). Setup is timed apart from the slot.
 *
 * The slot: `openSlotTheProductionWay` (the schedule function, handlers/schedule.ts, invoked with an
 * EventBridge event, sends the due accounts to the open queue; the open-runs function,
 * handlers/open-runs.ts, played over that queue as its SQS event source would, opens each run and
 * queues its tasks), then W worker loops play Lambda's SQS event source for the worker function
 * (receive → processTaskBatch, the worker Lambda's code → delete what it did not hand back) until
 * every run of the slot has ended. Then S3 is listed with each customer's own credentials.
 *
 * `runScaleBench` is also what test/scale.test.ts calls with small N (exactly-once delivery).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import pg from 'pg';
import type { Destination } from '../../src/accounts/destination.js';
import { permissionPolicy, trustPolicy } from '../../src/destinations/s3/policies.js';
import type { World } from '../../src/devstack/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { validateReceipt } from '../../src/receipt/validate.js';
import { processTaskBatch } from '../../src/run/drivers/task-batch.js';
import { Wiring } from '../../src/run/wiring.js';
import { type Harness, startHarness } from '../kit/stack-harness.js';

export interface ScaleOptions {
  destinations: number;
  workers: number;
  /** Share of destinations with one large table (0 … 1). */
  largeShare: number;
  largeRows: number;
  /** Small tables per destination, and rows in each. */
  tables: number;
  rows: number;
  /** Destinations per customer bucket (each under its own prefix when > 1). */
  perBucket: number;
  /** Validate every receipt against the schema up to this many; a deterministic sample of this many above. */
  validateSample: number;
  /** Give up draining after this many seconds (the line then says so). */
  timeoutSeconds: number;
  /**
   * Deliver the schedule event a second time while the workers drain (EventBridge is at-least-once,
   * Lambda retries): it must open no second run.
   */
  repeatEvent: boolean;
  /** Progress lines (stderr in the bench; silent in the test). */
  log?: (line: string) => void;
}

export const DEFAULT_SCALE: ScaleOptions = {
  destinations: 10_000,
  workers: 8,
  largeShare: 0,
  largeRows: 1_000_000,
  tables: 3,
  rows: 3,
  perBucket: 2,
  validateSample: 1_000,
  timeoutSeconds: 7_200,
  repeatEvent: false,
};

/** One destination as the bench made it. */
export interface ScaleDestination {
  destination: Destination;
  large: boolean;
  /** The customer's own reader (lists and reads their bucket). */
  reader: { accessKeyId: string; secretAccessKey: string };
}

export interface ScaleWorld {
  destinations: ScaleDestination[];
  tables: number;
  setup: { sourceSeconds: number; registrySeconds: number; iamSeconds: number; totalSeconds: number };
}

const ID_WIDTH = 5;
export const accountIdOf = (i: number): string => `sc${String(i).padStart(ID_WIDTH, '0')}`;
/** One customer AWS account per bucket: 12 digits. */
const awsAccountOf = (bucketIndex: number): string => `4${String(bucketIndex).padStart(11, '0')}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const secondsSince = (t0: number): number => Number(((performance.now() - t0) / 1000).toFixed(3));

/** Which destinations get the large table: evenly spread, round(N × share) of them (≥ 1 when share > 0). */
export function largeIndexes(n: number, share: number): Set<number> {
  const count = share <= 0 ? 0 : Math.min(n, Math.max(1, Math.round(n * share)));
  const out = new Set<number>();
  for (let k = 0; k < count; k++) out.add(Math.floor((k * n) / count));
  return out;
}

/**
 * Creates the N destinations: source schemas in a few big statements, registry rows through
 * `Registry.add` (a few at a time), and the customers' AWS side (buckets, roles, readers) in one
 * world document applied to the stack.
 */
export async function setupScale(h: Harness, opts: ScaleOptions): Promise<ScaleWorld> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const large = largeIndexes(opts.destinations, opts.largeShare);
  // 1. Source schemas: ~200 schemas per statement.
  const ddl = (i: number): string => {
    const s = accountIdOf(i);
    const parts = [`create schema ${s};`];
    for (let t = 0; t < opts.tables; t++) {
      parts.push(
        `create table ${s}.t${t} (id int primary key, name text, at timestamptz);`,
        `insert into ${s}.t${t} select g, 'r' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour' from generate_series(1, ${opts.rows}) g;`,
      );
    }
    if (large.has(i))
      parts.push(
        `create table ${s}.big (id bigint primary key, kind text, amount double precision, at timestamptz);`,
        `insert into ${s}.big select g, 'k' || (g % 17), g * 0.5, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, ${opts.largeRows}) g;`,
        `analyze ${s}.big;`,
      );
    return parts.join('\n');
  };
  const BATCH = 200;
  for (let i = 0; i < opts.destinations; i += BATCH) {
    const idx = Array.from({ length: Math.min(BATCH, opts.destinations - i) }, (_, k) => i + k);
    await h.pool.query(idx.map(ddl).join('\n'));
    if (i > 0 && i % 2000 === 0) log(`  source schemas: ${i}/${opts.destinations}`);
  }
  // What autovacuum would otherwise do to the grown catalog during the slot (and count in Postgres' CPU).
  await h.pool.query(
    'vacuum (analyze) pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_type, pg_catalog.pg_depend, pg_catalog.pg_index, pg_catalog.pg_constraint, pg_catalog.pg_namespace, pg_catalog.pg_attrdef',
  );
  const sourceSeconds = secondsSince(t0);
  log(`source schemas: ${opts.destinations} in ${sourceSeconds} s`);

  // 2. Registry: the same `add` as `dropship destinations add`, a few at a time.
  const t1 = performance.now();
  const limit = pLimit(8);
  const perBucket = Math.max(1, opts.perBucket);
  const destinations = await Promise.all(
    Array.from({ length: opts.destinations }, (_, i) =>
      limit(async () => {
        const b = Math.floor(i / perBucket);
        const id = accountIdOf(i);
        const d = await h.registry.add({
          accountId: id,
          plan: 'paid',
          bucket: `scale-${String(b).padStart(ID_WIDTH, '0')}`,
          prefix: perBucket > 1 ? `dropship/${id}` : '',
          region: 'us-east-1',
          roleArn: `arn:aws:iam::${awsAccountOf(b)}:role/dropship-export-${id}`,
          sourceSchema: id,
        });
        if ((i + 1) % 2000 === 0) log(`  registered: ${i + 1}/${opts.destinations}`);
        return d;
      }),
    ),
  );
  const registrySeconds = secondsSince(t1);
  log(`registry: ${opts.destinations} destinations in ${registrySeconds} s`);

  // 3. The customers' AWS side, as each customer would click it: one world document for all of them.
  const t2 = performance.now();
  const world: World = { accounts: {} };
  const readerNames: string[] = [];
  for (const [i, d] of destinations.entries()) {
    const b = Math.floor(i / perBucket);
    const acct = awsAccountOf(b);
    let a = world.accounts[acct];
    if (!a) {
      a = {
        buckets: [{ name: d.bucket, region: d.region }],
        roles: [],
        users: [
          {
            name: `reader-${b}`,
            policies: [
              {
                Statement: [
                  { Effect: 'Allow', Action: ['s3:GetObject'], Resource: `arn:aws:s3:::${d.bucket}/*` },
                  { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: `arn:aws:s3:::${d.bucket}` },
                ],
              },
            ],
          },
        ],
      };
      world.accounts[acct] = a;
      readerNames.push(`arn:aws:iam::${acct}:user/reader-${b}`);
    }
    a.roles!.push({
      name: `dropship-export-${d.accountId}`,
      trustPolicy: trustPolicy(d, h.stack.platform.arn),
      policies: [permissionPolicy(d)],
    });
  }
  const users = await h.stack.applyWorld(world);
  await h.pool.query('vacuum (analyze) dropship.destinations');
  const iamSeconds = secondsSince(t2);
  log(`IAM world: ${Object.keys(world.accounts).length} accounts, ${destinations.length} roles in ${iamSeconds} s`);
  return {
    destinations: destinations.map((destination, i) => {
      const reader = users.get(readerNames[Math.floor(i / perBucket)]!)!;
      return {
        destination,
        large: large.has(i),
        reader: { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretAccessKey },
      };
    }),
    tables: opts.destinations * opts.tables + large.size,
    setup: { sourceSeconds, registrySeconds, iamSeconds, totalSeconds: secondsSince(t0) },
  };
}

/**
 * Opens the slot the production way: the schedule function (handlers/schedule.ts) invoked with the
 * EventBridge event of `slot` on `slotDate`, on the Lambda wiring (src/run/lambda.ts) of this
 * process's environment, then the open-runs function played over the open queue; resolves when every
 * run of the slot is open and its tasks queued. `scheduleSeconds` is the schedule function's whole
 * time (its enqueueing, then the slot's forecast it logs), `enqueueSeconds` the enqueueing alone (what
 * the openers wait for in production: they start on the first message).
 */
export async function openSlotTheProductionWay(
  slot: string,
  slotDate: string,
  openers = 10,
): Promise<{
  due: number;
  accounts: number;
  opened: number;
  openMessages: number;
  scheduleSeconds: number;
  enqueueSeconds: number;
}> {
  const { handler } = await import('../../handlers/schedule.js');
  const { handler: openRuns } = await import('../../handlers/open-runs.js');
  const { playOpenQueue } = await import('../../src/schedule/play.js');
  const { OpenQueue } = await import('../../src/aws/open-queue.js');
  // The schedule function: reads the due accounts, sends their open messages.
  const t0 = performance.now();
  const enqueued = await handler({
    time: `${slotDate}T${slot}:00Z`,
    source: 'aws.events',
    'detail-type': 'Scheduled Event',
  });
  const scheduleSeconds = (performance.now() - t0) / 1000;
  // The open-runs function, as its SQS event source plays it (batch size 1, at most `openers` at once:
  // serverless.yml's maximumConcurrency), until the open queue is empty.
  const played = await playOpenQueue(
    new OpenQueue(process.env.DROPSHIP_OPEN_QUEUE_URL ?? ''),
    async (event) => (await openRuns(event)) as Awaited<ReturnType<Parameters<typeof playOpenQueue>[1]>>,
    { openers, timeoutSeconds: 6 * 3600 },
  );
  const { resetLambdaDeps } = await import('../../src/run/lambda.js');
  await resetLambdaDeps();
  return {
    due: enqueued.due,
    accounts: enqueued.accounts,
    opened: played.runs.filter((r) => r.runId !== undefined).length,
    openMessages: enqueued.messages,
    scheduleSeconds,
    enqueueSeconds: enqueued.seconds,
  };
}

interface Sample {
  peakSource: number;
  peakRegistry: number;
  maxSnapshotSeconds: number;
  peakRss: number;
  /** Open file descriptors of this process (sockets of the stand-ins and clients included). */
  peakFds: number;
}

/** Samples pg_stat_activity (source and registry connections, the oldest source transaction) and RSS. */
function startSampler(databaseUrl: string): { stop: () => Promise<Sample> } {
  const s: Sample = {
    peakSource: 0,
    peakRegistry: 0,
    maxSnapshotSeconds: 0,
    peakRss: process.memoryUsage().rss,
    peakFds: 0,
  };
  let running = true;
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'scale-sampler' });
  const done = (async () => {
    await client.connect();
    while (running) {
      // Source connections are named `dropship <accountId>` (src/pipeline/source/snapshot.ts); the
      // Lambda wiring's registry pools `dropship-lambda` (src/run/lambda.ts).
      const r = await client.query<{ source: number; registry: number; xact: number | null }>(
        `select count(*) filter (where application_name like 'dropship %')::int as source,
                count(*) filter (where application_name = 'dropship-lambda')::int as registry,
                max(extract(epoch from clock_timestamp() - xact_start)) filter (where application_name like 'dropship %')::float8 as xact
           from pg_stat_activity`,
      );
      const row = r.rows[0]!;
      s.peakSource = Math.max(s.peakSource, row.source);
      s.peakRegistry = Math.max(s.peakRegistry, row.registry);
      s.maxSnapshotSeconds = Math.max(s.maxSnapshotSeconds, row.xact ?? 0);
      s.peakRss = Math.max(s.peakRss, process.memoryUsage().rss);
      s.peakFds = Math.max(s.peakFds, readdirSync('/proc/self/fd').length);
      await sleep(200);
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return s;
    },
  };
}

/** Sessions Postgres has started in this database so far (pg_stat_database.sessions; its stats lag ≤ 1 s). */
async function sessions(pool: pg.Pool): Promise<number> {
  await pool.query('select pg_stat_force_next_flush()');
  const r = await pool.query<{ n: string }>(
    'select sessions::text as n from pg_stat_database where datname = current_database()',
  );
  return Number(r.rows[0]!.n);
}

/** Runs of the slot not yet ended (running or finishing). */
async function openRuns(pool: pg.Pool, slot: string, slotDate: string): Promise<number> {
  const r = await pool.query<{ n: number }>(
    `select count(*)::int as n from dropship.runs
      where trigger = 'schedule' and slot = $1 and slot_date = $2 and status not in ('succeeded', 'failed', 'cancelled')`,
    [slot, slotDate],
  );
  return r.rows[0]!.n;
}

/**
 * W worker loops, each one a worker Lambda instance (its own Lambda-shaped wiring: a pool of 3
 * named `dropship-lambda`, as src/run/lambda.ts builds it), playing the SQS event source as
 * `dropship export --via-queue` does (src/run/drivers/via-queue.ts): receive one message (the worker
 * function's batchSize is 1), hand it to processTaskBatch, delete it unless handed back. Unlike
 * --via-queue the loops take every run's messages: they are the fleet. They stop when no run of the
 * slot is open (or at the timeout).
 */
export async function drainSlot(
  h: Harness,
  opts: { workers: number; slot: string; slotDate: string; timeoutSeconds: number },
): Promise<{ messagesHandled: number; handedBack: number; timedOut: boolean }> {
  const settings = h.settings();
  const log = createLogger({ level: 'error' });
  const stop = new AbortController();
  let messagesHandled = 0;
  let handedBack = 0;
  const loop = async (): Promise<void> => {
    const wiring = new Wiring({
      settings,
      databaseUrl: h.stack.databaseUrl,
      poolMax: 3,
      applicationName: 'dropship-lambda',
    });
    try {
      const registry = await wiring.registry();
      const ledger = await wiring.ledger();
      const queue = await wiring.queue('the scale bench');
      while (!stop.signal.aborted) {
        const received = await queue.receive(1, 0).catch(() => []);
        if (received.length === 0) {
          await sleep(100);
          continue;
        }
        const deadline = AbortSignal.any([
          stop.signal,
          AbortSignal.timeout(15 * 60_000 - settings.DROPSHIP_DEADLINE_MARGIN_SECONDS * 1000),
        ]);
        const { batchItemFailures } = await processTaskBatch(
          { Records: received.map((m) => ({ messageId: m.messageId, receiptHandle: m.receiptHandle, body: m.body })) },
          { settings, registry, ledger, log, sourceUrl: wiring.sourceUrl, queue, signal: deadline },
        );
        const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
        for (const m of received) {
          messagesHandled++;
          if (failed.has(m.messageId)) handedBack++;
          else await queue.delete(m.receiptHandle).catch(() => {});
        }
      }
    } finally {
      await wiring.close();
    }
  };
  const t0 = performance.now();
  let timedOut = false;
  const watcher = (async () => {
    while ((await openRuns(h.pool, opts.slot, opts.slotDate)) > 0) {
      if (performance.now() - t0 > opts.timeoutSeconds * 1000) {
        timedOut = true;
        break;
      }
      // Once a second: the count is a scan of the slot's runs (≈ 3,000 pages at 10,000 runs), and the
      // watcher is the bench's, not the product's — its Postgres CPU counts in the figures.
      await sleep(1000);
    }
    stop.abort(new Error('slot ended'));
  })();
  await Promise.all([...Array.from({ length: Math.max(1, opts.workers) }, loop), watcher]);
  return { messagesHandled, handedBack, timedOut };
}

/** Rows in each ledger table (dropship schema, except the registry's own destinations and migrations). */
async function ledgerRows(pool: pg.Pool): Promise<Record<string, number>> {
  const tables = await pool.query<{ t: string }>(
    `select table_name as t from information_schema.tables
      where table_schema = 'dropship' and table_type = 'BASE TABLE' and table_name not in ('destinations', 'schema_migrations')
      order by 1`,
  );
  const out: Record<string, number> = {};
  for (const { t } of tables.rows) {
    const r = await pool.query<{ n: number }>(`select count(*)::int as n from dropship."${t}"`);
    out[t] = r.rows[0]!.n;
  }
  return out;
}

/** What the customers see in S3, listed with each customer's own credentials, against the ledger's runs. */
export interface Delivery {
  /** Destinations with exactly one receipt.json under their own prefix. */
  receipts: number;
  /** Destinations with none. */
  missingReceipts: string[];
  /** Receipts written more than once for a place, or naming a run other than the slot's one run, or chained (sequence ≠ 1). */
  duplicateReceipts: string[];
  /** Objects outside their destination's prefix/run folder, or in no destination's place. */
  strayObjects: string[];
  /** Receipts checked against schemas/receipt.schema.json (+ cross-field rules), and the invalid ones. */
  validated: number;
  validation: 'all' | 'sample';
  invalid: string[];
  /** Receipts whose run_id is not the slot's run of that destination. */
  wrongRun: string[];
}

export async function checkDelivery(
  h: Harness,
  world: ScaleWorld,
  runIdOf: Map<string, { runId: string; folder: string }>,
  opts: { validateSample: number },
): Promise<Delivery> {
  const out: Delivery = {
    receipts: 0,
    missingReceipts: [],
    duplicateReceipts: [],
    strayObjects: [],
    validated: 0,
    validation: world.destinations.length <= opts.validateSample ? 'all' : 'sample',
    invalid: [],
    wrongRun: [],
  };
  // Receipt writes per place, from the stack's S3 event log (a second PUT of receipt.json is a duplicate delivery).
  const receiptPuts = new Map<string, number>();
  for (const e of h.stack.s3.events)
    if (e.key === 'receipt.json' || e.key.endsWith('/receipt.json'))
      receiptPuts.set(`${e.bucket}/${e.key}`, (receiptPuts.get(`${e.bucket}/${e.key}`) ?? 0) + 1);
  const sampleEvery = Math.max(1, Math.ceil(world.destinations.length / opts.validateSample));
  const byBucket = new Map<string, ScaleDestination[]>();
  for (const d of world.destinations) {
    const list = byBucket.get(d.destination.bucket) ?? [];
    list.push(d);
    byBucket.set(d.destination.bucket, list);
  }
  const clients = new Map<string, S3Client>();
  const clientOf = (d: ScaleDestination): S3Client => {
    let c = clients.get(d.reader.accessKeyId);
    if (!c) {
      c = new S3Client({
        region: d.destination.region,
        endpoint: h.stack.s3.endpoint,
        forcePathStyle: true,
        credentials: d.reader,
      });
      clients.set(d.reader.accessKeyId, c);
    }
    return c;
  };
  const index = new Map(world.destinations.map((d, i) => [d.destination.accountId, i]));
  const limit = pLimit(8);
  try {
    await Promise.all(
      [...byBucket.entries()].map(([bucket, dests]) =>
        limit(async () => {
          const s3 = clientOf(dests[0]!);
          const keys: string[] = [];
          let token: string | undefined;
          do {
            const page = await s3.send(
              new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }),
            );
            for (const o of page.Contents ?? []) keys.push(o.Key!);
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
          } while (token);
          for (const sd of dests) {
            const d = sd.destination;
            const base = d.prefix ? `${d.prefix}/` : '';
            const run = runIdOf.get(d.accountId);
            const receiptKey = `${base}receipt.json`;
            const mine = keys.filter((k) => (base ? k.startsWith(base) : true));
            if (!mine.includes(receiptKey)) {
              out.missingReceipts.push(d.accountId);
            } else {
              out.receipts++;
              if ((receiptPuts.get(`${bucket}/${receiptKey}`) ?? 0) !== 1) out.duplicateReceipts.push(d.accountId);
              const i = index.get(d.accountId)!;
              const body = await (
                await s3.send(new GetObjectCommand({ Bucket: bucket, Key: receiptKey }))
              ).Body!.transformToString();
              const receipt = JSON.parse(body) as { run_id: string; sequence?: number };
              if (!run || receipt.run_id !== run.runId) out.wrongRun.push(d.accountId);
              if (receipt.sequence !== undefined && receipt.sequence !== 1) out.duplicateReceipts.push(d.accountId);
              if (i % sampleEvery === 0) {
                out.validated++;
                const v = validateReceipt(receipt, d.prefix ? { prefix: d.prefix } : {});
                if (v.length > 0)
                  out.invalid.push(`${d.accountId}: ${v.map((x) => `${x.path} ${x.message}`).join('; ')}`);
              }
            }
            // Everything under this destination's place is its receipt, its status object, or inside its run's folder.
            for (const k of mine) {
              if (k === receiptKey || k === `${base}status.json`) continue;
              if (!run || !k.startsWith(`${base}${run.folder}/`)) out.strayObjects.push(`${bucket}/${k}`);
            }
          }
          // Objects in no destination's place at all.
          const bases = dests.map((sd) => (sd.destination.prefix ? `${sd.destination.prefix}/` : ''));
          for (const k of keys) if (!bases.some((b) => k.startsWith(b))) out.strayObjects.push(`${bucket}/${k}`);
        }),
      ),
    );
  } finally {
    for (const c of clients.values()) c.destroy();
  }
  out.duplicateReceipts = [...new Set(out.duplicateReceipts)];
  return out;
}

export interface ScaleReport {
  [k: string]: unknown;
  destinations: number;
  runs_succeeded: number;
  runs_not_succeeded: number;
  receipts: number;
  duplicate_receipts: number;
}

export interface ScaleResult {
  report: ScaleReport;
  delivery: Delivery;
  /** Runs of the slot per destination (exactly one each when all is well). */
  runsPerDestination: Map<string, number>;
  /** The slot's run of each destination (the last one seen, when there were several). */
  runs: Map<string, { runId: string; folder: string }>;
  openRunsLeft: number;
  world: ScaleWorld;
}

/** Postgres' CPU so far (ms): the postmaster's own plus its reaped backends' (cutime/cstime). */
function postgresCpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after ")": state(0) … utime(11) stime(12) cutime(13) cstime(14), in clock ticks (100/s)
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return undefined;
  }
}
/** The postmaster's pid (first line of postmaster.pid in the data folder). */
function postmasterPid(h: Harness): number | undefined {
  try {
    return Number(readFileSync(`${h.stack.dataDir}/pg/postmaster.pid`, 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

/**
 * The whole bench on a harness: setup, the slot (open, drain), checks, figures. `h` is started by the
 * caller (the test keeps it; the bench starts its own in `main`).
 */
export async function runScale(h: Harness, options: Partial<ScaleOptions> = {}): Promise<ScaleResult> {
  const opts: ScaleOptions = { ...DEFAULT_SCALE, ...options };
  const log = opts.log ?? (() => {});
  const load = (): number => Number(loadavg()[0]!.toFixed(2));
  const loadAtStart = load();
  const world = await setupScale(h, opts);
  // The slot: today's date from the clock, the paid plan's first slot.
  const settings = h.settings();
  const slot = settings.DROPSHIP_PAID_SLOTS.split(',')[0]!;
  const slotDate = new Date().toISOString().slice(0, 10);
  const ledgerBefore = await ledgerRows(h.pool);
  const stsBefore = h.stack.sts.calls.length;
  const sentBefore = h.stack.sqs.sent;
  const pgPid = postmasterPid(h);
  const pgCpu0 = postgresCpuMs(pgPid);
  const s3Before = h.stack.s3.requests.length;
  const sessionsBefore = await sessions(h.pool);
  const loadAtSlot = load();
  const sampler = startSampler(h.stack.databaseUrl);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();

  process.env.DROPSHIP_LOG_LEVEL = 'error';
  log(`slot ${slot} of ${slotDate}: opening through the schedule function …`);
  const opened = await openSlotTheProductionWay(slot, slotDate);
  const slotOpenSeconds = secondsSince(t0);
  const messagesSent = h.stack.sqs.sent - sentBefore;
  log(
    `opened ${opened.accounts} runs, ${messagesSent} messages in ${slotOpenSeconds} s; draining with ${opts.workers} workers …`,
  );
  const t1 = performance.now();
  const repeat = opts.repeatEvent ? openSlotTheProductionWay(slot, slotDate) : undefined;
  const drained = await drainSlot(h, {
    workers: opts.workers,
    slot,
    slotDate,
    timeoutSeconds: opts.timeoutSeconds,
  });
  const drainSeconds = secondsSince(t1);
  const repeated = await repeat;
  const cpu = process.cpuUsage(cpu0);
  const wallSeconds = secondsSince(t0);
  const sample = await sampler.stop();
  const pgCpu1 = postgresCpuMs(pgPid);
  const s3Requests = h.stack.s3.requests.length - s3Before;
  const sessionsDuring = (await sessions(h.pool)) - sessionsBefore;
  const loadAtEnd = load();
  log(`drained in ${drainSeconds} s; checking S3 …`);

  const runs = await h.pool.query<{ account_id: string; run_id: string; status: string; folder: string }>(
    `select account_id, run_id, status, folder from dropship.runs where trigger = 'schedule' and slot = $1 and slot_date = $2`,
    [slot, slotDate],
  );
  const runsPerDestination = new Map<string, number>();
  const runIdOf = new Map<string, { runId: string; folder: string }>();
  for (const r of runs.rows) {
    runsPerDestination.set(r.account_id, (runsPerDestination.get(r.account_id) ?? 0) + 1);
    runIdOf.set(r.account_id, { runId: r.run_id, folder: r.folder });
  }
  const succeeded = runs.rows.filter((r) => r.status === 'succeeded').length;
  const openRunsLeft = await openRuns(h.pool, slot, slotDate);
  const t2 = performance.now();
  const delivery = await checkDelivery(h, world, runIdOf, opts);
  const checkSeconds = secondsSince(t2);
  const ledgerAfter = await ledgerRows(h.pool);
  const n = opts.destinations;
  const ledgerPer: Record<string, number> = {};
  let ledgerTotal = 0;
  for (const [t, after] of Object.entries(ledgerAfter)) {
    const added = after - (ledgerBefore[t] ?? 0);
    ledgerTotal += added;
    if (added) ledgerPer[t] = Number((added / n).toFixed(3));
  }
  const stsCalls = h.stack.sts.calls.slice(stsBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const nearEmpty = world.destinations.every((d) => !d.large);
  const tasks = await h.pool.query<{ n: number }>(
    `select count(*)::int as n from dropship.run_tasks t join dropship.runs r using (run_id)
      where r.trigger = 'schedule' and r.slot = $1 and r.slot_date = $2`,
    [slot, slotDate],
  );
  const report: ScaleReport = {
    bench: 'scale',
    destinations: n,
    workers: opts.workers,
    tables: world.tables,
    large_tables: world.destinations.filter((d) => d.large).length,
    large_rows: opts.largeRows,
    per_bucket: opts.perBucket,
    tasks: tasks.rows[0]!.n,
    messages_sent: messagesSent,
    messages_handled: drained.messagesHandled,
    messages_handed_back: drained.handedBack,
    messages_left: h.stack.sqs.pending(h.stack.taskQueueUrl).length,
    setup_seconds: world.setup.totalSeconds,
    setup_source_seconds: world.setup.sourceSeconds,
    setup_registry_seconds: world.setup.registrySeconds,
    setup_iam_seconds: world.setup.iamSeconds,
    slot_open_seconds: slotOpenSeconds,
    schedule_function_seconds: opened.scheduleSeconds,
    schedule_enqueue_seconds: opened.enqueueSeconds,
    open_messages: opened.openMessages,
    drain_seconds: drainSeconds,
    drain_timed_out: drained.timedOut,
    repeated_event: repeated
      ? { due: repeated.due, accounts_sent_to_open: repeated.accounts, runs_opened: repeated.opened }
      : null,
    runs: runs.rowCount ?? 0,
    runs_succeeded: succeeded,
    runs_not_succeeded: (runs.rowCount ?? 0) - succeeded,
    destinations_without_run: n - runsPerDestination.size,
    destinations_with_several_runs: [...runsPerDestination.values()].filter((c) => c > 1).length,
    open_runs_left: openRunsLeft,
    receipts: delivery.receipts,
    missing_receipts: delivery.missingReceipts.length,
    duplicate_receipts: delivery.duplicateReceipts.length,
    receipts_naming_another_run: delivery.wrongRun.length,
    stray_objects: delivery.strayObjects.length,
    receipts_validated: delivery.validated,
    receipts_validation: delivery.validation,
    receipts_invalid: delivery.invalid.length,
    check_seconds: checkSeconds,
    assume_role_calls: stsCalls.length,
    assume_role_refused: stsCalls.filter((c) => !c.ok).length,
    assume_role_calls_per_destination: Number((stsCalls.length / n).toFixed(2)),
    s3_requests_per_destination: Number((s3Requests / n).toFixed(2)),
    postgres_sessions_per_destination: Number((sessionsDuring / n).toFixed(2)),
    peak_source_connections: sample.peakSource,
    peak_registry_connections: sample.peakRegistry,
    max_snapshot_transaction_seconds: Number(sample.maxSnapshotSeconds.toFixed(2)),
    // The bench process holds the dropship code AND the in-process stand-ins (S3 guard + s3rver, STS,
    // SQS, each request judged by iam-simulate); Postgres' CPU is apart (postgres_cpu_ms_per_destination).
    fixed_cost_basis: nearEmpty ? 'near-empty tables (this run)' : null,
    fixed_cpu_ms_per_destination: nearEmpty ? Number((cpuMs / n).toFixed(2)) : null,
    fixed_wall_ms_per_destination: nearEmpty ? Number(((wallSeconds * 1000) / n).toFixed(2)) : null,
    cpu_ms_per_destination: Number((cpuMs / n).toFixed(2)),
    wall_ms_per_destination: Number(((wallSeconds * 1000) / n).toFixed(2)),
    postgres_cpu_ms_per_destination:
      pgCpu0 !== undefined && pgCpu1 !== undefined ? Number(((pgCpu1 - pgCpu0) / n).toFixed(2)) : null,
    ledger_rows_per_destination: Number((ledgerTotal / n).toFixed(3)),
    ledger_rows_per_destination_by_table: ledgerPer,
    worker_peak_rss_bytes: sample.peakRss,
    peak_open_fds: sample.peakFds,
    rss_note: 'whole bench process during the slot: W worker loops + the local stack (one process)',
    load_1m: { start: loadAtStart, slot: loadAtSlot, end: loadAtEnd },
    node: process.version,
  };
  return { report, delivery, runsPerDestination, runs: runIdOf, openRunsLeft, world };
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`);
  return v;
}

/** `npm run bench -- --scale …`: starts its own stack, prints progress on stderr and ONE JSON line on stdout. */
export async function mainScale(): Promise<void> {
  const opts: ScaleOptions = {
    destinations: arg('destinations', DEFAULT_SCALE.destinations),
    workers: arg('workers', DEFAULT_SCALE.workers),
    largeShare: arg('large-share', DEFAULT_SCALE.largeShare),
    largeRows: arg('large-rows', DEFAULT_SCALE.largeRows),
    tables: arg('tables', DEFAULT_SCALE.tables),
    rows: arg('rows', DEFAULT_SCALE.rows),
    perBucket: arg('per-bucket', DEFAULT_SCALE.perBucket),
    validateSample: arg('validate-sample', DEFAULT_SCALE.validateSample),
    timeoutSeconds: arg('timeout', DEFAULT_SCALE.timeoutSeconds),
    repeatEvent: process.argv.includes('--repeat-event'),
    log: (s) => process.stderr.write(`${s}\n`),
  };
  const h = await startHarness();
  try {
    const { report, delivery } = await runScale(h, opts);
    for (const [what, list] of [
      ['missing receipts', delivery.missingReceipts],
      ['duplicate receipts', delivery.duplicateReceipts],
      ['receipts naming another run', delivery.wrongRun],
      ['stray objects', delivery.strayObjects],
      ['invalid receipts', delivery.invalid],
    ] as const)
      if (list.length > 0)
        process.stderr.write(`${what}: ${list.slice(0, 10).join(', ')}${list.length > 10 ? ' …' : ''}\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await h.stop();
  }
}
