import { describe, expect, it } from 'vitest';
import { describeFailure } from '../notify/reasons.js';
import { RunError } from './account.js';

const dest = {
  accountId: 'acme',
  bucket: 'acme-data',
  prefix: 'dropship',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::123456789012:role/dropship-export',
};

describe("a run's failed tables choose the customer's words", () => {
  it('a table refused by the bucket tells the customer write_denied, not internal', () => {
    // Prepare: what the in-process driver throws when a table's upload was denied.
    const denied = new RunError('account acme: 1 of 3 tables failed; no receipt written', [
      { table: 'events', message: 'table events: access denied writing s3://acme-data/dropship/x.parquet.gz' },
    ]);
    const unknown = new RunError('account acme: 1 of 3 tables failed; no receipt written', [
      { table: 'events', message: 'table events: connection terminated unexpectedly' },
    ]);
    // Act / Assess
    expect(describeFailure(dest, denied).code).toBe('write_denied');
    expect(describeFailure(dest, unknown).code).toBe('internal');
  });
});
