import { errorFields, type Logger } from '../../log/logger.js';
import type { TableProgress, TableResult } from '../../pipeline/table.js';
import { accountFacts, type Facts, tableFacts } from './eta.js';

/**
 * What a run tells the people watching it. The CLI renders it live on a terminal
 * (src/cli/progress.ts); everywhere else (Lambda, CI, pipes) the same facts go to structured logs.
 */
export interface Reporter {
  /** `estimatedRows[i]` is the planner's row estimate of `tables[i]` (null: unknown). */
  accountStarted(accountId: string, runId: string, tables: string[], estimatedRows?: (number | null)[]): void;
  tableProgress(accountId: string, p: TableProgress): void;
  tableDone(accountId: string, r: TableResult): void;
  tableFailed(accountId: string, table: string, error: unknown): void;
  accountDone(accountId: string, outcome: AccountOutcome): void;
}

export type AccountOutcome =
  | {
      ok: true;
      runId: string;
      receiptKey: string;
      tables: TableResult[];
      seconds: number;
      /** Tables of the source schema the destination's selection left out, and why. */
      leftOut?: { table: string; reason: string }[];
    }
  | {
      ok: false;
      runId: string;
      error: unknown;
      failures: { table: string; message: string }[];
      seconds: number;
      /** Never started: an interruption reached it while it waited its turn (no run, nothing told). */
      notStarted?: true;
    };

/** One part's own figures (a key range of a split table). */
export interface PartFigures {
  rows: number;
  bytes: number;
  files: number;
}

/**
 * A table's figures from one progress event: the event's own for a whole table; for a part of a split table the sum
 * of the latest figures of every part seen (`holder.parts` keeps them).
 */
export function partsTotal(holder: { parts?: Map<string, PartFigures> }, p: TableProgress): PartFigures {
  if (p.part === undefined) return { rows: p.rows, bytes: p.bytes, files: p.files };
  holder.parts ??= new Map();
  holder.parts.set(p.part, { rows: p.rows, bytes: p.bytes, files: p.files });
  const sum = { rows: 0, bytes: 0, files: 0 };
  for (const f of holder.parts.values()) {
    sum.rows += f.rows;
    sum.bytes += f.bytes;
    sum.files += f.files;
  }
  return sum;
}

/** Rounded progress facts for a log line (no nulls: absent fields mean unknown). */
function factFields(f: Facts): Record<string, number | boolean> {
  return {
    ...(f.percent !== null ? { percent: f.percent } : {}),
    ...(f.etaSeconds !== null ? { etaSeconds: Math.round(f.etaSeconds) } : {}),
    ...(f.rowsPerSecond !== null ? { rowsPerSecond: Math.round(f.rowsPerSecond) } : {}),
    ...(f.overEstimate ? { overEstimate: true } : {}),
  };
}

interface Watched {
  started: number;
  tables: Map<
    string,
    {
      rows: number;
      estimate: number | null;
      done: boolean;
      failed?: boolean;
      started?: number;
      parts?: Map<string, PartFigures>;
    }
  >;
  lastLog: number;
}

