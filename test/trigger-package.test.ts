import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/devstack/stack.js';

/**
 * The customers' receipt-trigger example packages into what Lambda accepts (deploy red team: with DuckDB `external`,
 * serverless-esbuild put every platform's DuckDB binary into the zip — 186 MB, 522 MB unzipped, past Lambda's 250 MB —
 * while its README says DuckDB comes from a layer). `serverless package` offline, as the README's deploy runs it.
 */
const out = mkdtempSync(join(tmpdir(), 'dropship-trigger-pkg-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('examples/receipt-trigger packaging', () => {
  it('a zip well under Lambda’s limits, without DuckDB (the layer’s), its handler importing it', async () => {
    const dir = join(REPO_ROOT, 'examples/receipt-trigger');
    const log = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(REPO_ROOT, 'node_modules/serverless/bin/serverless.js'), 'package', '--package', out],
        {
          cwd: dir,
          env: {
            ...process.env,
            BUCKET: 'acme-data',
            PREFIX: 'dropship',
            TARGET_DATABASE_URL: 'postgres://loader@db.internal/analytics',
            SLS_TELEMETRY_DISABLED: '1',
            AWS_ACCESS_KEY_ID: '',
            AWS_SECRET_ACCESS_KEY: '',
          },
          timeout: 240_000,
          maxBuffer: 8 << 20,
        },
        (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout + stderr),
      ),
    );
    const zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
    expect(zips, log).toHaveLength(1);
    const zip = join(out, zips[0]!);
    expect(statSync(zip).size).toBeLessThan(10 * 1024 * 1024);
    const listing = await new Promise<string>((resolve, reject) =>
      execFile(
        'python3',
        [
          '-c',
          'import sys, zipfile; [print(i.filename, i.file_size) for i in zipfile.ZipFile(sys.argv[1]).infolist()]',
          zip,
        ],
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    const files = listing
      .trim()
      .split('\n')
      .map((l) => ({ name: l.split(' ')[0]!, size: Number(l.split(' ').at(-1)) }));
    expect(files.filter((f) => f.name.includes('duckdb'))).toEqual([]);
    expect(files.reduce((n, f) => n + f.size, 0)).toBeLessThan(50 * 1024 * 1024);
    expect(files.map((f) => f.name)).toContain('handler.mjs');
    const code = await new Promise<string>((resolve, reject) =>
      execFile(
        'python3',
        ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read("handler.mjs").decode())', zip],
        { maxBuffer: 64 << 20 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    // Imported at run time, from the layer (/opt/nodejs/node_modules), not bundled.
    expect(code).toMatch(/from\s*"@duckdb\/node-api"/);
  }, 300_000);
});
