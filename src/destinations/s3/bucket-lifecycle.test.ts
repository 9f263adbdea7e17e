import { describe, expect, it } from 'vitest';
import {
  type LifecycleRule,
  lifecycleConfiguration,
  lifecycleOverreach,
  mergeLifecycleRules,
  ruleReaches,
} from './bucket-lifecycle.js';

const LEGACY_EMPTY_PREFIX: LifecycleRule = {
  ID: 'dropship-expire-dumps',
  Status: 'Enabled',
  Filter: { Prefix: '' },
  Expiration: { Days: 7 },
};

describe('bucket lifecycle rules', () => {
  it('are scoped to the run folders: receipt.json, status.json and keys outside the prefix are never reached', () => {
    const [expire] = lifecycleConfiguration({ prefix: 'exports' }).Rules;
    expect(ruleReaches(expire!, 'exports/2026-12-04T04:00/events/events_000000000000.parquet.gz')).toBe(true);
    expect(ruleReaches(expire!, 'exports/20261204T0400Z/events/events_000000000000.parquet')).toBe(true);
    for (const key of ['exports/receipt.json', 'exports/status.json', 'exports-old/2026/x', 'reports/2026.csv', 'x'])
      expect(ruleReaches(expire!, key), key).toBe(false);
  });

  it('no rule at the bucket root, where a prefix cannot tell dumps from the customer’s objects', () => {
    expect(lifecycleConfiguration({ prefix: '' }).Rules).toEqual([]);
  });

  it('the merge keeps the bucket’s own rules and replaces earlier dropship rules for the prefix (and the legacy ones)', () => {
    const own: LifecycleRule = { ID: 'logs', Status: 'Enabled', Filter: { Prefix: 'logs/' }, Expiration: { Days: 30 } };
    const ours = lifecycleConfiguration({ prefix: 'exports' });
    const merged = mergeLifecycleRules({ Rules: [own, LEGACY_EMPTY_PREFIX, ...ours.Rules] }, ours);
    expect(merged.Rules).toEqual([own, ...ours.Rules]);
    expect(mergeLifecycleRules(undefined, ours)).toEqual(ours);
  });

  it('the doctor’s reading: rules reaching beyond the run folders are named; rules elsewhere are the customer’s business', () => {
    const dest = { prefix: 'exports' };
    expect(lifecycleOverreach([LEGACY_EMPTY_PREFIX], dest)).toEqual([
      { rule: 'dropship-expire-dumps', reaches: 'outside-prefix' },
    ]);
    expect(
      lifecycleOverreach(
        [{ ID: 'old', Status: 'Enabled', Filter: { Prefix: 'exports/' }, Expiration: { Days: 7 } }],
        dest,
      ),
    ).toEqual([{ rule: 'old', reaches: 'receipt' }]);
    expect(
      lifecycleOverreach(
        [
          { ID: 'logs', Status: 'Enabled', Filter: { Prefix: 'logs/' }, Expiration: { Days: 7 } },
          { ID: 'off', Status: 'Disabled', Filter: { Prefix: '' }, Expiration: { Days: 7 } },
          { ID: 'tagged', Status: 'Enabled', Filter: { Tag: { Key: 'k', Value: 'v' } }, Expiration: { Days: 1 } },
          ...lifecycleConfiguration(dest).Rules,
        ],
        dest,
      ),
    ).toEqual([]);
    // At the bucket root every bucket-wide expiring rule reaches the customer's own objects.
    expect(lifecycleOverreach([LEGACY_EMPTY_PREFIX], { prefix: '' })).toHaveLength(1);
  });
});
