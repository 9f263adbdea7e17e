import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/devstack/stack.js';

/** The benchmark itself stays runnable: a tiny run end to end (figures are not asserted: they are measured). */
describe('npm run bench', () => {
  it('runs every measurement and prints one JSON line with the ratios, codecs and the wide table', async () => {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          join(REPO_ROOT, 'test/bench/bench.ts'),
          ...['--rows', '20000', '--runs', '1', '--codecs', 'gzip,zstd', '--wide-rows', '300'],
        ],
        {
          cwd: REPO_ROOT,
          // The 20,000-row table read by two threads: the second thread starts from the esbuild bundle (Lambda's form).
          env: { ...process.env, DROPSHIP_TABLE_THREADS: '2', DROPSHIP_TABLE_THREADS_MIN_ROWS: '10000' },
          timeout: 290_000,
          maxBuffer: 1 << 20,
        },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
      ),
    );
    const line = JSON.parse(stdout.trim().split('\n').at(-1)!);
    const [r] = line.results;
    expect(r.rows).toBe(20000);
    expect(r.dropship_threads).toBe(availableParallelism() >= 2 ? 2 : 1);
    expect(r.codec).toBe('gzip');
    for (const k of [
      'read_ceiling_rows_per_s',
      'duckdb_1thread_rows_per_s',
      'duckdb_all_threads_rows_per_s',
      'dropship_rows_per_s',
      'dropship_cpu_us_per_row',
      'dropship_export_cpu_us_per_row',
      'duckdb_cpu_us_per_row',
      'dropship_peak_rss_bytes',
      'dropship_output_bytes',
    ]) {
      expect(r[k], k).toBeGreaterThan(0);
    }
    // The export alone is part of the whole process's CPU.
    expect(r.dropship_export_cpu_us_per_row).toBeLessThan(r.dropship_cpu_us_per_row);
    expect(r.ratio_to_duckdb).toBeCloseTo(r.dropship_rows_per_s / r.duckdb_1thread_rows_per_s, 2);
    expect(r.output_ratio_to_duckdb).toBeCloseTo(r.dropship_output_bytes / r.duckdb_output_bytes, 3);
    // What each side was asked for is in the line (dropship's codec levels; one run per figure here).
    expect(line.settings).toMatchObject({ runs: 1, duckdb_tags: 'list', gzip_level: 4, zstd_level: 1 });
    expect(r.ratio_to_duckdb_all_threads).toBeCloseTo(r.dropship_rows_per_s / r.duckdb_all_threads_rows_per_s, 2);
    // Each codec against DuckDB's same codec; the wide table's memory.
    expect(line.codecs.map((c: { codec: string }) => c.codec)).toEqual(['gzip', 'zstd']);
    expect(line.codecs[1].dropship_output_bytes).toBeGreaterThan(0);
    expect(line.wide).toMatchObject({ columns: 1000, rows: 300 });
    expect(line.wide.dropship_peak_rss_bytes).toBeGreaterThan(0);
    expect(line.wide.dropship_rows_per_s).toBeGreaterThan(0);
    // The wide table once per codec, GZIP's figures also under `wide`.
    expect(line.wide_codecs.map((w: { codec: string }) => w.codec)).toEqual(['gzip', 'zstd']);
    expect(line.wide_codecs[1].dropship_peak_rss_bytes).toBeGreaterThan(0);
    expect(line.wide_codecs[0].dropship_peak_rss_bytes).toBe(line.wide.dropship_peak_rss_bytes);
    // One tenant of 100 in a shared table of the same size (test/bench/tenant.ts).
    expect(line.tenant.tenant_rows).toBe(200);
    expect(line.tenant.tenant_rows_per_s).toBeGreaterThan(0);
    // Every section of a tiny run: ~55 s alone, past 120 s in a CI rehearsal sharing the two cores with other suites.
  }, 300_000);
});
