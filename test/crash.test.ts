import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../src/config/settings.js';
import type { Receipt } from '../src/contracts/receipt.js';
import { createLogger } from '../src/log/logger.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { exportAccount } from '../src/run/account.js';
import { type CrashPoint, onCrashPoint } from '../src/run/crash.js';
import { resetLambdaDeps } from '../src/run/lambda.js';
import { RUN_LOCK_SPACE } from '../src/run/ledger-rows.js';
import { LogReporter } from '../src/run/reporter.js';
import { connectSource, sourceClient, sourceSession } from '../src/source/snapshot.js';
import { compareTable, downloadReceiptFiles } from './compare.js';
import { readReceipt } from './kit/index.js';
import { machineEnv } from './stack/cli.js';
import { type Customer, setupCustomer } from './stack/demo.js';
import { type Harness, startHarness } from './stack/harness.js';
import type { Fault, FaultAction } from './stack/s3.js';
import { REPO_ROOT } from './stack/stack.js';

type FaultResult = FaultAction | undefined;

/**
 * The crash matrix and the chaos loop (issue 10): the owner of a run is killed at every point of
 * the lifecycle — a `dropship export` child process with SIGKILL; a Lambda handler abandoned at a
 * test-only crash point (DROPSHIP_TEST_CRASH_AT, mode `hang`) with its database sessions
 * terminated — time moves past the bound, and then:
 *   - the run has ended (`failed` as abandoned, or finished by someone else),
 *   - the next export succeeds and compares exact (Postgres vs DuckDB),
 *   - no failed run has a receipt, and every receipt published for a run has one content,
 *   - no unfinished multipart upload remains, except those of a SIGKILLed process (the bucket's
 *     AbortIncompleteMultipartUpload lifecycle rule cleans those; README "Run lifecycle").
 * "Time moves past the bound" is done by moving the ledger's heartbeat and lease timestamps back
 * (pastTheBound), except in the frozen-owner test, which really waits DROPSHIP_RUN_STALE_SECONDS.
 */
let h: Harness;
let cli: Customer;
let chaos: Customer;
let lam: Customer;
let lamBig: Customer;
let sqs: SQSClient;
const dir = mkdtempSync(join(tmpdir(), 'dropship-crash-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
const PART = String(5 * 1024 * 1024);
/** Every receipt.json body published, per run id, in order (read the moment S3 stored it). */
const published = new Map<string, string[]>();
/** Unfinished uploads a SIGKILLed process left behind (allowed to remain). */
const killedUploads = new Set<string>();

type Handler = (event: unknown, context?: { getRemainingTimeInMillis(): number }) => Promise<unknown>;
let worker: Handler;
let exportAccountHandler: Handler;
let sweeper: Handler;

const WEIRD = `
  create table %s."__proto__" ("__proto__" int primary key, "constructor" text, "toString" text, "hasOwnProperty" boolean);
  insert into %s."__proto__" select i, 'c' || i, 't' || i, i % 2 = 0 from generate_series(1, 50) i;
  create table %s."constructor" (id int, "valueOf" text, "__proto__" numeric(10,2));
  insert into %s."constructor" select i, 'v' || i, i * 1.25 from generate_series(1, 40) i;
  create table %s."toString" (id int, "hasOwnProperty" text);
  insert into %s."toString" select i, 'h' || i from generate_series(1, 30) i;
  create table %s."hasOwnProperty" (id bigint);
  insert into %s."hasOwnProperty" select generate_series(1, 20);`;
const weird = (schema: string) => WEIRD.replaceAll('%s', schema);
// A table whose Parquet is over one 5 MiB part, so its upload is a real multipart upload.
const BIG = (schema: string) => `
  create table ${schema}.big as
    select i as id, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) as a, md5(i::text)::uuid as u
      from generate_series(1, 110000) i;`;

beforeAll(async () => {
  h = await startHarness();
  const { stack, pool, registry } = h;
  await pool.query(`create schema crashcli; ${BIG('crashcli')} ${weird('crashcli')}
    create schema chaos; ${weird('chaos')}
    create table chaos.events as select i as id, now() - i * interval '1 second' as at, 'e' || i as name
      from generate_series(1, 30000) i;
    create schema crashlam; ${weird('crashlam')}
    create schema crashbig; ${BIG('crashbig')}`);
  // 11+ tables, so the fan-out sends more than one SendMessageBatch (crash point during-send).
  for (let i = 0; i < 8; i++)
    await pool.query(
      `create table crashlam.t${i} as select g as id, 'row ' || g as label from generate_series(1, 200) g`,
    );
  const add = (accountId: string, n: number) =>
    setupCustomer(stack, registry, {
      accountId,
      awsAccountId: `26000000000${n}`,
      bucket: `${accountId}-data`,
      schema: accountId,
    });
  cli = await add('crashcli', 1);
  chaos = await add('chaos', 2);
  lam = await add('crashlam', 3);
  lamBig = await add('crashbig', 4);
  stack.s3.onEvent((e) => {
    if (!e.key.endsWith('receipt.json')) return;
    const body = readFileSync(join(stack.s3.directory, e.bucket, `${e.key}._S3rver_object`), 'utf8');
    const runId = (JSON.parse(body) as Receipt).run_id;
    published.set(runId, [...(published.get(runId) ?? []), body]);
  });
  Object.assign(process.env, {
    DROPSHIP_LOG_LEVEL: 'silent',
    DROPSHIP_DEADLINE_MARGIN_SECONDS: '0',
    DROPSHIP_TASK_RETRY_SECONDS: '0',
    DROPSHIP_PART_SIZE_BYTES: PART,
  });
  sqs = new SQSClient({ region: 'us-east-1' });
  worker = (await import('../handlers/worker.js')).handler as Handler;
  exportAccountHandler = (await import('../handlers/export-account.js')).handler as Handler;
  sweeper = (await import('../handlers/sweeper.js')).handler as Handler;
}, 120_000);

afterAll(async () => {
  await resetLambdaDeps();
  sqs?.destroy();
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const settings = (extra: Record<string, string> = {}): Settings =>
  h.settings({ DROPSHIP_PART_SIZE_BYTES: PART, ...extra });

/** The next export, in-process, as an operator's rerun. */
const exportNow = (c: Customer, extra: Partial<Parameters<typeof exportAccount>[1]> = {}) =>
  exportAccount(c.destination, {
    sourceUrl: h.stack.databaseUrl,
    settings: settings(),
    reporter: silent,
    ledger: h.ledger,
    ...extra,
  });

/** `dropship export --account <id>` in a child process. */
function spawnExport(
  c: Customer,
  env: Record<string, string> = {},
): { child: ChildProcess; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'src/cli/bin.mjs'), 'export', '--account', c.destination.accountId],
    {
      env: {
        ...machineEnv(),
        ...h.stack.env(),
        DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
        DROPSHIP_PART_SIZE_BYTES: PART,
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exit };
}

/** stdout of a `dropship` command. */
function cliOutput(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'src/cli/bin.mjs'), ...args], {
      env: { ...machineEnv(), ...h.stack.env() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`dropship ${args.join(' ')}: exit ${code}`)),
    );
  });
}

