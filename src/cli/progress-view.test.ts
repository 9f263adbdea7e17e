import { describe, expect, it, vi } from 'vitest';
import { accountFacts, tableFacts } from '../run/progress/eta.js';
import { type AccountView, bar, formatDuration, renderLogLines, renderTerminal } from './progress-view.js';

// Prepare: one account 10 s into its run; the clock is passed in, so every number below is exact.
const NOW = 1_000_000;
function acme(): AccountView {
  return {
    account: 'acme',
    startedMs: NOW - 10_000,
    tables: [
      {
        table: 'companies',
        estimate: 2_000,
        rows: 2_000,
        bytes: 120_000,
        files: 1,
        state: 'done',
        startedMs: NOW - 10_000,
        endedMs: NOW - 9_000,
      },
      // 4 s in, 40,000 rows/s, 120,000 of 300,000: 40 %, 180,000 left → 4.5 s
      {
        table: 'events',
        estimate: 300_000,
        rows: 120_000,
        bytes: 5e6,
        files: 1,
        state: 'running',
        startedMs: NOW - 3_000,
      },
      // never analyzed: reltuples -1
      {
        table: 'events_daily',
        estimate: null,
        rows: 1_234,
        bytes: 5e4,
        files: 1,
        state: 'running',
        startedMs: NOW - 2_000,
      },
      // grew past its estimate while exporting
      { table: 'grown', estimate: 1_000, rows: 1_500, bytes: 5e4, files: 1, state: 'running', startedMs: NOW - 1_000 },
      { table: 'paid_ads', estimate: 5_000, rows: 0, bytes: 0, files: 0, state: 'waiting' },
    ],
  };
}

describe('progress facts', () => {
  it('percentage and time left from the estimate and the rate so far', () => {
    const f = tableFacts(120_000, 300_000, 3, false);
    expect(f.percent).toBe(40);
    expect(f.rowsPerSecond).toBe(40_000);
    expect(f.etaSeconds).toBeCloseTo(4.5, 10);
    expect(tableFacts(0, 300_000, 0, false)).toEqual({
      percent: 0,
      etaSeconds: null,
      rowsPerSecond: null,
      overEstimate: false,
    });
  });

  it('unknown estimate: no percentage, no time left, still a rate', () => {
    expect(tableFacts(1_234, null, 2, false)).toEqual({
      percent: null,
      etaSeconds: null,
      rowsPerSecond: 617,
      overEstimate: false,
    });
  });

  it('rows beyond the estimate: 99 % until done, time left unknown; done is 100 %', () => {
    expect(tableFacts(1_500, 1_000, 1, false)).toMatchObject({ percent: 99, etaSeconds: null, overEstimate: true });
    expect(tableFacts(999, 1_000, 1, false).percent).toBe(99);
    expect(tableFacts(1_500, 1_000, 1, true)).toMatchObject({ percent: 100, etaSeconds: 0, overEstimate: true });
  });

  it('account: finished tables count with their final rows, unknown ones are left out and counted', () => {
    const f = accountFacts(
      [
        { rows: 2_000, estimate: 2_000, done: true },
        { rows: 120_000, estimate: 300_000, done: false },
        { rows: 1_234, estimate: null, done: false },
        { rows: 1_500, estimate: 1_000, done: false },
        { rows: 0, estimate: 5_000, done: false },
      ],
      10,
    );
    // known: 2,000 + 120,000 + 1,000 (capped at its estimate) + 0 of 2,000 + 300,000 + 1,500 + 5,000
    expect(f.expectedRows).toBe(308_500);
    expect(f.percent).toBe(Math.floor((123_000 / 308_500) * 100));
    expect(f.rows).toBe(124_734);
    expect(f.unknownTables).toBe(1);
    expect(f.etaSeconds).toBeCloseTo((308_500 - 123_000) / 12_473.4, 6);
    expect(accountFacts([{ rows: 5, estimate: null, done: true }], 1).percent).toBe(100);
  });

  it('account: a failed table keeps its estimate in the expected total (an interruption shrank it to the rows read)', () => {
    const f = accountFacts(
      [
        { rows: 35_000, estimate: 600_000, done: true, failed: true },
        { rows: 393, estimate: 29_000, done: false },
      ],
      10,
    );
    expect(f.expectedRows).toBe(629_000);
    expect(f.rows).toBe(35_393);
  });
});

