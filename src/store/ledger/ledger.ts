import type { PoolClient } from 'pg';
import { DropshipError, type DropshipErrorDefaults, type DropshipErrorOptions } from '../../contracts/errors.js';
import type { Layout, ReceiptSelection } from '../../contracts/receipt.js';
import type { Selection } from '../../contracts/selection.js';
import { OutcomeOutboxLedger } from './outbox.js';
import { holdDestination, type PublicationHold } from './publication.js';
import {
  ACTIVE,
  type ActiveRun,
  type ListedRun,
  type OpenRun,
  RUN_LOCK_SPACE,
  type Run,
  type RunPosition,
  type RunStatus,
  SERVES_CURRENT,
  toRun,
} from './rows.js';
import { SnapshotHolderLedger } from './snapshot.js';
import { TaskLedger } from './tasks.js';

/** The ledger refused a step (retryable: the state it waits for may come). */
export class LedgerError extends DropshipError {
  readonly code: string = 'ledger';
  constructor(message: string, options?: DropshipErrorOptions, defaults?: DropshipErrorDefaults) {
    super(message, options, defaults);
    this.name = 'LedgerError';
  }
}

/** Another run of the account is in progress (retryable: it ends). */
export class RunInProgress extends LedgerError {
  override readonly code: string = 'run-in-progress';
  constructor(accountId: string) {
    super(`account ${accountId} already has a run in progress (see: dropship runs list --account ${accountId})`);
    this.name = 'RunInProgress';
  }
}

/** The destination changed (or was removed) between reading it and opening the run: open again. */
export class DestinationChanged extends LedgerError {
  override readonly code: string = 'destination-changed';
  constructor(accountId: string) {
    super(
      `the destination of account ${accountId} was changed or removed while its run was opening; nothing was delivered (start the run again)`,
    );
    this.name = 'DestinationChanged';
  }
}

/** A second scheduled run for the same account, slot and day (a duplicate event or a retry). */
export class SlotAlreadyRun extends LedgerError {
  override readonly code: string = 'slot-already-run';
  constructor(accountId: string, slot: string, slotDate: string) {
    super(`account ${accountId} already has a run for the ${slot} slot of ${slotDate}`, undefined, {
      retryable: false,
    });
    this.name = 'SlotAlreadyRun';
  }
}

/**
 * The run ledger (dropship.runs, dropship.run_tasks): every run of an account and its table tasks,
 * with status, attempts, rows, bytes, files and errors. It is what makes fan-out safe under SQS's
 * at-least-once delivery:
 *   - a task is claimed with a lease (a second delivery of a task that is running is told "busy");
 *   - a result is recorded only by the attempt that holds the claim (fencing by attempt number);
 *   - the receipt is written by the one caller that moves the run from `running` to `finishing`
 *     while every task has succeeded — a row-level transition, so concurrent completions and
 *     retries produce exactly one receipt writer (a crashed writer's lease expires and another
 *     caller takes over).
 * The runs are queried here; their tasks in `TaskLedger` (src/store/ledger/tasks.ts), the shared
 * snapshot in `ledger.snapshot` (src/store/ledger/snapshot.ts); the rows as values in src/store/ledger/rows.ts.
 *
 * Every transition that ends a run (to `succeeded`, `failed` or `cancelled`) writes the run's one
 * outcome event in the same transaction (a trigger on dropship.runs, migration 14): `ledger.outcomes`
 * (src/store/ledger/outbox.ts) is that outbox, src/notify/dispatch.ts its only reader. Nothing outside
 * the ledger queries dropship.runs or dropship.run_tasks: other modules ask it (`lastSucceededRun`).
 */
export class Ledger extends TaskLedger {
  /** The run's shared snapshot (src/run/lifecycle/shared-snapshot.ts). */
  readonly snapshot = new SnapshotHolderLedger(this.pool);
  /** The outbox of run outcomes (src/store/ledger/outbox.ts). */
  readonly outcomes = new OutcomeOutboxLedger(this.pool);

  /**
   * The account's last succeeded run other than `runId`, of the destination generation `generation`
   * (null: any run of the account) — the base of a change set (src/changes/state.ts).
   */
  async lastSucceededRun(q: { accountId: string; runId: string; generation: number | null }): Promise<string | null> {
    const last = await this.pool.query<{ run_id: string }>(
      `select run_id from dropship.runs
        where account_id = $1 and status = 'succeeded' and run_id <> $2
          and ($3::bigint is null or destination_generation = $3::bigint)
        order by finished_at desc nulls last, started_micros desc limit 1`,
      [q.accountId, q.runId, q.generation],
    );
    return last.rows[0]?.run_id ?? null;
  }

