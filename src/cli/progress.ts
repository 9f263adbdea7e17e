import { errorFields } from '../log/logger.js';
import type { AccountOutcome, Reporter } from '../run/reporter.js';
import type { TableProgress, TableResult } from '../run/table.js';
import { formatBytes, formatCount, formatRate, renderTable } from './format.js';

interface Line {
  account: string;
  table: string;
  rows: number;
  bytes: number;
  files: number;
  state: 'waiting' | 'running' | 'done' | 'failed';
  started?: number;
  seconds?: number;
  error?: string;
}

/**
 * Live progress on a terminal: one line per table (rows, bytes, rate), redrawn in place a few
 * times a second; at the end a summary table. Used only when stderr is a TTY.
 */
export class TerminalReporter implements Reporter {
  private readonly lines = new Map<string, Line>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly outcomes = new Map<string, AccountOutcome>();

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  start(): void {
    this.timer = setInterval(() => this.draw(), 200);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
  }

  private line(account: string, table: string): Line {
    const k = `${account}\u0000${table}`;
    let l = this.lines.get(k);
    if (!l) {
      l = { account, table, rows: 0, bytes: 0, files: 0, state: 'waiting' };
      this.lines.set(k, l);
    }
    return l;
  }

  accountStarted(accountId: string, _runId: string, tables: string[]): void {
    for (const t of tables) this.line(accountId, t);
  }

  tableProgress(accountId: string, p: TableProgress): void {
    const l = this.line(accountId, p.table);
    if (l.state === 'waiting') {
      l.state = 'running';
      l.started = performance.now();
    }
    l.rows = p.rows;
    l.bytes = p.bytes;
    l.files = p.files;
  }

  tableDone(accountId: string, r: TableResult): void {
    const l = this.line(accountId, r.table);
    Object.assign(l, { state: 'done', rows: r.rows, bytes: r.bytes, files: r.files.length, seconds: r.seconds });
  }

  tableFailed(accountId: string, table: string, error: unknown): void {
    const l = this.line(accountId, table);
    l.state = 'failed';
    l.error = errorFields(error).error;
  }

  accountDone(accountId: string, outcome: AccountOutcome): void {
    this.outcomes.set(accountId, outcome);
  }

  private draw(): void {
    if (this.drawn > 0) this.out.write(`\u001b[${this.drawn}A\u001b[0J`);
    const now = performance.now();
    const rows = [...this.lines.values()].map((l) => {
      const secs = l.seconds ?? (l.started ? (now - l.started) / 1000 : 0);
      const mark = { waiting: '·', running: '›', done: '✓', failed: '✗' }[l.state];
      return `${mark} ${l.account.padEnd(12)} ${l.table.padEnd(24)} ${formatCount(l.rows).padStart(12)} rows ${formatBytes(l.bytes).padStart(10)}  ${l.state === 'failed' ? 'failed' : formatRate(l.rows, secs)}`;
    });
    this.out.write(rows.length ? `${rows.join('\n')}\n` : '');
    this.drawn = rows.length;
  }
}

/** The summary printed at the end of every export command (TTY or not). */
export function summaryTable(outcomes: Map<string, AccountOutcome>): string {
  const rows: string[][] = [];
  for (const [account, o] of [...outcomes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (o.ok) {
      for (const t of o.tables) {
        rows.push([
          account,
          t.table,
          formatCount(t.rows),
          String(t.files.length),
          formatBytes(t.bytes),
          t.seconds.toFixed(2),
        ]);
      }
    } else {
      for (const f of o.failures) rows.push([account, f.table, '—', '—', '—', 'FAILED']);
      if (o.failures.length === 0) rows.push([account, '(run)', '—', '—', '—', 'FAILED']);
    }
  }
  const table = renderTable(['account', 'table', 'rows', 'files', 'bytes', 'seconds'], rows, [2, 3, 4, 5]);
  const leftOut = [...outcomes]
    .flatMap(([account, o]) =>
      o.ok ? (o.leftOut ?? []).map((l) => `left out: ${account}/${l.table} — ${l.reason}`) : [],
    )
    .sort();
  return leftOut.length ? `${table}\n${leftOut.join('\n')}` : table;
}

/** One human-readable line per failed table (or per failed run). */
export function failureLines(outcomes: Map<string, AccountOutcome>): string[] {
  const lines: string[] = [];
  for (const [account, o] of outcomes) {
    if (o.ok) continue;
    if (o.failures.length > 0) for (const f of o.failures) lines.push(`${account}/${f.table}: ${f.message}`);
    else lines.push(`${account}: ${errorFields(o.error).error}`);
  }
  return lines;
}
