import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { Pool } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { inTransaction } from '../store/db.js';

/**
 * The per-row state of delivered tables, kept in the operator's registry database (never in the
 * customer's bucket, which stays write-only for dropship):
 *
 *   dropship.change_states (state_id, account_id, table_name, run_id, signature, rows)
 *   dropship.change_rows   (state_id, k text COLLATE "C", h uuid)   primary key (state_id, k)
 *
 * `k` is the primary key's text form (`ARRAY[pk1::text, …]::text`), `h` a 128-bit MD5 of the
 * exported columns' row text (collision chance for n rows ≈ n²/2¹²⁹: 10⁻²⁰ at a billion rows).
 *
 * Why the registry database: the state must be compared with a table's rows, by key, without
 * holding either side in memory. Postgres does that with bounded memory (a merge or hash full
 * join that spills to disk past work_mem), the rows arrive by COPY (no per-row round trips), and
 * the state commits with the ledger it depends on. An operator bucket would need our own external
 * sort/merge of two streams in the Lambda (disk in /tmp) for the same result.
 *
 * Pending and promoted: a state is written during its run and is the base of the next change set
 * only once that run is `succeeded` in dropship.runs (its receipt published). There is no
 * separate promotion step that could be lost between the receipt and a crash: the base of a table
 * is the state of the account's LAST succeeded run — if that run has no state for the table
 * (changes were off, the table was new), the next delivery is a full refresh.
 */
export interface StateRef {
  stateId: string;
  runId: string;
  signature: string;
  rows: number;
}

export interface BaseLookup {
  /** The account's last succeeded run before this one (null: first delivery). */
  lastRunId: string | null;
  /** Its state of this table (null: missing). */
  state: StateRef | null;
}

/** The ledger's answer the base needs (src/store/ledger/ledger.ts `lastSucceededRun`): this module never reads the ledger's tables. */
export type LastSucceededRun = (q: {
  accountId: string;
  runId: string;
  generation: number | null;
}) => Promise<string | null>;

export class ChangeStateStore {
  constructor(private readonly pool: Pool) {}

  /**
   * The base of a change set: the state of the account's last succeeded run of the same destination
   * generation (issue 22: a removed and re-added account starts with a full refresh), as the ledger
   * names it (`lastSucceededRun`). `generation` null: runs opened before generations were recorded
   * (any run of the account).
   */
  async base(
    accountId: string,
    runId: string,
    table: string,
    generation: number | null,
    lastSucceededRun: LastSucceededRun,
  ): Promise<BaseLookup> {
    const lastRunId = await lastSucceededRun({ accountId, runId, generation });
    if (lastRunId === null) return { lastRunId, state: null };
    const s = await this.pool.query<{ state_id: string; signature: string; rows: string }>(
      `select state_id, signature, rows from dropship.change_states
        where account_id = $1 and table_name = $2 and run_id = $3
        order by state_id desc limit 1`,
      [accountId, table, lastRunId],
    );
    const r = s.rows[0];
    return {
      lastRunId,
      state: r ? { stateId: r.state_id, runId: lastRunId, signature: r.signature, rows: Number(r.rows) } : null,
    };
  }

  /** Forgets the states `runId` wrote for `table`: the next change set of the table is then a full refresh. */
  async forgetRun(runId: string, table: string): Promise<void> {
    await this.pool.query('delete from dropship.change_states where run_id = $1 and table_name = $2', [runId, table]);
  }

  /**
   * Drops the table's states that no run needs: earlier attempts of this run (`runId`), states older than `keep` (the
   * base), and states of runs that failed or were cancelled. Never another run's state that is newer than the base and
   * not ended badly: a run cancelled while in this step (its account's next run already going) must not delete that
   * run's state — between its write and its diff that made every key a delete (red-team finding 6).
   */
  async prune(
    accountId: string,
    table: string,
    keep: string | null,
    runId: string,
    /** The ledger's answer: which of these runs failed or were cancelled. */
    endedBadly: (runIds: string[]) => Promise<Set<string>>,
  ): Promise<void> {
    const states = await this.pool.query<{ state_id: string; run_id: string }>(
      'select state_id::text, run_id from dropship.change_states where account_id = $1 and table_name = $2',
      [accountId, table],
    );
    const older = (id: string) => keep !== null && BigInt(id) < BigInt(keep);
    const others = states.rows.filter((s) => s.state_id !== keep && s.run_id !== runId && !older(s.state_id));
    const bad = others.length > 0 ? await endedBadly([...new Set(others.map((s) => s.run_id))]) : new Set<string>();
    const drop = states.rows
      .filter((s) => s.state_id !== keep && (s.run_id === runId || older(s.state_id) || bad.has(s.run_id)))
      .map((s) => s.state_id);
    if (drop.length > 0)
      await this.pool.query('delete from dropship.change_states where state_id = any($1::bigint[])', [drop]);
  }

