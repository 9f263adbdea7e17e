import { describe, expect, it } from 'vitest';
import type { Destination } from '../../accounts/destination.js';
import { lintTrustPolicy } from './doctor.js';

const dest = { accountId: 'acme', externalId: 'ext-123' } as Destination;
const trust = (principal: string) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { AWS: principal },
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'sts:ExternalId': 'ext-123' } },
    },
  ],
});

describe('the doctor’s trust-policy lint', () => {
  it.each(['aws', 'aws-cn', 'aws-us-gov'])('trusting the account root of dropship’s principal passes in %s', (p) => {
    const principal = `arn:${p}:iam::111122223333:role/dropship-platform`;
    expect(lintTrustPolicy(trust(`arn:${p}:iam::111122223333:root`), dest, principal)).toEqual([
      expect.objectContaining({ name: 'trust policy', status: 'pass' }),
    ]);
    expect(lintTrustPolicy(trust(principal), dest, principal)[0]!.status).toBe('pass');
    expect(lintTrustPolicy(trust('111122223333'), dest, principal)[0]!.status).toBe('pass');
  });

  it('an account root in another partition does not trust dropship’s principal', () => {
    const principal = 'arn:aws-us-gov:iam::111122223333:role/dropship-platform';
    expect(lintTrustPolicy(trust('arn:aws:iam::111122223333:root'), dest, principal)).toEqual([
      expect.objectContaining({ name: 'trust policy: principal', status: 'fail' }),
    ]);
  });
});
