import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type pg from 'pg';
import type { Registry } from '../../src/accounts/registry.js';
import type { Settings } from '../../src/config/settings.js';
import type { Receipt } from '../../src/contracts/receipt.js';
import { quoteLiteral } from '../../src/contracts/sql.js';
import { messageLabel, messageTasks, type TaskMessage } from '../../src/contracts/task.js';
import { trustPolicy } from '../../src/destinations/s3/policies.js';
import type { Fault, S3EventRecord } from '../../src/devstack/s3.js';
import type { LocalStack } from '../../src/devstack/stack.js';
import { createLogger } from '../../src/log/logger.js';
import { dispatchOutcomes } from '../../src/notify/dispatch.js';
import { deliverPending } from '../../src/notify/outcome.js';
import { StatusStore, webhookKey } from '../../src/notify/store.js';
import { encryptSecret, generateSecret } from '../../src/notify/webhook.js';
import { startFanOutRun } from '../../src/run/drivers/fan-out.js';
import { exportAccount } from '../../src/run/drivers/in-process.js';
import { runTask } from '../../src/run/drivers/task.js';
import { type CrashPoint, crashFaults, onCrashPoint } from '../../src/run/lifecycle/crash.js';
import { type Faults, noFaults } from '../../src/run/lifecycle/faults.js';
import { sweepRuns } from '../../src/run/liveness/sweep.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import type { Ledger } from '../../src/store/ledger/ledger.js';
import { publicationSessionName } from '../../src/store/ledger/publication.js';
import type { duck } from '../duck.js';
import { type Action, describeAction, type FanOutCrash, type Sequence, type UpdateField } from './actions.js';

/**
 * The model behind test/binding-model.test.ts: one "day" of an account per generated sequence.
 * It plays the operator's actions against the real registry, the two export paths against the
 * local stack, and keeps what the promise says must hold: which destination version (generation +
 * version) each run opened for. After every step it checks every object S3 recorded as created —
 * attributed to its run through the assumed-role session name dropship gives every run
 * (`dropship-<account>-<runId>`) — and every receipt in every bucket of the day.
 */
export const TABLES = ['t1', 't2'] as const;
const PREFIXES = ['', 'p1', 'p2/deep'] as const;
const CODECS = ['gzip', 'zstd', 'snappy'] as const;
type Codec = (typeof CODECS)[number];
const PARQUET_CODEC: Record<Codec, string> = { gzip: 'GZIP', zstd: 'ZSTD', snappy: 'SNAPPY' };
const ROWS = 3;
const silentLog = createLogger({ level: 'silent' });
const silent = new LogReporter(silentLog);

/** A destination version: what a run must deliver with, fixed when it opens. */
export interface Version {
  /** `g<generation>v<version>`, for messages. */
  label: string;
  gen: number;
  ver: number;
  bucket: string;
  prefix: string;
  roleArn: string;
  schema: string;
  compression: Codec;
  changes: boolean;
  excludeTables: string[];
  excludeColumns: string[];
  plan: 'paid' | 'free';
}

interface Customer {
  gen: number;
  awsAccountId: string;
  roles: [string, string];
  buckets: [string, string];
  schemas: [string, string];
}

export interface ModelRun {
  runId: string;
  day: number;
  gen: number;
  path: 'cli' | 'fan-out';
  version: Version;
  /** The run's folder as the ledger opened it (null: it never opened). */
  folder: string | null;
  /** The step whose operator action changed or removed the run's destination version. */
  supersededBy: string | null;
}

/**
 * The customers' webhook receivers: one URL per day and customer generation
 * (`/d<day>/g<gen>`), every POST kept; a receiver that is down answers 503.
 */
export class Receivers {
  private server: Server | undefined;
  private received: { path: string; body: string }[] = [];
  readonly down = new Set<string>();
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = this.down.has(path) ? 503 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  take(): { path: string; body: string }[] {
    const out = this.received;
    this.received = [];
    return out;
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }
}

/** What every day shares: the stack, dropship's parts, the S3 event log, all runs by id. */
export class ModelContext {
  readonly runs = new Map<string, ModelRun>();
  /** Which day and generation each bucket belongs to (one customer's, for good). */
  readonly bucketOwner = new Map<string, { day: number; gen: number }>();
  private events: (S3EventRecord & { body?: string })[] = [];
  private customers = 0;
  /** Only these invariants fail a day (letters; all when undefined): to look for one kind of counterexample. */
  only: Set<string> | undefined;
  /** Milliseconds spent per kind of step (printed by the test: where the time goes). */
  readonly timings = new Map<string, { ms: number; n: number }>();

