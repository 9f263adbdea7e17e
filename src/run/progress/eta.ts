/**
 * Progress facts from the planner's row estimate: percentage, rate and time left, for one table
 * and for a whole account. Pure functions of counts and elapsed time, shared by the terminal
 * renderer (src/cli/progress-view.ts) and the structured logs (src/run/progress/reporter.ts), so a person
 * at a terminal and an operator reading Lambda logs see the same numbers.
 *
 * The estimate (pg_class.reltuples) is a statistic, not a count: a table can outgrow it while it is
 * exported. Then the percentage stays at 99 until the table is done and the time left is unknown,
 * rather than showing 130 % or a negative time.
 */
export interface Facts {
  /** 0–100, whole percent; null when there is no estimate. */
  percent: number | null;
  /** Seconds left at the current rate; null when unknown (no estimate, no rate yet, or past the estimate). */
  etaSeconds: number | null;
  /** null until rows have arrived. */
  rowsPerSecond: number | null;
  /** More rows than the estimate said. */
  overEstimate: boolean;
}

export function tableFacts(rows: number, estimate: number | null, elapsedSeconds: number, done: boolean): Facts {
  const rowsPerSecond = rows > 0 && elapsedSeconds > 0 ? rows / elapsedSeconds : null;
  if (done) return { percent: 100, etaSeconds: 0, rowsPerSecond, overEstimate: estimate !== null && rows > estimate };
  if (estimate === null || estimate <= 0)
    return { percent: null, etaSeconds: null, rowsPerSecond, overEstimate: false };
  if (rows >= estimate) return { percent: 99, etaSeconds: null, rowsPerSecond, overEstimate: rows > estimate };
  return {
    percent: Math.min(99, Math.floor((rows / estimate) * 100)),
    etaSeconds: rowsPerSecond === null ? null : (estimate - rows) / rowsPerSecond,
    rowsPerSecond,
    overEstimate: false,
  };
}

export interface TableCounts {
  rows: number;
  estimate: number | null;
  /** Finished (exported or failed): its row count is final. */
  done: boolean;
  /**
   * Failed: finished, but its rows are not what it would have had — the account's expected total keeps its estimate
   * (it shrank to the rows read before the failure: "35,393 of ~52,393 rows" for a 629k-row account; red team, CLI).
   */
  failed?: boolean;
}

export interface AccountFacts extends Facts {
  rows: number;
  /** Rows expected in total: final counts of finished tables + estimates (or more, if outgrown) of the rest. */
  expectedRows: number;
  tables: number;
  doneTables: number;
  /** Unfinished tables without an estimate: the percentage and time left leave them out. */
  unknownTables: number;
}

/** The account line: every table's rows against what is expected of it, at the account's overall rate. */
export function accountFacts(tables: TableCounts[], elapsedSeconds: number): AccountFacts {
  let rows = 0;
  let knownRows = 0;
  let expectedRows = 0;
  let unknownTables = 0;
  let doneTables = 0;
  for (const t of tables) {
    rows += t.rows;
    if (t.done) {
      doneTables++;
      knownRows += t.rows;
      expectedRows += t.failed && t.estimate !== null && t.estimate > t.rows ? t.estimate : t.rows;
    } else if (t.estimate === null || t.estimate <= 0) {
      unknownTables++;
    } else {
      knownRows += Math.min(t.rows, t.estimate);
      expectedRows += Math.max(t.estimate, t.rows);
    }
  }
  const rowsPerSecond = rows > 0 && elapsedSeconds > 0 ? rows / elapsedSeconds : null;
  const all = doneTables === tables.length;
  const percent = all ? 100 : expectedRows > 0 ? Math.min(99, Math.floor((knownRows / expectedRows) * 100)) : null;
  const left = expectedRows - knownRows;
  const etaSeconds = all ? 0 : rowsPerSecond === null || expectedRows === 0 ? null : left / rowsPerSecond;
  return {
    percent,
    etaSeconds,
    rowsPerSecond,
    overEstimate: false,
    rows,
    expectedRows,
    tables: tables.length,
    doneTables,
    unknownTables,
  };
}