/** Time moves past every bound of the run: its heartbeat, its finishing lease and its tasks' leases. */
async function pastTheBound(runId: string): Promise<void> {
  await h.pool.query(
    `update dropship.runs set heartbeat_at = heartbeat_at - interval '1 day', lease_until = lease_until - interval '1 day' where run_id = $1`,
    [runId],
  );
  await h.pool.query(
    `update dropship.run_tasks set lease_until = lease_until - interval '1 day' where run_id = $1 and lease_until is not null`,
    [runId],
  );
}

async function latestRun(c: Customer) {
  return (await h.ledger.listRuns({ accountId: c.destination.accountId, limit: 1 }))[0]!;
}

async function assertExact(c: Customer): Promise<void> {
  const receipt = await readReceipt(h.stack, c);
  expect(validateReceipt(receipt)).toEqual([]);
  // Tables and columns named like Object.prototype members appear under their own names.
  if (c !== lamBig) {
    expect(Object.keys(receipt.tables)).toEqual(
      expect.arrayContaining(['__proto__', 'constructor', 'toString', 'hasOwnProperty']),
    );
    expect(
      Object.getOwnPropertyDescriptor(receipt.tables, '__proto__')?.value.columns.map(
        (col: { name: string }) => col.name,
      ),
    ).toEqual(['__proto__', 'constructor', 'toString', 'hasOwnProperty']);
  }
  const files = await downloadReceiptFiles(
    h.stack.s3.endpoint,
    'us-east-1',
    c.reader,
    c.destination.bucket,
    receipt,
    join(dir, `${c.destination.accountId}-${Date.now()}-${Math.random()}`),
  );
  const client = await h.pool.connect();
  try {
    const names = [...files.keys()];
    for (const name of names) {
      const t = receipt.tables[name]!;
      const d = await compareTable(client, c.destination.sourceSchema, name, t.columns, files.get(name)!);
      expect(d.examples, name).toEqual([]);
      expect(d.parquetRows, name).toBe(t.row_count);
    }
  } finally {
    client.release();
  }
}

/** The ledger and the bucket agree: no failed run has a receipt; each run's receipts are one content. */
async function assertLedgerAndReceipts(c: Customer): Promise<void> {
  const runs = await h.ledger.listRuns({ accountId: c.destination.accountId, limit: 1000 });
  for (const r of runs) {
    const bodies = published.get(r.runId) ?? [];
    if (r.status === 'succeeded') {
      expect(bodies.length, r.runId).toBeGreaterThanOrEqual(1);
      expect(new Set(bodies).size, `${r.runId}: every published copy is byte-identical`).toBe(1);
      expect(bodies[0]).toBe(r.receiptBody);
    } else {
      expect(bodies, `${r.runId} (${r.status}) has no receipt`).toEqual([]);
    }
  }
  expect(runs.filter((r) => r.status === 'running' || r.status === 'finishing')).toEqual([]);
  const unfinished = await h.stack.s3.unfinishedUploads(c.destination.bucket);
  expect(unfinished.filter((u) => !killedUploads.has(u.uploadId))).toEqual([]);
}