  time(kind: string, ms: number): void {
    const t = this.timings.get(kind) ?? { ms: 0, n: 0 };
    t.ms += ms;
    t.n++;
    this.timings.set(kind, t);
  }

  constructor(
    readonly stack: LocalStack,
    readonly pool: pg.Pool,
    readonly registry: Registry,
    readonly ledger: Ledger,
    readonly settings: Settings,
    readonly db: Awaited<ReturnType<typeof duck>>,
    readonly hooks: Receivers,
  ) {
    stack.s3.onEvent((e) => {
      // receipt.json and status.json are rewritten in place: keep each version's bytes as stored.
      const small = e.key.endsWith('receipt.json') || e.key.endsWith('status.json');
      this.events.push({ ...e, ...(small ? { body: readFileSync(this.path(e.bucket, e.key), 'utf8') } : {}) });
    });
  }

  /** Where s3rver keeps an object's bytes (read directly: DuckDB reads the files in place). */
  path(bucket: string, key: string): string {
    return join(this.stack.s3.directory, bucket, `${key}._S3rver_object`);
  }

  takeEvents(): (S3EventRecord & { body?: string })[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  nextCustomer(): number {
    return ++this.customers;
  }
}

/** `arn:aws:sts::<acct>:assumed-role/<role>/dropship-<account>-<runId>` → role ARN and run id. */
function sessionOf(principalArn: string): { roleArn: string; runId: string } | undefined {
  const m = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(principalArn);
  const run = m ? /(\d{8}T\d{6}Z-[0-9a-f]{6})$/.exec(m[3]!) : null;
  if (!m || !run) return undefined;
  return { roleArn: `arn:aws:iam::${m[1]}:role/${m[2]}`, runId: run[1]! };
}

const short = (runId: string) => runId.slice(-6);
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export class Day {
  readonly accountId: string;
  private readonly customers: Customer[] = [];
  private current: Version | null = null;
  private enabled = true;
  private readonly mailboxes = new Map<string, TaskMessage[]>();
  private readonly dayRuns: ModelRun[] = [];
  private readonly trace: string[] = [];
  /** Per generation: the receipts published, by run (sequence, sha256 of the exact bytes). */
  private readonly chains = new Map<number, Map<string, { sequence: number; sha: string; where: string }>>();
  private mutations = 0;
  /** The source schemas created for the day's customers. */
  private readonly schemas = new Set<string>();
  private step = 'setup';

  constructor(
    private readonly ctx: ModelContext,
    readonly day: number,
  ) {
    this.accountId = `bm${day}`;
  }

  /** Plays the sequence; throws at the first step after which an invariant does not hold. */
  async play(s: Sequence): Promise<void> {
    this.step = 'step 0: add';
    let t = performance.now();
    const lap = (kind: string) => {
      const now = performance.now();
      this.ctx.time(kind, now - t);
      t = now;
    };
    await this.add(s.init);
    lap('add');
    await this.assertInvariants();
    lap('check');
    for (const [i, a] of s.actions.entries()) {
      this.step = `step ${i + 1}: ${describeAction(a)}`;
      await this.apply(a);
      lap(a.k);
      await this.assertInvariants();
      lap('check');
    }
    if (process.env.DROPSHIP_MODEL_TRACE) console.log(`day ${this.day}:\n${this.trace.join('\n')}`);
  }

  private log(line: string): void {
    this.trace.push(`  ${this.step} → ${line}`);
  }

  private async assertInvariants(): Promise<void> {
    const only = this.ctx.only;
    const violations = (await this.check()).filter((v) => !only || only.has(v.slice(1, 2)));
    if (violations.length > 0)
      throw new Error(
        `after ${this.step}:\n${violations.map((v) => `  ${v}`).join('\n')}\ntrace (account ${this.accountId}):\n${this.trace.join('\n')}`,
      );
  }

  // ---------------------------------------------------------------- the operator

  private async add(pick: number): Promise<void> {
    const gen = this.customers.length + 1;
    const n = this.ctx.nextCustomer();
    const schemas: [string, string] = [`bm${this.day}g${gen}a`, `bm${this.day}g${gen}b`];
    // The second schema is created when an update first needs it.
    await this.createSchema(schemas[0]);
    const awsAccountId = String(400_000_000_000 + n);
    const c: Customer = {
      gen,
      awsAccountId,
      roles: [`arn:aws:iam::${awsAccountId}:role/bm-export-1`, `arn:aws:iam::${awsAccountId}:role/bm-export-2`],
      buckets: [`bm-${this.day}-g${gen}-a`, `bm-${this.day}-g${gen}-b`],
      schemas,
    };
    const v: Version = {
      label: `g${gen}v1`,
      gen,
      ver: 1,
      bucket: c.buckets[0],
      prefix: PREFIXES[pick % 3]!,
      roleArn: c.roles[0],
      schema: c.schemas[0],
      compression: CODECS[(pick >> 2) % 2]!,
      changes: (pick & 2) !== 0,
      excludeTables: [],
      excludeColumns: [],
      plan: 'paid',
    };
    const dest = await this.ctx.registry.add({
      accountId: this.accountId,
      plan: v.plan,
      bucket: v.bucket,
      prefix: v.prefix,
      region: 'us-east-1',
      roleArn: v.roleArn,
      sourceSchema: v.schema,
      compression: v.compression,
      changes: v.changes,
    });
    // The new customer's side, as docs/customer/setup.md tells them: buckets, and roles that trust dropship with
    // this registration's external ID and may write both buckets.
    const write = {
      Statement: [
        {
          Effect: 'Allow' as const,
          Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
          Resource: c.buckets.map((b) => `arn:aws:s3:::${b}/*`),
        },
      ],
    };
    await this.ctx.stack.applyWorld({
      accounts: {
        [awsAccountId]: {
          buckets: c.buckets.map((name) => ({ name, region: 'us-east-1' })),
          roles: ['bm-export-1', 'bm-export-2'].map((name) => ({
            name,
            trustPolicy: trustPolicy(dest, this.ctx.stack.platform.arn),
            policies: [write],
          })),
          users: [],
        },
      },
    });
    // The customer's webhook (set as `destinations update --webhook-url` does).
    const secret = encryptSecret(generateSecret(), await webhookKey(this.ctx.settings));
    await new StatusStore(this.ctx.pool).setWebhook(
      this.accountId,
      dest.generation,
      `${this.ctx.hooks.base}/d${this.day}/g${gen}`,
      secret,
    );
    for (const b of c.buckets) this.ctx.bucketOwner.set(b, { day: this.day, gen });
    this.customers.push(c);
    this.chains.set(gen, new Map());
    this.current = v;
    this.enabled = true;
    this.log(`added for customer ${gen}: ${this.describe(v)}`);
  }

  /** A customer's source schema: the same tables for every customer, rows carrying the schema's token. */
  private async createSchema(s: string): Promise<void> {
    const rows = (t: string) =>
      `insert into ${s}.${t} select '${s}-' || i, '${s}', i from generate_series(1, ${ROWS}) i;`;
    await this.ctx.pool.query(
      `create schema if not exists ${s};
       ${TABLES.map((t) => `create table if not exists ${s}.${t} (id text primary key, customer text not null, n int not null); ${rows(t)}`).join('\n')}`,
    );
    this.schemas.add(s);
  }

  private describe(v: Version): string {
    return `${v.label} s3://${v.bucket}/${v.prefix} role …${v.roleArn.slice(-12)} schema ${v.schema} ${v.compression}${v.changes ? ' changes' : ''}${v.excludeTables.length ? ` -${v.excludeTables}` : ''}${v.excludeColumns.length ? ` -${v.excludeColumns}` : ''} ${v.plan}`;
  }

  /** Every open run of the account now serves a version that is no longer the destination. */
  private supersede(): void {
    for (const r of this.dayRuns) r.supersededBy ??= this.step;
  }

  private async update(field: UpdateField, pick: number): Promise<void> {
    const v = this.current;
    if (!v) return this.log('no destination: nothing to update');
    const c = this.customers[v.gen - 1]!;
    const other = <T>(pair: readonly [T, T], cur: T): T => (pair[0] === cur ? pair[1] : pair[0]);
    const next: Version = { ...v, ver: v.ver + 1, label: `g${v.gen}v${v.ver + 1}` };
    let patch: Parameters<Registry['update']>[1];
    switch (field) {
      case 'bucket':
        next.bucket = other(c.buckets, v.bucket);
        patch = { bucket: next.bucket };
        break;
      case 'prefix': {
        const i = PREFIXES.indexOf(v.prefix as (typeof PREFIXES)[number]);
        next.prefix = PREFIXES[(i + 1 + (pick % 2)) % 3]!;
        patch = { prefix: next.prefix };
        break;
      }
      case 'role':
        next.roleArn = other(c.roles, v.roleArn);
        patch = { roleArn: next.roleArn };
        break;
      case 'schema':
        next.schema = other(c.schemas, v.schema);
        if (!this.schemas.has(next.schema)) await this.createSchema(next.schema);
        patch = { sourceSchema: next.schema };
        break;
      case 'codec': {
        const i = CODECS.indexOf(v.compression);
        next.compression = CODECS[(i + 1 + (pick % 2)) % 3]!;
        patch = { compression: next.compression };
        break;
      }
      case 'changes':
        next.changes = !v.changes;
        patch = { changes: next.changes };
        break;
      case 'excludeTables':
        next.excludeTables = v.excludeTables.length ? [] : ['t2'];
        patch = { selection: { excludeTables: next.excludeTables } };
        break;
      case 'excludeColumns':
        next.excludeColumns = v.excludeColumns.length ? [] : ['t1.n'];
        patch = { selection: { excludeColumns: next.excludeColumns } };
        break;
      case 'plan':
        next.plan = v.plan === 'paid' ? 'free' : 'paid';
        patch = { plan: next.plan };
        break;
    }
    try {
      await this.ctx.registry.update(this.accountId, patch);
    } catch (e) {
      return this.log(`refused: ${(e as Error).message}`);
    }
    this.current = next;
    if (field !== 'plan') this.supersede();
    this.log(this.describe(next));
  }

  private async remove(): Promise<void> {
    if (!this.current) return this.log('no destination: nothing to remove');
    try {
      await this.ctx.registry.remove(this.accountId);
    } catch (e) {
      return this.log(`refused: ${(e as Error).message}`);
    }
    this.current = null;
    this.supersede();
    this.log('removed');
  }

  private async apply(a: Action): Promise<void> {
    switch (a.k) {
      case 'update':
        return this.update(a.field, a.pick);
      case 'remove':
        return this.remove();
      case 'readd':
        if (this.current) await this.remove();
        if (this.current) return; // removal refused
        return this.add(a.pick);
      case 'disable':
      case 'enable':
        if (!this.current) return this.log('no destination');
        await this.ctx.registry.setEnabled(this.accountId, a.k === 'enable');
        this.enabled = a.k === 'enable';
        return this.log(a.k === 'enable' ? 'enabled' : 'disabled');
      case 'mutate':
        return this.mutate(a.pick);
      case 'webhook': {
        if (!this.current) return this.log('no destination');
        const path = `/d${this.day}/g${this.current.gen}`;
        if (a.down) this.ctx.hooks.down.add(path);
        else this.ctx.hooks.down.delete(path);
        return this.log(`customer ${this.current.gen}'s receiver ${a.down ? 'down' : 'up'}`);
      }
      case 'exportCli':
        return this.exportCli();
      case 'fanOut':
        return this.fanOut(a.crash);
      case 'deliver':
        return this.deliver(a);
      case 'sweep':
        return this.sweep(a.stale);
    }
  }

  private async mutate(pick: number): Promise<void> {
    const v = this.current;
    if (!v) return this.log('no destination');
    const t = TABLES[pick % 2]!;
    if (pick & 2) {
      await this.ctx.pool.query(`delete from ${v.schema}.${t} where id = (select min(id) from ${v.schema}.${t})`);
      this.log(`deleted a row of ${v.schema}.${t}`);
    } else {
      const id = `${v.schema}-m${++this.mutations}`;
      await this.ctx.pool.query(`insert into ${v.schema}.${t} values ($1, $2, 0)`, [id, v.schema]);
      this.log(`inserted ${id}`);
    }
  }

  // ---------------------------------------------------------------- the platform

  private route = async (messages: TaskMessage[]): Promise<void> => {
    for (const m of messages) {
      const box = this.mailboxes.get(m.runId) ?? [];
      box.push(m);
      this.mailboxes.set(m.runId, box);
    }
  };

  private async register(runId: string, path: ModelRun['path'], v: Version): Promise<ModelRun> {
    const folder = (await this.ctx.ledger.getRun(runId))?.folder ?? null;
    const r: ModelRun = { runId, day: this.day, gen: v.gen, path, version: v, folder, supersededBy: null };
    this.ctx.runs.set(runId, r);
    this.dayRuns.push(r);
    return r;
  }

  private async exportCli(): Promise<void> {
    const v = this.current;
    if (!v) return this.log('no destination');
    // A run its pre-open sweep cannot end refuses the export only after 2 s of retries
    // (openRunAfterSweep): not worth waiting for, the outcome is known.
    const blocking = (await this.ctx.ledger.activeRuns(this.accountId)).find(
      (r) =>
        !(r.status === 'finishing' && r.finishLeaseExpired) &&
        !(r.tasksTotal > 0 && r.tasksSucceeded === r.tasksTotal && r.silentSeconds > r.staleSeconds) &&
        !(r.owner !== 'fan-out' && (r.ownerGone || r.silentSeconds > r.staleSeconds)),
    );
    if (blocking) return this.log(`not attempted: run …${short(blocking.runId)} is open`);
    const dest = await this.ctx.registry.get(this.accountId);
    const out = await exportAccount(dest, {
      sourceUrl: this.ctx.stack.databaseUrl,
      settings: this.ctx.settings,
      reporter: silent,
      ledger: this.ctx.ledger,
      trigger: 'cli',
    });
    await this.register(out.runId, 'cli', v);
    this.log(
      `run …${short(out.runId)} (${v.label}${this.enabled ? '' : ', disabled'}) ${out.ok ? 'succeeded' : `failed: ${(out.error as Error)?.message?.slice(0, 160)}`}`,
    );
  }

  /** A fault hook at which the caller hangs for good at `point` (the crash-matrix hook, src/run/lifecycle/crash.ts). */
  private dying(point: CrashPoint | 'none'): { faults: Faults; died: Promise<void>; off: () => void } {
    if (point === 'none') return { faults: noFaults, died: new Promise(() => {}), off: () => {} };
    let reached!: () => void;
    const died = new Promise<void>((r) => {
      reached = r;
    });
    const off = onCrashPoint((p) => {
      if (p === point) reached();
    });
    return {
      faults: crashFaults({ DROPSHIP_TEST_CRASH_AT: point, DROPSHIP_TEST_CRASH_MODE: 'hang' }),
      died,
      off,
    };
  }

  /** A dead worker's sessions end (as its process would): its snapshot and its publication's hold are gone. */
  private async endSourceSessions(): Promise<void> {
    await this.ctx.pool.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where application_name = any($1::text[])',
      [[`dropship ${this.accountId}`, `dropship ${this.accountId} snapshot`, publicationSessionName(this.accountId)]],
    );
  }

