import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.js';
import { setupCustomer } from '../src/devstack/demo.js';
import type { LocalStack } from '../src/devstack/stack.js';
import { dropship, readReceipt } from './kit/index.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

let harness: Harness | undefined;
let stack: LocalStack;
let pool: pg.Pool;

beforeAll(async () => {
  harness = await startHarness();
  ({ stack, pool } = harness);
  await pool.query(`create schema shop;
    create table shop.orders (id bigint primary key, total numeric(10,2));
    insert into shop.orders select i, i * 1.5 from generate_series(1, 100) i;
    create table shop.bad_numbers (id int, x numeric(10,2));
    insert into shop.bad_numbers values (1, 1.25), (2, 'NaN');`);
});

afterAll(async () => {
  await harness?.stop();
});

function cli(args: string[], env: Record<string, string> = {}) {
  return dropship(stack, args, { env });
}

describe('dropship CLI', () => {
  it('has --help with an example on every command', () => {
    const program = buildProgram();
    const all = [program, ...program.commands.flatMap((c) => [c, ...c.commands])];
    for (const cmd of all) {
      let text = '';
      cmd.configureOutput({ writeOut: (s) => (text += s) });
      cmd.outputHelp();
      expect(text, cmd.name()).toContain('Examples:');
    }
    expect(all.map((c) => c.name())).toEqual(
      expect.arrayContaining([
        'destinations',
        'add',
        'list',
        'show',
        'disable',
        'enable',
        'remove',
        'export',
        'dev',
        'demo',
      ]),
    );
  });

  it('refuses an unknown command, with or without --help: exit 2, the closest match, no help', async () => {
    for (const [args, name, match] of [
      [['destinatons', 'list'], 'destinatons', 'destinations'],
      [['destinatons', '--help'], 'destinatons', 'destinations'],
      [['runs', 'lsit'], 'lsit', 'list'],
      [['runs', 'lsit', '--help'], 'lsit', 'list'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`error: unknown command '${name}'`);
      expect(r.stderr).toContain(`(Did you mean ${match}?)`);
      expect(r.stdout).toBe('');
    }
    const help = await cli(['runs', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: dropship runs/);
  });

  it('rejects a malformed destination with one line per problem, exit 2, and stores nothing', async () => {
    const r = await cli([
      'destinations',
      'add',
      '--account',
      'Bad Account',
      '--plan',
      'paid',
      '--bucket',
      'arn:aws:s3:::Bucket',
      '--region',
      'Europe',
      '--role-arn',
      'arn:aws:iam::123:role/x',
      '--source-schema',
      'shop',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('accountId: account ids are 1–63 characters');
    expect(r.stderr).toContain('bucket: bucket names use lowercase letters');
    expect(r.stderr).toContain('region: regions look like "eu-west-1"');
    expect(r.stderr).toContain('roleArn: role ARNs look like');
    expect((await pool.query('select count(*) from dropship.destinations')).rows[0].count).toBe('0');
  });

  it('rejects a misspelt setting with a suggestion', async () => {
    const r = await cli(['destinations', 'list'], { DROPSHIP_SHARD_TARGET_BYTE: '1' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'DROPSHIP_SHARD_TARGET_BYTE is not a dropship setting (did you mean DROPSHIP_SHARD_TARGET_BYTES?)',
    );
  });

  it('registers a destination, prints the policies to paste, and never changes the external ID', async () => {
    const r = await cli([
      'destinations',
      'add',
      '--account',
      'shop',
      '--plan',
      'free',
      '--bucket',
      'shop-data',
      '--prefix',
      '/exports/',
      '--region',
      'us-east-1',
      '--role-arn',
      'arn:aws:iam::555555555555:role/dropship',
      '--source-schema',
      'shop',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const row = (await pool.query('select * from dropship.destinations where account_id = $1', ['shop'])).rows[0];
    expect(row.prefix).toBe('exports');
    expect(row.compression).toBe('gzip');
    expect(row.external_id).toMatch(/^dropship-[A-Za-z0-9_-]{32}$/);
    expect(r.stdout).toContain(`External ID (put it in the role's trust policy; it never changes): ${row.external_id}`);
    expect(r.stdout).toContain(`"sts:ExternalId": "${row.external_id}"`);
    expect(r.stdout).toContain(`"AWS": "${stack.platform.arn}"`);
    expect(r.stdout).toContain('"arn:aws:s3:::shop-data/exports/2*",');
    expect(r.stdout).toContain('"arn:aws:s3:::shop-data/exports/receipt.json",');
    const show = await cli(['destinations', 'show', 'shop']);
    expect(show.stdout).toContain(row.external_id);
    await expect(
      pool.query(`update dropship.destinations set external_id = 'x' where account_id = 'shop'`),
    ).rejects.toThrow('cannot change');
    const again = await cli([
      'destinations',
      'add',
      '--account',
      'shop',
      '--plan',
      'free',
      '--bucket',
      'shop-data',
      '--region',
      'us-east-1',
      '--role-arn',
      'arn:aws:iam::555555555555:role/dropship',
      '--source-schema',
      'shop',
    ]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already has a destination');
    await pool.query(`delete from dropship.destinations where account_id = 'shop'`);
  });

  it('stores the codec given with --compression and refuses one it does not know', async () => {
    const add = (codec: string) =>
      cli([
        ...['destinations', 'add', '--account', 'shop', '--plan', 'paid', '--bucket', 'shop-data'],
        ...['--region', 'us-east-1', '--role-arn', 'arn:aws:iam::555555555555:role/dropship'],
        ...['--source-schema', 'shop', '--compression', codec],
      ]);
    const bad = await add('lz4');
    expect(bad.code).toBe(2); // a usage error is bad input
    expect(bad.stderr).toContain("argument 'lz4' is invalid. Allowed choices are gzip, zstd, snappy, none");
    expect(
      (await pool.query(`select count(*) from dropship.destinations where account_id = 'shop'`)).rows[0].count,
    ).toBe('0');
    const ok = await add('zstd');
    expect(ok.code, ok.stderr).toBe(0);
    const row = (await pool.query(`select compression from dropship.destinations where account_id = 'shop'`)).rows[0];
    expect(row.compression).toBe('zstd');
    expect((await cli(['destinations', 'show', 'shop'])).stdout).toContain('compression   zstd');
    await pool.query(`delete from dropship.destinations where account_id = 'shop'`);
  });

  it('exits 1 with one line per failed table and writes no receipt when a table cannot be mapped', async () => {
    // Prepare
    const c = await setupCustomer(stack, harness!.registry, {
      accountId: 'shop2',
      awsAccountId: '666666666666',
      bucket: 'shop2-data',
      schema: 'shop',
    });
    // Act
    // One table at a time: bad_numbers fails before orders starts, and orders must still export.
    const r = await cli(['export', '--account', 'shop2'], { DROPSHIP_TABLE_CONCURRENCY: '1' });
    // Assess
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: shop2\/bad_numbers: table bad_numbers: column x: numeric NaN has no Parquet DECIMAL value$/m,
    );
    expect(r.stderr.match(/^error: /gm), r.stderr).toHaveLength(1);
    expect(r.stdout).toMatch(/shop2\s+bad_numbers\s+—\s+—\s+—\s+FAILED/);
    expect(await stack.s3.keys('shop2-data')).not.toContain('receipt.json');
    expect(await stack.s3.unfinishedUploads('shop2-data')).toEqual([]);
    expect(c.destination.accountId).toBe('shop2');
    // Operators see the failed run and the failing table in the ledger.
    const list = await cli(['runs', 'list', '--account', 'shop2']);
    expect(list.code).toBe(0);
    const runId = /(\d{8}T\d{6}Z-[0-9a-f]{6})\s+shop2\s+cli\s+—\s+failed/.exec(list.stdout)?.[1];
    expect(runId, list.stdout).toBeDefined();
    const show = await cli(['runs', 'show', runId!]);
    expect(show.stdout).toMatch(/bad_numbers\s+failed\s+1\/1/);
    expect(show.stdout).toMatch(/orders\s+succeeded\s+1\/1\s+100\s+1/);
    expect(show.stdout).toContain('numeric NaN has no Parquet DECIMAL value');
  });

  it('validates receipts: exit 0 for a valid one, exit 1 with JSON paths for a broken one', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const d = mkdtempSync(join(tmpdir(), 'receipt-'));
    const good = {
      timestamp: '2023-03-14T04:03:07.963883Z',
      tables: { a: { folder: '2023-03-14T04:03/a', total_file_count: 1 } },
      run_id: '20230314T040307Z-3f9a1c',
      format: 'parquet',
      compression: 'gzip',
    };
    writeFileSync(join(d, 'good.json'), JSON.stringify(good));
    writeFileSync(
      join(d, 'bad.json'),
      JSON.stringify({ ...good, tables: { a: { folder: '/a', total_file_count: 1 } } }),
    );
    const ok = await cli(['receipt', 'validate', join(d, 'good.json')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('valid receipt');
    const bad = await cli(['receipt', 'validate', join(d, 'bad.json')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('$.tables.a.folder must match pattern');
    // A file that is not JSON (a .env named by mistake): where it breaks, never its text — JSON.parse's message quoted
    // it (review of the doctor's --trust-policy fix); the same in receipt sql. A missing file is one line too.
    const secret = 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    writeFileSync(join(d, 'env.json'), `${secret}\n`);
    for (const args of [
      ['receipt', 'validate', join(d, 'env.json')],
      ['receipt', 'sql', join(d, 'env.json'), '--dialect', 'snowflake', '--bucket', 'acme-data', '--prefix', ''],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`${join(d, 'env.json')}: not valid JSON at line 1, column 1`);
      expect(r.stderr + r.stdout).not.toMatch(/AWS_SECRET|wJalr/);
    }
    const missing = await cli(['receipt', 'validate', join(d, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${join(d, 'nope.json')}: no such file`);
  });

  it('receipt sql loads exactly the receipt’s files: manifests for Redshift/Athena (written locally), FILES for Snowflake', async () => {
    const { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { downloadReceiptFiles } = await import('./compare.js');
    const { duck } = await import('./duck.js');
    const { quoteLiteral } = await import('../src/contracts/sql.js');
    await pool.query(`create schema wh; create table wh.items (id int primary key, name text);
      insert into wh.items select i, 'item ' || i from generate_series(1, 30) i;`);
    const c = await setupCustomer(stack, harness!.registry, {
      accountId: 'wh',
      awsAccountId: '666666666601',
      bucket: 'wh-data',
      prefix: 'exports',
      schema: 'wh',
    });
    expect((await cli(['export', '--account', 'wh'])).code).toBe(0);
    const receipt = await readReceipt(stack, c);
    const d = mkdtempSync(join(tmpdir(), 'receipt-sql-'));
    writeFileSync(join(d, 'receipt.json'), JSON.stringify(receipt));
    const keys = receipt.tables.items!.files.map((f) => f.key);
    const bucketKeys = await stack.s3.keys('wh-data');
    for (const k of keys) expect(bucketKeys).toContain(k);

    // Redshift without a manifest folder: a usage error that says what to give.
    const missing = await cli([
      'receipt',
      'sql',
      join(d, 'receipt.json'),
      '--dialect',
      'redshift',
      '--bucket',
      'wh-data',
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--manifest-dir');
    // Without --prefix: which keys belong to the receipt cannot be told, so nothing is written.
    const noPrefix = await cli([
      ...['receipt', 'sql', join(d, 'receipt.json'), '--dialect', 'redshift', '--bucket', 'wh-data'],
      ...['--manifest-dir', join(d, 'manifests0'), '--manifest-url', 's3://wh-etl/m/'],
    ]);
    expect(noPrefix.code).toBe(2);
    expect(noPrefix.stderr).toContain(
      "give --prefix <path>, the prefix the receipt was published under (--prefix '' for the bucket root)",
    );

    const rs = await cli([
      'receipt',
      'sql',
      join(d, 'receipt.json'),
      '--dialect',
      'redshift',
      '--bucket',
      'wh-data',
      '--prefix',
      'exports',
      '--manifest-dir',
      join(d, 'manifests'),
      '--manifest-url',
      's3://wh-etl/manifests/',
    ]);
    expect(rs.code, rs.stderr).toBe(0);
    const manifestName = /FROM 's3:\/\/wh-etl\/manifests\/([^']+)'/.exec(rs.stdout)?.[1];
    expect(manifestName, rs.stdout).toBeDefined();
    expect(rs.stdout).toMatch(/FORMAT AS PARQUET SERIALIZETOJSON\n {2}MANIFEST;/);
    expect(rs.stdout).not.toContain("FROM 's3://wh-data/");
    const manifest = JSON.parse(readFileSync(join(d, 'manifests', manifestName!), 'utf8'));
    expect(manifest.entries).toEqual(
      receipt.tables.items!.files.map((f) => ({
        url: `s3://wh-data/${f.key}`,
        mandatory: true,
        meta: { content_length: f.bytes },
      })),
    );
    expect(rs.stderr).toContain('aws s3 cp --recursive');
    // Nothing was written into the customer's bucket.
    expect(await stack.s3.keys('wh-data')).toEqual(bucketKeys);

    const sf = await cli([
      'receipt',
      'sql',
      join(d, 'receipt.json'),
      '--dialect',
      'snowflake',
      '--bucket',
      'wh-data',
      '--prefix',
      'exports',
      '--stage',
      'st',
    ]);
    expect(sf.code, sf.stderr).toBe(0);
    // A receipt with a key outside --prefix (tampered, or another customer's): refused, no SQL and no manifest.
    const tampered = structuredClone(receipt);
    tampered.tables.items!.files[0]!.key = `other/${receipt.tables.items!.folder}/x.parquet.gz`;
    tampered.run_id = '20260101T000000Z-abcdef';
    writeFileSync(join(d, 'tampered.json'), JSON.stringify(tampered));
    const refused = await cli([
      ...['receipt', 'sql', join(d, 'tampered.json'), '--dialect', 'redshift', '--bucket', 'wh-data'],
      ...['--prefix', 'exports', '--manifest-dir', join(d, 'manifests2'), '--manifest-url', 's3://wh-etl/m/'],
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('is not a valid receipt published under --prefix "exports"');
    expect(refused.stdout).toBe('');
    expect(existsSync(join(d, 'manifests2'))).toBe(false);
    const files = /FILES = \(([^)]*)\)/.exec(sf.stdout)?.[1];
    expect(files).toBe(keys.map((k) => `'${k.slice(`exports/${receipt.tables.items!.folder}/`.length)}'`).join(', '));

    // DuckDB reads what the manifest lists (the files downloaded, keys kept) and gets the receipt's
    // rows, while the folder glob a prefix load amounts to also reads a stale file lying there.
    const local = join(d, 'files');
    const paths = (
      await downloadReceiptFiles(stack.s3.endpoint, c.destination.region, c.reader, 'wh-data', receipt, local)
    ).get('items')!;
    copyFileSync(paths[0]!, join(local, `exports/${receipt.tables.items!.folder}/stale_000000000009.parquet`));
    const db = await duck();
    try {
      const listed = (manifest.entries as { url: string }[]).map((e) =>
        quoteLiteral(join(local, e.url.slice('s3://wh-data/'.length)), 'duckdb'),
      );
      const [exact] = await db.all(`select count(*)::int as n from read_parquet([${listed.join(', ')}])`);
      expect(exact!.n).toBe(receipt.tables.items!.row_count);
      expect(exact!.n).toBe(30);
      const [prefix] = await db.all(
        `select count(*)::int as n from read_parquet(${quoteLiteral(join(local, `exports/${receipt.tables.items!.folder}/*`), 'duckdb')})`,
      );
      expect(prefix!.n).toBeGreaterThan(30);
    } finally {
      db.close();
    }
  });

  it('prints the documents a customer pastes, with the AWS CLI commands', async () => {
    const r = await cli(['policy', '--account', 'shop2', '--reader']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"sts:ExternalId"');
    expect(r.stdout).toContain('"Resource": "arn:aws:s3:::shop2-data/*"');
    // At the bucket root no lifecycle rule is recommended (it could not tell dumps from the bucket's own objects);
    // the printed merge only removes dropship's earlier bucket-wide rules.
    expect(r.stdout).toContain('no rule recommended: this destination writes at the bucket root');
    expect(r.stdout).toContain('jq --slurpfile ours lifecycle.json');
    expect(r.stdout).not.toContain('"Expiration"');
    expect(r.stdout).toContain('"s3:GetObject"');
    expect(r.stdout).toContain(
      'aws iam create-role --role-name dropship-export-shop2 --assume-role-policy-document file://trust.json',
    );
  });

  it('needs exactly one of --account or --due', async () => {
    const r = await cli(['export']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give exactly one of --account <id> or --due --slot <HH:MM>');
  });

  it('refuses --slot without --due (an --account export has no slot)', async () => {
    const runs = async () => (await pool.query('select count(*) from dropship.runs')).rows[0].count;
    const before = await runs();
    const r = await cli(['export', '--account', 'shop', '--slot', '04:00']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--slot goes with --due');
    expect(await runs()).toBe(before);
  });

  it('records the slot of export --due --slot on its runs, without taking the scheduled run’s slot', async () => {
    // shop2 (paid, registered above) is due at 04:00; its bad_numbers table fails as above.
    const r = await cli(['export', '--due', '--slot', '04:00'], { DROPSHIP_TABLE_CONCURRENCY: '1' });
    expect(r.code, r.stderr).toBe(1);
    const list = await cli(['runs', 'list', '--account', 'shop2', '--limit', '1']);
    expect(list.stdout).toMatch(/\d{8}T\d{6}Z-[0-9a-f]{6}\s+shop2\s+cli\s+04:00\s+failed/);
    const row = (
      await pool.query(
        `select trigger, slot, slot_date from dropship.runs where account_id = 'shop2' order by started_micros desc limit 1`,
      )
    ).rows[0];
    // A run by hand: it carries its slot, but not the slot date that claims the (account, slot, day)
    // key of the scheduled run, so the schedule (or its catch-up) still delivers the slot.
    expect(row).toEqual({ trigger: 'cli', slot: '04:00', slot_date: null });
  });
});
