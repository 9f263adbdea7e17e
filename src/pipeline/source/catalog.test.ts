import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStack } from '../../devstack/stack.js';
import { estimateTableBytes, listTables, schemaRelations } from './catalog.js';
import { planParts } from './select.js';

/**
 * The schema's relations are found through pg_depend (issue 25: the pg_class filter on relnamespace
 * grew with the number of schemas). This holds the new lookup to the old one — pg_class filtered
 * on relnamespace, which is right by definition — on every kind of relation and after the moves
 * that rewrite the namespace link, on a real PostgreSQL.
 */
let stack: LocalStack;
let client: pg.Client;

const byPgClass = async (schema: string): Promise<string[]> =>
  (
    await client.query<{ relname: string }>(
      `select c.relname from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p', 'm') and not c.relispartition order by c.relname`,
      [schema],
    )
  ).rows.map((r) => r.relname);

const byDepend = async (schema: string): Promise<string[]> =>
  (
    await client.query<{ relname: string }>(
      `with rel as materialized (${schemaRelations('n.nspname = $1')}) select relname from rel order by relname`,
      [schema],
    )
  ).rows.map((r) => r.relname);

beforeAll(async () => {
  stack = await LocalStack.start();
  client = new pg.Client({ connectionString: stack.databaseUrl });
  await client.connect();
  await client.query(`
    create schema cat_a; create schema cat_b; create schema "Cat C";
    create table cat_a.plain (id bigint primary key, v text);
    create table cat_a.parted (id bigint primary key, at date) partition by range (id);
    create table cat_a.parted_1 partition of cat_a.parted for values from (0) to (1000);
    create table cat_b.parted_2 partition of cat_a.parted for values from (1000) to (2000);
    create materialized view cat_a.mat as select 1 as one;
    create view cat_a.a_view as select 1 as one;
    create sequence cat_a.seq;
    create type cat_a.pair as (x int, y int);
    create unlogged table cat_a.unlogged_t (id int);
    create table cat_a.moving_out (id int);
    create table cat_b.moving_in (id int);
    alter table cat_a.moving_out set schema cat_b;
    alter table cat_b.moving_in set schema cat_a;
    create table cat_a.renamed_before (id int);
    alter table cat_a.renamed_before rename to renamed_after;
    create table "Cat C"."Mixed Case" (id int primary key);
    insert into cat_a.plain select g, 'x' from generate_series(1, 5000) g;
    analyze cat_a.plain;
  `);
});

afterAll(async () => {
  await client?.end();
  await stack?.stop();
});

describe('a schema’s relations through pg_depend', () => {
  it('equal the pg_class filter on every kind, after SET SCHEMA both ways and a rename', async () => {
    for (const schema of ['cat_a', 'cat_b', 'Cat C', 'missing']) {
      expect(await byDepend(schema), schema).toEqual(await byPgClass(schema));
    }
    // What each holds, so the comparison above cannot pass on two empty lists.
    expect(await byDepend('cat_a')).toEqual(['mat', 'moving_in', 'parted', 'plain', 'renamed_after', 'unlogged_t']);
    expect(await byDepend('cat_b')).toEqual(['moving_out']);
    expect(await byDepend('Cat C')).toEqual(['Mixed Case']);
  });

  it('listTables, estimateTableBytes and planParts see the same relations', async () => {
    expect((await listTables(client, 'cat_a')).map((t) => t.name)).toEqual(await byPgClass('cat_a'));
    expect([...(await estimateTableBytes(client, 'cat_a')).keys()].sort()).toEqual(await byPgClass('cat_a'));
    const parts = await planParts(client, 'cat_a', 1000);
    expect(new Set(parts.map((p) => p.table))).toEqual(new Set(['plain']));
    expect(parts).toHaveLength(5);
    expect(await planParts(client, 'cat_b', 1000)).toEqual([]);
  });

  it('a detached partition appears as a table, an attached one disappears; CREATE TABLE AS and public count', async () => {
    await client.query(`
      create table cat_b.detach_parent (id int) partition by range (id);
      create table cat_b.leaving partition of cat_b.detach_parent for values from (0) to (10);
      create table cat_b.joining (id int);
      create table cat_b.as_select as select 1 as one;
      create table public.cat_public (id int);`);
    expect(await byDepend('cat_b')).toEqual(['as_select', 'detach_parent', 'joining', 'moving_out']);
    await client.query('alter table cat_b.detach_parent detach partition cat_b.leaving');
    await client.query('alter table cat_b.detach_parent attach partition cat_b.joining for values from (10) to (20)');
    for (const schema of ['cat_b', 'public']) expect(await byDepend(schema), schema).toEqual(await byPgClass(schema));
    expect(await byDepend('cat_b')).toEqual(['as_select', 'detach_parent', 'leaving', 'moving_out']);
    expect(await byDepend('public')).toContain('cat_public');
    await client.query('drop table cat_b.detach_parent, cat_b.leaving, cat_b.as_select, public.cat_public');
  });

  it('a relation created after the first lookup is found (nothing is cached between lookups)', async () => {
    await client.query('create table cat_b.late (id int)');
    expect(await byDepend('cat_b')).toEqual(['late', 'moving_out']);
    await client.query('drop table cat_b.late');
    expect(await byDepend('cat_b')).toEqual(['moving_out']);
  });
});
