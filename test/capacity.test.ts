import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/logger.js';
import type { SlotForecast } from '../src/schedule/capacity.js';
import { logSlotForecast } from '../src/schedule/capacity-source.js';
import { dropship, useHarness } from './kit/index.js';

/**
 * Issue 25 item 5: `dropship capacity` against a real registry and source. Three paid destinations
 * (a whole schema; a schema with --exclude-tables; one tenant of a shared schema) and one free one
 * (04:00 only). Tables are VACUUM ANALYZEd, so reltuples is exact and the forecast's inputs can be
 * checked against the source's own counts and sizes; the arithmetic on them is checked by hand in
 * src/schedule/capacity.test.ts.
 */
const h = useHarness();

const RATES = {
  DROPSHIP_CAPACITY_ROWS_PER_SECOND: '1000',
  DROPSHIP_CAPACITY_FIXED_MS_PER_DESTINATION: '2000',
  DROPSHIP_CAPACITY_FIXED_MS_PER_TASK: '500',
  DROPSHIP_CAPACITY_WORKER_MEMORY_MB: '1024',
  DROPSHIP_CAPACITY_USD_PER_GB_SECOND: '0.001',
  DROPSHIP_SPLIT_ROWS: '100000',
  DROPSHIP_WORKER_CONCURRENCY: '2',
  DROPSHIP_LOG_LEVEL: 'silent',
};

async function setup(): Promise<void> {
  await h.pool.query(`
    create schema capwhole;
    create table capwhole.big (id bigint primary key, v text);
    insert into capwhole.big select i, repeat('x', 20) from generate_series(1, 250000) i;
    create table capwhole.small (id int primary key);
    insert into capwhole.small select generate_series(1, 1200);
    create schema capsel;
    create table capsel.keep (id int primary key); insert into capsel.keep select generate_series(1, 5000);
    create table capsel.internal_log (id int); insert into capsel.internal_log select generate_series(1, 9000);
    create schema capshared;
    create table capshared.events (id int primary key, org_id int not null, v text);
    insert into capshared.events select i, case when i % 10 < 3 then 1 else 2 end, 'e' from generate_series(1, 20000) i;
    create schema capfree;
    create table capfree.t (id int); insert into capfree.t select generate_series(1, 777);`);
  // One statement each: VACUUM cannot run inside the implicit transaction of a multi-statement query.
  for (const t of [
    'capwhole.big',
    'capwhole.small',
    'capsel.keep',
    'capsel.internal_log',
    'capshared.events',
    'capfree.t',
  ])
    await h.pool.query(`vacuum analyze ${t}`);
  const base = { region: 'us-east-1', plan: 'paid' as const };
  await h.registry.add({
    ...base,
    accountId: 'capwhole',
    bucket: 'capwhole-data',
    roleArn: 'arn:aws:iam::310000000001:role/x',
    sourceSchema: 'capwhole',
  });
  await h.registry.add({
    ...base,
    accountId: 'capsel',
    bucket: 'capsel-data',
    roleArn: 'arn:aws:iam::310000000002:role/x',
    sourceSchema: 'capsel',
    selection: { excludeTables: 'internal_*' },
  });
  await h.registry.add({
    ...base,
    accountId: 'captenant',
    bucket: 'captenant-data',
    roleArn: 'arn:aws:iam::310000000003:role/x',
    sourceSchema: 'capshared',
    selection: { tenantColumn: 'org_id', tenantValue: '1' },
  });
  await h.registry.add({
    ...base,
    plan: 'free',
    accountId: 'capfree',
    bucket: 'capfree-data',
    roleArn: 'arn:aws:iam::310000000004:role/x',
    sourceSchema: 'capfree',
  });
}

const size = async (rel: string): Promise<number> =>
  Number((await h.pool.query(`select pg_total_relation_size('${rel}')::bigint::text as b`)).rows[0].b);