export class LogReporter implements Reporter {
  private readonly lastLog = new Map<string, number>();
  /** The run of each account, so every table line carries accountId, runId and table. */
  private readonly runIds = new Map<string, string>();
  private readonly accounts = new Map<string, Watched>();
  constructor(
    private readonly log: Logger,
    private readonly everyMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A Lambda worker exports one table of a run it did not start: bind the run without an 'export started' line. */
  watchRun(accountId: string, runId: string): void {
    this.runIds.set(accountId, runId);
  }

  private watched(accountId: string): Watched {
    let w = this.accounts.get(accountId);
    if (!w) {
      w = { started: this.now(), tables: new Map(), lastLog: this.now() };
      this.accounts.set(accountId, w);
    }
    return w;
  }

  accountStarted(accountId: string, runId: string, tables: string[], estimatedRows?: (number | null)[]): void {
    this.runIds.set(accountId, runId);
    const w: Watched = { started: this.now(), tables: new Map(), lastLog: this.now() };
    tables.forEach((t, i) => {
      w.tables.set(t, { rows: 0, estimate: estimatedRows?.[i] ?? null, done: false });
    });
    this.accounts.set(accountId, w);
    const known = estimatedRows?.filter((e): e is number => e !== null) ?? [];
    this.log.info(
      {
        accountId,
        runId,
        tables: tables.length,
        ...(estimatedRows
          ? { estimatedRows: known.reduce((a, b) => a + b, 0), tablesWithoutEstimate: tables.length - known.length }
          : {}),
      },
      'export started',
    );
  }

  tableProgress(accountId: string, p: TableProgress): void {
    const now = this.now();
    const w = this.watched(accountId);
    let t = w.tables.get(p.table);
    if (!t) {
      t = { rows: 0, estimate: null, done: false };
      w.tables.set(p.table, t);
    }
    t.started ??= now;
    const total = partsTotal(t, p);
    t.rows = total.rows;
    if (p.estimatedRows !== undefined) t.estimate = p.estimatedRows;
    const k = `${accountId}/${p.table}`;
    if (now - (this.lastLog.get(k) ?? Number.NEGATIVE_INFINITY) >= this.everyMs) {
      this.lastLog.set(k, now);
      this.log.info(
        {
          accountId,
          runId: this.runIds.get(accountId),
          table: p.table,
          rows: total.rows,
          bytes: total.bytes,
          files: total.files,
          ...(t.estimate !== null ? { estimatedRows: t.estimate } : { estimate: 'unknown' }),
          ...factFields(tableFacts(total.rows, t.estimate, (now - t.started) / 1000, false)),
        },
        'table progress',
      );
    }
    if (w.tables.size > 1 && now - w.lastLog >= this.everyMs) {
      w.lastLog = now;
      const f = accountFacts([...w.tables.values()], (now - w.started) / 1000);
      this.log.info(
        {
          accountId,
          runId: this.runIds.get(accountId),
          rows: f.rows,
          expectedRows: f.expectedRows,
          tablesDone: f.doneTables,
          tables: f.tables,
          tablesWithoutEstimate: f.unknownTables,
          ...factFields(f),
        },
        'account progress',
      );
    }
  }

  tableDone(accountId: string, r: TableResult): void {
    const t = this.accounts.get(accountId)?.tables.get(r.table);
    if (t) Object.assign(t, { rows: r.rows, done: true });
    this.log.info(
      {
        accountId,
        runId: this.runIds.get(accountId),
        table: r.table,
        rows: r.rows,
        bytes: r.bytes,
        files: r.files.length,
        seconds: Number(r.seconds.toFixed(3)),
        rowsPerSecond: Math.round(r.rows / Math.max(r.seconds, 1e-6)),
      },
      'table exported',
    );
  }

  tableFailed(accountId: string, table: string, error: unknown): void {
    const t = this.accounts.get(accountId)?.tables.get(table);
    if (t) {
      t.done = true;
      t.failed = true;
    }
    this.log.error({ accountId, runId: this.runIds.get(accountId), table, ...errorFields(error) }, 'table failed');
  }

  accountDone(accountId: string, o: AccountOutcome): void {
    this.accounts.delete(accountId);
    if (o.ok) {
      this.log.info(
        {
          accountId,
          runId: o.runId,
          receipt: o.receiptKey,
          tables: o.tables.length,
          ...(o.leftOut?.length ? { leftOut: o.leftOut.map((l) => `${l.table}: ${l.reason}`) } : {}),
          rows: o.tables.reduce((n, t) => n + t.rows, 0),
          bytes: o.tables.reduce((n, t) => n + t.bytes, 0),
          seconds: Number(o.seconds.toFixed(3)),
        },
        'export succeeded',
      );
    } else {
      this.log.error(
        { accountId, runId: o.runId, failures: o.failures, ...errorFields(o.error) },
        'export failed; no receipt written',
      );
    }
  }
}

/** Fans events out to several reporters (e.g. terminal + logs). */
export class Reporters implements Reporter {
  constructor(private readonly all: Reporter[]) {}
  accountStarted(a: string, r: string, t: string[], e?: (number | null)[]): void {
    for (const x of this.all) x.accountStarted(a, r, t, e);
  }
  tableProgress(a: string, p: TableProgress): void {
    for (const x of this.all) x.tableProgress(a, p);
  }
  tableDone(a: string, r: TableResult): void {
    for (const x of this.all) x.tableDone(a, r);
  }
  tableFailed(a: string, t: string, e: unknown): void {
    for (const x of this.all) x.tableFailed(a, t, e);
  }
  accountDone(a: string, o: AccountOutcome): void {
    for (const x of this.all) x.accountDone(a, o);
  }
}
