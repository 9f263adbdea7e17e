import { errorFields } from '../log/logger.js';
import type { TableProgress, TableResult } from '../pipeline/table.js';
import { type AccountOutcome, type PartFigures, partsTotal, type Reporter } from '../run/progress/reporter.js';
import { formatBytes, formatCount, renderTable } from './format.js';
import { type AccountView, formatDuration, renderLogLines, renderTerminal, type TableView } from './progress-view.js';

/**
 * Live progress for a person: on a terminal the lines of `renderTerminal` redrawn in place a few
 * times a second; otherwise (`mode: 'lines'`) the lines of `renderLogLines` every few seconds, plus
 * one line when a table finishes. State in, text out: the rendering itself is src/cli/progress-view.ts.
 */
export class TerminalReporter implements Reporter {
  private readonly accounts = new Map<string, AccountView>();
  private drawn = 0;
  /** A split table's parts' own figures, per account and table (their sum is the table's line). */
  private readonly parts = new Map<string, { parts?: Map<string, PartFigures> }>();
  private timer: NodeJS.Timeout | undefined;
  readonly outcomes = new Map<string, AccountOutcome>();
  private readonly mode: 'tty' | 'lines';
  private readonly everyMs: number;
  private readonly now: () => number;

  constructor(
    private readonly out: Pick<NodeJS.WriteStream, 'write'> & { columns?: number } = process.stderr,
    opts: { mode?: 'tty' | 'lines'; everyMs?: number; now?: () => number } = {},
  ) {
    this.mode = opts.mode ?? 'tty';
    this.everyMs = opts.everyMs ?? (this.mode === 'tty' ? 200 : 5_000);
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.mode === 'tty') this.draw();
  }

  private view(accountId: string): AccountView {
    let a = this.accounts.get(accountId);
    if (!a) {
      a = { account: accountId, startedMs: this.now(), tables: [] };
      this.accounts.set(accountId, a);
    }
    return a;
  }

  private line(accountId: string, table: string): TableView {
    const a = this.view(accountId);
    let t = a.tables.find((x) => x.table === table);
    if (!t) {
      t = { table, estimate: null, rows: 0, bytes: 0, files: 0, state: 'waiting' };
      a.tables.push(t);
    }
    return t;
  }

  accountStarted(accountId: string, _runId: string, tables: string[], estimatedRows?: (number | null)[]): void {
    this.view(accountId).startedMs = this.now();
    tables.forEach((name, i) => {
      this.line(accountId, name).estimate = estimatedRows?.[i] ?? null;
    });
  }

  tableProgress(accountId: string, p: TableProgress): void {
    const l = this.line(accountId, p.table);
    if (l.state === 'waiting') {
      l.state = 'running';
      l.startedMs = this.now();
    }
    if (p.estimatedRows !== undefined) l.estimate = p.estimatedRows;
    const key = `${accountId}\u0000${p.table}`;
    let holder = this.parts.get(key);
    if (!holder) {
      holder = {};
      this.parts.set(key, holder);
    }
    const total = partsTotal(holder, p);
    l.rows = total.rows;
    l.bytes = total.bytes;
    l.files = total.files;
  }

  tableDone(accountId: string, r: TableResult): void {
    const l = this.line(accountId, r.table);
    const end = this.now();
    Object.assign(l, {
      state: 'done',
      rows: r.rows,
      bytes: r.bytes,
      files: r.files.length,
      endedMs: end,
      startedMs: end - r.seconds * 1000,
    });
    if (this.mode === 'lines') {
      this.write([
        `${accountId}/${r.table} done · ${formatCount(r.rows)} rows · ${formatBytes(r.bytes)} in ${r.files.length} file${r.files.length === 1 ? '' : 's'} · ${formatDuration(r.seconds)}`,
      ]);
    }
  }

  tableFailed(accountId: string, table: string, error: unknown): void {
    const l = this.line(accountId, table);
    l.state = 'failed';
    l.endedMs = this.now();
    if (this.mode === 'lines') this.write([`${accountId}/${table} failed: ${errorFields(error).error}`]);
  }

  accountDone(accountId: string, outcome: AccountOutcome): void {
    this.outcomes.set(accountId, outcome);
  }

  /**
   * A line that must stay on screen (a signal's hint, a log line): on a terminal the bars are cleared, the line
   * written above them and the bars drawn again below it (written past them, the next redraw erased it).
   */
  note(text: string): void {
    if (this.mode !== 'tty') {
      this.out.write(`${text}\n`);
      return;
    }
    if (this.drawn > 0) this.out.write(`\u001b[${this.drawn}A\u001b[0J`);
    this.drawn = 0;
    this.out.write(`${text}\n`);
    this.draw();
  }

  private tick(): void {
    if (this.mode === 'tty') this.draw();
    else this.write(renderLogLines({ accounts: [...this.accounts.values()] }, this.now()));
  }

  private write(lines: string[]): void {
    const stamp = new Date(this.now()).toISOString().slice(11, 19);
    for (const l of lines) this.out.write(`${stamp} ${l}\n`);
  }

  private draw(): void {
    if (this.drawn > 0) this.out.write(`\u001b[${this.drawn}A\u001b[0J`);
    const rows = renderTerminal({ accounts: [...this.accounts.values()] }, this.now(), this.out.columns ?? 120);
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
      if (o.failures.length === 0)
        rows.push([account, '(run)', '—', '—', '—', o.notStarted ? 'NOT STARTED' : 'FAILED']);
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
    // The run's own reason first unless its tables' failures are the reason (a run stopped by `runs cancel`, a
    // signal or a lost ledger showed only its tables' "could not claim its task": red team, CLI).
    const tablesAreTheReason = ((o.error as { failures?: unknown[] } | null)?.failures?.length ?? 0) > 0;
    if (o.failures.length === 0 || !tablesAreTheReason) lines.push(`${account}: ${errorFields(o.error).error}`);
    for (const f of o.failures) lines.push(`${account}/${f.table}: ${f.message}`);
  }
  return lines;
}
