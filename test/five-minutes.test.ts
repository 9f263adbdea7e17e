import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Receipt } from '../src/contracts/receipt.js';
import { isLoopback, tokenMatches } from '../src/devstack/admin.js';
import type { Principal } from '../src/devstack/iam.js';
import { REPO_ROOT } from '../src/devstack/stack.js';
import { compareTable, downloadReceiptFiles } from './compare.js';
import { machineEnv } from './kit/machine-env.js';

/**
 * The README's "Try it in five minutes", exactly as written there: the commands are taken from the
 * README section itself (first block: the stack, second block: the second shell), so the two cannot
 * drift. A fresh dev stack runs as a child process with no world file and is never restarted; the
 * export the path ends with is compared value by value with Postgres through DuckDB.
 * DROPSHIP_DEV_DIR keeps this stack apart from a developer's own `dropship dev`.
 */
function readmeBlocks(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Try it in five minutes');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
}

const devDir = mkdtempSync(join(tmpdir(), 'dropship-five-'));
const loaderFile = join(REPO_ROOT, '.dropship', 'acme-loader.env');
const baseEnv = { ...machineEnv(), DROPSHIP_DEV_DIR: devDir };
let dev: ChildProcess;
let devOut = '';
let admin: { url: string; token: string; env: Record<string, string> };

