import { packTasks } from '../run/drivers/pack.js';

/**
 * Will a slot finish before the next one? The forecast behind `dropship capacity` and the line the
 * schedule function logs when it opens a slot (`logSlotForecast`, src/schedule/capacity-source.ts).
 * Pure arithmetic on estimates; what goes in is documented in docs/operations/capacity.md.
 *
 * The model (one worker exports one task message at a time, as the Lambda worker does):
 *   - a table above `splitRows` rows is split into ceil(rows / splitRows) key-range tasks (at most
 *     1,000, as `planParts` does); every other table is whole;
 *   - whole tables of at most `packing.packBytes` estimated bytes share messages as the fan-out
 *     packs them (`packTasks`, src/run/drivers/pack.ts: first-fit decreasing, at most
 *     `packing.maxTables` a message); without `packing` (or packBytes 0) every table is its own task;
 *   - a task message costs `fixedSecondsPerTask` + its rows / `rowsPerSecondPerWorker` worker-seconds;
 *     a destination costs `fixedSecondsPerDestination` once (opening and finishing its run);
 *   - W = the sum over the slot, L = the longest single task (it cannot be shared between workers).
 *   - With C workers, any order that keeps every worker busy while work is left (greedy list
 *     scheduling) ends within W / C + L (Graham's bound); no order ends before max(W / C, L).
 *     The concurrency needed to finish within the window T (time to the next slot) is therefore
 *     ceil(W / (T − L)), and none suffices when L ≥ T.
 *   - Lambda cost: every worker-second is billed at the worker's memory (GB-seconds × price), plus
 *     one request per task.
 */
export interface CapacityRates {
  /** Rows per second one worker exports (its CPU-µs per row at the worker's vCPU). */
  rowsPerSecondPerWorker: number;
  /** Worker-seconds per destination outside its tasks (opening, pre-flight, receipt). */
  fixedSecondsPerDestination: number;
  /** Worker-seconds per task outside row work (credentials, connection, snapshot import, ledger). */
  fixedSecondsPerTask: number;
  /** The worker function's memory (serverless.yml). */
  workerMemoryMb: number;
  /** Lambda's price per GB-second. */
  usdPerGbSecond: number;
  /** Lambda's price per million requests. */
  usdPerMillionRequests: number;
}

export interface TableEstimate {
  table: string;
  /** null: no estimate (never analyzed): counted as 0 rows, and reported. */
  rows: number | null;
  bytes: number;
  /** The size the fan-out packs by (pg_table_size of the whole table); `bytes` when absent. */
  packBytes?: number;
}

export interface DestinationEstimate {
  accountId: string;
  tables: TableEstimate[];
}

export interface ForecastInput {
  slot: string;
  /** Seconds from this slot to the next one (the window the slot must finish in). */
  windowSeconds: number;
  destinations: DestinationEstimate[];
  /** DROPSHIP_SPLIT_ROWS. */
  splitRows: number;
  /** The worker's reserved concurrency (DROPSHIP_WORKER_CONCURRENCY). */
  configuredConcurrency: number;
  /** DROPSHIP_PACK_BYTES / DROPSHIP_PACK_MAX_TABLES: small whole tables share a task message. */
  packing?: { packBytes: number; maxTables: number };
  /** The worker's timeout: a task longer than this can never finish. */
  workerTimeoutSeconds: number;
  rates: CapacityRates;
}

export interface SlotForecast {
  slot: string;
  windowSeconds: number;
  destinations: number;
  tables: number;
  tasks: number;
  estimatedRows: number;
  estimatedBytes: number;
  /** Tables with no row estimate (counted as 0 rows). */
  tablesWithoutEstimate: number;
  /** W: the slot's work in worker-seconds. */
  workerSeconds: number;
  /** L: the longest single task, seconds. */
  longestTaskSeconds: number;
  /** The smallest concurrency that finishes within the window whatever the order; null: none does. */
  neededConcurrency: number | null;
  configuredConcurrency: number;
  /** With the configured concurrency: the slot ends no sooner than the first, no later than the second. */
  secondsAtConfigured: { atLeast: number; atMost: number };
  gbSeconds: number;
  lambdaCostUsd: number;
  /** Empty when the configured concurrency makes it. */
  warnings: string[];
  /**
   * The slot finishes before the next one at the configured concurrency, no task longer than the worker's timeout
   * (tables without an estimate warn, but do not make this false).
   */
  fits: boolean;
}

