import { type Destination, reviveDestination } from '../../accounts/destination.js';
import type { Layout, ReceiptSelection } from '../../contracts/receipt.js';
import type { TableResult, TaskPart } from '../../contracts/result.js';
import type { Selection } from '../../contracts/selection.js';

/**
 * The run ledger's rows as values (dropship.runs, dropship.run_tasks) and the inputs of its
 * queries; the queries themselves are the `Ledger` (src/store/ledger/ledger.ts, src/store/ledger/tasks.ts,
 * src/store/ledger/snapshot.ts).
 */
export type RunStatus = 'running' | 'finishing' | 'succeeded' | 'failed' | 'cancelled';
export type TaskStatus = 'pending' | 'running' | 'succeeded' | 'failed';
export type Trigger = 'schedule' | 'manual' | 'cli';

export interface Run {
  runId: string;
  accountId: string;
  trigger: Trigger;
  slot: string | null;
  status: RunStatus;
  layout: Layout;
  /**
   * The run's folder: its start minute. A folder holds one run's files only: when a run of the account (of any
   * generation: a removed and re-added account id too) or any run at the same bucket and prefix (another account
   * registered where a removed one was) already used it, the run takes `laterFolder(1)`, `(2)`, … — the first minute
   * after it that no such run used.
   */
  folder: string;
  /** The folder `minutes` after `folder` (its layout's name of that minute). */
  laterFolder?: (minutes: number) => string;
  startedMicros: bigint;
  startedAt: Date;
  finishedAt: Date | null;
  receiptKey: string | null;
  error: string | null;
  /** Who drives the run: `cli:<host>:<pid>` (in-process) or `fan-out` (Lambda workers). */
  owner: string | null;
  /** The owner holds the session advisory lock (RUN_LOCK_SPACE, hashtext(run_id)) while it lives. */
  ownerLock: boolean;
  heartbeatAt: Date;
  staleSeconds: number;
  dispatchedAt: Date | null;
  slotDate: string | null;
  /** The receipt's exact bytes, recorded before its PutObject (retries rewrite the same bytes). */
  receiptBody: string | null;
  finishAttempts: number;
  /**
   * The destination as the run opened it (issue 22): every task, finisher, sweep and notification of
   * the run uses this copy, never the registry's current row. Null only for runs opened before it was
   * recorded (and for missed slots, which deliver nothing).
   */
  destination: Destination | null;
  /** The destination generation and version the run serves (null: opened before they existed). */
  destinationGeneration: number | null;
  destinationVersion: number | null;
  /** A scheduled run cancelled by a change of its destination gave its slot back (migration 20): not the slot's run. */
  slotReleased: boolean;
}

/**
 * Where a run stands in a listing's order (newest first: start, then id): its exact start (microseconds, UTC,
 * `2026-11-23T04:00:00.123456Z` — a Date has milliseconds only) and its id. Names a place in the order, not a run: a
 * page can go on from it after the run itself was removed.
 */
export interface RunPosition {
  startedAt: string;
  runId: string;
}

/** A run as `listRuns` gives it: with its position, for the next page. */
export type ListedRun = Run & { position: RunPosition };

/** The advisory-lock key space of run owners ('drop'); the second key is hashtext(run_id). */
export const RUN_LOCK_SPACE = 0x64726f70;

