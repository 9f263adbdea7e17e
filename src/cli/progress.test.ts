import { describe, expect, it } from 'vitest';
import type { AccountOutcome } from '../run/progress/reporter.js';
import { failureLines, summaryTable, TerminalReporter } from './progress.js';

/** An error as the in-process driver throws it: a message, and the tables whose failures are its reason (if any). */
function runError(message: string, failures: { table: string; message: string }[] = []): Error {
  return Object.assign(new Error(message), { failures });
}

describe('failure lines and the summary', () => {
  it('name the run’s own reason when the tables’ failures are not it (a cancel, a signal), and only the tables when they are', () => {
    const lost = [{ table: 'events', message: 'table events: could not claim its task (lost-claim)' }];
    const outcomes = new Map<string, AccountOutcome>([
      [
        'cancelled',
        {
          ok: false,
          runId: 'r1',
          error: runError(
            'account cancelled: run stopped (run r1 was cancelled: cancelled by jane); no receipt written',
          ),
          failures: lost,
          seconds: 1,
        },
      ],
      [
        'tables',
        {
          ok: false,
          runId: 'r2',
          error: runError('account tables: 1 of 3 tables failed; no receipt written', lost),
          failures: lost,
          seconds: 1,
        },
      ],
      [
        'waiting',
        {
          ok: false,
          runId: '',
          error: runError('account waiting: not started (interrupted by SIGINT); nothing recorded'),
          failures: [],
          seconds: 0,
          notStarted: true,
        },
      ],
    ]);
    expect(failureLines(outcomes)).toEqual([
      'cancelled: account cancelled: run stopped (run r1 was cancelled: cancelled by jane); no receipt written',
      'cancelled/events: table events: could not claim its task (lost-claim)',
      'tables/events: table events: could not claim its task (lost-claim)',
      'waiting: account waiting: not started (interrupted by SIGINT); nothing recorded',
    ]);
    expect(summaryTable(outcomes)).toMatch(/waiting\s+\(run\).*NOT STARTED/);
  });

  it('a note on a terminal is written above the bars and the bars drawn again below it (a redraw erased it)', () => {
    // Prepare
    let screen = '';
    const write = (s: string): boolean => {
      screen += s;
      return true;
    };
    const t = new TerminalReporter({ write, columns: 100 }, { mode: 'tty' });
    t.accountStarted('acme', 'r1', ['events'], [10]);
    t.tableProgress('acme', { table: 'events', rows: 5, bytes: 1, files: 1, estimatedRows: 10 });
    t.stop(); // draws once
    screen = '';
    // Act
    t.note('SIGINT: stopping (uploads are aborted); press Ctrl-C again to quit at once');
    // Assess: the drawn lines are cleared first (cursor up + clear), then the note, then the bars again.
    expect(screen).toMatch(/^\u001b\[\d+A\u001b\[0JSIGINT: stopping .*\n.*acme/s);
  });
});
