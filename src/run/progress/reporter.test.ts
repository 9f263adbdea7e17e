import { describe, expect, it } from 'vitest';
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
});
