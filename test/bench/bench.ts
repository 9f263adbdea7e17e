/**
 * npm run bench [-- --rows 2000000[,5000000]] [--runs 3]
 *
 * On the same `events`-like table (bigint id, uuid, timestamptz, text, jsonb, numeric(18,4), text[],
 * boolean, double; ~10% NULLs) in the embedded Postgres, measures in one run:
 *   1. the read ceiling: COPY … TO STDOUT (FORMAT binary) drained in Node;
 *   2. the peer reference: DuckDB (1 thread) converting the same rows from a CSV file to Parquet/GZIP;
 *   3. dropship exporting the table to the local S3 — read, encode, compress, upload, receipt — in a
 *      child process (so its peak RSS is its own);
 * and prints medians over the runs, dropship's ratios to (1) and (2), peak RSS and output bytes:
 * a table, then one JSON line.
 */
import { execFile } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { build } from 'esbuild';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { migrate } from '../../src/accounts/migrations.js';
import { Registry } from '../../src/accounts/registry.js';
import { formatBytes, renderTable } from '../../src/cli/format.js';
import { setupCustomer } from '../stack/demo.js';
import { LocalStack, REPO_ROOT } from '../stack/stack.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const sizes = arg('rows', process.env.BENCH_ROWS ?? '2000000')
  .split(',')
  .map(Number);
const runs = Number(arg('runs', process.env.BENCH_RUNS ?? '3'));
/** --cpu-prof <dir>: write V8 CPU profiles of the dropship runs there (open in Chrome DevTools). */
const cpuProfDir = arg('cpu-prof', '');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