  /**
   * Writes the table's state for this run: `copySql` (a text-format COPY … TO STDOUT on the source
   * yielding `key TAB hash` lines) streams straight into dropship.change_rows (COPY FROM STDIN),
   * with backpressure end to end. One transaction: a state is whole or absent.
   */
  async write(
    source: pg.ClientBase,
    copySql: string,
    s: { accountId: string; table: string; runId: string; signature: string; generation?: number | null },
  ): Promise<StateRef> {
    return inTransaction(this.pool, async (c) => {
      const ins = await c.query<{ state_id: string }>(
        `insert into dropship.change_states (account_id, table_name, run_id, signature, generation)
         values ($1, $2, $3, $4, $5) returning state_id`,
        [s.accountId, s.table, s.runId, s.signature, s.generation ?? null],
      );
      const stateId = ins.rows[0]!.state_id;
      const sink = c.query(copyFrom('COPY dropship.change_rows (state_id, k, h) FROM STDIN'));
      await pipeline(source.query(copyTo(copySql)), new PrefixLines(`${stateId}\t`), sink);
      const rows = Number((sink as unknown as { rowCount: number }).rowCount);
      await c.query('update dropship.change_states set rows = $2 where state_id = $1', [stateId, rows]);
      return { stateId, runId: s.runId, signature: s.signature, rows };
    });
  }

  /**
   * The differences between two states, in batches of at most `batch` keys (a cursor: bounded
   * memory however many rows changed). Postgres joins the two states (merge or hash full join,
   * spilling to disk past work_mem).
   */
  async *diff(
    base: string,
    next: string,
    batch: number,
  ): AsyncGenerator<{ k: string; op: 'insert' | 'update' | 'delete' }[]> {
    const c = await this.pool.connect();
    // The consumer may stop iterating (an abort, an upload error): then only `finally` runs, and the
    // client must not go back to the pool inside this transaction.
    let ended = false;
    try {
      await c.query('begin');
      await c.query(
        `declare dropship_diff no scroll cursor for
         select coalesce(n.k, o.k) as k,
                case when o.k is null then 'insert' when n.k is null then 'delete' else 'update' end as op
           from (select k, h from dropship.change_rows where state_id = $1) n
           full join (select k, h from dropship.change_rows where state_id = $2) o on o.k = n.k
          where n.h is distinct from o.h`
          .replace(/\$1/g, String(BigInt(next)))
          .replace(/\$2/g, String(BigInt(base))),
      );
      for (;;) {
        const res = await c.query<{ k: string; op: 'insert' | 'update' | 'delete' }>(
          `fetch ${batch} from dropship_diff`,
        );
        if (res.rows.length === 0) break;
        yield res.rows;
        if (res.rows.length < batch) break;
      }
      await c.query('commit');
      ended = true;
    } finally {
      if (!ended) await c.query('rollback').catch(() => {});
      c.release();
    }
  }

  /** Bytes the registry spends on one state (heap + index), for the overhead figure. */
  async bytesPerRow(): Promise<{ rows: number; bytes: number }> {
    const r = await this.pool.query<{ rows: string; bytes: string }>(
      `select (select count(*) from dropship.change_rows) as rows,
              pg_total_relation_size('dropship.change_rows') as bytes`,
    );
    return { rows: Number(r.rows[0]!.rows), bytes: Number(r.rows[0]!.bytes) };
  }
}

/** Puts `prefix` in front of every line of a COPY text stream (lines may span chunks). */
export class PrefixLines extends Transform {
  private atStart = true;
  private readonly prefix: Buffer;
  constructor(prefix: string) {
    super();
    this.prefix = Buffer.from(prefix);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const parts: Buffer[] = [];
    let from = 0;
    while (from < chunk.length) {
      if (this.atStart) parts.push(this.prefix);
      const nl = chunk.indexOf(10, from);
      if (nl === -1) {
        parts.push(chunk.subarray(from));
        this.atStart = false;
        break;
      }
      parts.push(chunk.subarray(from, nl + 1));
      this.atStart = true;
      from = nl + 1;
    }
    done(null, Buffer.concat(parts));
  }
}