  private async fanOut(crash: FanOutCrash): Promise<void> {
    const v = this.current;
    if (!v) return this.log('no destination');
    const dest = await this.ctx.registry.get(this.accountId);
    const dying = this.dying(crash);
    try {
      const started = startFanOutRun(dest, {
        sourceUrl: this.ctx.stack.databaseUrl,
        ledger: this.ctx.ledger,
        settings: this.ctx.settings,
        faults: dying.faults,
        queue: { send: this.route },
        trigger: 'manual',
      });
      const res = await Promise.race([started, dying.died.then(() => undefined)]);
      if (!res) {
        // The opener is dead: its run is whichever active run of the account the model does not know yet.
        const run = (await this.ctx.ledger.activeRuns(this.accountId)).find((r) => !this.ctx.runs.has(r.runId));
        if (run) await this.register(run.runId, 'fan-out', v);
        return this.log(`run …${run ? short(run.runId) : '?'} (${v.label}) opened; the opener died ${crash}`);
      }
      const { run, tasks } = res;
      await this.register(run.runId, 'fan-out', v);
      this.log(`run …${short(run.runId)} (${v.label}) opened, ${tasks} task(s)${run.error ? `: ${run.error}` : ''}`);
    } catch (e) {
      this.log(`refused: ${(e as Error).message.slice(0, 160)}`);
    } finally {
      dying.off();
    }
  }

