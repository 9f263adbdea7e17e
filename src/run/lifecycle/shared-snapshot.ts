import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { ReadSnapshot } from '../../contracts/receipt.js';
import type { Logger } from '../../log/logger.js';
import {
  connectSource,
  joinSnapshot,
  Snapshot,
  type SourceSession,
  snapshotInfo,
  sourceClient,
  TEXT_FORM_SETTINGS,
} from '../../pipeline/source/snapshot.js';
import type { Ledger } from '../../store/ledger/ledger.js';
import type { Task } from '../../store/ledger/rows.js';

/**
 * One consistent snapshot for a whole fan-out run (issue 12), with a coordinator that lives in the
 * worker running the run's first task:
 *
 *   1. The first worker to claim any task of the run becomes the run's **snapshot holder**
 *      (`ledger.snapshot.claimHolder`, one row update): it opens a REPEATABLE READ transaction, exports
 *      its snapshot (pg_export_snapshot()) and records the id in the ledger, then exports its own
 *      task in that snapshot like everyone else (a second connection that imports it).
 *   2. Every other task imports the recorded snapshot (SET TRANSACTION SNAPSHOT) — so all tables
 *      and all key-range parts of split tables are read as of the same instant.
 *   3. After its own task the holder keeps the exporting transaction open (pinging it, so the
 *      idle-in-transaction timeout does not end it) and **helps**: it claims the run's tasks that
 *      are still pending and exports them itself, in the same snapshot, one after another, until
 *      every task has ended, the run has ended, or its deadline comes (Lambda: the worker's
 *      timeout minus the margin). With no other worker free (reserved concurrency exhausted, or
 *      `--via-queue --workers 1`) the holder alone exports the whole account in one snapshot;
 *      with free workers they take the tasks in parallel as their messages arrive. Messages of
 *      tasks the holder already took find them busy or done (harmless, as any duplicate). A task
 *      handed back for a retry is taken at once, without the queue's backoff (one more attempt,
 *      fenced and counted like any).
 *   4. A task that cannot import the snapshot — the holder died (its session, and with it the
 *      snapshot, is gone), or it let go at its deadline — never mixes silently: it reads in its
 *      own transaction and records that snapshot in its result; the receipt then says
 *      `consistency: "table"` and lists, per table and part, the snapshot each was read in
 *      (src/receipt/consistency.ts). Each result carries the snapshot as the reading transaction
 *      itself reported it (txid_current_snapshot()), so the receipt can never claim more than
 *      happened.
 *
 * Why this design (measured; docs/design/snapshot.md): the alternative — one worker
 * exports a whole account whenever its estimate fits the worker's deadline — needs an estimate that
 * is right (planner estimates are not) and still needs a second mechanism beyond ~200M rows
 * (≈ 244k rows/s per 1-vCPU worker × 840 s). The holder covers both in one mechanism: it costs one
 * extra source connection and one worker that stays alive (mostly exporting, as a helper) until the
 * run's last task ends — no extra Lambda invocations — and a dead holder costs consistency of the
 * tasks that start after it died (stated in the receipt), never a stuck run: the holder adds no
 * state the sweeper or leases depend on.
 */
export interface SharedSnapshotDeps {
  ledger: Ledger;
  runId: string;
  sourceUrl: string;
  session: SourceSession;
  applicationName: string;
  log?: Logger;
  /** How long a task waits for a holder that claimed the snapshot to record it. */
  waitSeconds?: number;
}

