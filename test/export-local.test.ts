import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import type { Settings } from '../src/config/settings.js';
import { sharedObjectNames, tableObjectName } from '../src/contracts/object-names.js';
import type { Receipt } from '../src/contracts/receipt.js';
import { createDemoSchema, setupCustomer } from '../src/devstack/demo.js';
import { createLogger, errorFields } from '../src/log/logger.js';
import { validateStatus } from '../src/notify/status.js';
import { validateReceipt } from '../src/receipt/validate.js';
import { exportAccount } from '../src/run/drivers/in-process.js';
import { LogReporter } from '../src/run/progress/reporter.js';
import { compareTable } from './compare.js';
import { duck } from './duck.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The destination port is real: the same in-process export as test/export.test.ts, of the same demo
 * fixture, into a `local` target (src/destinations/local/) instead of the customer's S3 bucket — and
 * the same checks: every table delivered exactly (DuckDB reads each Parquet file back value by value
 * against Postgres), checksums, key layout, a valid receipt.json listing exactly the files written,
 * status.json beside it; the receipt chain's conditional write (If-Match on the recorded ETag) works
 * on the second run; and a local target is refused unless development mode allows it.
 */
let h: Harness;
let pool: pg.Pool;
let settings: Settings;
let dest: Destination;
const root = mkdtempSync(join(tmpdir(), 'dropship-local-target-'));
const silent = new LogReporter(createLogger({ level: 'silent' }));
const require = createRequire(import.meta.url);

/** Every file under `dir`, as keys relative to it (sorted). */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

const run = (d: Destination, s: Settings = settings) =>
  exportAccount(d, { sourceUrl: h.stack.databaseUrl, settings: s, reporter: silent, ledger: h.ledger });
const readReceipt = (): Receipt => JSON.parse(readFileSync(join(root, 'dropship/exports/receipt.json'), 'utf8'));

/** Roots of the local targets the tests below made (removed after the file). */
const localRoots: string[] = [];

/**
 * An account whose source schema is named as it is, registered as every account is (its bucket `<id>-data`, prefix
 * `dropship`), delivered by these tests into a local folder of its own: that folder.
 */
async function localAccount(accountId: string, awsAccountId: string): Promise<string> {
  await setupCustomer(h.stack, h.registry, {
    accountId,
    awsAccountId,
    bucket: `${accountId}-data`,
    prefix: 'dropship',
    schema: accountId,
  });
  const dir = mkdtempSync(join(tmpdir(), `dropship-local-${accountId}-`));
  localRoots.push(dir);
  return dir;
}

beforeAll(async () => {
  h = await startHarness();
  pool = h.pool;
  settings = h.settings({
    DROPSHIP_SHARD_TARGET_BYTES: String(1024 * 1024),
    DROPSHIP_ROW_GROUP_ROWS: '10000',
    DROPSHIP_PART_SIZE_BYTES: String(5 * 1024 * 1024),
    DROPSHIP_ALLOW_LOCAL_TARGET: 'true',
  });
  const client = await pool.connect();
  try {
    await createDemoSchema(client, 'acme', 40_000, 0.1);
  } finally {
    client.release();
  }
  // Registered as any account is (the registry stores S3 targets); the run delivers to a local target.
  const acme = await setupCustomer(h.stack, h.registry, {
    accountId: 'acme',
    awsAccountId: '222222222222',
    bucket: 'acme-data',
    prefix: 'dropship/exports',
    schema: 'acme',
  });
  dest = { ...acme.destination, target: { kind: 'local', root, prefix: acme.destination.prefix } };
});

afterAll(async () => {
  await h?.stop();
  rmSync(root, { recursive: true, force: true });
  for (const dir of localRoots) rmSync(dir, { recursive: true, force: true });
});