  private async deliver(a: Extract<Action, { k: 'deliver' }>): Promise<void> {
    const open = this.dayRuns.filter((r) => (this.mailboxes.get(r.runId)?.length ?? 0) > 0);
    if (open.length === 0) return this.log('no message to deliver');
    const r = open[a.run % open.length]!;
    const box = this.mailboxes.get(r.runId)!;
    const i = a.msg % box.length;
    const msg = box[i]!;
    if (!a.dup) box.splice(i, 1);
    const kill = new AbortController();
    const fault: Fault = (req) =>
      req.method === 'PUT' && req.key.endsWith('receipt.json') && req.principal.arn.endsWith(r.runId)
        ? { status: 500, code: 'InternalError', message: 'injected: the receipt PUT fails' }
        : undefined;
    if (a.failReceipt) this.ctx.stack.s3.faults.push(fault);
    const dying = this.dying(a.crash);
    let outcome: string;
    try {
      const task = runTask(msg, {
        sourceUrl: this.ctx.stack.databaseUrl,
        ledger: this.ctx.ledger,
        registry: this.ctx.registry,
        settings: this.ctx.settings,
        faults: dying.faults,
        signal: kill.signal,
        // The worker dies as soon as it starts helping with another task (that task is abandoned mid-way).
        ...(a.help
          ? {}
          : {
              onProgress: (p: { table: string }) => {
                if (!messageTasks(msg).some((t) => t.table === p.table))
                  kill.abort(new Error('the worker was killed while helping'));
              },
            }),
      });
      const out = await Promise.race([task, dying.died.then(() => undefined)]);
      if (!out) {
        // The worker died: its sessions end, and the queue delivers its message again later.
        await this.endSourceSessions();
        outcome = `the worker died ${a.crash}`;
        if (!a.dup) box.push(msg);
      } else {
        outcome = `${out.status}${'reason' in out ? `: ${out.reason.slice(0, 160)}` : ''}`;
        if (out.status === 'retry' && !a.dup) box.push(msg);
      }
    } catch (e) {
      outcome = `threw: ${(e as Error).message.slice(0, 160)}`;
      if (!a.dup) box.push(msg);
    } finally {
      dying.off();
      if (a.failReceipt) this.ctx.stack.s3.faults.splice(this.ctx.stack.s3.faults.indexOf(fault), 1);
    }
    const status = (await this.ctx.ledger.getRun(r.runId))?.status;
    this.log(`${messageLabel(msg)} of run …${short(r.runId)} (${r.version.label}): ${outcome}; run ${status}`);
  }