describe('terminal rendering', () => {
  it('a bar per table with percentage, rows of the estimate, rate and time left, under an account line', () => {
    const lines = renderTerminal({ accounts: [acme()] }, NOW, 200);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatch(
      /^acme\s+\[█{8}░{12}\] 39% · 124,734 of ~308,500 rows \(\+1 without estimate\) · 1\/5 tables · 12\.5k rows\/s · ~15 s left$/,
    );
    expect(lines[1]).toMatch(/^ {2}✓ companies\s+\[█{20}\] 100% 2,000 rows · 117\.2 KiB in 1 file · 1\.0 s$/);
    expect(lines[2]).toMatch(
      /^ {2}› events\s+\[█{8}░{12}\] {2}40% 120,000 of ~300,000 rows · 40\.0k rows\/s · ~4.5 s left$/,
    );
    expect(lines[3]).toMatch(
      /^ {2}› events_daily \[\s+estimate unknown\s+\]\s+1,234 rows \(estimate unknown\) · 617 rows\/s$/,
    );
    expect(lines[4]).toMatch(/^ {2}› grown\s+\[█{20}\] {2}99% 1,500 rows \(estimate was ~1,000\) · 1\.5k rows\/s$/);
    expect(lines[5]).toMatch(/^ {2}· paid_ads\s+waiting \(~5,000 rows\)$/);
  });

  it('bars line up; a table at exactly its estimate is not "past" it', () => {
    const lines = renderTerminal({ accounts: [acme()] }, NOW, 200);
    expect(new Set(lines.slice(0, 5).map((l) => l.indexOf('[')))).toEqual(new Set([lines[0]!.indexOf('[')]));
    const exact = acme();
    exact.tables[1]!.rows = 300_000;
    expect(renderTerminal({ accounts: [exact] }, NOW, 200)[2]).toContain(
      ' 99% 300,000 of ~300,000 rows · 100.0k rows/s',
    );
  });

  it('fits the terminal width', () => {
    for (const l of renderTerminal({ accounts: [acme()] }, NOW, 60)) expect(l.length).toBeLessThanOrEqual(60);
  });

  it('bars and durations', () => {
    expect(bar(0, 10)).toBe('[░░░░░░░░░░]');
    expect(bar(50, 10)).toBe('[█████░░░░░]');
    expect(bar(null, 20)).toBe('[  estimate unknown  ]');
    expect(formatDuration(4.5)).toBe('4.5 s');
    expect(formatDuration(14.5)).toBe('15 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3_725)).toBe('1 h 02 min');
  });
});

describe('log lines (not a terminal)', () => {
  it('one line per running table plus the account line; nothing for waiting or finished tables', () => {
    expect(renderLogLines({ accounts: [acme()] }, NOW)).toEqual([
      'acme 39% · 124,734 of ~308,500 rows (+1 without estimate) · 1/5 tables · 12.5k rows/s · ~15 s left',
      'acme/events 40% · 120,000 of ~300,000 rows · 40.0k rows/s · ~4.5 s left',
      'acme/events_daily · 1,234 rows (estimate unknown) · 617 rows/s',
      'acme/grown 99% · 1,500 rows (estimate was ~1,000) · 1.5k rows/s',
    ]);
    const done = acme();
    for (const t of done.tables) t.state = 'done';
    expect(renderLogLines({ accounts: [done] }, NOW)).toEqual([]);
  });
});

describe('TerminalReporter off a terminal', () => {
  it('prints one line per running table every 5 s, and one when a table is done; no redraw codes', async () => {
    // Prepare
    const { TerminalReporter } = await import('./progress.js');
    vi.useFakeTimers();
    try {
      let now = Date.UTC(2026, 10, 23, 4, 0, 0);
      let text = '';
      const sink = {
        write: (s: string): boolean => {
          text += s;
          return true;
        },
      };
      const r = new TerminalReporter(sink, { mode: 'lines', now: () => now });
      r.accountStarted('acme', 'run-1', ['events', 'daily'], [300_000, null]);
      r.start();
      // Act
      r.tableProgress('acme', { table: 'events', rows: 0, bytes: 0, files: 1, estimatedRows: 300_000 });
      now += 3_000;
      r.tableProgress('acme', { table: 'events', rows: 120_000, bytes: 9, files: 1, estimatedRows: 300_000 });
      vi.advanceTimersByTime(4_999);
      const before = text;
      vi.advanceTimersByTime(1);
      r.tableDone('acme', {
        table: 'events',
        objectName: 'events',
        folder: 'f/events',
        rows: 300_000,
        bytes: 11 * 1024 * 1024,
        files: [],
        columns: [],
        seconds: 7.5,
      });
      r.stop();
      // Assess
      expect(before).toBe('');
      expect(text.split('\n').filter(Boolean)).toEqual([
        '04:00:03 acme 40% · 120,000 of ~300,000 rows (+1 without estimate) · 0/2 tables · 40.0k rows/s · ~4.5 s left',
        '04:00:03 acme/events 40% · 120,000 of ~300,000 rows · 40.0k rows/s · ~4.5 s left',
        '04:00:03 acme/events done · 300,000 rows · 11.0 MiB in 0 files · 7.5 s',
      ]);
      expect(text).not.toContain('\u001b[');
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows a table name's control characters as escapes, on a terminal and in log lines", () => {
    const a = acme();
    a.tables[1]!.table = 'ev\x1b[2K\x1b[1Aents';
    const all = [...renderTerminal({ accounts: [a] }, NOW, 200), ...renderLogLines({ accounts: [a] }, NOW)];
    expect(all.join('\n')).not.toMatch(/\x1b/);
    expect(all.some((l) => l.includes('ev\\x1b[2K\\x1b[1Aents'))).toBe(true);
  });
});
