import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../src/accounts/destination.js';
import { permissionPolicy, trustPolicy } from '../src/destinations/s3/policies.js';
import type { PolicyDocument } from '../src/devstack/iam.js';
import { dropship } from './kit/cli.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * `dropship doctor --trust-policy <file>` as a person runs it: the file is read and parsed before anything connects,
 * and a file that is missing or not JSON is a usage error (exit 2, one line naming the file and where the JSON
 * breaks) that never shows a byte of the file — a file named by mistake may be a secret.
 */
let h: Harness;
let dir: string;
let dest: Destination;
const SECRET = 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY';
const cli = (args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) =>
  dropship(h.stack, args, { env: { DROPSHIP_LOG_LEVEL: 'silent', ...env }, timeoutMs });

beforeAll(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'dropship-doctor-cli-'));
  await h.pool.query('create schema dcli; create table dcli.t (id int primary key); insert into dcli.t values (1);');
  dest = await h.registry.add({
    accountId: 'dcli',
    plan: 'paid',
    bucket: 'dcli-bucket',
    prefix: 'exports',
    region: 'us-east-1',
    roleArn: 'arn:aws:iam::230000009001:role/dropship',
    sourceSchema: 'dcli',
  });
  await h.stack.applyWorld({
    accounts: {
      '230000009001': {
        buckets: [{ name: dest.bucket, region: 'us-east-1' }],
        roles: [
          {
            name: 'dropship',
            trustPolicy: trustPolicy(dest, h.stack.platform.arn) as PolicyDocument,
            policies: [permissionPolicy(dest) as PolicyDocument],
          },
        ],
      },
    },
  });
}, 120_000);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await h?.stop();
});

describe('dropship doctor --trust-policy <file>', () => {
  it('a trust policy file that is JSON: linted with the rest of the checks', async () => {
    const file = join(dir, 'trust.json');
    writeFileSync(file, `\uFEFF${JSON.stringify(trustPolicy(dest, h.stack.platform.arn), null, 2)}\n`);
    const r = await cli(['doctor', '--account', 'dcli', '--trust-policy', file]);
    expect(r.stdout).toContain('✓ trust policy: trusts dropship with this account’s external ID');
    expect(r.stdout).toContain('all checks passed');
    expect(r.code).toBe(0);
  });

  it('without DROPSHIP_PRINCIPAL_ARN: exit 2, saying what the policy is checked against (it was skipped without a word)', async () => {
    const file = join(dir, 'trust-unprincipled.json');
    writeFileSync(file, JSON.stringify(trustPolicy(dest, h.stack.platform.arn)));
    const r = await cli(['doctor', '--account', 'dcli', '--trust-policy', file], { DROPSHIP_PRINCIPAL_ARN: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('DROPSHIP_PRINCIPAL_ARN is not set: it is the principal the trust policy names');
    expect(r.stdout).toBe('');
  });

  it('a file that does not exist: exit 2, one line naming it, no stack', async () => {
    const file = join(dir, 'no-such-trust.json');
    const r = await cli(['doctor', '--account', 'dcli', '--trust-policy', file]);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: `error: --trust-policy ${file}: no such file\n` });
  });

  it('a directory: exit 2, one line naming it', async () => {
    const sub = join(dir, 'a-folder');
    mkdirSync(sub, { recursive: true });
    const r = await cli(['doctor', '--account', 'dcli', '--trust-policy', sub]);
    expect(r).toMatchObject({ code: 2, stderr: `error: --trust-policy ${sub}: is a directory, not a file\n` });
  });

  it.each([
    [`${SECRET}\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n`, 'line 1, column 1 (character 1)'],
    [`{\n  "Statement": [\n    { "Effect": "Allow", "Note": "${SECRET}", }\n  ]\n}\n`, 'line 3, column '],
  ])('a file that is not JSON: exit 2, where it breaks, and not a byte of it (%#)', async (content, where) => {
    const file = join(dir, 'secret.env');
    writeFileSync(file, content);
    const r = await cli(['doctor', '--account', 'dcli', '--trust-policy', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^error: --trust-policy ${file}: not valid JSON at line \\d+, column \\d+`));
    expect(r.stderr).toContain(where);
    expect(r.stderr.split('\n')).toHaveLength(2); // one line
    for (const piece of ['wJalr', 'AKIA', 'AWS_SECRET', 'Statement', 'Effect']) expect(r.stderr).not.toContain(piece);
  });

  it('the file is read before anything connects: with the database unreachable, still the usage error', async () => {
    const file = join(dir, 'plain.txt');
    writeFileSync(file, `${SECRET}\n`);
    const r = await cli(['doctor', '--account', 'dcli', '--trust-policy', file], {
      DATABASE_URL: 'postgres://dropship@127.0.0.1:1/nowhere',
    });
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(`error: --trust-policy ${file}: not valid JSON at line 1, column 1 (character 1)\n`);
  });
});

describe('dropship doctor behind a lock in the source', () => {
  it('a partition locked by a customer session: exit 1 with "source busy" naming it, after the lock timeout', async () => {
    // The catalog read locks a partitioned table's partitions (pg_partition_tree): a plain table's lock is not waited for.
    await h.pool.query(
      `create table dcli.parted (id int, at date) partition by range (at);
       create table dcli.parted_2026 partition of dcli.parted for values from ('2026-01-01') to ('2027-01-01');`,
    );
    const locker = await h.pool.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table dcli.parted_2026 in access exclusive mode');
      const r = await cli(['doctor', '--account', 'dcli'], {}, 25_000);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('✗ selection: not checked: the source was busy (schema "dcli")');
      expect(r.stdout).toMatch(/ {4}fix: source busy: a lock on dcli\.parted_2026 held longer than 5 s /);
      expect(r.stdout).toContain('the source was busy, so the selection was not checked: run the doctor again');
    } finally {
      await locker.query('rollback');
      locker.release();
    }
  }, 60_000);
});