  private async sweep(stale: boolean): Promise<void> {
    if (stale) {
      await this.ctx.pool.query(
        `update dropship.runs set heartbeat_at = heartbeat_at - interval '1 day', lease_until = lease_until - interval '1 day'
          where account_id = $1`,
        [this.accountId],
      );
      await this.ctx.pool.query(
        `update dropship.run_tasks set lease_until = lease_until - interval '1 day'
          where lease_until is not null and run_id in (select run_id from dropship.runs where account_id = $1)`,
        [this.accountId],
      );
    }
    // What the sweeper Lambda does (handlers/sweeper.ts), its resent messages collected here.
    const swept = await sweepRuns({
      ledger: this.ctx.ledger,
      settings: this.ctx.settings,
      log: silentLog,
      destination: (accountId) => this.ctx.registry.get(accountId),
      resend: this.route,
      by: 'sweeper',
    });
    const acted = swept.filter((s) => s.action !== 'alive');
    // The outcome outbox (src/schedule/tidy.ts): outcomes not delivered yet (runs cancelled by a change of
    // the destination, ended by the sweep), then the webhooks still pending for this account.
    const told = await dispatchOutcomes({
      pool: this.ctx.pool,
      settings: this.ctx.settings,
      outbox: this.ctx.ledger.outcomes,
      log: silentLog,
    });
    const hooks = await deliverPending(
      { pool: this.ctx.pool, settings: this.ctx.settings },
      { accountId: this.accountId },
    ).catch((e: Error) => ({ error: e.message.slice(0, 120) }));
    this.log(
      `${acted.length ? acted.map((s) => `…${short(s.runId)} ${s.action}`).join(', ') : 'no run to act on'}; outcomes told ${told.delivered.length}; webhooks ${JSON.stringify(hooks)}`,
    );
  }

