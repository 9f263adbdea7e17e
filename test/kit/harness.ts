import { afterAll, beforeAll } from 'vitest';
import { type Harness, startHarness } from './stack-harness.js';

/**
 * The local stack for the calling test file: started before its first test, stopped after its last
 * (test/kit/stack-harness.ts). Returns the harness to use inside tests and hooks:
 *   const h = useHarness();
 *   it('…', async () => { await h.ledger.openRun(…); });
 */
export function useHarness(): Harness {
  let current: Harness | undefined;
  beforeAll(async () => {
    current = await startHarness();
  }, 120_000);
  afterAll(async () => {
    await current?.stop();
  });
  return new Proxy({} as Harness, {
    get: (_target, name) => {
      if (!current) throw new Error('the harness starts in beforeAll: use it inside a test or a hook');
      return current[name as keyof Harness];
    },
  });
}
