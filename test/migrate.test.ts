import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStack } from '../src/devstack/stack.js';
import { SCHEMA_VERSION, schemaProblem } from '../src/store/migrations.js';
import { dropship } from './kit/index.js';

/**
 * Issue 23: upgrades. `dropship migrate` is an explicit, idempotent deploy step; every command (and
 * function: the same wiring) refuses a schema it cannot run on, with a message that says what to do.
 */
let stack: LocalStack;
let admin: pg.Pool;
let fresh: string;

beforeAll(async () => {
  stack = await LocalStack.start();
  admin = new pg.Pool({ connectionString: stack.databaseUrl, max: 1 });
  // pool.end() resolves before its sockets close; the stack's Postgres stopping right after can still reach an idle
  // client with 57P01, which the pool emits as 'error' (uncaught without a listener: CI 2026-12-05, source-database).
  admin.on('error', () => {});
  await admin.query('create database upgrade_test');
  fresh = stack.databaseUrl.replace(/\/dropship$/, '/upgrade_test');
});

afterAll(async () => {
  await admin?.end();
  await stack?.stop();
});

const cli = (args: string[]) => dropship(stack, args, { env: { DATABASE_URL: fresh } });

describe('dropship migrate and the schema check', () => {
  it('an empty database is refused until `dropship migrate`; migrate is idempotent; then commands run', async () => {
    const before = await cli(['runs', 'list']);
    expect(before.code).toBe(2);
    expect(before.stderr).toContain('the dropship schema is not installed in this database: run `dropship migrate`');

    const check = await cli(['migrate', '--check']);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`schema version 0; this release knows ${SCHEMA_VERSION}`);
    expect(check.stdout).toContain(`${SCHEMA_VERSION} migration(s) pending`);
    expect(check.stdout).toMatch(/^\s+1 {2}destinations: /m);

    const first = await cli(['migrate']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`schema migrated to version ${SCHEMA_VERSION} (applied 1, 2,`);
    const again = await cli(['migrate']);
    expect(again.stdout).toContain(`schema already at version ${SCHEMA_VERSION}: nothing to do`);

    expect((await cli(['runs', 'list'])).code).toBe(0);
    expect((await cli(['migrate', '--check'])).stdout).toContain('ok: this release can run on it');
  });

  it('migrate --check lists what would change: the pending migrations, by number, with the ones that lock runs flagged', async () => {
    // Prepare: a database where the migrations from 22 on are not recorded (as before upgrading to this release).
    const pending = Array.from({ length: SCHEMA_VERSION - 21 }, (_, i) => 22 + i);
    const db = new pg.Pool({ connectionString: fresh, max: 1 });
    const saved = (
      await db.query<{ version: number; name: string; oldest_code: number | null }>(
        'select version, name, oldest_code from dropship.schema_migrations where version >= 22',
      )
    ).rows;
    expect(saved.map((r) => r.version)).toEqual(pending);
    try {
      await db.query('delete from dropship.schema_migrations where version >= 22');

      // Act
      const check = await cli(['migrate', '--check']);

      // Assess: exit 1 (this release cannot run on it yet), 22 on listed, 23 flagged as locking runs.
      expect(check.code).toBe(1);
      const lines = check.stdout.split('\n');
      expect(lines).toContain(`schema version 21; this release knows ${SCHEMA_VERSION}`);
      expect(check.stdout).toContain(`${pending.length} migration(s) pending`);
      const listed = lines.filter((l) => /^\s+\d+ {2}/.test(l));
      expect(listed.map((l) => Number(l.trim().split(' ')[0]))).toEqual(pending);
      expect(listed[0]).toContain('status places');
      expect(listed[0]).not.toContain('locks runs');
      expect(listed[1]).toContain('runs newest first');
      expect(listed[1]).toContain('[locks runs: builds 2 indexes on runs');
      expect(check.stdout).toContain('run `dropship migrate`');
    } finally {
      for (const r of saved)
        await db.query('insert into dropship.schema_migrations (version, name, oldest_code) values ($1, $2, $3)', [
          r.version,
          r.name,
          r.oldest_code,
        ]);
      await db.end();
    }
    expect((await cli(['migrate', '--check'])).stdout).toContain('no migration pending');
  });

  it('a schema migrated by a newer release is refused, unless its newer migrations are additive', async () => {
    const db = new pg.Pool({ connectionString: fresh, max: 1 });
    try {
      const future = SCHEMA_VERSION + 1;
      await db.query(`insert into dropship.schema_migrations (version, name, oldest_code) values ($1, 'future', $1)`, [
        future,
      ]);
      const refused = await cli(['runs', 'list']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(
        `the dropship schema is at version ${future}, migrated by a newer dropship that this one (schema ${SCHEMA_VERSION}) cannot run on`,
      );
      // migrate never rolls back, and refuses to touch a schema beyond it.
      expect((await cli(['migrate'])).code).toBe(2);
      // An expand-only migration keeps the previous release running (the rollback case).
      await db.query('update dropship.schema_migrations set oldest_code = $1 where version = $2', [
        SCHEMA_VERSION,
        future,
      ]);
      expect((await cli(['runs', 'list'])).code).toBe(0);
    } finally {
      await db.query('delete from dropship.schema_migrations where version > $1', [SCHEMA_VERSION]);
      await db.end();
    }
  });

  it('what each schema state means for the code', () => {
    expect(schemaProblem({ version: SCHEMA_VERSION, floor: SCHEMA_VERSION })).toBeUndefined();
    expect(schemaProblem({ version: SCHEMA_VERSION - 1, floor: 1 })).toContain('run `dropship migrate`');
    expect(schemaProblem({ version: SCHEMA_VERSION + 2, floor: SCHEMA_VERSION })).toBeUndefined();
    expect(schemaProblem({ version: SCHEMA_VERSION + 2, floor: SCHEMA_VERSION + 1 })).toContain('newer dropship');
  });

  it('migration 22 takes every place where an outcome was recorded as dropship’s status place (its status.json was written unconditionally before)', async () => {
    // Prepare: the schema as it was before migration 22, with one destination that has had an outcome and one that
    // has not.
    const db = new pg.Pool({ connectionString: fresh, max: 1 });
    db.on('error', () => {});
    try {
      expect((await cli(['migrate'])).code).toBe(0);
      await db.query('drop table dropship.status_places; delete from dropship.schema_migrations where version = 22');
      await db.query(
        `insert into dropship.destinations (account_id, plan, bucket, prefix, region, role_arn, external_id, source_schema)
         values ('m22-ran', 'paid', 'm22-data', '', 'us-east-1', 'arn:aws:iam::250000000022:role/r', 'x1', 'm22a'),
                ('m22-new', 'paid', 'm22-data', 'later', 'us-east-1', 'arn:aws:iam::250000000022:role/r', 'x2', 'm22b')`,
      );
      await db.query(
        `insert into dropship.destination_status (account_id, last_success) values ('m22-ran', '{"run_id":"r"}')`,
      );
      // Act
      const migrated = await cli(['migrate']);
      // Assess
      expect(migrated.code, migrated.stderr).toBe(0);
      const places = await db.query('select bucket, status_key from dropship.status_places order by status_key');
      expect(places.rows).toEqual([{ bucket: 'm22-data', status_key: 'status.json' }]);
    } finally {
      await db.end();
    }
  });
});
