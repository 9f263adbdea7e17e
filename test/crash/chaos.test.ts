import { describe, expect, it } from 'vitest';
import { assertExact, assertLedgerAndReceipts, chaos, exportNow, spawnExport, useCrashStack } from './setup.js';

/**
 * The chaos loop: SIGKILL at random moments, exports again until one succeeds; every success is
 * exact (shared setup: ./setup.ts).
 */
useCrashStack();

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
