import { describe, expect, it } from 'vitest';
import { connectSource, sourceClient, sourceSession } from '../../src/source/snapshot.js';
import type { Fault } from '../stack/s3.js';
import {
  assertExact,
  assertLedgerAndReceipts,
  chaos,
  cli,
  exportNow,
  h,
  settings,
  spawnExport,
  useCrashStack,
} from './setup.js';

/**
 * The source sessions' limits, and the chaos loop: SIGKILL at random moments, exports again until
 * one succeeds; every success is exact (shared setup: ./setup.ts).
 */
useCrashStack();

describe('source sessions', () => {
  it('carry an idle-in-transaction timeout, a statement timeout and TCP keepalives (configured limits are kept)', async () => {
    // Prepare
    const session = sourceSession(settings());
    const show = async (url: string, s = session) => {
      const c = sourceClient(url, 'dropship session-test', s);
      await connectSource(c, s);
      try {
        const r = await c.query(`select current_setting('statement_timeout') as st,
            current_setting('idle_in_transaction_session_timeout') as idle, current_setting('tcp_keepalives_idle') as ka`);
        return r.rows[0] as { st: string; idle: string; ka: string };
      } finally {
        await c.end();
      }
    };
    // Act + Assess
    expect(await show(h.stack.databaseUrl)).toEqual({ st: '2h', idle: '5min', ka: '30' });
    expect((await show(`${h.stack.databaseUrl}?options=-c%20statement_timeout%3D200`)).st).toBe('200ms');
    // A transaction left idle (a frozen exporter) is ended by Postgres.
    const short = sourceSession(settings({ DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: '1' }));
    const c = sourceClient(h.stack.databaseUrl, 'dropship session-test', short);
    await connectSource(c, short);
    await c.query('begin');
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(c.query('select 1')).rejects.toThrow(/idle-in-transaction timeout|terminat|Connection/i);
    await c.end().catch(() => {});
  });

  it('the run owner keeps its snapshot holder alive under a short idle-in-transaction timeout', async () => {
    // Prepare: a slow S3, so the run lasts several times the 1 s timeout.
    const slow: Fault = (r) => (r.bucket === 'crashcli-data' ? { delayMs: 400 } : undefined);
    h.stack.s3.faults.push(slow);
    const out = await exportNow(cli, {
      // One table at a time: the holder sits idle while the big table is exported, longer than 1 s.
      settings: settings({
        DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: '1',
        DROPSHIP_RUN_STALE_SECONDS: '2',
        DROPSHIP_TABLE_CONCURRENCY: '1',
      }),
    });
    h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    expect(out.ok, JSON.stringify(out)).toBe(true);
    await assertExact(cli);
  });
});

describe('chaos loop', () => {
  it('20 seeded iterations: SIGKILL at a random moment, export again until it succeeds; every success is exact', async () => {
    let seed = 0x5eed10;
    const random = (): number => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { child, exit } = spawnExport(chaos);
      const delay = Math.floor(random() * 2500);
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const end = await exit;
      clearTimeout(timer);
      if (end.signal !== 'SIGKILL') {
        // The export finished before the kill: it must have succeeded, exactly.
        expect(end.code, end.stderr).toBe(0);
        outcomes.push('finished');
        await assertExact(chaos);
      } else outcomes.push(`killed@${delay}ms`);
      // Export again until it succeeds (the dead owner's run is ended at once: its lock is gone).
      let ok = false;
      for (let attempt = 0; attempt < 3 && !ok; attempt++) ok = (await exportNow(chaos)).ok;
      expect(ok, `iteration ${i}`).toBe(true);
      await assertExact(chaos);
    }
    await assertLedgerAndReceipts(chaos);
    expect(outcomes.filter((o) => o.startsWith('killed')).length).toBeGreaterThanOrEqual(10);
  }, 240_000);
});