  /** Ends the day: open runs closed, the destination removed, the source schemas dropped. */
  async cleanup(): Promise<void> {
    await this.ctx.pool.query(
      `update dropship.runs set status = 'cancelled', finished_at = now(), lease_until = null, error = 'binding model: end of the day'
        where account_id = $1 and status in ('running', 'finishing')`,
      [this.accountId],
    );
    await this.ctx.registry.remove(this.accountId).catch(() => {});
    for (const c of this.customers) this.ctx.hooks.down.delete(`/d${this.day}/g${c.gen}`);
    if (this.schemas.size > 0)
      await this.ctx.pool.query([...this.schemas].map((s) => `drop schema if exists ${s} cascade;`).join(' '));
    this.ctx.takeEvents();
    this.ctx.hooks.take();
  }

  // ---------------------------------------------------------------- the invariants

  async check(): Promise<string[]> {
    const out: string[] = [];
    const latest = new Map<string, { bucket: string; key: string; run: ModelRun }>();
    for (const ev of this.ctx.takeEvents()) {
      const where = `s3://${ev.bucket}/${ev.key}`;
      const session = sessionOf(ev.principalArn);
      const run = session && this.ctx.runs.get(session.runId);
      if (!session || !run) {
        out.push(`(a) ${where} was written by ${ev.principalArn}, the session of no run`);
        continue;
      }
      const v = run.version;
      const by = `run …${short(run.runId)} (${run.path}, opened for ${v.label} s3://${v.bucket}/${v.prefix})`;
      const base = v.prefix ? `${v.prefix}/` : '';
      const name = ev.key.slice(ev.key.lastIndexOf('/') + 1);
      // The bytes as stored when S3 recorded the object; if another PUT of the same key was still
      // being written then, the bytes as they are now (that PUT has its own event).
      const body = (): string => {
        try {
          JSON.parse(ev.body ?? '');
          return ev.body!;
        } catch {
          return readFileSync(this.ctx.path(ev.bucket, ev.key), 'utf8');
        }
      };
      if (name === 'status.json') {
        this.checkStatus(ev.bucket, ev.key, body(), run, out);
        continue;
      }
      if (ev.bucket !== v.bucket || !ev.key.startsWith(base))
        out.push(`(a) ${where} was written by ${by}: not the bucket and prefix of the version it opened for`);
      if (session.roleArn !== v.roleArn)
        out.push(`(a) ${where} was written with role ${session.roleArn} by ${by}, which opened with ${v.roleArn}`);
      if (name === 'receipt.json') {
        this.checkPublished(where, ev.key === `${base}receipt.json`, body(), run, by, out);
        continue;
      }
      const inFolder = `${base}${run.folder}/`;
      if (run.folder === null || !ev.key.startsWith(inFolder)) {
        out.push(`(a) ${where} was written by ${by} outside its folder ${run.folder}`);
        continue;
      }
      const rest = ev.key.slice(inFolder.length).split('/');
      const table = rest[0]!;
      const isChange = rest[1] === '_changes';
      if (!TABLES.includes(table as (typeof TABLES)[number]) || v.excludeTables.includes(table))
        out.push(`(a) ${where}: table ${table} is not delivered by ${v.label} (written by ${by})`);
      if (isChange && !v.changes) out.push(`(a) ${where}: a change file, but ${v.label} has no change sets (${by})`);
      const suffix = v.compression === 'gzip' ? '.parquet.gz' : '.parquet';
      if (!name.endsWith(suffix) || (v.compression !== 'gzip' && name.endsWith('.gz')))
        out.push(`(a) ${where}: not named as ${v.label}'s codec ${v.compression} (written by ${by})`);
      latest.set(`${ev.bucket}/${ev.key}`, { bucket: ev.bucket, key: ev.key, run });
    }
    await this.checkFiles([...latest.values()], out);
    await this.checkReceipts(out);
    this.checkWebhooks(out);
    return out;
  }