describe('crash matrix: dropship export (a child process, SIGKILL)', () => {
  const points: { point: CrashPoint; ends: 'failed' | 'succeeded' }[] = [
    { point: 'after-open-run', ends: 'failed' },
    { point: 'mid-copy', ends: 'failed' },
    { point: 'after-last-task', ends: 'succeeded' },
    { point: 'before-receipt-put', ends: 'succeeded' },
    { point: 'after-receipt-put', ends: 'succeeded' },
  ];
  it.each(points)(
    'killed at $point: the next export ends the run ($ends) and succeeds exactly',
    async ({ point, ends }) => {
      // Act: the owner dies at the point.
      const { exit } = spawnExport(cli, { DROPSHIP_TEST_CRASH_AT: point });
      const died = await exit;
      expect(died.signal, died.stderr).toBe('SIGKILL');
      const dead = await latestRun(cli);
      expect(['running', 'finishing']).toContain(dead.status);
      // Its advisory lock died with it: the next export notices at once, without waiting for the bound.
      const lines: string[] = [];
      const log = createLogger({ level: 'info', destination: { write: (m: string) => void lines.push(m) } });
      const next = await exportNow(cli, { log });
      expect(next.ok, JSON.stringify(next)).toBe(true);
      // Assess
      const after = await h.ledger.getRun(dead.runId);
      expect(after?.status).toBe(ends);
      if (ends === 'failed') expect(after?.error).toMatch(/^abandoned: its owner cli:.* is gone/);
      // …and says so in a log line.
      const said = lines.map((l) => JSON.parse(l) as { msg: string; runId?: string; level: string });
      expect(said).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          runId: dead.runId,
          msg: ends === 'failed' ? 'abandoned run ended' : 'orphaned run finished',
        }),
      );
      await assertExact(cli);
      await assertLedgerAndReceipts(cli);
      if (point === 'after-receipt-put') expect(published.get(dead.runId)).toHaveLength(2);
    },
  );

  it('a receipt PutObject that keeps failing keeps the run finishing; the next run publishes the same bytes', async () => {
    // Prepare: the receipt answers 500 to every attempt of the export's three finishing rounds.
    let refused = 0;
    const fault: Fault = (r) =>
      r.bucket === 'crashcli-data' && r.key === 'receipt.json' && r.method === 'PUT' && refused++ < 15
        ? { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' }
        : undefined;
    h.stack.s3.faults.push(fault);
    let first: Awaited<ReturnType<typeof exportNow>>;
    try {
      first = await exportNow(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    // Assess: not failed — finishing, with its receipt bytes recorded and nothing published.
    expect(first.ok).toBe(false);
    expect(String((first as { error: Error }).error.message)).toMatch(
      /is finishing but its receipt could not be written yet/,
    );
    expect(refused).toBe(15);
    const open = await h.ledger.getRun(first.runId);
    expect(open?.status).toBe('finishing');
    expect(open?.receiptBody).toBeTruthy();
    expect(published.get(first.runId)).toBeUndefined();
    // Act: the next export finishes it first, then runs.
    const next = await exportNow(cli);
    expect(next.ok).toBe(true);
    const done = await h.ledger.getRun(first.runId);
    expect(done?.status).toBe('succeeded');
    expect(published.get(first.runId)).toEqual([open?.receiptBody]);
    await assertExact(cli);
    await assertLedgerAndReceipts(cli);
  });

  it('killed mid-upload: the run is ended; only the killed process leaves an unfinished upload', async () => {
    // Prepare: the first part of the big table's multipart upload kills the process.
    let child: ChildProcess | undefined;
    let killed = false;
    const fault = (r: { bucket: string; query: URLSearchParams }) => {
      if (killed || r.bucket !== 'crashcli-data' || !r.query.has('partNumber')) return undefined;
      killed = true;
      child?.kill('SIGKILL');
      return { drop: true } as const;
    };
    h.stack.s3.faults.push(fault);
    try {
      const spawned = spawnExport(cli);
      child = spawned.child;
      const died = await spawned.exit;
      expect(died.signal).toBe('SIGKILL');
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    const dead = await latestRun(cli);
    const left = await h.stack.s3.unfinishedUploads('crashcli-data');
    expect(left.length).toBeGreaterThanOrEqual(1);
    for (const u of left) {
      expect(u.key.startsWith(`${dead.folder}/big/`)).toBe(true);
      killedUploads.add(u.uploadId);
    }
    // Act
    const next = await exportNow(cli);
    // Assess
    expect(next.ok).toBe(true);
    expect((await h.ledger.getRun(dead.runId))?.status).toBe('failed');
    await assertExact(cli);
    await assertLedgerAndReceipts(cli);
  });

  it('a frozen owner (SIGSTOP; its connection lingers) is ended after DROPSHIP_RUN_STALE_SECONDS and stops when it wakes', async () => {
    // Prepare: the owner freezes as its big table starts uploading; its heartbeat bound is 2 s.
    let child: ChildProcess | undefined;
    let stopped = false;
    const fault = (r: { bucket: string; query: URLSearchParams }) => {
      if (!stopped && r.bucket === 'crashcli-data' && r.query.has('uploads')) {
        stopped = true;
        child?.kill('SIGSTOP');
      }
      return undefined;
    };
    h.stack.s3.faults.push(fault);
    const spawned = spawnExport(cli, { DROPSHIP_RUN_STALE_SECONDS: '2' });
    child = spawned.child;
    try {
      for (let i = 0; i < 200 && !stopped; i++) await new Promise((r) => setTimeout(r, 50));
      expect(stopped).toBe(true);
      const frozen = await latestRun(cli);
      expect(frozen.staleSeconds).toBe(2);
      // Its lock is still held (the connection lingers): only the heartbeat can tell.
      await new Promise((r) => setTimeout(r, 3_000));
      const active = (await h.ledger.activeRuns('crashcli')).find((a) => a.runId === frozen.runId)!;
      expect(active.ownerGone).toBe(false);
      expect(active.silentSeconds).toBeGreaterThan(2);
      const list = await cliOutput(['runs', 'list', '--account', 'crashcli']);
      expect(list).toMatch(new RegExp(`${frozen.runId}.*running \\(stale: no heartbeat for \\d+ s\\)`));
      // Act: the next export (in another minute's folder) ends it and succeeds.
      const next = await exportNow(cli, { clock: () => BigInt(Date.now() + 120_000) * 1000n });
      expect(next.ok).toBe(true);
      const ended = await h.ledger.getRun(frozen.runId);
      expect(ended?.status).toBe('failed');
      expect(ended?.error).toMatch(/has not been heard from for \d+ s \(DROPSHIP_RUN_STALE_SECONDS=2\)/);
      // The owner wakes up, sees its run ended, aborts its uploads and writes no receipt.
      child.kill('SIGCONT');
      const woke = await spawned.exit;
      expect(woke.code, woke.stderr).toBe(1);
      expect(woke.stderr).toMatch(/run stopped \(run .* was failed: abandoned/);
      expect(published.get(frozen.runId)).toBeUndefined();
      await assertExact(cli);
      await assertLedgerAndReceipts(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
      child.kill('SIGKILL');
    }
  });

  it('the owner loses its lock connection (a ledger restart, a dropped socket): it takes the lock again and finishes', async () => {
    // Prepare: a slow S3, so the run is still going when its lock connection is cut.
    const slow: Fault = (r) => (r.bucket === 'crashcli-data' ? { delayMs: 300 } : undefined);
    h.stack.s3.faults.push(slow);
    try {
      const running = exportNow(cli, { settings: settings({ DROPSHIP_RUN_STALE_SECONDS: '2' }) });
      let cut = 0;
      for (let i = 0; i < 100 && cut === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const res = await h.pool.query(
          `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and classid = $1 and granted`,
          [RUN_LOCK_SPACE],
        );
        cut = res.rowCount ?? 0;
      }
      expect(cut).toBe(1);
      // Act: within a heartbeat (500 ms here) the owner holds its lock again, on a new connection.
      let relocked = 0;
      for (let i = 0; i < 40 && relocked === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const res = await h.pool.query(
          `select 1 from pg_locks where locktype = 'advisory' and classid = $1 and granted`,
          [RUN_LOCK_SPACE],
        );
        relocked = res.rowCount ?? 0;
      }
      expect(relocked).toBe(1);
      const out = await running;
      // Assess
      expect(out.ok, JSON.stringify(out)).toBe(true);
      await assertExact(cli);
      await assertLedgerAndReceipts(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    }
  });

  it('runs cancel: the owner stops within seconds, aborts its uploads and writes no receipt', async () => {
    // Prepare: an export whose uploads wait until the cancel has been issued (and are slowed down
    // after), so it is cancelled mid-way however fast the machine or slow the cancel command's start.
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const slow = (req: { action: string }) =>
      req.action === 's3:PutObject' ? { gate: gate.then(() => new Promise((r) => setTimeout(r, 150))) } : undefined;
    h.stack.s3.faults.push(slow);
    try {
      const spawned = spawnExport(cli, { DROPSHIP_RUN_STALE_SECONDS: '2' });
      const mine = `:${spawned.child.pid}`;
      let run = await latestRun(cli);
      for (let i = 0; i < 200 && !(run?.status === 'running' && run.owner?.endsWith(mine)); i++) {
        await new Promise((r) => setTimeout(r, 50));
        run = await latestRun(cli);
      }
      expect(run?.owner?.endsWith(mine)).toBe(true);
      // Act
      const cancel = spawn(process.execPath, [join(REPO_ROOT, 'src/cli/bin.mjs'), 'runs', 'cancel', run.runId], {
        env: { ...machineEnv(), ...h.stack.env() },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let cancelErr = '';
      cancel.stderr!.on('data', (d) => {
        cancelErr += String(d);
      });
      expect(await new Promise((r) => cancel.on('exit', r)), cancelErr).toBe(0);
      open();
      const t0 = Date.now();
      const out = await spawned.exit;
      // Assess
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toMatch(/was cancelled: cancelled by operator/);
      expect((await h.ledger.getRun(run.runId))?.status).toBe('cancelled');
      expect(published.get(run.runId)).toBeUndefined();
      await assertLedgerAndReceipts(cli);
    } finally {
      open();
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    }
  });
});

describe('signals: dropship export', () => {
  /** Sends `sig` to the child when the first upload part of the big table arrives. */
  function onFirstPart(act: (child: ChildProcess) => FaultResult): {
    fault: Fault;
    fired: () => boolean;
    attach: (c: ChildProcess) => void;
  } {
    let child: ChildProcess | undefined;
    let done = false;
    const fault: Fault = (r) => {
      if (done || !child || r.bucket !== 'crashcli-data' || !r.query.has('partNumber')) return undefined;
      done = true;
      return act(child);
    };
    return { fault, fired: () => done, attach: (c) => (child = c) };
  }

  async function interrupted(setup: ReturnType<typeof onFirstPart>, env: Record<string, string> = {}) {
    h.stack.s3.faults.push(setup.fault);
    try {
      const spawned = spawnExport(cli, env);
      setup.attach(spawned.child);
      const out = await spawned.exit;
      return { ...out, run: await latestRun(cli) };
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(setup.fault), 1);
    }
  }

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'the first %s stops the export within seconds: uploads aborted, run failed, no receipt',
    async (sig) => {
      // Prepare
      let at = 0;
      const setup = onFirstPart((child) => {
        at = Date.now();
        child.kill(sig);
        return undefined;
      });
      // Act
      const out = await interrupted(setup);
      // Assess
      expect(setup.fired()).toBe(true);
      expect(Date.now() - at).toBeLessThan(5_000);
      expect(out.code, out.stderr).toBe(130);
      expect(out.stderr).toContain(`interrupted by ${sig}`);
      expect(out.run.status).toBe('failed');
      expect(out.run.error).toContain(`interrupted by ${sig}`);
      expect(published.get(out.run.runId)).toBeUndefined();
      await assertLedgerAndReceipts(cli);
    },
  );

  it('SIGINT after the last COPY was read (as the last shard completes) still writes no receipt', async () => {
    // Prepare: the signal arrives with the big table's CompleteMultipartUpload, after its COPY ended.
    let child: ChildProcess | undefined;
    let sent = false;
    const fault: Fault = (r) => {
      if (!sent && child && r.bucket === 'crashcli-data' && r.method === 'POST' && r.query.has('uploadId')) {
        sent = true;
        child.kill('SIGINT');
      }
      return undefined;
    };
    h.stack.s3.faults.push(fault);
    try {
      const spawned = spawnExport(cli);
      child = spawned.child;
      const out = await spawned.exit;
      const run = await latestRun(cli);
      // Assess
      expect(sent).toBe(true);
      expect(out.code, out.stderr).toBe(130);
      expect(run.status).toBe('failed');
      expect(published.get(run.runId)).toBeUndefined();
      await assertLedgerAndReceipts(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
  });

  it('a second SIGINT quits at once and still leaves the ledger clean', async () => {
    // Prepare: the part in flight hangs, so the first SIGINT's clean stop cannot complete.
    let release = (): void => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    let at = 0;
    const setup = onFirstPart((child) => {
      at = Date.now();
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGINT'), 300);
      return { hold };
    });
    try {
      // Act
      const out = await interrupted(setup);
      // Assess
      expect(Date.now() - at).toBeLessThan(5_000);
      expect(out.code, out.stderr).toBe(130);
      expect(out.run.status).toBe('failed');
      expect(out.run.error).toMatch(/interrupted twice by SIGINT/);
      expect(published.get(out.run.runId)).toBeUndefined();
    } finally {
      release();
    }
    // The quit process may leave its multipart upload for the lifecycle rule (README "Run lifecycle").
    for (const u of await h.stack.s3.unfinishedUploads('crashcli-data')) killedUploads.add(u.uploadId);
    await assertLedgerAndReceipts(cli);
    expect((await exportNow(cli)).ok).toBe(true);
    await assertExact(cli);
  });
});

describe('source sessions', () => {
  it('carry an idle-in-transaction timeout, a statement timeout and TCP keepalives (configured limits are kept)', async () => {
    // Prepare
    const session = sourceSession(settings());
    const show = async (url: string, s = session) => {
      const c = sourceClient(url, 'dropship session-test', s);
      await connectSource(c, s);
      try {
        const r = await c.query(`select current_setting('statement_timeout') as st,
            current_setting('idle_in_transaction_session_timeout') as idle, current_setting('tcp_keepalives_idle') as ka`);
        return r.rows[0] as { st: string; idle: string; ka: string };
      } finally {
        await c.end();
      }
    };
    // Act + Assess
    expect(await show(h.stack.databaseUrl)).toEqual({ st: '2h', idle: '5min', ka: '30' });
    expect((await show(`${h.stack.databaseUrl}?options=-c%20statement_timeout%3D200`)).st).toBe('200ms');
    // A transaction left idle (a frozen exporter) is ended by Postgres.
    const short = sourceSession(settings({ DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: '1' }));
    const c = sourceClient(h.stack.databaseUrl, 'dropship session-test', short);
    await connectSource(c, short);
    await c.query('begin');
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(c.query('select 1')).rejects.toThrow(/idle-in-transaction timeout|terminat|Connection/i);
    await c.end().catch(() => {});
  });

  it('the run owner keeps its snapshot holder alive under a short idle-in-transaction timeout', async () => {
    // Prepare: a slow S3, so the run lasts several times the 1 s timeout.
    const slow: Fault = (r) => (r.bucket === 'crashcli-data' ? { delayMs: 400 } : undefined);
    h.stack.s3.faults.push(slow);
    const out = await exportNow(cli, {
      // One table at a time: the holder sits idle while the big table is exported, longer than 1 s.
      settings: settings({
        DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: '1',
        DROPSHIP_RUN_STALE_SECONDS: '2',
        DROPSHIP_TABLE_CONCURRENCY: '1',
      }),
    });
    h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    expect(out.ok, JSON.stringify(out)).toBe(true);
    await assertExact(cli);
  });
});

describe('chaos loop', () => {
  it('20 seeded iterations: SIGKILL at a random moment, export again until it succeeds; every success is exact', async () => {
    let seed = 0x5eed10;
    const random = (): number => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { child, exit } = spawnExport(chaos);
      const delay = Math.floor(random() * 2500);
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const end = await exit;
      clearTimeout(timer);
      if (end.signal !== 'SIGKILL') {
        // The export finished before the kill: it must have succeeded, exactly.
        expect(end.code, end.stderr).toBe(0);
        outcomes.push('finished');
        await assertExact(chaos);
      } else outcomes.push(`killed@${delay}ms`);
      // Export again until it succeeds (the dead owner's run is ended at once: its lock is gone).
      let ok = false;
      for (let attempt = 0; attempt < 3 && !ok; attempt++) ok = (await exportNow(chaos)).ok;
      expect(ok, `iteration ${i}`).toBe(true);
      await assertExact(chaos);
    }
    await assertLedgerAndReceipts(chaos);
    expect(outcomes.filter((o) => o.startsWith('killed')).length).toBeGreaterThanOrEqual(10);
  }, 240_000);
});

describe('crash matrix: Lambda (the handler abandoned, its database sessions terminated)', () => {
  const base = { getRemainingTimeInMillis: () => 15 * 60_000 };

  /** A fresh Lambda instance with this crash point (or none). */
  async function instance(point?: CrashPoint): Promise<void> {
    await resetLambdaDeps();
    process.env.DROPSHIP_TEST_CRASH_MODE = 'hang';
    if (point) process.env.DROPSHIP_TEST_CRASH_AT = point;
    else delete process.env.DROPSHIP_TEST_CRASH_AT;
  }

  /** Everything a dead Lambda had open in Postgres is gone (as when its instance is reclaimed). */
  async function terminateLambdaSessions(): Promise<void> {
    await h.pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where pid <> pg_backend_pid() and (application_name = 'dropship-lambda' or application_name like 'dropship crash%')`,
    );
  }

  async function receive(max = 10): Promise<{ messageId: string; receiptHandle: string; body: string }[]> {
    // The real queue's visibility timeout is 6 × the worker timeout: an unanswered message stays away.
    const res = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: h.stack.taskQueueUrl, MaxNumberOfMessages: max, VisibilityTimeout: 5400 }),
    );
    return (res.Messages ?? []).map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
    }));
  }

  /** The next `n` messages of this run (messages of earlier runs — resent duplicates — are delivered on the way). */
  async function receiveFor(
    runId: string,
    n: number,
  ): Promise<{ messageId: string; receiptHandle: string; body: string }[]> {
    const mine: { messageId: string; receiptHandle: string; body: string }[] = [];
    for (let round = 0; round < 20 && mine.length < n; round++) {
      for (const m of await receive(n - mine.length)) {
        if ((JSON.parse(m.body) as { runId: string }).runId === runId) mine.push(m);
        else await deliver(m);
      }
    }
    return mine;
  }

  async function deliver(m: { messageId: string; receiptHandle: string; body: string }): Promise<void> {
    const out = (await worker({ Records: [m] }, base)) as { batchItemFailures: { itemIdentifier: string }[] };
    if (out.batchItemFailures.length === 0)
      await sqs.send(new DeleteMessageCommand({ QueueUrl: h.stack.taskQueueUrl, ReceiptHandle: m.receiptHandle }));
  }

  /** The event source mapping, until the run has ended. */
  async function drain(runId: string): Promise<void> {
    for (let round = 0; round < 100; round++) {
      const run = await h.ledger.getRun(runId);
      if (run && run.status !== 'running' && run.status !== 'finishing') return;
      const batch = await receive();
      if (batch.length === 0) await new Promise((r) => setTimeout(r, 100));
      for (const m of batch) await deliver(m);
    }
  }

  /** Runs `act` until it reaches the crash point, then abandons it. */
  async function crashAt(point: CrashPoint, act: () => Promise<unknown>): Promise<void> {
    await instance(point);
    let off: () => unknown = () => {};
    const reached = new Promise<void>((resolve) => {
      off = onCrashPoint((p) => p === point && resolve());
    });
    void act().catch(() => {});
    await reached;
    off();
    await terminateLambdaSessions();
    await instance();
  }

  async function openedRun(c: Customer): Promise<string> {
    return (await latestRun(c)).runId;
  }

  async function nextExportIsExact(c: Customer): Promise<void> {
    const opened = (await exportAccountHandler({ accountId: c.destination.accountId })) as { runId: string };
    await drain(opened.runId);
    expect((await h.ledger.getRun(opened.runId))?.status).toBe('succeeded');
    await assertExact(c);
    await assertLedgerAndReceipts(c);
  }

  const openPoints: CrashPoint[] = ['after-open-run', 'during-send', 'after-send'];
  it.each(openPoints)('opener dies at %s: the sweeper sends the tasks again; the run completes', async (point) => {
    // Act
    await crashAt(point, () => exportAccountHandler({ accountId: 'crashlam' }));
    const runId = await openedRun(lam);
    expect((await h.ledger.getRun(runId))?.dispatchedAt).toBeNull();
    await pastTheBound(runId);
    const swept = (await sweeper({})) as { runs: { runId: string; action: string }[] };
    // Assess
    expect(swept.runs).toEqual([expect.objectContaining({ runId, action: 'resent' })]);
    await drain(runId);
    expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    await assertLedgerAndReceipts(lam);
    await nextExportIsExact(lam);
  });

  it('a worker dies mid-COPY: after its lease the sweeper sends the task again; the run completes', async () => {
    await instance();
    const { runId } = (await exportAccountHandler({ accountId: 'crashbig' })) as { runId: string };
    const [m] = await receiveFor(runId, 1);
    await crashAt('mid-copy', () => worker({ Records: [m] }, base));
    const task = (await h.ledger.tasks(runId))[0]!;
    expect(task).toMatchObject({ status: 'running', attempts: 1 });
    // A delivery while the dead attempt's lease is still valid answers "busy" and puts the message back
    // until that lease runs out — one receive, not one per visibility timeout until it is dead-lettered.
    await deliver(m!);
    const queued = h.stack.sqs.queues.get(h.stack.taskQueueUrl)!.messages.find((x) => x.body === m!.body)!;
    const back = (queued.visibleAt - Date.now()) / 1000;
    expect(back).toBeGreaterThan(900);
    expect(back).toBeLessThan(970);
    expect((await h.ledger.tasks(runId))[0]).toMatchObject({ status: 'running', attempts: 1 });
    await pastTheBound(runId);
    const swept = (await sweeper({})) as { runs: { runId: string; action: string }[] };
    expect(swept.runs).toEqual([expect.objectContaining({ runId, action: 'resent' })]);
    await drain(runId);
    expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    expect((await h.ledger.tasks(runId))[0]).toMatchObject({ status: 'succeeded', attempts: 2 });
    await assertLedgerAndReceipts(lamBig);
    await nextExportIsExact(lamBig);
  });

  it('a worker dies mid-upload: the redelivery completes the run; the dead upload is aborted, not left', async () => {
    await instance();
    const { runId } = (await exportAccountHandler({ accountId: 'crashbig' })) as { runId: string };
    const [m] = await receiveFor(runId, 1);
    let release = (): void => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    let held = false;
    let reached = (): void => {};
    const atPart = new Promise<void>((r) => {
      reached = r;
    });
    const fault = (r: { bucket: string; query: URLSearchParams }) => {
      if (held || r.bucket !== 'crashbig-data' || !r.query.has('partNumber')) return undefined;
      held = true;
      reached();
      return { hold };
    };
    h.stack.s3.faults.push(fault);
    const abandoned = worker({ Records: [m] }, base).catch(() => {});
    try {
      await atPart;
      await terminateLambdaSessions();
      await instance();
      await pastTheBound(runId);
      await sweeper({});
      await drain(runId);
      expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
      release();
    }
    // The dead attempt's connection to S3 is cut: its upload is aborted; its late ledger writes are fenced.
    await abandoned;
    expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
    await assertLedgerAndReceipts(lamBig);
    await nextExportIsExact(lamBig);
  });

  const finishPoints: CrashPoint[] = ['after-last-task', 'before-receipt-put', 'after-receipt-put'];
  it.each(finishPoints)(
    'the finisher dies at %s: the sweeper finishes the run (one receipt content)',
    async (point) => {
      // Prepare: every task but one done normally. The run's snapshot holder died before any task ran
      // (its role is taken, its snapshot gone), so no worker exports other tasks than its message's
      // (src/run/shared-snapshot.ts) and the last message's worker is the finisher.
      await instance();
      const { runId } = (await exportAccountHandler({ accountId: 'crashlam' })) as { runId: string };
      expect(await h.ledger.snapshot.claimHolder({ runId, holder: 'a holder that died' })).toBe(true);
      await h.ledger.snapshot.record({ runId, exportId: '00000003-000000AB-1', id: '1:1:', at: 'gone' });
      const messages = await receiveFor(runId, 12);
      expect(messages).toHaveLength(12);
      for (const m of messages.slice(0, -1)) await deliver(m);
      // Act: the last task's worker dies at the point.
      await crashAt(point, () => worker({ Records: [messages.at(-1)!] }, base));
      const dead = await h.ledger.getRun(runId);
      expect(dead?.status).toBe(point === 'after-last-task' ? 'running' : 'finishing');
      expect(published.get(runId)?.length ?? 0).toBe(point === 'after-receipt-put' ? 1 : 0);
      await pastTheBound(runId);
      const swept = (await sweeper({})) as { runs: { runId: string; action: string }[] };
      // Assess
      expect(swept.runs).toEqual([expect.objectContaining({ runId, action: 'finished' })]);
      expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
      expect(published.get(runId)).toHaveLength(point === 'after-receipt-put' ? 2 : 1);
      await assertLedgerAndReceipts(lam);
      await nextExportIsExact(lam);
    },
  );

  it('cancel by Lambda invoke while a worker exports: the worker stops within seconds, no receipt, no upload left', async () => {
    // Prepare: a short bound (the worker checks its run every 500 ms) and slow parts.
    await instance();
    process.env.DROPSHIP_RUN_STALE_SECONDS = '2';
    const slow: Fault = (r) =>
      r.bucket === 'crashbig-data' && r.query.has('partNumber') ? { delayMs: 1000 } : undefined;
    h.stack.s3.faults.push(slow);
    try {
      const { runId } = (await exportAccountHandler({ accountId: 'crashbig' })) as { runId: string };
      const [m] = await receiveFor(runId, 1);
      const { lambdaDeps } = await import('../src/run/lambda.js');
      const { runTask } = await import('../src/run/task.js');
      const deps = await lambdaDeps();
      const working = runTask(JSON.parse(m!.body), { ...deps, signal: new AbortController().signal });
      for (let i = 0; i < 100 && (await h.ledger.tasks(runId))[0]?.status !== 'running'; i++)
        await new Promise((r) => setTimeout(r, 50));
      // Act
      const res = (await sweeper({ cancel: runId })) as { status: string };
      const t0 = Date.now();
      await working;
      // Assess
      expect(res.status).toBe('cancelled');
      expect(Date.now() - t0).toBeLessThan(5_000);
      // It stopped because it saw the run cancelled (not because its result was refused afterwards).
      expect(await working).toMatchObject({ status: 'failed', reason: expect.stringMatching(/was cancelled/) });
      expect((await h.ledger.getRun(runId))?.status).toBe('cancelled');
      expect((await h.ledger.tasks(runId))[0]?.status).toBe('failed');
      expect(published.get(runId)).toBeUndefined();
      await assertLedgerAndReceipts(lamBig);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
      delete process.env.DROPSHIP_RUN_STALE_SECONDS;
      await instance();
    }
  });

  it('cancel by Lambda invoke: the run is cancelled, its tasks do nothing, no receipt', async () => {
    await instance();
    const { runId } = (await exportAccountHandler({ accountId: 'crashlam' })) as { runId: string };
    const res = (await sweeper({ cancel: runId })) as { status: string };
    expect(res.status).toBe('cancelled');
    for (let i = 0; i < 3; i++) for (const m of await receive()) await deliver(m);
    expect((await h.ledger.getRun(runId))?.status).toBe('cancelled');
    expect(published.get(runId)).toBeUndefined();
    expect((await h.ledger.tasks(runId)).every((t) => t.status === 'failed' && t.attempts === 0)).toBe(true);
    await assertLedgerAndReceipts(lam);
  });
});