describe('export into a local target (the second adapter of the destination port)', () => {
  it('refuses a local target unless development mode allows it (DROPSHIP_ALLOW_LOCAL_TARGET)', async () => {
    // Act
    const outcome = await run(dest, { ...settings, DROPSHIP_ALLOW_LOCAL_TARGET: false });
    // Assess
    expect(outcome.ok).toBe(false);
    expect(String((outcome as { error: Error }).error.message)).toContain(
      'a local target is allowed only in development mode (DROPSHIP_ALLOW_LOCAL_TARGET)',
    );
    expect(filesUnder(root)).toEqual([]);
  });

  it('delivers every table exactly, with receipt.json agreeing with the files, and nothing in S3', async () => {
    // Act
    const outcome = await run(dest);
    // Assess
    expect(outcome.ok, outcome.ok ? '' : String((outcome as { error: unknown }).error)).toBe(true);
    const receipt = readReceipt();
    expect(validateReceipt(receipt, { prefix: 'dropship/exports' })).toEqual([]);
    expect(receipt.run_id).toBe(outcome.runId);
    expect(Object.keys(receipt.tables)).toEqual([
      'companies',
      'contacts',
      'events',
      'events_daily',
      'paid_ads',
      'revenue',
      'revenue_attribution',
    ]);
    expect(receipt.compression).toBe('gzip');
    const folder = receipt.timestamp.slice(0, 16);
    expect(receipt.tables.events!.folder).toBe(`${folder}/events`);
    expect(receipt.tables.events!.total_file_count).toBeGreaterThan(1);

    // Every file in the directory is in the receipt and vice versa; keys follow the layout; no
    // temporary file is left behind.
    const listed = Object.values(receipt.tables).flatMap((t) => t.files.map((f) => f.key));
    expect(filesUnder(root)).toEqual(
      [...listed, 'dropship/exports/receipt.json', 'dropship/exports/status.json'].sort(),
    );
    for (const [name, t] of Object.entries(receipt.tables)) {
      t.files.forEach((f, i) => {
        expect(f.key).toBe(`dropship/exports/${t.folder}/${name}_${String(i).padStart(12, '0')}.parquet.gz`);
      });
      expect(t.files.reduce((n, f) => n + f.rows, 0)).toBe(t.row_count);
    }
    const status = JSON.parse(readFileSync(join(root, 'dropship/exports/status.json'), 'utf8'));
    expect(validateStatus(status)).toEqual([]);
    expect(status.last_run).toMatchObject({ run_id: outcome.runId, status: 'succeeded' });

    // Checksums match, and DuckDB reads back exactly what Postgres holds, value by value.
    const client = await pool.connect();
    try {
      for (const [name, t] of Object.entries(receipt.tables)) {
        const paths = t.files.map((f) => join(root, f.key));
        t.files.forEach((f, i) => {
          expect(createHash('sha256').update(readFileSync(paths[i]!)).digest('hex')).toBe(f.sha256);
        });
        const diff = await compareTable(client, 'acme', name, t.columns, paths);
        expect(diff.examples, name).toEqual([]);
        expect(diff.pgRows, name).toBe(t.row_count);
        expect(diff.parquetRows, name).toBe(t.row_count);
      }
    } finally {
      client.release();
    }
    expect(receipt.tables.events!.row_count).toBe(40_000);

    // The customer's S3 bucket saw nothing: the run wrote only through the local target.
    expect(await h.stack.s3.keys('acme-data')).toEqual([]);
  });

  it("the next run replaces receipt.json by a conditional write on the previous receipt's ETag", async () => {
    // Prepare: the first delivery's chain link recorded the ETag of its receipt in this target.
    const link = await pool.query<{ etag: string | null; bucket: string | null }>(
      `select etag, bucket from dropship.receipt_chain where account_id = 'acme' order by sequence desc limit 1`,
    );
    const firstBytes = readFileSync(join(root, 'dropship/exports/receipt.json'));
    expect(link.rows[0]!.bucket).toBe(`local:${root}`);
    expect(link.rows[0]!.etag).toBe(`"${createHash('sha256').update(firstBytes).digest('hex')}"`);
    // Act
    const second = await run(dest);
    // Assess
    expect(second.ok).toBe(true);
    const receipt = readReceipt();
    expect(receipt.run_id).toBe(second.runId);
    expect((receipt as { sequence?: number }).sequence).toBeGreaterThan(
      (JSON.parse(firstBytes.toString()) as { sequence: number }).sequence,
    );
    expect(existsSync(join(root, '.dropship-tmp')) ? readdirSync(join(root, '.dropship-tmp')) : []).toEqual([]);
  });

  it('two tables whose files would share a name are refused: the run exports nothing and names both', async () => {
    // Prepare: "foo bar" is written as foo_bar-<hash>; a table named exactly that is in the same schema
    const spaced = 'foo bar';
    const plain = tableObjectName(spaced);
    await pool.query(`create schema coll;
      create table coll."${spaced}" (id int primary key, v text); insert into coll."${spaced}" values (1, 'spaced');
      create table coll."${plain}" (id int primary key, v text); insert into coll."${plain}" values (1, 'plain');`);
    const collRoot = await localAccount('coll', '222222222223');
    // Act
    const outcome = await run({
      ...(await h.registry.get('coll')),
      target: { kind: 'local', root: collRoot, prefix: 'dropship' },
    });
    // Assess: refused before any file, with both tables and the shared name in its words
    expect(outcome.ok).toBe(false);
    const error = String((outcome as { error: unknown }).error);
    expect(error).toContain(`table "${spaced}": its files would be named "${plain}", as table "${plain}"'s are`);
    // No file and no receipt: only status.json, which tells the customer the delivery failed.
    expect(filesUnder(collRoot)).toEqual(['dropship/status.json']);
    // The rule itself: the table whose own name it is keeps it; otherwise the first in name order.
    expect(sharedObjectNames(['b c', 'a', plain, spaced, 'b_c'])).toEqual([
      { table: spaced, keeps: plain, name: plain },
    ]);
    expect(sharedObjectNames(['x y', 'x_y'])).toEqual([]);
  });

  it('values readers must not get wrong: NaN leaves a float chunk without bounds, numeric above 38 digits is text, RLS is an error', async () => {
    // Prepare: every 500th float a NaN; numerics wider than DECIMAL(38); a table whose RLS would hide rows
    await pool.query(`create schema vals;
      create table vals.f (id int primary key, f float8, r real, n50 numeric(50,0), n76 numeric(76,10));
      insert into vals.f select i, case when i % 500 = 0 then 'NaN'::float8 else i % 7 end, case when i % 500 = 0 then 'NaN'::real else i % 7 end,
        case when i = 1 then 1 end, case when i = 1 then 1.5 end from generate_series(1, 3000) i;
      create role vals_reader login password 'vals'; grant usage on schema vals to vals_reader;
      grant select on all tables in schema vals to vals_reader;
      create table vals.secret (id int primary key, owner text); insert into vals.secret select i, 'x' from generate_series(1, 10) i;
      alter table vals.secret enable row level security; create policy mine on vals.secret using (owner = current_user);
      grant select on vals.secret to vals_reader;
      create table vals.md (id int primary key, nf numeric[], iv interval[]);
      insert into vals.md values (1, '{1,2}', '{1 day}'), (2, '{{1,2},{3,4}}', '{1 day}');`);
    const valsRoot = await localAccount('vals', '222222222224');
    await h.registry.update('vals', { selection: { includeTables: ['f'] } });
    const target = { kind: 'local' as const, root: valsRoot, prefix: 'dropship' };
    // Act
    const outcome = await run({ ...(await h.registry.get('vals')), target });
    expect(outcome.ok).toBe(true);
    const receipt = JSON.parse(readFileSync(join(valsRoot, 'dropship/receipt.json'), 'utf8')) as Receipt;
    const files = receipt.tables.f!.files.map((f) => `'${join(valsRoot, f.key)}'`).join(', ');
    const db = await duck();
    try {
      // Assess: DuckDB's answers with its pruning on are Postgres's (it skipped the NaN chunks before)
      const count = async (where: string) =>
        Number((await db.all(`select count(*) as n from read_parquet([${files}]) where ${where}`))[0]!.n);
      expect(await count(`f = 'NaN'::double`)).toBe(6);
      expect(await count('f > 100')).toBe(6);
      expect(await count('r > 100')).toBe(6);
      const [wide] = await db.all(`select n50, n76 from read_parquet([${files}]) where id = 1`);
      expect(wide).toEqual({ n50: '1', n76: '1.5000000000' });
    } finally {
      db.close();
    }
    expect(receipt.tables.f!.columns!.find((c) => c.name === 'n50')).toMatchObject({
      parquet_type: 'BYTE_ARRAY STRING',
      text_form: true,
    });
    // A two-dimensional array of a type exported in text form: refused, naming the column (it was flattened).
    await h.registry.update('vals', { selection: { includeTables: ['md'] } });
    const flat = await run({ ...(await h.registry.get('vals')), target });
    expect(flat.ok).toBe(false);
    expect(JSON.stringify((flat as { failures?: unknown }).failures)).toContain(
      '2-dimensional array in column \\"nf\\": multi-dimensional arrays are not supported yet',
    );
    // A role whose row-level security hides rows: the run fails, naming the policy, rather than export a subset.
    await h.registry.update('vals', { selection: { includeTables: ['secret'] } });
    const url = new URL(h.stack.databaseUrl);
    url.username = 'vals_reader';
    url.password = 'vals';
    const hidden = await exportAccount(
      { ...(await h.registry.get('vals')), target },
      { sourceUrl: url.toString(), settings, reporter: silent, ledger: h.ledger },
    );
    expect(hidden.ok).toBe(false);
    expect(
      JSON.stringify(
        (hidden as { failures?: unknown; error?: unknown }).failures ?? String((hidden as { error: unknown }).error),
      ),
    ).toMatch(/row-level security/);
  });

  it('a table truncated or rewritten after the snapshot fails the run, naming it, instead of arriving empty', async () => {
    // Prepare: three tables of 100 rows; while the run starts (after its snapshot, before any COPY) another session
    // rewrites one (ALTER … TYPE), truncates one, and leaves the third alone. Synchronous, so it lands there.
    await pool.query(`create schema racy;
      create table racy.a (id int primary key, v int); insert into racy.a select i, i from generate_series(1, 100) i;
      create table racy.b (id int primary key, v int); insert into racy.b select i, i from generate_series(1, 100) i;
      create table racy.c (id int primary key, v int); insert into racy.c select i, i from generate_series(1, 100) i;`);
    const ddl = `const pg = require(${JSON.stringify(require.resolve('pg'))});
      (async () => { const c = new pg.Client(${JSON.stringify(h.stack.databaseUrl)}); await c.connect();
        await c.query("set lock_timeout = '10s'");
        await c.query('alter table racy.a alter column v type bigint'); await c.query('truncate racy.b'); await c.end(); })()
      .catch((e) => { console.error(e.message); process.exit(1); });`;
    const reporter = Object.create(silent) as typeof silent;
    reporter.accountStarted = (...args: Parameters<typeof silent.accountStarted>) => {
      execFileSync(process.execPath, ['-e', ddl]);
      silent.accountStarted(...args);
    };
    const racyRoot = await localAccount('racy', '222222222225');
    // Act
    const outcome = await exportAccount(
      { ...(await h.registry.get('racy')), target: { kind: 'local', root: racyRoot, prefix: 'dropship' } },
      {
        sourceUrl: h.stack.databaseUrl,
        settings: { ...settings, DROPSHIP_TABLE_CONCURRENCY: 1 },
        reporter,
        ledger: h.ledger,
      },
    );
    // Assess: the two tables fail with the reason; no receipt; c alone would have been fine
    expect(outcome.ok).toBe(false);
    const failures = (outcome as { failures: { table: string; message: string }[] }).failures;
    expect(failures.map((f) => f.table).sort()).toEqual(['a', 'b']);
    for (const f of failures) expect(f.message).toContain('was truncated or rewritten');
    expect(existsSync(join(racyRoot, 'dropship/receipt.json'))).toBe(false);
  });

  it('a row larger than DROPSHIP_MAX_ROW_BYTES fails its table by name, in either reading thread; a raised bound delivers it', async () => {
    // Prepare: 2,000 small rows and, last on disk (in the second reading thread's half), one of 2 MiB
    await pool.query(`create schema huge;
      create table huge.docs (id int primary key, payload bytea);
      insert into huge.docs select i, 'small' from generate_series(1, 2000) i;
      insert into huge.docs values (2001, convert_to(repeat('x', 2 * 1024 * 1024), 'UTF8'));
      create table huge.other (id int primary key); insert into huge.other values (1);
      analyze huge.docs;`);
    const hugeRoot = await localAccount('huge', '222222222227');
    const target = {
      ...(await h.registry.get('huge')),
      target: { kind: 'local' as const, root: hugeRoot, prefix: 'dropship' },
    };
    const bounded = { ...settings, DROPSHIP_MAX_ROW_BYTES: 1024 * 1024, DROPSHIP_TABLE_THREADS_MIN_ROWS: 1000 };
    for (const threads of [2, 1]) {
      // Act
      const outcome = await run(target, { ...bounded, DROPSHIP_TABLE_THREADS: threads });
      // Assess: the table and column named with the bound's setting; no receipt
      expect(outcome.ok, `threads ${threads}`).toBe(false);
      const failures = (outcome as { failures: { table: string; message: string; customerMessage?: string }[] })
        .failures;
      expect(failures.map((f) => f.table)).toEqual(['docs']);
      expect(failures[0]!.customerMessage).toBe(
        'a table holds a row larger than dropship is set to export; dropship’s operators are alerted',
      );
      expect(failures[0]!.message).toMatch(
        /column payload: a row of at least 2,097,16\d bytes \(this column's value: 2,097,152\) is larger than DROPSHIP_MAX_ROW_BYTES \(1,048,576\)/,
      );
      expect(existsSync(join(hugeRoot, 'dropship/receipt.json'))).toBe(false);
    }
    // A bound above the row: delivered whole
    const raised = await run(target, {
      ...bounded,
      DROPSHIP_MAX_ROW_BYTES: 4 * 1024 * 1024,
      DROPSHIP_TABLE_THREADS: 2,
    });
    expect(raised.ok, raised.ok ? '' : String((raised as { error: unknown }).error)).toBe(true);
    const receipt = JSON.parse(readFileSync(join(hugeRoot, 'dropship/receipt.json'), 'utf8')) as Receipt;
    expect(receipt.tables.docs!.row_count).toBe(2001);
  });

  it('a table without columns and a materialized view never populated refuse the run up front, naming each and the fix', async () => {
    // Prepare
    await pool.query(`create schema bare;
      create table bare.t (id int primary key); insert into bare.t values (1);
      create table bare.nothing ();
      create materialized view bare.later as select id from bare.t with no data;`);
    const bareRoot = await localAccount('bare', '222222222228');
    const target = {
      ...(await h.registry.get('bare')),
      target: { kind: 'local' as const, root: bareRoot, prefix: 'dropship' },
    };
    // Act
    const refused = await run(target);
    // Assess: both named with what to do; nothing read or written but status.json
    expect(refused.ok).toBe(false);
    const error = String((refused as { error: unknown }).error);
    expect(error).toContain(
      'table "nothing" has no columns, and a Parquet file needs one: leave it out (--exclude-tables)',
    );
    expect(error).toContain(
      'materialized view "later" has never been populated (created WITH NO DATA): REFRESH MATERIALIZED VIEW it',
    );
    expect(filesUnder(bareRoot)).toEqual(['dropship/status.json']);
    expect(await h.ledger.tasks(refused.runId)).toEqual([]);
    // The fixes the error names: the next run delivers every relation
    await pool.query('refresh materialized view bare.later; alter table bare.nothing add column n int');
    const fixed = await run(target);
    expect(fixed.ok, fixed.ok ? '' : String((fixed as { error: unknown }).error)).toBe(true);
    const receipt = JSON.parse(readFileSync(join(bareRoot, 'dropship/receipt.json'), 'utf8')) as Receipt;
    expect(Object.keys(receipt.tables).sort()).toEqual(['later', 'nothing', 't']);
    expect(receipt.tables.later!.row_count).toBe(1);
  });

  it('a value Postgres cannot send (invalid bytes in a SQL_ASCII database) fails its table for good, naming the SQLSTATE', async () => {
    // Prepare: a source database in SQL_ASCII holding the byte 0xE9 alone (not UTF-8); the registry checks its own
    // database's same-named schema (as without DROPSHIP_SOURCE_DATABASE_URL), the run reads the SQL_ASCII one.
    await pool.query(`create database ascii_src encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C' template template0`);
    const asciiUrl = h.stack.databaseUrl.replace(/\/[^/]+$/, '/ascii_src');
    const ascii = new pg.Client({ connectionString: asciiUrl });
    await ascii.connect();
    try {
      await ascii.query(`create schema latin; create table latin.t (id int primary key, name text);
        insert into latin.t values (1, 'plain'), (2, E'caf\\xe9');`);
    } finally {
      await ascii.end();
    }
    await pool.query('create schema latin; create table latin.t (id int primary key, name text)');
    const latinRoot = await localAccount('latin', '222222222229');
    // Act
    const outcome = await exportAccount(
      { ...(await h.registry.get('latin')), target: { kind: 'local', root: latinRoot, prefix: 'dropship' } },
      { sourceUrl: asciiUrl, settings, reporter: silent, ledger: h.ledger },
    );
    // Assess: named, classified as a data problem that repeats (not a transient error blamed on the write)
    expect(outcome.ok).toBe(false);
    const failures = (outcome as { failures: { table: string; message: string; repeats?: boolean }[] }).failures;
    expect(failures.map((f) => f.table)).toEqual(['t']);
    expect(failures[0]!.message).toMatch(
      /^table t: Postgres cannot send one of its values \(SQLSTATE 22021: character not in repertoire\); every run reads it again until the value is corrected/,
    );
    // Postgres' own words quote the offending bytes: they are kept out of the error, its causes and so the logs.
    const logged = JSON.stringify([failures, errorFields((outcome as { error: unknown }).error)]);
    expect(logged).toContain('SQLSTATE 22021');
    expect(logged).not.toMatch(/0xe9|caf/);
    expect(failures[0]!.repeats).toBe(true);
    expect(existsSync(join(latinRoot, 'dropship/receipt.json'))).toBe(false);
  });

  it('an inheritance parent is read without its children, which are exported as tables of their own', async () => {
    // Prepare: a parent of 2 rows, a child (inherits it) of 3
    await pool.query(`create schema inh;
      create table inh.parent (id int, v text); insert into inh.parent values (1, 'p'), (2, 'p');
      create table inh.child () inherits (inh.parent); insert into inh.child values (3, 'c'), (4, 'c'), (5, 'c');`);
    const inhRoot = await localAccount('inh', '222222222226');
    // Act
    const outcome = await run({
      ...(await h.registry.get('inh')),
      target: { kind: 'local', root: inhRoot, prefix: 'dropship' },
    });
    // Assess: every row once (the child's three were in the parent's files too, and in their own)
    expect(outcome.ok).toBe(true);
    const receipt = JSON.parse(readFileSync(join(inhRoot, 'dropship/receipt.json'), 'utf8')) as Receipt;
    expect(receipt.tables.parent!.row_count).toBe(2);
    expect(receipt.tables.child!.row_count).toBe(3);
  });
});