  /** (a) for receipt.json written now, (d) its chain, and (f) no receipt after the version changed. */
  private checkPublished(where: string, ownKey: boolean, body: string, run: ModelRun, by: string, out: string[]): void {
    if (!ownKey) out.push(`(a) ${where}: a receipt written by ${by} is not at its prefix's receipt.json`);
    const r = JSON.parse(body) as Receipt;
    if (r.run_id !== run.runId) out.push(`(a) ${where}: receipt of run ${r.run_id} written by ${by}`);
    const chain = this.chains.get(run.gen)!;
    const sha = sha256(body);
    const mine = chain.get(run.runId);
    // Publishing again the same bytes at the same place (a finisher that died after its PUT) is no new delivery.
    if (run.supersededBy && !(mine && mine.sha === sha && mine.where === where))
      out.push(
        `(f) ${where}: ${by} published its receipt after its destination version was changed or removed (${run.supersededBy})`,
      );
    if (mine) {
      if (mine.sha !== sha) out.push(`(d) ${where}: run …${short(run.runId)} published a second, different receipt`);
      return;
    }
    const last = [...chain.entries()].map(([runId, e]) => ({ runId, ...e })).sort((x, y) => y.sequence - x.sequence)[0];
    const seq = r.sequence;
    const prev = r.previous_receipt_sha256 ?? null;
    if (!last && (seq !== 1 || prev !== null))
      out.push(
        `(d) ${where}: the first receipt of customer generation ${run.gen} has sequence ${seq}, previous ${prev ? `${prev.slice(0, 12)}…` : null} — it continues another generation's chain`,
      );
    if (last && (seq !== last.sequence + 1 || prev !== last.sha))
      out.push(
        `(d) ${where}: sequence ${seq} (previous ${prev ? `${prev.slice(0, 12)}…` : null}) of run …${short(run.runId)} does not follow customer ${run.gen}'s last published receipt: sequence ${last.sequence} of run …${short(last.runId)} at ${last.where} (sha256 ${last.sha.slice(0, 12)}…)`,
      );
    chain.set(run.runId, { sequence: seq ?? 0, sha, where });
  }

  /** status.json tells one customer (the bucket's) only about that customer's runs. */
  private checkStatus(bucket: string, key: string, body: string, run: ModelRun, out: string[]): void {
    const owner = this.ctx.bucketOwner.get(bucket);
    const where = `s3://${bucket}/${key}`;
    if (!owner || owner.day !== run.day || owner.gen !== run.gen)
      out.push(`(a) ${where} (customer ${owner?.gen}) was written by run …${short(run.runId)} of customer ${run.gen}`);
    const s = JSON.parse(body) as {
      last_run?: { run_id: string } | null;
      last_success?: { run_id: string } | null;
      last_failure?: { run_id: string } | null;
    };
    for (const id of [s.last_run?.run_id, s.last_success?.run_id, s.last_failure?.run_id]) {
      if (!id) continue;
      const told = this.ctx.runs.get(id);
      if (!told || !owner || told.day !== owner.day || told.gen !== owner.gen)
        out.push(
          `(a) ${where} (customer ${owner?.gen}) tells about run …${short(id)} of customer ${told ? told.gen : 'unknown'}`,
        );
    }
  }