// dropship runs bundled by esbuild in production (Lambda); the benchmark measures that same form,
// not the TypeScript loader the CLI uses in development.
const bundle = join(mkdtempSync(join(tmpdir(), 'dropship-bench-bundle-')), 'export-child.mjs');
await build({
  entryPoints: [join(REPO_ROOT, 'test/bench/export-child.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: bundle,
  external: ['pg-native'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'error',
});

const stack = await LocalStack.start();
const pool = new pg.Pool({ connectionString: stack.databaseUrl });
pool.on('error', () => {});
const work = mkdtempSync(join(tmpdir(), 'dropship-bench-'));
const results: Record<string, unknown>[] = [];
try {
  await migrate(pool);
  Object.assign(process.env, stack.env(), {
    DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const registry = new Registry(pool);
  await pool.query('create schema bench');
  await setupCustomer(stack, registry, {
    accountId: 'bench',
    awsAccountId: '123456789012',
    bucket: 'bench-data',
    schema: 'bench',
  });

  for (const n of sizes) {
    log(`\n== ${n.toLocaleString('en-US')} rows: generating …`);
    await pool.query(`drop table if exists bench.events; select setseed(0.5);
      create table bench.events as
        select i::bigint as id, gen_random_uuid() as event_id,
               timestamptz '2023-01-01 00:00:00+00' + i * interval '1 second' + (i % 997) * interval '1 microsecond' as occurred_at,
               (array['page_view','form_submit','ad_click','email_open','meeting'])[1 + (i % 5)] as event_type,
               case when random() < 0.1 then null else jsonb_build_object('path', '/p/' || (i % 97), 'n', i, 'ref', md5(i::text)) end as properties,
               case when random() < 0.1 then null else round((random() * 2000000 - 1000000)::numeric, 4)::numeric(18,4) end as revenue,
               case when random() < 0.1 then null else array['tag' || (i % 13), 'tag' || (i % 7)] end as tags,
               case when random() < 0.1 then null else random() < 0.05 end as is_conversion,
               case when random() < 0.1 then null else random() * 100 end as score
          from generate_series(1, ${n}) i;`);
    await pool.query('vacuum analyze bench.events');

    // 1. Read ceiling: binary COPY drained in Node.
    const read: number[] = [];
    for (let r = 0; r < runs; r++) {
      const client = await pool.connect();
      const t0 = performance.now();
      let bytes = 0;
      for await (const chunk of client.query(copyTo('COPY bench.events TO STDOUT (FORMAT binary)')))
        bytes += (chunk as Buffer).length;
      read.push((performance.now() - t0) / 1000);
      client.release();
      if (bytes === 0) throw new Error('COPY returned nothing');
    }

    // 2. DuckDB, one thread: CSV file → Parquet with GZIP.
    const csv = join(work, 'events.csv');
    {
      // The server runs as another OS user: stream the CSV through the client into our file.
      const client = await pool.connect();
      await pipeline(client.query(copyTo('COPY bench.events TO STDOUT (FORMAT csv, HEADER)')), createWriteStream(csv));
      client.release();
    }
    const duckTimes: number[] = [];
    let duckBytes = 0;
    for (let r = 0; r < runs; r++) {
      const db = await DuckDBInstance.create(':memory:', { threads: '1' });
      const conn = await db.connect();
      const out = join(work, `duck-${r}.parquet`);
      const t0 = performance.now();
      await conn.run(
        `copy (select * from read_csv('${csv}', header = true, columns = {
            'id': 'BIGINT', 'event_id': 'UUID', 'occurred_at': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'properties': 'JSON',
            'revenue': 'DECIMAL(18,4)', 'tags': 'VARCHAR', 'is_conversion': 'BOOLEAN', 'score': 'DOUBLE'}))
          to '${out}' (format parquet, compression gzip)`,
      );
      duckTimes.push((performance.now() - t0) / 1000);
      duckBytes = statSync(out).size;
      conn.closeSync();
      db.closeSync();
    }

    // 3. dropship end to end, in a child process.
    const ours: { seconds: number; cpuSeconds: number; maxRssBytes: number; bytes: number; rows: number }[] = [];
    for (let r = 0; r < runs; r++) {
      const res = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [
            ...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : []),
            '--import',
            'tsx',
            join(REPO_ROOT, 'test/bench/export-child.ts'),
            'bench',
          ],
          { env: { ...process.env }, maxBuffer: 1 << 20 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
      const line = JSON.parse(res.trim().split('\n').at(-1)!);
      if (line.rows !== n) throw new Error(`dropship exported ${line.rows} rows, expected ${n}`);
      ours.push(line);
    }

    const readRate = n / median(read);
    const duckRate = n / median(duckTimes);
    const ourRate = n / median(ours.map((o) => o.seconds));
    const row = {
      rows: n,
      runs,
      read_ceiling_rows_per_s: Math.round(readRate),
      duckdb_1thread_gzip_rows_per_s: Math.round(duckRate),
      dropship_rows_per_s: Math.round(ourRate),
      ratio_to_read_ceiling: Number((ourRate / readRate).toFixed(3)),
      ratio_to_duckdb: Number((ourRate / duckRate).toFixed(3)),
      dropship_peak_rss_bytes: median(ours.map((o) => o.maxRssBytes)),
      dropship_cpu_us_per_row: Number(((median(ours.map((o) => o.cpuSeconds)) / n) * 1e6).toFixed(2)),
      dropship_output_bytes: ours[0]!.bytes,
      duckdb_output_bytes: duckBytes,
    };
    results.push(row);
    log(
      renderTable(
        ['path', 'rows/s (median)', 'ratio', 'peak RSS', 'output'],
        [
          [
            'binary COPY drained in Node (read ceiling)',
            row.read_ceiling_rows_per_s.toLocaleString('en-US'),
            '—',
            '—',
            '—',
          ],
          [
            'DuckDB 1 thread, CSV → Parquet GZIP',
            row.duckdb_1thread_gzip_rows_per_s.toLocaleString('en-US'),
            '—',
            '—',
            formatBytes(duckBytes),
          ],
          [
            'dropship end to end (→ local S3, receipt)',
            row.dropship_rows_per_s.toLocaleString('en-US'),
            `${row.ratio_to_duckdb}× DuckDB, ${row.ratio_to_read_ceiling}× ceiling`,
            formatBytes(row.dropship_peak_rss_bytes),
            formatBytes(row.dropship_output_bytes),
          ],
        ],
        [1],
      ),
    );
  }
  // One tenant out of 100 in a shared table vs the whole table (test/bench/tenant.ts).
  const tenant = await (await import('./tenant.js')).benchTenant({
    stack,
    pool,
    rows: Number(arg('tenant-rows', String(Math.min(Math.max(...sizes), 1_000_000)))),
    runs,
  });
  process.stdout.write(`${JSON.stringify({ bench: 'dropship', node: process.version, results, tenant })}\n`);
} finally {
  await pool.end();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}