/** How long a task waits for the holder to record the snapshot before reading in its own. */
const SNAPSHOT_WAIT_SECONDS = 20;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SharedSnapshot {
  private held: Snapshot | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private readonly infos = new WeakMap<pg.Client, ReadSnapshot>();
  private readonly holderId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  /** Seconds the exporting transaction was held, and tasks exported while helping (cost figures). */
  heldSeconds = 0;
  helped = 0;
  private heldSince = 0;

  constructor(private readonly deps: SharedSnapshotDeps) {}

  /** A connection for one task: in the run's shared snapshot if it can be had, else in its own (recorded). */
  async connect(): Promise<pg.Client> {
    const { ledger, runId } = this.deps;
    const waitSeconds = this.deps.waitSeconds ?? SNAPSHOT_WAIT_SECONDS;
    for (;;) {
      const rs = await ledger.snapshot.get(runId);
      if (!rs) break;
      if (rs.exportId && rs.id && rs.at && !rs.released) {
        try {
          const client = await joinSnapshot(
            this.deps.sourceUrl,
            rs.exportId,
            this.deps.applicationName,
            this.deps.session,
          );
          this.infos.set(client, { id: (await snapshotInfo(client)).id, at: rs.at });
          return client;
        } catch (e) {
          this.deps.log?.warn(
            { runId, error: (e as Error).message },
            "the run's shared snapshot is gone; this task reads in its own (the receipt will say consistency: table)",
          );
          break;
        }
      }
      if (rs.exportId) break; // released by its holder
      if (!rs.holder) {
        if (await ledger.snapshot.claimHolder({ runId, holder: this.holderId })) await this.open();
        continue;
      }
      if ((rs.claimedSecondsAgo ?? 0) > waitSeconds) break; // a holder that died before recording it
      await sleep(100);
    }
    return this.own();
  }

  /** The snapshot a connection from `connect` reads in. */
  async snapshotOf(client: pg.Client): Promise<ReadSnapshot> {
    return this.infos.get(client) ?? (await snapshotInfo(client));
  }

  private async open(): Promise<void> {
    const { ledger, runId } = this.deps;
    try {
      this.held = await Snapshot.open(this.deps.sourceUrl, `${this.deps.applicationName} snapshot`, this.deps.session);
    } catch (e) {
      // The task fails (and is retried); the next task to connect may become the holder.
      await ledger.snapshot.releaseHolder({ runId, holder: this.holderId }).catch(() => {});
      throw e;
    }
    this.heldSince = performance.now();
    const held = this.held;
    const idle = this.deps.session.idleInTransactionSeconds;
    const every = idle > 0 ? Math.min(30_000, (idle * 1000) / 3) : 30_000;
    this.pinger = setInterval(() => void held.ping().catch(() => {}), every);
    this.pinger.unref();
    await ledger.snapshot.record({ runId, exportId: held.id, id: held.info.id, at: held.info.at });
    this.deps.log?.info({ runId, snapshot: held.info.id }, 'holding the run snapshot');
  }

  /** A task's own REPEATABLE READ transaction (the shared snapshot could not be had). */
  private async own(): Promise<pg.Client> {
    const client = sourceClient(this.deps.sourceUrl, this.deps.applicationName, this.deps.session);
    try {
      await connectSource(client, this.deps.session);
      await client.query(TEXT_FORM_SETTINGS);
      await client.query('begin isolation level repeatable read, read only');
      this.infos.set(client, await snapshotInfo(client));
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
  }

  /**
   * The holder, after its own task: keep the snapshot open and export the run's pending tasks in
   * it (`runOne`), until every task has ended, the run has ended, or `signal` fires. Then release
   * it. A no-op for a worker that is not the holder.
   */
  async holdAndHelp(runOne: (t: Task) => Promise<unknown>, signal?: AbortSignal): Promise<void> {
    if (!this.held) return;
    const { ledger, runId } = this.deps;
    try {
      while (!signal?.aborted) {
        const run = await ledger.getRun(runId);
        if (run?.status !== 'running') break;
        const tasks = await ledger.tasks(runId);
        const open = tasks.filter((t) => t.status === 'pending' || t.status === 'running');
        if (open.length === 0) break;
        const pending = open.find((t) => t.status === 'pending');
        if (pending) {
          this.helped++;
          await runOne(pending);
          continue;
        }
        // Only tasks other workers hold remain; a dead worker's (lease run out) will be sent again by
        // the sweeper much later: do not hold the snapshot for it.
        let alive = false;
        for (const t of open)
          if ((await ledger.leaseRemaining({ runId, table: t.table, part: t.part })) > 0) alive = true;
        if (!alive) break;
        await sleep(250);
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (!this.held) return;
    clearInterval(this.pinger);
    const held = this.held;
    this.held = undefined;
    this.heldSeconds = (performance.now() - this.heldSince) / 1000;
    await this.deps.ledger.snapshot.released(this.deps.runId).catch(() => {});
    await held.close();
    this.deps.log?.info(
      { runId: this.deps.runId, heldSeconds: Math.round(this.heldSeconds * 10) / 10, helped: this.helped },
      'released the run snapshot',
    );
  }
}