  /** (c) every Parquet file written in this step holds only its run's version's rows, columns and codec. */
  private async checkFiles(files: { bucket: string; key: string; run: ModelRun }[], out: string[]): Promise<void> {
    if (files.length === 0) return;
    const byPath = new Map(files.map((f) => [this.ctx.path(f.bucket, f.key), f]));
    const list = `[${[...byPath.keys()].map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]`;
    const rows = await this.ctx.db.all(
      `select filename, id, customer from read_parquet(${list}, union_by_name = true, filename = true)`,
    );
    for (const row of rows) {
      const f = byPath.get(String(row.filename))!;
      const v = f.run.version;
      const id = row.id === null ? null : String(row.id);
      if (id === null || !id.startsWith(`${v.schema}-`) || (row.customer !== null && row.customer !== v.schema))
        out.push(
          `(c) s3://${f.bucket}/${f.key} (run …${short(f.run.runId)}, ${v.label}, schema ${v.schema}) holds a row of another version: id ${id}, customer ${String(row.customer)}`,
        );
    }
    const columns = await this.ctx.db.all(`select file_name, name from parquet_schema(${list})`);
    for (const c of columns) {
      const f = byPath.get(String(c.file_name))!;
      const table = f.key.split('/').at(-2) === '_changes' ? f.key.split('/').at(-3) : f.key.split('/').at(-2);
      if (f.run.version.excludeColumns.includes(`${table}.${String(c.name)}`))
        out.push(`(c) s3://${f.bucket}/${f.key}: column ${String(c.name)} is excluded by ${f.run.version.label}`);
    }
    const codecs = await this.ctx.db.all(`select distinct file_name, compression from parquet_metadata(${list})`);
    for (const c of codecs) {
      const f = byPath.get(String(c.file_name))!;
      const want = PARQUET_CODEC[f.run.version.compression];
      if (String(c.compression) !== want)
        out.push(
          `(c) s3://${f.bucket}/${f.key}: codec ${String(c.compression)}, but ${f.run.version.label} delivers ${want}`,
        );
    }
  }

  /** (e) a customer's webhook URL receives only events of that customer's runs. */
  private checkWebhooks(out: string[]): void {
    for (const { path, body } of this.ctx.hooks.take()) {
      const m = /^\/d(\d+)\/g(\d+)$/.exec(path);
      const ev = JSON.parse(body) as { type: string; account: string; run_id: string | null };
      const run = ev.run_id ? this.ctx.runs.get(ev.run_id) : undefined;
      if (!m || ev.account !== `bm${m[1]}` || (ev.run_id && (run?.day !== Number(m[1]) || run?.gen !== Number(m[2]))))
        out.push(
          `(e) webhook ${ev.type} of run ${ev.run_id ? `…${short(ev.run_id)}` : '-'} (customer ${run?.gen ?? '?'}) was sent to customer ${m?.[2]}'s URL ${path}`,
        );
    }
  }

  /** (b) every receipt in every bucket of the day lists only keys that exist under its own prefix and folder. */
  private async checkReceipts(out: string[]): Promise<void> {
    for (const c of this.customers)
      for (const bucket of c.buckets) {
        const keys = new Set(await this.ctx.stack.s3.keys(bucket));
        for (const key of keys) {
          if (!key.endsWith('receipt.json')) continue;
          const where = `s3://${bucket}/${key}`;
          const r = JSON.parse(readFileSync(this.ctx.path(bucket, key), 'utf8')) as Receipt;
          const run = this.ctx.runs.get(r.run_id);
          if (!run?.folder) {
            out.push(`(b) ${where} is the receipt of run ${r.run_id}, which no model run opened`);
            continue;
          }
          const folder = `${key.slice(0, -'receipt.json'.length)}${run.folder}/`;
          for (const [table, t] of Object.entries(r.tables)) {
            const listed = [...(t.files ?? []), ...(t.changes?.available ? t.changes.files : [])];
            for (const f of listed) {
              if (!f.key.startsWith(folder))
                out.push(`(b) ${where} lists ${f.key} (table ${table}), outside its own prefix and folder ${folder}`);
              else if (!keys.has(f.key))
                out.push(`(b) ${where} lists ${f.key} (table ${table}), which does not exist in ${bucket}`);
            }
          }
        }
      }
  }
}
