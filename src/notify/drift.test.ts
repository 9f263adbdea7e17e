import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import type { Destination } from '../accounts/destination.js';
import { loadSettings } from '../config/settings.js';
import { checkDestinations, customerFailureOf } from './drift.js';

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

describe('customerFailureOf', () => {
  const dest = { accountId: 'acme', bucket: 'acme-data', region: 'us-east-1', prefix: 'exports' } as Destination;
  it('a bucket S3 could not answer about is not told to the customer as theirs (it said "wrong region")', () => {
    const unverified = customerFailureOf(
      {
        name: 'bucket',
        status: 'fail',
        detail: 'could not be verified: HeadBucket on s3://acme-data answered HTTP 500',
      },
      dest,
    );
    expect(unverified).toBeUndefined();
    expect(
      customerFailureOf({ name: 'bucket', status: 'fail', detail: 's3://acme-data does not exist' }, dest)?.code,
    ).toBe('bucket_missing');
    expect(
      customerFailureOf(
        { name: 'bucket', status: 'fail', detail: 's3://acme-data is in eu-west-1, not us-east-1' },
        dest,
      )?.code,
    ).toBe('bucket_wrong_region');
  });
});