  /** Which of `runIds` failed or were cancelled (for pruning their change-set states). */
  async runsEndedBadly(runIds: string[]): Promise<Set<string>> {
    const res = await this.pool.query<{ run_id: string }>(
      `select run_id from dropship.runs where run_id = any($1::text[]) and status in ('failed', 'cancelled')`,
      [runIds],
    );
    return new Set(res.rows.map((r) => r.run_id));
  }

  async openRun(r: OpenRun): Promise<Run> {
    try {
      return await this.tx(async (c) => {
        const d = r.destination;
        if (d) {
          // Under a share lock: an update or removal of the destination waits for this run to exist
          // (and then cancels it), or has happened already (and the run does not open).
          const cur = await c.query<{ generation: string; version: number }>(
            'select generation, version from dropship.destinations where account_id = $1 for share',
            [r.accountId],
          );
          const row = cur.rows[0];
          if (!row || Number(row.generation) !== d.generation || row.version !== d.version)
            throw new DestinationChanged(r.accountId);
        }
        // A refused run is recorded ended, with no task and no folder, in the same statement that opens it.
        const refused = r.refused !== undefined;
        const folder = refused ? '' : await freeFolder(c, r);
        const res = await c.query(
          `insert into dropship.runs (run_id, account_id, trigger, slot, slot_date, status, layout, folder, started_micros,
                                      owner, owner_lock, stale_seconds, heartbeat_at,
                                      destination_generation, destination_version, destination,
                                      selection, error, finished_at)
           values ($1, $2, $3, $4, $5, $15, $6, $7, $8, $9, $10, $11, now(), $12, $13, $14,
                   $16, $17, case when $15 = 'failed' then now() end) returning *`,
          [
            r.runId,
            r.accountId,
            r.trigger,
            r.slot ?? null,
            r.slotDate ?? null,
            r.layout,
            folder,
            r.startedMicros.toString(),
            r.owner ?? null,
            r.ownerLock ?? false,
            r.staleSeconds ?? 120,
            d?.generation ?? null,
            d?.version ?? null,
            d ? JSON.stringify(d) : null,
            refused ? 'failed' : 'running',
            r.selection
              ? JSON.stringify({
                  config: r.selection.config,
                  ...(r.selection.receipt ? { receipt: r.selection.receipt } : {}),
                })
              : null,
            r.refused ?? null,
          ],
        );
        if (refused) return toRun(res.rows[0]);
        const split = new Set((r.parts ?? []).map((p) => p.table));
        await c.query(
          `insert into dropship.run_tasks (run_id, table_name, status, max_attempts)
           select $1, t, 'pending', $3 from unnest($2::text[]) t`,
          [r.runId, r.tables.filter((t) => !split.has(t)), r.maxAttempts ?? 3],
        );
        for (const p of r.parts ?? []) {
          await c.query(
            `insert into dropship.run_tasks (run_id, table_name, part, parts, key_column, range_lo, range_hi, status, max_attempts)
             values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)`,
            [r.runId, p.table, p.part, p.parts, p.keyColumn, p.lo.toString(), p.hi.toString(), r.maxAttempts ?? 3],
          );
        }
        return toRun(res.rows[0]);
      });
    } catch (e) {
      const err = e as { code?: string; constraint?: string };
      // The slot's key is checked first: a duplicate event while the slot's run is still going is a duplicate.
      if (err.code === '23505' && r.trigger === 'schedule' && r.slot && r.slotDate) {
        const taken = await this.pool.query(
          `select 1 from dropship.runs
            where account_id = $1 and trigger = 'schedule' and slot = $2 and slot_date = $3 and not slot_released`,
          [r.accountId, r.slot, r.slotDate],
        );
        if (taken.rowCount) throw new SlotAlreadyRun(r.accountId, r.slot, r.slotDate);
      }
      if (err.code === '23505') throw new RunInProgress(r.accountId);
      throw e;
    }
  }