export interface Task {
  runId: string;
  table: string;
  part: number;
  parts: number;
  keyColumn: string | null;
  rangeLo: bigint | null;
  rangeHi: bigint | null;
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  shardsStarted: number;
  rows: number | null;
  bytes: number | null;
  result: TableResult | null;
  error: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** An active run with what the ledger knows about its owner's liveness (see Ledger.activeRuns). */
export interface ActiveRun extends Run {
  /** The owner held the advisory lock and no longer does: its connection (process) is gone. */
  ownerGone: boolean;
  /** Seconds since the owner's (or any worker's) last heartbeat. */
  silentSeconds: number;
  tasksTotal: number;
  tasksSucceeded: number;
  /** The finishing lease ran out (or was released after a retryable failure). */
  finishLeaseExpired: boolean;
}

export type Claim =
  | { claimed: true; attempt: number }
  | { claimed: false; reason: 'done' | 'busy' | 'failed' | 'run-closed' | 'unknown' | 'exhausted' };

/** node-postgres parses `date` as local midnight. */
function localDate(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

// biome-ignore lint/suspicious/noExplicitAny: rows come from pg untyped
export function toRun(r: any): Run {
  return {
    runId: r.run_id,
    accountId: r.account_id,
    trigger: r.trigger,
    slot: r.slot,
    status: r.status,
    layout: r.layout,
    folder: r.folder,
    startedMicros: BigInt(r.started_micros),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    receiptKey: r.receipt_key,
    error: r.error,
    owner: r.owner ?? null,
    ownerLock: r.owner_lock ?? false,
    heartbeatAt: r.heartbeat_at,
    staleSeconds: r.stale_seconds ?? 120,
    dispatchedAt: r.dispatched_at ?? null,
    slotDate: r.slot_date instanceof Date ? localDate(r.slot_date) : (r.slot_date ?? null),
    receiptBody: r.receipt_body ?? null,
    finishAttempts: r.finish_attempts ?? 0,
    destination: reviveDestination(r.destination),
    destinationGeneration:
      r.destination_generation === null || r.destination_generation === undefined
        ? null
        : Number(r.destination_generation),
    destinationVersion: r.destination_version ?? null,
    slotReleased: r.slot_released ?? false,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: rows come from pg untyped
export function toTask(r: any): Task {
  return {
    runId: r.run_id,
    table: r.table_name,
    part: r.part,
    parts: r.parts,
    keyColumn: r.key_column,
    rangeLo: r.range_lo === null ? null : BigInt(r.range_lo),
    rangeHi: r.range_hi === null ? null : BigInt(r.range_hi),
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    shardsStarted: r.shards_started,
    rows: r.rows === null ? null : Number(r.rows),
    bytes: r.bytes === null ? null : Number(r.bytes),
    result: r.result,
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

export interface OpenRun {
  runId: string;
  accountId: string;
  trigger: Trigger;
  slot?: string | null;
  /** The slot's date (YYYY-MM-DD): with `trigger: 'schedule'`, one run per account, slot and day. */
  slotDate?: string | null;
  layout: Layout;
  /**
   * The run's folder: its start minute. A folder holds one run's files only: when a run of the account (of any
   * generation: a removed and re-added account id too) or any run at the same bucket and prefix (another account
   * registered where a removed one was) already used it, the run takes `laterFolder(1)`, `(2)`, … — the first minute
   * after it that no such run used.
   */
  folder: string;
  /** The folder `minutes` after `folder` (its layout's name of that minute). */
  laterFolder?: (minutes: number) => string;
  startedMicros: bigint;
  tables: string[];
  /** Key ranges of split tables (the other tables are one task each). */
  parts?: TaskPart[];
  maxAttempts?: number;
  /** `cli:<host>:<pid>` or `fan-out`. */
  owner?: string;
  /** The owner already holds pg_advisory_lock(RUN_LOCK_SPACE, hashtext(runId)) on its own connection. */
  ownerLock?: boolean;
  staleSeconds?: number;
  /**
   * What the selection was and what the receipt says of it, recorded with the run (not after it: a receipt built
   * when the opener died in between would have said "the whole schema").
   */
  selection?: { config: Selection; receipt: ReceiptSelection | undefined };
  /**
   * The pre-flight refused the run: it is recorded failed with this reason, no task and no folder, in one statement
   * (opened and then failed, an opener dying between the two left a run with no task running for ever).
   */
  refused?: string;
  /**
   * The destination the run serves, frozen with the run (issue 22). The run opens only while it is
   * still the registry's current generation and version (checked under a share lock of the row).
   */
  destination?: Destination;
}

export interface TaskRef {
  runId: string;
  table: string;
  /** Key-range part of a split table (0 for whole tables). */
  part?: number;
}

export interface ReleaseTask extends TaskRef {
  attempt: number;
  error: string;
  /** Give the task back for another attempt (if it has attempts left); otherwise it fails for good. */
  retry: boolean;
  /**
   * When the task fails for good, fail the run with it (fan-out). The in-process driver lets every
   * table finish and fails the run once, at the end.
   */
  failRun: boolean;
}

/** The statuses of a run that is not over (SQL). */
export const ACTIVE = `('running', 'finishing')`;

/**
 * SQL (alias `r` for dropship.runs): the run serves its account's current destination — the same
 * generation and version (runs opened before those were recorded pass).
 */
export const SERVES_CURRENT = `(r.destination_generation is null or exists (
  select 1 from dropship.destinations d
   where d.account_id = r.account_id and d.generation = r.destination_generation
     and d.version = r.destination_version))`;
