import { describe, expect, it } from 'vitest';
import { TerminalReporter } from '../../cli/progress.js';
import { createLogger } from '../../log/logger.js';
import { LogReporter } from './reporter.js';

describe('LogReporter (the Lambda and CI logs)', () => {
  it('logs the same progress facts as the terminal: percentage, time left, unknown estimate', () => {
    // Prepare
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    const r = new LogReporter(log, 5_000, () => now);
    // Act
    r.accountStarted('acme', 'run-1', ['events', 'daily'], [300_000, null]);
    r.tableProgress('acme', { table: 'events', rows: 0, bytes: 0, files: 1, estimatedRows: 300_000 });
    r.tableProgress('acme', { table: 'daily', rows: 0, bytes: 0, files: 1, estimatedRows: null });
    now = 3_000;
    r.tableProgress('acme', { table: 'events', rows: 120_000, bytes: 1, files: 1, estimatedRows: 300_000 }); // throttled
    now = 5_000;
    r.tableProgress('acme', { table: 'events', rows: 200_000, bytes: 1, files: 1, estimatedRows: 300_000 });
    r.tableProgress('acme', { table: 'daily', rows: 10_000, bytes: 1, files: 1, estimatedRows: null });
    // Assess
    expect(lines[0]).toMatchObject({ msg: 'export started', estimatedRows: 300_000, tablesWithoutEstimate: 1 });
    const progress = lines.filter((l) => l.msg === 'table progress');
    expect(progress).toHaveLength(4);
    expect(progress[2]).toMatchObject({
      accountId: 'acme',
      runId: 'run-1',
      table: 'events',
      rows: 200_000,
      estimatedRows: 300_000,
      percent: 66,
      rowsPerSecond: 40_000,
      etaSeconds: 3,
    });
    expect(progress[3]).toMatchObject({ table: 'daily', estimate: 'unknown', rowsPerSecond: 2_000 });
    expect(progress[3]).not.toHaveProperty('percent');
    const account = lines.find((l) => l.msg === 'account progress');
    expect(account).toMatchObject({ rows: 200_000, expectedRows: 300_000, percent: 66, tablesWithoutEstimate: 1 });
  });

  it('a split table’s parts each report their own count: the table’s figures are their sum, never jumping back (red team, CLI)', () => {
    // Prepare
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    const r = new LogReporter(log, 0, () => 0);
    const terminal = new TerminalReporter({ write: () => true }, { mode: 'lines' });
    const both = (p: Parameters<LogReporter['tableProgress']>[1]) => {
      r.tableProgress('acme', p);
      terminal.tableProgress('acme', p);
    };
    // Act: two parts interleaved, as workers report them.
    both({ table: 'events', rows: 46_837, bytes: 10, files: 1, estimatedRows: null, part: '0' });
    both({ table: 'events', rows: 669, bytes: 1, files: 1, estimatedRows: null, part: '150000' });
    both({ table: 'events', rows: 150_000, bytes: 30, files: 1, estimatedRows: null, part: '0' });
    both({ table: 'events', rows: 23_497, bytes: 5, files: 1, estimatedRows: null, part: '150000' });
    // Assess
    const rows = lines.filter((l) => l.msg === 'table progress').map((l) => l.rows);
    expect(rows).toEqual([46_837, 47_506, 150_669, 173_497]);
    expect(lines.at(-1)).toMatchObject({ bytes: 35, files: 2 });
    expect(terminalRows(terminal)).toBe(173_497);
  });
});

/** The rows of the terminal's only table line (its private view, read for the test). */
function terminalRows(t: TerminalReporter): number {
  const accounts = (t as unknown as { accounts: Map<string, { tables: { rows: number }[] }> }).accounts;
  return accounts.get('acme')!.tables[0]!.rows;
}