  /**
   * Which of `accountIds` had a run of their own (any trigger, not refused at its opening) open at `at` or opened
   * since, started at most `withinSeconds` before `at`: their slot at `at` was not missed for want of a run — the
   * account's own run was going (a slot's opening skips an account with a live run). A run stuck open for longer
   * (started more than the catch-up window before the slot) excuses nothing: the slots it swallowed are missed.
   */
  async ranAcross(accountIds: string[], at: Date, withinSeconds: number): Promise<Set<string>> {
    if (accountIds.length === 0) return new Set();
    const res = await this.pool.query<{ account_id: string }>(
      `select distinct account_id from dropship.runs
        where account_id = any($1::text[]) and folder <> ''
          and started_at >= $2::timestamptz - make_interval(secs => $3)
          and coalesce(finished_at, 'infinity'::timestamptz) >= $2::timestamptz`,
      [accountIds, at, withinSeconds],
    );
    return new Set(res.rows.map((r) => r.account_id));
  }

  /** Whether the account has a run open (running or finishing): one row of the index of active runs. */
  async hasActiveRun(accountId: string): Promise<boolean> {
    const res = await this.pool.query(
      `select 1 from dropship.runs where account_id = $1 and status in ('running', 'finishing')`,
      [accountId],
    );
    return (res.rowCount ?? 0) > 0;
  }

  /**
   * A scheduled slot that never ran (and can no longer be caught up) is recorded as a failed run,
   * so it shows in `runs list` and counts as a failure; it also occupies the slot's key. One statement
   * for all of `accounts` (a whole slot of 10,000 accounts missed at once is one insert, not 10,000);
   * an account that has the slot's run by now is left alone. Returns the accounts recorded; the
   * trigger wrote each one's outcome event.
   */
  async recordMissedSlots(
    q: { slot: string; slotDate: string; error: string },
    accounts: { runId: string; accountId: string; layout: Layout }[],
  ): Promise<Set<string>> {
    if (accounts.length === 0) return new Set();
    const res = await this.pool.query<{ account_id: string }>(
      `insert into dropship.runs (run_id, account_id, trigger, slot, slot_date, status, layout, folder, started_micros,
                                  owner, finished_at, error)
       select m.run_id, m.account_id, 'schedule', $1, $2, 'failed', m.layout, '', 0, 'sweeper', now(), $3
         from unnest($4::text[], $5::text[], $6::text[]) as m(run_id, account_id, layout)
       on conflict do nothing
       returning account_id`,
      [
        q.slot,
        q.slotDate,
        q.error,
        accounts.map((a) => a.runId),
        accounts.map((a) => a.accountId),
        accounts.map((a) => a.layout),
      ],
    );
    return new Set(res.rows.map((r) => r.account_id));
  }

  /**
   * Scheduled runs (any status) of the given slot and day, per account (of `accountIds` only, when given) — but one
   * that gave its slot back (cancelled by a change of its destination: `slot_released`).
   */
  async slotRuns(q: { slot: string; slotDate: string; accountIds?: string[] }): Promise<Set<string>> {
    const res = await this.pool.query<{ account_id: string }>(
      q.accountIds
        ? `select account_id from dropship.runs
            where trigger = 'schedule' and slot = $1 and slot_date = $2 and not slot_released
              and account_id = any($3::text[])`
        : `select account_id from dropship.runs
            where trigger = 'schedule' and slot = $1 and slot_date = $2 and not slot_released`,
      q.accountIds ? [q.slot, q.slotDate, q.accountIds] : [q.slot, q.slotDate],
    );
    return new Set(res.rows.map((r) => r.account_id));
  }

  /**
   * The owner's sign of life. Returns the run's status: anything but `running`/`finishing` means
   * the run was ended by someone else (cancelled, or declared abandoned) and the owner must stop.
   */
  async heartbeat(runId: string): Promise<RunStatus | undefined> {
    const res = await this.pool.query<{ status: RunStatus }>(
      `with hb as (update dropship.runs set heartbeat_at = now() where run_id = $1 and status in ${ACTIVE} returning status)
       select status from hb union all select status from dropship.runs where run_id = $1 and not exists (select 1 from hb)`,
      [runId],
    );
    return res.rows[0]?.status;
  }

