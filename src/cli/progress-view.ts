import { accountFacts, type Facts, tableFacts } from '../run/progress/eta.js';
import { formatBytes, formatCount, formatRate, printable } from './format.js';

/**
 * What the CLI shows while accounts export, as a pure function of the state and the clock:
 *   - on a terminal (`renderTerminal`): per account an overall line, then per table a bar with the
 *     percentage, rows against the planner's estimate, rate and time left — redrawn in place;
 *   - elsewhere (`renderLogLines`): plain lines for the tables still running, printed every few
 *     seconds instead of redraws (CI logs, `| tee`, files).
 * The numbers come from src/run/progress/eta.ts, the same functions the structured (Lambda) logs use.
 */
export type TableState = 'waiting' | 'running' | 'done' | 'failed';

export interface TableView {
  table: string;
  /** The planner's row estimate; null when Postgres has none (never analyzed). */
  estimate: number | null;
  rows: number;
  bytes: number;
  files: number;
  state: TableState;
  /** Wall-clock ms when its first rows arrived / when it finished. */
  startedMs?: number;
  endedMs?: number;
}

export interface AccountView {
  account: string;
  startedMs: number;
  tables: TableView[];
}

export interface ProgressState {
  accounts: AccountView[];
}

const BAR = 20;

export function formatDuration(seconds: number): string {
  if (seconds < 9.95) return `${Math.max(0, seconds).toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** `[█████░░░░░]`, or a labelled empty bar when there is no percentage. */
export function bar(percent: number | null, width = BAR): string {
  if (percent === null) return `[${'estimate unknown'.padStart(Math.floor((width + 16) / 2)).padEnd(width)}]`;
  const full = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}]`;
}

function elapsed(t: TableView, nowMs: number): number {
  if (t.startedMs === undefined) return 0;
  return ((t.endedMs ?? nowMs) - t.startedMs) / 1000;
}

function factsOf(t: TableView, nowMs: number): Facts {
  return tableFacts(t.rows, t.estimate, elapsed(t, nowMs), t.state === 'done');
}

/** "135,000 of ~300,000 rows", "1,234 rows (estimate unknown)", "310,000 rows (estimate was ~300,000)". */
function rowsText(t: TableView, f: Facts): string {
  if (t.state === 'done') return `${formatCount(t.rows)} rows`;
  if (t.estimate === null) return `${formatCount(t.rows)} rows (estimate unknown)`;
  if (f.overEstimate) return `${formatCount(t.rows)} rows (estimate was ~${formatCount(t.estimate)})`;
  return `${formatCount(t.rows)} of ~${formatCount(t.estimate)} rows`;
}

function leftText(f: Facts): string {
  return f.etaSeconds === null ? '' : `~${formatDuration(f.etaSeconds)} left`;
}

function accountLine(a: AccountView, nowMs: number): string {
  const f = accountFacts(
    a.tables.map((t) => ({
      rows: t.rows,
      estimate: t.estimate,
      done: t.state === 'done' || t.state === 'failed',
      failed: t.state === 'failed',
    })),
    (nowMs - a.startedMs) / 1000,
  );
  const failed = a.tables.filter((t) => t.state === 'failed').length;
  const parts = [
    f.percent === null ? 'estimate unknown' : `${f.percent}%`,
    f.percent !== null && f.doneTables < f.tables
      ? `${formatCount(f.rows)} of ~${formatCount(f.expectedRows)} rows${f.unknownTables > 0 ? ` (+${f.unknownTables} without estimate)` : ''}`
      : `${formatCount(f.rows)} rows`,
    `${f.doneTables}/${f.tables} tables${failed ? ` (${failed} failed)` : ''}`,
    f.rowsPerSecond === null ? '' : formatRate(f.rows, f.rows / f.rowsPerSecond),
    f.doneTables < f.tables ? leftText(f) : `${formatDuration((nowMs - a.startedMs) / 1000)}`,
  ];
  return parts.filter(Boolean).join(' · ');
}

/** Terminal lines: per account its overall line (with a bar), then one line per table. */
export function renderTerminal(state: ProgressState, nowMs: number, columns = 120): string[] {
  const lines: string[] = [];
  const nameWidth = Math.min(28, Math.max(8, ...state.accounts.flatMap((a) => a.tables.map((t) => t.table.length))));
  for (const a of state.accounts) {
    const af = accountFacts(
      a.tables.map((t) => ({
        rows: t.rows,
        estimate: t.estimate,
        done: t.state === 'done' || t.state === 'failed',
        failed: t.state === 'failed',
      })),
      (nowMs - a.startedMs) / 1000,
    );
    // The account's bar lines up with its tables' bars ("  › " + name).
    lines.push(`${a.account.padEnd(nameWidth + 4)} ${bar(af.percent)} ${accountLine(a, nowMs)}`);
    for (const t of a.tables) {
      const name = (t.table.length > nameWidth ? `${t.table.slice(0, nameWidth - 1)}…` : t.table).padEnd(nameWidth);
      const mark = { waiting: '·', running: '›', done: '✓', failed: '✗' }[t.state];
      if (t.state === 'waiting') {
        lines.push(`  ${mark} ${name} waiting${t.estimate === null ? '' : ` (~${formatCount(t.estimate)} rows)`}`);
        continue;
      }
      if (t.state === 'failed') {
        lines.push(`  ${mark} ${name} failed after ${formatCount(t.rows)} rows`);
        continue;
      }
      const f = factsOf(t, nowMs);
      const pct = f.percent === null ? '    ' : `${String(f.percent).padStart(3)}%`;
      const tail =
        t.state === 'done'
          ? `${formatBytes(t.bytes)} in ${t.files} file${t.files === 1 ? '' : 's'} · ${formatDuration(elapsed(t, nowMs))}`
          : [f.rowsPerSecond === null ? '' : formatRate(t.rows, t.rows / f.rowsPerSecond), leftText(f)]
              .filter(Boolean)
              .join(' · ');
      lines.push(`  ${mark} ${name} ${bar(f.percent)} ${pct} ${rowsText(t, f)}${tail ? ` · ${tail}` : ''}`);
    }
  }
  // Table and account names come from the source: their control characters are shown, never obeyed.
  return lines.map(printable).map((l) => (l.length > columns ? `${l.slice(0, columns - 1)}…` : l));
}

/**
 * Lines for a log (no terminal): one per running table, and one per account with more than one
 * table, e.g. `acme/events 45% · 135,000 of ~300,000 rows · 12.3k rows/s · ~14 s left`.
 */
export function renderLogLines(state: ProgressState, nowMs: number): string[] {
  const lines: string[] = [];
  for (const a of state.accounts) {
    const running = a.tables.filter((t) => t.state === 'running');
    if (running.length === 0) continue;
    if (a.tables.length > 1) lines.push(`${a.account} ${accountLine(a, nowMs)}`);
    for (const t of running) {
      const f = factsOf(t, nowMs);
      lines.push(
        [
          `${a.account}/${t.table}${f.percent === null ? '' : ` ${f.percent}%`}`,
          rowsText(t, f),
          f.rowsPerSecond === null ? '' : formatRate(t.rows, t.rows / f.rowsPerSecond),
          leftText(f),
        ]
          .filter(Boolean)
          .join(' · '),
      );
    }
  }
  return lines.map(printable);
}
