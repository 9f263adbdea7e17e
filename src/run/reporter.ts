import { errorFields, type Logger } from '../log/logger.js';
import type { TableProgress, TableResult } from './table.js';

/**
 * What a run tells the people watching it. The CLI renders it live on a terminal
 * (src/cli/progress.ts); everywhere else (Lambda, CI, pipes) the same facts go to structured logs.
 */
export interface Reporter {
  accountStarted(accountId: string, runId: string, tables: string[]): void;
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
  | { ok: false; runId: string; error: unknown; failures: { table: string; message: string }[]; seconds: number };

export class LogReporter implements Reporter {
  private readonly lastLog = new Map<string, number>();
  /** The run of each account, so every table line carries accountId, runId and table. */
  private readonly runIds = new Map<string, string>();
  constructor(
    private readonly log: Logger,
    private readonly everyMs = 10_000,
  ) {}

  accountStarted(accountId: string, runId: string, tables: string[]): void {
    this.runIds.set(accountId, runId);
    this.log.info({ accountId, runId, tables: tables.length }, 'export started');
  }

  tableProgress(accountId: string, p: TableProgress): void {
    const k = `${accountId}/${p.table}`;
    const now = Date.now();
    if (now - (this.lastLog.get(k) ?? 0) < this.everyMs) return;
    this.lastLog.set(k, now);
    this.log.info(
      { accountId, runId: this.runIds.get(accountId), table: p.table, rows: p.rows, bytes: p.bytes, files: p.files },
      'table progress',
    );
  }

  tableDone(accountId: string, r: TableResult): void {
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
    this.log.error({ accountId, runId: this.runIds.get(accountId), table, ...errorFields(error) }, 'table failed');
  }

  accountDone(accountId: string, o: AccountOutcome): void {
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
  accountStarted(a: string, r: string, t: string[]): void {
    for (const x of this.all) x.accountStarted(a, r, t);
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
