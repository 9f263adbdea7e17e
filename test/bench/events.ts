import { setupCustomer } from '../../src/devstack/demo.js';
import type { Harness } from '../kit/stack-harness.js';

/** The bench's account: schema `bench` in the stack's Postgres, exported to the bucket `bench-data`. */
export async function setupBenchAccount(harness: Harness): Promise<void> {
  await harness.pool.query('create schema bench');
  await setupCustomer(harness.stack, harness.registry, {
    accountId: 'bench',
    awsAccountId: '123456789012',
    bucket: 'bench-data',
    schema: 'bench',
  });
}

/**
 * `bench.events`, `n` rows (bigint, uuid, timestamptz, text, jsonb, numeric(18,4), text[], boolean, double; ~10 %
 * NULLs), seeded: the same rows every run. The caller drops any earlier table and analyzes this one.
 */
export function eventsTableSql(n: number): string {
  return `select setseed(0.5);
    create table bench.events as
      select i::bigint as id, gen_random_uuid() as event_id,
             timestamptz '2023-01-01 00:00:00+00' + i * interval '1 second' + (i % 997) * interval '1 microsecond' as occurred_at,
             (array['page_view','form_submit','ad_click','email_open','meeting'])[1 + (i % 5)] as event_type,
             case when random() < 0.1 then null else jsonb_build_object('path', '/p/' || (i % 97), 'n', i, 'ref', md5(i::text)) end as properties,
             -- numeric(18,4) as DuckDB reads it from the CSV: a CASE with a NULL branch drops the typmod (unconstrained numeric, text form).
             (case when random() < 0.1 then null else round((random() * 2000000 - 1000000)::numeric, 4) end)::numeric(18,4) as revenue,
             case when random() < 0.1 then null else array['tag' || (i % 13), 'tag' || (i % 7)] end as tags,
             case when random() < 0.1 then null else random() < 0.05 end as is_conversion,
             case when random() < 0.1 then null else random() * 100 end as score
        from generate_series(1, ${n}) i;`;
}
