import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import type { Destination } from '../accounts/destination.js';
import { loadSettings } from '../config/settings.js';
import { checkDestinations } from './drift.js';

describe('checkDestinations', () => {
  it('starts no check after its deadline: those destinations come back unchecked, nothing touched', async () => {
    // A pool that fails the test if a check reaches it.
    const pool = {
      query: () => {
        throw new Error('a check ran after the deadline');
      },
    } as unknown as Pool;
    const dests = ['a', 'b', 'c'].map((accountId) => ({ accountId }) as Destination);
    const out = await checkDestinations({ pool, settings: loadSettings({}) }, dests, { deadline: Date.now() - 1 });
    expect(out.map((r) => [r.accountId, r.ok, r.unchecked])).toEqual([
      ['a', false, true],
      ['b', false, true],
      ['c', false, true],
    ]);
    expect(out[0]!.checks).toEqual([
      { name: 'check', status: 'fail', detail: 'not checked: out of time before its turn' },
    ]);
  });
});