function sh(
  script: string,
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', `set -euo pipefail\n${script}`],
      { cwd: REPO_ROOT, env: { ...baseEnv, ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The CLI in this process (no process start per command): exit code, stdout and stderr. */
async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import('../src/cli/main.js');
  const saved = process.env;
  process.env = { ...baseEnv, ...env } as NodeJS.ProcessEnv;
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    process.exitCode = 0;
    await main(['node', 'dropship', ...args]);
    return { code: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.env = saved;
    process.exitCode = 0;
  }
}

const running = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

beforeAll(async () => {
  // On a fresh clone `dropship dev` creates .dropship/ (its default data folder); here the stack's
  // folder is elsewhere, so the README's `tee .dropship/…` needs it made.
  mkdirSync(join(REPO_ROOT, '.dropship'), { recursive: true });
  const [stackCommand] = readmeBlocks();
  expect(stackCommand).toBe('npx dropship dev --fresh --demo-data');
  dev = spawn('bash', ['-c', `exec ${stackCommand}`], { cwd: REPO_ROOT, env: baseEnv, detached: true });
  dev.stdout!.on('data', (b: Buffer) => {
    devOut += b.toString();
  });
  dev.stderr!.on('data', (b: Buffer) => {
    devOut += b.toString();
  });
  const deadline = Date.now() + 90_000;
  while (!devOut.includes('Ctrl-C stops everything')) {
    if (Date.now() > deadline || !running(dev)) throw new Error(`dropship dev did not start:\n${devOut}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  admin = JSON.parse(readFileSync(join(devDir, 'admin.json'), 'utf8'));
}, 120_000);

afterAll(async () => {
  if (dev && running(dev)) {
    const exited = new Promise((r) => dev.once('exit', r));
    process.kill(-dev.pid!, 'SIGINT');
    await exited;
  }
  rmSync(devDir, { recursive: true, force: true });
  rmSync(loaderFile, { force: true });
});

describe('the five-minute path', () => {
  it('runs exactly as the README says and delivers an export identical to Postgres', async () => {
    // Act: the second shell, as written.
    const [, secondShell] = readmeBlocks();
    expect(secondShell).toContain('npx dropship dev provision --account acme');
    const r = await sh(secondShell!);
    // Assess
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    // The destination was registered through the HTTP API (a signed curl): its answer carries the external ID.
    expect(r.stdout).toMatch(/^\{"destination":\{"accountId":"acme",.*"externalId":"dropship-[\w-]{32}"/m);
    expect(r.stdout).toMatch(/^AWS_ACCESS_KEY_ID=AKIA[A-Z2-7]{16} AWS_SECRET_ACCESS_KEY=\S+$/m);
    expect(r.stdout).toMatch(/acme\s+events\s+100,000\s+1/); // the export's summary
    expect(r.stderr).toMatch(/acme\/events done · 100,000 rows/); // progress lines (stderr is not a terminal)
    // inspect: the receipt's tables, the columns with both types, and the first rows read by DuckDB.
    expect(r.stdout).toMatch(/^receipt {2}s3:\/\/acme-data\/dropship\/receipt\.json$/m);
    expect(r.stdout).toMatch(/^events\s+100,000\s+1\s+/m);
    expect(r.stdout).toMatch(/^occurred_at\s+timestamp with time zone\s+INT64 TIMESTAMP\(MICROS,UTC\)\s+no/m);
    expect(r.stdout).toContain('first 5 rows of events (read with DuckDB):');
    expect(r.stdout).toMatch(/^1\s+[0-9a-f-]{36}\s+2023-01-01 00:00:01\.000001\+00/m);

    // The export compares exactly with Postgres, read with the customer's keys that provision printed.
    const keys = Object.fromEntries(
      readFileSync(loaderFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('AWS_'))
        .flatMap((l) => l.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    );
    const reader = { accessKeyId: keys.AWS_ACCESS_KEY_ID, secretAccessKey: keys.AWS_SECRET_ACCESS_KEY } as Principal;
    const { S3Client, GetObjectCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const s3 = new S3Client({
      region: 'eu-west-1',
      endpoint: admin.env.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      credentials: reader,
    });
    const receipt = JSON.parse(
      await (
        await s3.send(new GetObjectCommand({ Bucket: 'acme-data', Key: 'dropship/receipt.json' }))
      ).Body!.transformToString(),
    ) as Receipt;
    // A loader lists its own prefix (the reader policy's ListBucket under s3:prefix = dropship/*, as
    // AWS judges it); the bucket root and another prefix are denied.
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'acme-data', Prefix: 'dropship/' }));
    expect(listed.Contents?.map((o) => o.Key)).toContain('dropship/receipt.json');
    const denied = async (prefix?: string) =>
      s3
        .send(new ListObjectsV2Command({ Bucket: 'acme-data', ...(prefix === undefined ? {} : { Prefix: prefix }) }))
        .then(
          () => 'allowed',
          (e: Error) => e.name,
        );
    expect(await denied()).toBe('AccessDenied');
    expect(await denied('other/')).toBe('AccessDenied');
    s3.destroy();
    expect(Object.keys(receipt.tables).sort()).toEqual([
      'companies',
      'contacts',
      'events',
      'events_daily',
      'paid_ads',
      'revenue',
      'revenue_attribution',
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'five-files-'));
    const client = new pg.Client({ connectionString: admin.env.DATABASE_URL });
    await client.connect();
    try {
      const files = await downloadReceiptFiles(
        admin.env.AWS_ENDPOINT_URL_S3!,
        'eu-west-1',
        reader,
        'acme-data',
        receipt,
        dir,
      );
      for (const [table, t] of Object.entries(receipt.tables)) {
        const d = await compareTable(client, 'acme', table, t.columns, files.get(table)!);
        expect(d.parquetRows, table).toBe(t.row_count);
        expect(d.mismatches, `${table}\n${d.examples.join('\n')}`).toBe(0);
        expect(d.pgRows).toBe(d.parquetRows);
      }
      // Local folder: the same delivery copied out (as `npm start` does) inspects the same.
      writeFileSync(join(dir, 'dropship', 'receipt.json'), JSON.stringify(receipt));
      const local = await cli(['inspect', join(dir, 'dropship'), '--table', 'revenue', '--sample', '2']);
      expect(local.code, local.stderr).toBe(0);
      expect(local.stdout).toMatch(/^revenue\s+3,000\s+1\s+/m);
      expect(local.stdout).toMatch(/^amount\s+numeric\(18,2\)\s+INT64 DECIMAL\(18,2\)\s+no/m);
      expect(local.stdout).toContain('first 2 rows of revenue (read with DuckDB):');
      const firstTwo = await client.query('select id, currency from acme.revenue order by id limit 2');
      for (const row of firstTwo.rows)
        expect(local.stdout).toMatch(new RegExp(`^${row.id}\\s+\\d+\\s+[\\d.]+\\s+${row.currency}`, 'm'));
      // A file the receipt lists but the folder lacks: a clear error, exit 2.
      const eventsFile = files.get('events')![0]!;
      rmSync(eventsFile);
      const missing = await cli(['inspect', join(dir, 'dropship'), '--table', 'events', '--sample', '1']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(
        /^error: .*events_000000000000\.parquet\.gz is listed in the receipt but missing from the folder$/m,
      );
    } finally {
      await client.end();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('inspect with credentials that may not read the bucket: a clear error naming the receipt', async () => {
    const r = await cli(['inspect', 's3://acme-data/dropship/receipt.json'], admin.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: cannot read s3:\/\/acme-data\/dropship\/receipt\.json: AccessDenied/m);
  }, 60_000);

  it('the admin endpoint: token file 0600, 401 without the right token, loopback only, world files validated', async () => {
    expect(statSync(join(devDir, 'admin.json')).mode & 0o777).toBe(0o600);
    expect(devOut).toContain(`# admin endpoint (loopback only): ${admin.url}`);
    expect(devOut).toContain(`# admin token: ${admin.token}`);
    const ok = await fetch(`${admin.url}/v1/health`, { headers: { authorization: `Bearer ${admin.token}` } });
    expect(ok.status).toBe(200);
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Bearer ${admin.token}x` },
      { authorization: admin.token },
    ]) {
      const res = await fetch(`${admin.url}/v1/world`, { method: 'POST', headers, body: '{"accounts":{}}' });
      expect(res.status).toBe(401);
    }
    expect(new URL(admin.url).hostname).toBe('127.0.0.1');
    // Not reachable on any other interface of this machine.
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && !i.internal && i.family === 'IPv4')
      .map((i) => i!.address);
    for (const ip of others) {
      await expect(fetch(`http://${ip}:${new URL(admin.url).port}/v1/health`)).rejects.toThrow();
    }
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('10.0.0.5')).toBe(false);
    expect(isLoopback('::ffff:192.168.1.2')).toBe(false);
    expect(isLoopback(undefined)).toBe(false);
    expect(tokenMatches(admin.token, admin.token)).toBe(true);
    expect(tokenMatches(undefined, admin.token)).toBe(false);
    expect(tokenMatches(admin.token.slice(1), admin.token)).toBe(false);

    // dev apply: a world file with a mistake is refused with its path; a good one is applied (no restart).
    const bad = join(devDir, 'bad-world.json');
    writeFileSync(bad, JSON.stringify({ accounts: { '123456789012': { buckets: [{ name: 'b' }], bucket: [] } } }));
    const refused = await cli(['dev', 'apply', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('error: the dev stack refused the request (400): not a valid world document');
    expect(refused.stderr).toMatch(/^ {2}- accounts\.123456789012\.buckets\.0\.region: /m);
    expect(refused.stderr).toMatch(/^ {2}- accounts\.123456789012: Unrecognized key: "bucket"/m);
    const applied = await cli(['dev', 'apply', 'src/devstack/world.example.json']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('# applied src/devstack/world.example.json: 1 bucket(s), 1 role(s), 1 user(s)');
    expect(applied.stdout).toMatch(/# user arn:aws:iam::222222222222:user\/acme-loader: AWS_ACCESS_KEY_ID=AKIA/);
    // A wrong token given on the command line is reported as such.
    const wrong = await cli([
      'dev',
      'apply',
      'src/devstack/world.example.json',
      '--admin-url',
      admin.url,
      '--admin-token',
      'x'.repeat(32),
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`error: the dev stack at ${admin.url} refused the admin token`);
  }, 120_000);
});

describe('dev provision with SSE-KMS', () => {
  it('creates the role with exactly the policies `dropship policy` prints, KMS included, and the doctor passes', async () => {
    // Prepare: in-process CLI calls (no process start each), pointed at the running stack.
    const run = async (...args: string[]): Promise<string> => {
      const r = await cli(args, admin.env);
      expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
      return r.stdout;
    };
    const db = new pg.Client({ connectionString: admin.env.DATABASE_URL });
    await db.connect();
    await db.query('create schema kmsco; create table kmsco.t (id int)');
    await db.end();
    const kms = 'arn:aws:kms:eu-central-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    await run(
      'destinations',
      'add',
      '--account',
      'kmsco',
      '--plan',
      'free',
      '--bucket',
      'kmsco-data',
      '--prefix',
      'exports',
      '--region',
      'eu-central-1',
      '--role-arn',
      'arn:aws:iam::333333333333:role/dropship-kms',
      '--kms-key-arn',
      kms,
      '--source-schema',
      'kmsco',
    );
    // Act
    const provisioned = await run('dev', 'provision', '--account', 'kmsco');
    const printed = await run('policy', '--account', 'kmsco', '--reader');
    // Assess: the stack's role holds exactly the printed trust.json and write.json.
    const doc = (name: string): unknown => {
      const from = printed.indexOf('\n', printed.indexOf(`# ${name}`)) + 1;
      return JSON.parse(printed.slice(from, printed.indexOf('\n\n#', from)));
    };
    const role = (await (
      await fetch(`${admin.url}/v1/role?arn=${encodeURIComponent('arn:aws:iam::333333333333:role/dropship-kms')}`, {
        headers: { authorization: `Bearer ${admin.token}` },
      })
    ).json()) as { trustPolicy: unknown; policies: unknown[] };
    expect(role.trustPolicy).toEqual(doc('trust.json'));
    expect(role.policies).toEqual([doc('write.json')]);
    expect(JSON.stringify(role.policies)).toContain(
      `"Sid":"DropshipKmsEncryption","Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"${kms}"`,
    );
    expect(provisioned).toContain('#   bucket kmsco-data (eu-central-1)');
    expect(provisioned).toMatch(/^AWS_ACCESS_KEY_ID=AKIA\S+ AWS_SECRET_ACCESS_KEY=\S+$/m);
    // The doctor proves it from dropship's side: AssumeRole with the external ID, bucket region, KMS multipart.
    const report = await run('doctor', '--account', 'kmsco');
    expect(report).toContain('all checks passed');
  }, 60_000);
});

describe("the planner's row estimates behind the progress bars", () => {
  it('reltuples after ANALYZE, summed over partitions, and unknown for a never-analyzed table', async () => {
    const { listTables } = await import('../src/pipeline/source/catalog.js');
    const client = new pg.Client({ connectionString: admin.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query(`create schema est;
        create table est.fresh (id int); insert into est.fresh select generate_series(1, 500);
        create table est.parts (id int, k int) partition by list (k);
        create table est.parts_a partition of est.parts for values in (1);
        create table est.parts_b partition of est.parts for values in (2);
        insert into est.parts select i, 1 + i % 2 from generate_series(1, 3000) i;
        analyze est.parts_a; analyze est.parts_b;`);
      const byName = new Map((await listTables(client, 'est')).map((t) => [t.name, t.estimatedRows]));
      expect(byName.get('fresh')).toBeNull(); // never analyzed: reltuples is -1
      expect(byName.get('parts')).toBe(3000);
      expect(byName.has('parts_a')).toBe(false);
      // `dropship dev --demo-data` analyzes the demo schema, so its tables have estimates.
      const acme = new Map((await listTables(client, 'acme')).map((t) => [t.name, t.estimatedRows]));
      expect(acme.get('events')).toBe(100_000);
    } finally {
      await client.end();
    }
  });
});

describe('after Ctrl-C', () => {
  it('the stack stops and removes its admin file', async () => {
    const exited = new Promise((r) => dev.once('exit', r));
    process.kill(-dev.pid!, 'SIGINT');
    await exited;
    expect(existsSync(join(devDir, 'admin.json'))).toBe(false);
    const r = await cli(['dev', 'provision', '--account', 'acme'], admin.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no running dev stack found');
  }, 60_000);
});