  /**
   * A dedicated connection holding the run owner's session advisory lock. Postgres releases the
   * lock the moment this connection dies (the owner's process was killed), which is how the next
   * run tells a dead CLI owner from a live one without waiting for its heartbeat to go stale.
   * `release()` closes the connection (never returned to the pool while it holds the lock).
   */
  async ownerLock(runId: string): Promise<{ client: PoolClient; release: () => void }> {
    const client = await this.pool.connect();
    try {
      const res = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [
        RUN_LOCK_SPACE,
        runId,
      ]);
      if (!res.rows[0]?.ok) throw new LedgerError(`the owner lock of run ${runId} is held by another session`);
    } catch (e) {
      client.release(true);
      throw e;
    }
    let released = false;
    return {
      client,
      release: () => {
        if (released) return;
        released = true;
        client.release(true);
      },
    };
  }

  /** Fan-out: every task message of the run was sent. */
  async markDispatched(runId: string): Promise<void> {
    await this.pool.query(
      `update dropship.runs set dispatched_at = now(), heartbeat_at = now() where run_id = $1 and dispatched_at is null`,
      [runId],
    );
  }

  /**
   * The single transition to `finishing`: succeeds for exactly one caller once every task has
   * succeeded, or again after a previous finisher's lease ran out (`takeOver` also when its owner
   * is known to be dead). The winner writes the receipt.
   */
  async tryFinish(q: { runId: string; leaseSeconds: number; takeOver?: boolean }): Promise<Run | undefined> {
    const res = await this.pool.query(
      `update dropship.runs r set status = 'finishing', lease_until = now() + make_interval(secs => $2),
              heartbeat_at = now(), finish_attempts = r.finish_attempts + 1
        where r.run_id = $1
          and (r.status = 'running' or (r.status = 'finishing' and (r.lease_until < now() or $3)))
          and not exists (select 1 from dropship.run_tasks t where t.run_id = r.run_id and t.status <> 'succeeded')
          and ${SERVES_CURRENT}
      returning *`,
      [q.runId, q.leaseSeconds, q.takeOver ?? false],
    );
    return res.rowCount === 1 ? toRun(res.rows[0]) : undefined;
  }

  /**
   * Right before a receipt is published: whether the run is still `finishing` AND still serves its
   * account's current destination generation and version (issue 22). An update or removal of the
   * destination cancels the run in the same transaction, so this is the finisher's last look.
   */
  async stillPublishable(runId: string): Promise<{ ok: true } | { ok: false; why: string }> {
    const res = await this.pool.query<{ status: RunStatus; error: string | null; current: boolean }>(
      `select r.status, r.error, ${SERVES_CURRENT} as current from dropship.runs r where r.run_id = $1`,
      [runId],
    );
    const row = res.rows[0];
    if (!row) return { ok: false, why: `run ${runId} is unknown` };
    if (row.status !== 'finishing')
      return { ok: false, why: `run ${runId} was ${row.status}${row.error ? `: ${row.error}` : ''}` };
    if (!row.current)
      return {
        ok: false,
        why: `run ${runId}: its destination was changed or removed; this run delivers nothing more`,
      };
    return { ok: true };
  }

  /**
   * The finisher's last look, kept for the PUT: the destination row share-locked on a connection of its
   * own (src/store/ledger/publication.ts), then `stillPublishable`. While the hold is kept, an update or
   * removal of the destination waits; it then finds the run ended and cancels nothing that was published.
   * The caller releases the hold once the run's outcome is recorded (or nothing was sent).
   */
  async holdForPublication(
    runId: string,
    accountId: string,
  ): Promise<{ ok: true; hold: PublicationHold } | { ok: false; why: string }> {
    const hold = await holdDestination(this.pool, accountId);
    try {
      const still = await this.stillPublishable(runId);
      if (still.ok) return { ok: true, hold };
      await hold.release();
      return still;
    } catch (e) {
      await hold.release();
      throw e;
    }
  }

  /**
   * Records the receipt's bytes before they are published (the first finisher's bytes win), so a
   * finisher that retries — or takes over from a dead one — publishes byte-identical content.
   */
  async recordReceipt(q: { runId: string; body: string }): Promise<string> {
    const res = await this.pool.query<{ receipt_body: string }>(
      `update dropship.runs set receipt_body = coalesce(receipt_body, $2)
        where run_id = $1 and status = 'finishing' returning receipt_body`,
      [q.runId, q.body],
    );
    const recorded = res.rows[0]?.receipt_body;
    if (recorded === undefined) throw new LedgerError(`run ${q.runId} is no longer finishing`);
    return recorded;
  }

  /**
   * Whether a run of the same account and destination generation that started after this one has
   * recorded receipt bytes: only such a run can have published a receipt newer than this one's.
   */
  async newerReceiptRecorded(runId: string): Promise<boolean> {
    const res = await this.pool.query(
      `select 1 from dropship.runs r
         join dropship.runs o on o.account_id = r.account_id
                             and o.destination_generation is not distinct from r.destination_generation
                             and (o.started_at, o.run_id) > (r.started_at, r.run_id)
        where r.run_id = $1 and o.receipt_body is not null limit 1`,
      [runId],
    );
    return (res.rowCount ?? 0) > 0;
  }

  /**
   * Is this the first receipt to be written at `bucket`/`receiptKey` by anyone dropship knows? No published receipt of
   * the account (any generation, any place: one whose place is unknown — recorded before places were — counts), no
   * link of any account at this place — published or kept as not known to be published (a run that ended with its PUT
   * in doubt: the object may be its receipt; red team, kill then trust: a SIGKILL after the first PUT, then `runs
   * cancel`, left every later run refused as if the receipt were the customer's) — and no earlier PUT of this run in
   * doubt (its answer lost: the object may be its own). Then the PUT is create-only. Read once per account's life in the common case (the first condition); the
   * place's lookup reads `receipt_chain` without an index of its own, for a new account only.
   */
  async firstReceiptHere(q: {
    runId: string;
    accountId: string;
    bucket: string;
    receiptKey: string;
  }): Promise<boolean> {
    const res = await this.pool.query<{ first: boolean }>(
      `select not exists (select 1 from dropship.receipt_chain where account_id = $2 and published)
          and (select receipt_puts_in_doubt from dropship.runs where run_id = $1) <= 1
          and not exists (select 1 from dropship.receipt_chain where bucket = $3 and receipt_key = $4)
          as first`,
      [q.runId, q.accountId, q.bucket, q.receiptKey],
    );
    return res.rows[0]?.first === true;
  }

  /**
   * A receipt PUT is about to be sent: it is in doubt until S3 answers (a refusal takes the doubt back:
   * `receiptPutRefused`). A run that ends with a PUT in doubt keeps its chain link (migration 13).
   * False when the run is no longer finishing (nothing may be sent).
   */
  async receiptPutStarts(runId: string): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.runs set receipt_puts_in_doubt = receipt_puts_in_doubt + 1
        where run_id = $1 and status = 'finishing'`,
      [runId],
    );
    return res.rowCount === 1;
  }

  /** How many of the run's receipt PUTs got no answer (each may have landed). */
  async receiptPutsInDoubt(runId: string): Promise<number> {
    const res = await this.pool.query<{ doubt: number }>(
      'select receipt_puts_in_doubt as doubt from dropship.runs where run_id = $1',
      [runId],
    );
    return res.rows[0]?.doubt ?? 0;
  }

  /**
   * S3 answered a receipt PUT with a refusal: that PUT wrote nothing. A run that ended meanwhile with no
   * other PUT in doubt drops the link it kept as possibly published (migration 13's trigger).
   */
  async receiptPutRefused(runId: string): Promise<void> {
    await this.tx(async (c) => {
      const res = await c.query<{ doubt: number; status: RunStatus }>(
        `update dropship.runs set receipt_puts_in_doubt = greatest(receipt_puts_in_doubt - 1, 0)
          where run_id = $1 returning receipt_puts_in_doubt as doubt, status`,
        [runId],
      );
      const row = res.rows[0];
      if (row && row.doubt === 0 && row.status !== 'finishing' && row.status !== 'succeeded')
        await c.query('delete from dropship.receipt_chain where run_id = $1 and not published', [runId]);
    });
  }

  /** False when the run was no longer finishing (cancelled while its receipt was being published). */
  async finishSucceeded(q: { runId: string; receiptKey: string }): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.runs set status = 'succeeded', receipt_key = $2, finished_at = now(), lease_until = null,
              heartbeat_at = now(), error = null
        where run_id = $1 and status = 'finishing'`,
      [q.runId, q.receiptKey],
    );
    return res.rowCount === 1;
  }

  /**
   * A retryable failure while finishing: the run stays `finishing` with its lease released, so the
   * next finisher (a retry, a worker, the next run of the account, the sweeper) takes over at once.
   */
  async finishPending(q: { runId: string; error: string }): Promise<void> {
    await this.pool.query(
      `update dropship.runs set lease_until = now() - interval '1 second', error = $2 where run_id = $1 and status = 'finishing'`,
      [q.runId, q.error],
    );
  }

  /**
   * Back to `running` — only while no receipt bytes were recorded (nothing can have been
   * published), e.g. when the run is stopped before it wrote anything.
   */
  async unfinish(q: { runId: string; error: string | null }): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.runs set status = 'running', lease_until = null, error = coalesce($2, error)
        where run_id = $1 and status = 'finishing' and receipt_body is null`,
      [q.runId, q.error],
    );
    return res.rowCount === 1;
  }

  /**
   * Fails a run that has published nothing: a `running` run, or a `finishing` one whose receipt was
   * refused for good before it could be stored (AccessDenied, contract violation). Never a run
   * whose receipt may be published. Pending and running tasks fail with it.
   */
  async failRun(q: {
    runId: string;
    error: string;
    /** Also a `finishing` run whose receipt was refused for good before it could be stored. */
    finishingRefused?: boolean;
    status?: 'failed' | 'cancelled';
  }): Promise<boolean> {
    return this.tx(async (c) => {
      // Lock order everywhere: task rows (in key order), then the run row — workers update a task
      // and then heartbeat its run in one statement; the other order would deadlock with them.
      await c.query('select 1 from dropship.run_tasks where run_id = $1 order by table_name, part for update', [
        q.runId,
      ]);
      const res = await c.query(
        `update dropship.runs set status = $3, finished_at = now(), error = $2, lease_until = null
          where run_id = $1 and (status = 'running' or ($4 and status = 'finishing'))`,
        [q.runId, q.error, q.status ?? 'failed', q.finishingRefused ?? false],
      );
      if (res.rowCount !== 1) return false;
      await c.query(
        `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(),
                error = coalesce(error, $2)
          where run_id = $1 and status in ('pending', 'running')`,
        [q.runId, q.status === 'cancelled' ? 'run cancelled' : 'run ended before this task finished'],
      );
      return true;
    });
  }

  /** Operators: `dropship runs cancel`: a `running` or `finishing` run. */
  async cancelRun(q: {
    runId: string;
    by: string;
  }): Promise<{ ok: true } | { ok: false; status: RunStatus | undefined }> {
    // A finishing run too (issue 23): its finisher's last look before the PUT sees it cancelled, and a
    // PUT already under way can only replace the receipt it follows (conditional publication).
    const ok = await this.failRun({
      runId: q.runId,
      error: `cancelled by ${q.by}`,
      status: 'cancelled',
      finishingRefused: true,
    });
    if (ok) return { ok: true };
    return { ok: false, status: (await this.getRun(q.runId))?.status };
  }

  /**
   * Active runs (of one account, or all), each with its owner's liveness: whether its advisory
   * lock is gone, how long it has been silent, its task counts and finishing lease.
   */
  async activeRuns(accountId?: string): Promise<ActiveRun[]> {
    const res = await this.pool.query(
      `select r.*,
              r.owner_lock and not exists (
                select 1 from pg_catalog.pg_locks l
                 where l.locktype = 'advisory' and l.granted and l.objsubid = 2
                   and l.database = (select oid from pg_catalog.pg_database where datname = current_database())
                   and l.classid::bigint = $2
                   and l.objid::bigint = (hashtext(r.run_id)::bigint & 4294967295)) as owner_gone,
              extract(epoch from now() - r.heartbeat_at)::float8 as silent_seconds,
              (select count(*)::int from dropship.run_tasks t where t.run_id = r.run_id) as tasks_total,
              (select count(*)::int from dropship.run_tasks t where t.run_id = r.run_id and t.status = 'succeeded') as tasks_succeeded,
              coalesce(r.lease_until < now(), true) as finish_lease_expired
         from dropship.runs r
        where r.status in ${ACTIVE} and ($1::text is null or r.account_id = $1)
        order by r.started_at`,
      [accountId ?? null, RUN_LOCK_SPACE],
    );
    return res.rows.map((r) => ({
      ...toRun(r),
      ownerGone: r.owner_gone,
      silentSeconds: r.silent_seconds,
      tasksTotal: r.tasks_total,
      tasksSucceeded: r.tasks_succeeded,
      finishLeaseExpired: r.finish_lease_expired,
    }));
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const res = await this.pool.query('select * from dropship.runs where run_id = $1', [runId]);
    return res.rows[0] ? toRun(res.rows[0]) : undefined;
  }

  /**
   * Runs, newest first (by start, then id), filtered, each with its `position` in that order. The next page: `before`
   * (the position of the previous page's last run: it needs no run to exist, so a run removed since — by retention —
   * does not end the listing), or `beforeRunId` (that run's position, read from the ledger: a run that no longer exists
   * gives no runs). `slot` and `slotDate` find a slot's runs whatever their trigger (a hand-run `export --due --slot`
   * has no date).
   */
  async listRuns(
    opts: {
      accountId?: string;
      limit?: number;
      status?: RunStatus;
      since?: Date;
      slot?: string;
      slotDate?: string;
      /** The next page: runs older than this position. */
      before?: RunPosition;
      /** The next page: runs older than this run (ordered by start, then id). */
      beforeRunId?: string;
    } = {},
  ): Promise<ListedRun[]> {
    const res = await this.pool.query(
      `select *, to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position_started_at
         from dropship.runs
        where ($1::text is null or account_id = $1) and ($3::text is null or status = $3)
          and ($4::timestamptz is null or started_at >= $4)
          and ($5::text is null or slot = $5) and ($6::date is null or slot_date = $6)
          and ($7::text is null or (started_at, run_id) < (select c.started_at, c.run_id from dropship.runs c where c.run_id = $7))
          and ($8::timestamptz is null or (started_at, run_id) < ($8::timestamptz, $9::text))
        order by started_at desc, run_id desc limit $2`,
      [
        opts.accountId ?? null,
        opts.limit ?? 50,
        opts.status ?? null,
        opts.since ?? null,
        opts.slot ?? null,
        opts.slotDate ?? null,
        opts.beforeRunId ?? null,
        opts.before?.startedAt ?? null,
        opts.before?.runId ?? null,
      ],
    );
    return res.rows.map((r) => ({
      ...toRun(r),
      position: { startedAt: r.position_started_at as string, runId: r.run_id as string },
    }));
  }

  /**
   * The destination's selection as the run opened, and the receipt's `selection` block: every task of
   * the run exports with this selection, even if the destination is updated meanwhile.
   */
  async selection(runId: string): Promise<{ config: Selection; receipt?: ReceiptSelection } | undefined> {
    const res = await this.pool.query('select selection from dropship.runs where run_id = $1', [runId]);
    return res.rows[0]?.selection ?? undefined;
  }
}

/** Minutes a run's folder may move past its start minute (then the run is refused: see `freeFolder`). */
const FOLDER_MINUTES = 24 * 60;

/**
 * The run's folder (`OpenRun.folder`), or the first later minute no run at the same place used: a folder holds one
 * run's files, so a run cancelled while its uploads are still in flight, or a failed run's shards (another codec's
 * suffix, a table the next version leaves out), can never be in the folder a later receipt names. "The same place" is
 * the account's runs (any generation, any bucket) and every run whose frozen destination had this bucket and prefix:
 * an account removed (or moved elsewhere) and another registered at its bucket and prefix in the same minute, while the
 * first one's cancelled run still had an upload in flight, get folders of their own. Runs of one account open one at a
 * time (the unique index of active runs), and two accounts never hold one place at once (the registry), so the choice
 * and the insert after it do not race. Both lookups use an index (`runs_by_account`, `runs_by_place`:
 * test/ledger-indexes.test.ts).
 */
export async function freeFolder(c: Pick<PoolClient, 'query'>, r: OpenRun): Promise<string> {
  if (!r.laterFolder) return r.folder;
  const place = r.destination ? [r.destination.bucket, r.destination.prefix] : null;
  for (let from = 0; from < FOLDER_MINUTES; from += 60) {
    const candidates = Array.from({ length: 60 }, (_, i) => (from + i === 0 ? r.folder : r.laterFolder!(from + i)));
    const used = await c.query<{ folder: string }>(
      place
        ? `select folder from dropship.runs where account_id = $1 and folder = any($2::text[])
           union
           select folder from dropship.runs
            where destination is not null and destination->>'bucket' = $3 and destination->>'prefix' = $4
              and folder = any($2::text[])`
        : 'select folder from dropship.runs where account_id = $1 and folder = any($2::text[])',
      place ? [r.accountId, candidates, ...place] : [r.accountId, candidates],
    );
    const taken = new Set(used.rows.map((u) => u.folder));
    const free = candidates.find((f) => !taken.has(f));
    if (free !== undefined) return free;
  }
  throw new LedgerError(
    `account ${r.accountId}: the folders of the ${FOLDER_MINUTES} minutes from ${r.folder} on all hold a run; wait, then run again`,
  );
}