describe('dropship capacity', () => {
  beforeAll(setup);

  it('forecasts each slot from the registry and the source catalog', async () => {
    const res = await dropship(h.stack, ['capacity', '--json'], { env: RATES });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const { forecasts, problems } = JSON.parse(res.stdout) as { forecasts: SlotForecast[]; problems: string[] };
    expect(problems).toEqual([]);
    expect(forecasts.map((f) => f.slot)).toEqual(['04:00', '15:00']);
    const [morning, afternoon] = forecasts as [SlotForecast, SlotForecast];

    // 15:00: the three paid destinations. Rows: 250,000 + 1,200 (whole) + 5,000 (internal_log excluded)
    // + 6,000 (tenant 1 = 30 % of 20,000, the planner's estimate from the MCV list).
    const shared = await size('capshared.events');
    expect(afternoon).toMatchObject({
      destinations: 3,
      tables: 4,
      // big: 250,000 rows > 100,000 → ceil(2.5) = 3 tasks; the other three tables 1 each.
      tasks: 6,
      estimatedRows: 250_000 + 1_200 + 5_000 + 6_000,
      estimatedBytes:
        (await size('capwhole.big')) +
        (await size('capwhole.small')) +
        (await size('capsel.keep')) +
        Math.round(shared * 0.3),
      tablesWithoutEstimate: 0,
      windowSeconds: 13 * 3600,
      configuredConcurrency: 2,
    });
    // W = 3 × 2 s + 6 × 0.5 s + 262,200 rows / 1,000 rows/s = 6 + 3 + 262.2 = 271.2 worker-seconds;
    // L = 0.5 + 250,000 / 3 / 1,000 = 83.83 s; needed = ceil(271.2 / (46,800 − 83.83)) = 1.
    expect(afternoon.workerSeconds).toBeCloseTo(271.2, 6);
    expect(afternoon.longestTaskSeconds).toBeCloseTo(0.5 + 250_000 / 3 / 1000, 6);
    expect(afternoon.neededConcurrency).toBe(1);
    // 271.2 worker-s × 1 GB × $0.001 + 6 requests × $0.20 / 1e6.
    expect(afternoon.lambdaCostUsd).toBeCloseTo(0.2712 + 1.2e-6, 9);
    expect(afternoon.warnings).toEqual([]);

    // 04:00: the free destination too (777 rows, one task), 11 hours to the 15:00 slot.
    expect(morning).toMatchObject({
      destinations: 4,
      tables: 5,
      tasks: 7,
      estimatedRows: 262_200 + 777,
      windowSeconds: 11 * 3600,
    });
  });

  it('warns in the table output, and exits 1, when the configured concurrency will not make it', async () => {
    // 5 rows/s and one worker: the 04:00 slot (39,600 s to 15:00) no longer fits.
    const res = await dropship(h.stack, ['capacity', '--slot', '04:00'], {
      env: { ...RATES, DROPSHIP_CAPACITY_ROWS_PER_SECOND: '5', DROPSHIP_WORKER_CONCURRENCY: '1' },
    });
    expect(res.code).toBe(1);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toMatch(/^slot\s+destinations\s+tables\s+tasks\s+est\. rows/);
    expect(lines[2]).toMatch(/^04:00\s+4\s+5\s+7\s+262,977\s/);
    // W = 4 × 2 + 7 × 0.5 + 262,977 / 5 = 52,606.9 s; L = 0.5 + 83,333.3 / 5 = 16,667.2 s;
    // needed = ceil(52,606.9 / (39,600 − 16,667.2)) = ceil(2.294) = 3.
    expect(res.stdout).toContain(
      'warning: slot 04:00: the worker concurrency 1 may not finish within the 39,600 s to the next slot (up to 69,274 s); 3 workers are needed (DROPSHIP_WORKER_CONCURRENCY)',
    );
  });

  it('refuses a malformed --slot', async () => {
    const res = await dropship(h.stack, ['capacity', '--slot', '4am'], { env: RATES });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--slot takes HH:MM (UTC), not "4am"');
  });

  it('is what the schedule function logs when it opens a slot (one line, no row data)', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const f = await logSlotForecast(
      { registry: h.registry, settings: h.settings(RATES), sourceUrl: h.stack.databaseUrl, log },
      '15:00',
    );
    expect(f?.destinations).toBe(3);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 'info', msg: 'slot forecast', slot: '15:00' });
    expect(line.forecast.estimatedRows).toBe(262_200);
    // A source it cannot reach: logged, never thrown.
    lines.length = 0;
    const none = await logSlotForecast(
      {
        registry: h.registry,
        settings: h.settings(RATES),
        sourceUrl: 'postgres://nobody@127.0.0.1:1/none',
        log,
      },
      '15:00',
    );
    expect(none).toBeUndefined();
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'slot forecast: could not be made' });
  });
});
