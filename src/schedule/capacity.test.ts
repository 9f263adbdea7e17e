import { describe, expect, it } from 'vitest';
import { type ForecastInput, forecast, tasksOf, windowSeconds } from './capacity.js';

/*
 * The hand-computed case (round numbers so every step can be checked on paper):
 *
 *   rates: 100,000 rows/s per worker, 0.5 s per destination, 0.25 s per task, 2,048 MB (= 2 GB),
 *          $0.00001 per GB-s, $0.20 per million requests; DROPSHIP_SPLIT_ROWS 1,000,000.
 *
 *   destination a: a1 3,000,000 rows, 300 MB → 3 tasks of 1,000,000 rows: 3 × (0.25 + 10) = 30.75 s
 *                  a2   200,000 rows,  20 MB → 1 task:                         0.25 + 2   =  2.25 s
 *                  + 0.5 s for the destination                                            → 33.5 s
 *   destination b: b1 no estimate (never analyzed), 1 MB → 1 task: 0.25 + 0              =  0.25 s
 *                  b2   800,000 rows,  80 MB → 1 task:             0.25 + 8              =  8.25 s
 *                  + 0.5 s                                                                →  9.0 s
 *
 *   tables 4, tasks 3 + 1 + 1 + 1 = 6, rows 4,000,000, bytes 401 MB, one table without an estimate.
 *   W = 33.5 + 9.0 = 42.5 worker-seconds; L = 10.25 s (a part of a1).
 *   Window T = 30 s: needed = ceil(W / (T − L)) = ceil(42.5 / 19.75) = ceil(2.152) = 3.
 *   Configured 2: at least max(42.5 / 2, 10.25) = 21.25 s, at most 21.25 + 10.25 = 31.5 s (> 30: warn).
 *   GB-s = 42.5 × 2 = 85; cost = 85 × 0.00001 + 6 / 1e6 × 0.20 = 0.00085 + 0.0000012 = 0.0008512 USD.
 */
const MB = 1_000_000;
const input: ForecastInput = {
  slot: '04:00',
  windowSeconds: 30,
  splitRows: 1_000_000,
  configuredConcurrency: 2,
  workerTimeoutSeconds: 900,
  rates: {
    rowsPerSecondPerWorker: 100_000,
    fixedSecondsPerDestination: 0.5,
    fixedSecondsPerTask: 0.25,
    workerMemoryMb: 2048,
    usdPerGbSecond: 0.00001,
    usdPerMillionRequests: 0.2,
  },
  destinations: [
    {
      accountId: 'a',
      tables: [
        { table: 'a1', rows: 3_000_000, bytes: 300 * MB },
        { table: 'a2', rows: 200_000, bytes: 20 * MB },
      ],
    },
    {
      accountId: 'b',
      tables: [
        { table: 'b1', rows: null, bytes: 1 * MB },
        { table: 'b2', rows: 800_000, bytes: 80 * MB },
      ],
    },
  ],
};