/** The task count of one table (as `planParts` splits: ceil(rows / splitRows), at most 1,000, above splitRows only). */
export function tasksOf(rows: number, splitRows: number): number {
  return rows > splitRows ? Math.min(Math.ceil(rows / splitRows), 1000) : 1;
}

export function forecast(input: ForecastInput): SlotForecast {
  const { rates } = input;
  let tables = 0;
  let tasks = 0;
  let rows = 0;
  let bytes = 0;
  let unknown = 0;
  let work = 0;
  let longest = 0;
  const task = (n: number, taskRows: number): void => {
    const perTask = rates.fixedSecondsPerTask + taskRows / rates.rowsPerSecondPerWorker;
    tasks += n;
    work += n * perTask;
    longest = Math.max(longest, perTask);
  };
  for (const d of input.destinations) {
    work += rates.fixedSecondsPerDestination;
    const whole: { name: string; bytes: number }[] = [];
    const rowsOf = new Map<string, number>();
    for (const t of d.tables) {
      tables++;
      const r = t.rows ?? 0;
      if (t.rows === null) unknown++;
      rows += r;
      bytes += t.bytes;
      const n = tasksOf(r, input.splitRows);
      if (n > 1) task(n, r / n);
      else {
        whole.push({ name: t.table, bytes: t.packBytes ?? t.bytes });
        rowsOf.set(t.table, r);
      }
    }
    const messages = packTasks({
      runId: '',
      accountId: d.accountId,
      tables: whole,
      parts: [],
      packBytes: input.packing?.packBytes ?? 0,
      maxTables: input.packing?.maxTables ?? 1,
    });
    for (const m of messages) {
      const names = 'tables' in m ? m.tables : [m.table];
      task(
        1,
        names.reduce((sum, name) => sum + rowsOf.get(name)!, 0),
      );
    }
  }
  const T = input.windowSeconds;
  const needed = longest >= T ? null : Math.max(1, Math.ceil(work / (T - longest)));
  const c = input.configuredConcurrency;
  const atLeast = Math.max(work / c, longest);
  const atMost = work / c + longest;
  const gbSeconds = work * (rates.workerMemoryMb / 1024);
  const cost = gbSeconds * rates.usdPerGbSecond + (tasks / 1e6) * rates.usdPerMillionRequests;
  const warnings: string[] = [];
  if (needed === null)
    warnings.push(
      `slot ${input.slot}: its longest task (${fmt(longest)} s) does not fit the ${fmt(T)} s to the next slot at any concurrency; lower DROPSHIP_SPLIT_ROWS`,
    );
  else if (needed > c)
    warnings.push(
      `slot ${input.slot}: the worker concurrency ${c} may not finish within the ${fmt(T)} s to the next slot (up to ${fmt(atMost)} s); ${needed} workers are needed (DROPSHIP_WORKER_CONCURRENCY)`,
    );
  if (longest > input.workerTimeoutSeconds)
    warnings.push(
      `slot ${input.slot}: a task of ${fmt(longest)} s exceeds the worker's ${input.workerTimeoutSeconds} s timeout; lower DROPSHIP_SPLIT_ROWS`,
    );
  const fits = needed !== null && needed <= c && longest <= input.workerTimeoutSeconds;
  if (unknown > 0)
    warnings.push(
      `slot ${input.slot}: ${unknown} table(s) have no row estimate (never analyzed) and count as 0 rows; run ANALYZE on the source`,
    );
  return {
    slot: input.slot,
    windowSeconds: T,
    destinations: input.destinations.length,
    tables,
    tasks,
    estimatedRows: rows,
    estimatedBytes: bytes,
    tablesWithoutEstimate: unknown,
    fits,
    workerSeconds: work,
    longestTaskSeconds: longest,
    neededConcurrency: needed,
    configuredConcurrency: c,
    secondsAtConfigured: { atLeast, atMost },
    gbSeconds,
    lambdaCostUsd: cost,
    warnings,
  };
}

/** Seconds from `slot` to the next of `slots` (UTC HH:MM, one day apart when it is the only one). */
export function windowSeconds(slot: string, slots: string[]): number {
  const min = (s: string) => {
    const [h, m] = s.split(':').map(Number) as [number, number];
    return h * 60 + m;
  };
  const at = min(slot);
  const gaps = [...new Set(slots.map(min))].map((s) => (((s - at) % 1440) + 1440) % 1440).filter((g) => g > 0);
  return (gaps.length > 0 ? Math.min(...gaps) : 1440) * 60;
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}
