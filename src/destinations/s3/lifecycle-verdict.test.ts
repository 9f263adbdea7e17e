import { describe, expect, it } from 'vitest';
import type { Destination } from '../../accounts/destination.js';
import { lifecycleConfiguration } from './bucket-lifecycle.js';
import { lifecycleVerdict } from './doctor.js';

const dest = (prefix: string) => ({ accountId: 'acme', bucket: 'b', prefix }) as Destination;

describe("the doctor's lifecycle check", () => {
  it('warns, naming the rule, when a rule would expire objects outside the run folders', () => {
    const legacy = { ID: 'dropship-expire-dumps', Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: 7 } };
    const v = lifecycleVerdict([legacy], dest('exports'), 'fix');
    expect(v.status).toBe('warn');
    expect(v.detail).toContain('rule dropship-expire-dumps expires objects outside dropship');
    const receipt = { ID: 'r', Status: 'Enabled', Filter: { Prefix: 'exports/' }, Expiration: { Days: 7 } };
    expect(lifecycleVerdict([receipt], dest('exports'), 'fix').detail).toContain('receipt.json and status.json');
  });

  it('passes with the recommended rules; at the bucket root it says why no rule can expire dumps', () => {
    expect(lifecycleVerdict(lifecycleConfiguration(dest('exports')).Rules, dest('exports'), 'fix').status).toBe('pass');
    const root = lifecycleVerdict([], dest(''), 'fix');
    expect(root.status).toBe('warn');
    expect(root.detail).toContain('bucket root');
  });
});