describe('forecast', () => {
  it('matches the hand-computed case', () => {
    const f = forecast(input);
    expect(f).toMatchObject({
      slot: '04:00',
      windowSeconds: 30,
      destinations: 2,
      tables: 4,
      tasks: 6,
      estimatedRows: 4_000_000,
      estimatedBytes: 401 * MB,
      tablesWithoutEstimate: 1,
      neededConcurrency: 3,
      configuredConcurrency: 2,
    });
    expect(f.workerSeconds).toBeCloseTo(42.5, 9);
    expect(f.longestTaskSeconds).toBeCloseTo(10.25, 9);
    expect(f.secondsAtConfigured.atLeast).toBeCloseTo(21.25, 9);
    expect(f.secondsAtConfigured.atMost).toBeCloseTo(31.5, 9);
    expect(f.gbSeconds).toBeCloseTo(85, 9);
    expect(f.lambdaCostUsd).toBeCloseTo(0.0008512, 12);
    expect(f.warnings).toHaveLength(2);
    expect(f.warnings[0]).toMatch(/concurrency 2 may not finish .* 3 workers are needed/);
    expect(f.warnings[1]).toMatch(/1 table\(s\) have no row estimate/);
    expect(f.fits).toBe(false);
  });

  it('has no concurrency warning when the configured workers make it (3 ≥ needed 3)', () => {
    const f = forecast({ ...input, configuredConcurrency: 3 });
    // at most 42.5 / 3 + 10.25 = 24.42 s ≤ 30
    expect(f.secondsAtConfigured.atMost).toBeCloseTo(42.5 / 3 + 10.25, 9);
    expect(f.warnings.filter((w) => /concurrency/.test(w))).toEqual([]);
    // Only the missing estimate is left to warn about: the slot fits.
    expect(f.fits).toBe(true);
  });

  it('says no concurrency suffices when the longest task does not fit the window', () => {
    const f = forecast({ ...input, windowSeconds: 10 });
    expect(f.neededConcurrency).toBeNull();
    expect(f.warnings[0]).toMatch(/longest task \(10\.3 s\) does not fit the 10\.0 s/);
    expect(f.fits).toBe(false);
  });

  it('warns about a task longer than the worker timeout', () => {
    const f = forecast({ ...input, workerTimeoutSeconds: 10 });
    expect(f.warnings.some((w) => /exceeds the worker's 10 s timeout/.test(w))).toBe(true);
    expect(forecast({ ...input, workerTimeoutSeconds: 10, configuredConcurrency: 3 }).fits).toBe(false);
  });

  /*
   * Packing (DROPSHIP_PACK_BYTES 50 MB, DROPSHIP_PACK_MAX_TABLES 2), same rates. Destination c:
   *   c4 600,000 rows, 60 MB → above 50 MB: its own message       0.25 + 6   = 6.25 s
   *   c1 100,000 rows, 10 MB ┐ first-fit by decreasing size:
   *   c2  50,000 rows,  5 MB ┘ one message (2 tables, 15 MB)     0.25 + 1.5 = 1.75 s
   *   c3  30,000 rows,  3 MB   the message is full (2 tables): a second one  0.25 + 0.3 = 0.55 s
   *   + 0.5 s for the destination → W = 9.05 s in 3 messages (unpacked: 4 tasks, 9.3 s); L = 6.25 s.
   */
  it('counts packed small tables as one task message, as the fan-out sends them', () => {
    const c = {
      accountId: 'c',
      tables: [
        { table: 'c1', rows: 100_000, bytes: 10 * MB },
        { table: 'c2', rows: 50_000, bytes: 5 * MB },
        { table: 'c3', rows: 30_000, bytes: 3 * MB },
        { table: 'c4', rows: 600_000, bytes: 60 * MB },
      ],
    };
    const packed = forecast({ ...input, destinations: [c], packing: { packBytes: 50 * MB, maxTables: 2 } });
    expect(packed.tasks).toBe(3);
    expect(packed.tables).toBe(4);
    expect(packed.workerSeconds).toBeCloseTo(9.05, 9);
    expect(packed.longestTaskSeconds).toBeCloseTo(6.25, 9);
    const unpacked = forecast({ ...input, destinations: [c] });
    expect(unpacked.tasks).toBe(4);
    expect(unpacked.workerSeconds).toBeCloseTo(9.3, 9);
    // packBytes 0 is "off", as in the fan-out.
    expect(forecast({ ...input, destinations: [c], packing: { packBytes: 0, maxTables: 2 } }).tasks).toBe(4);
    // It packs by what the fan-out packs by (packBytes: the whole table's pg_table_size), not by a
    // tenant's share: two tables of 1 MB for the tenant but 100 MB whole each go alone.
    const tenant = {
      accountId: 't',
      tables: [
        { table: 't1', rows: 1_000, bytes: 1 * MB, packBytes: 100 * MB },
        { table: 't2', rows: 1_000, bytes: 1 * MB, packBytes: 100 * MB },
      ],
    };
    expect(forecast({ ...input, destinations: [tenant], packing: { packBytes: 50 * MB, maxTables: 2 } }).tasks).toBe(2);
    // a and b of the first case have no two small tables to pack: the same 6 tasks.
    expect(forecast({ ...input, packing: { packBytes: 50 * MB, maxTables: 2 } }).tasks).toBe(6);
  });

  it('splits like planParts: above splitRows only, at most 1,000 parts', () => {
    expect(tasksOf(1_000_000, 1_000_000)).toBe(1);
    expect(tasksOf(1_000_001, 1_000_000)).toBe(2);
    expect(tasksOf(5e12, 1_000)).toBe(1000);
  });

  it('measures the window to the next slot, around midnight too', () => {
    expect(windowSeconds('04:00', ['04:00', '15:00'])).toBe(11 * 3600);
    expect(windowSeconds('15:00', ['04:00', '15:00'])).toBe(13 * 3600);
    expect(windowSeconds('04:00', ['04:00'])).toBe(24 * 3600);
    expect(windowSeconds('23:30', ['00:15', '23:30'])).toBe(45 * 60);
  });
});
