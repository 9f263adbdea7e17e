import { describe, expect, it } from 'vitest';
import { INTERNAL_CUSTOMER_MESSAGE, repeatsOf } from '../../contracts/errors.js';
import { describeFailure } from '../../notify/reasons.js';
import { MappingError } from '../../pipeline/source/errors.js';
import { RunError } from '../drivers/in-process.js';
import { OwnerLost } from '../liveness/owner.js';

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

describe('a run whose table failures repeat says operators must act (issue 22, finding 12)', () => {
  it('one failed table whose error repeats (a NaN in numeric) makes the run’s failure repeat; transient ones keep the retry wording', () => {
    const nan = new MappingError('column x: numeric NaN has no Parquet DECIMAL value');
    const repeats = new RunError('account acme: 2 of 3 tables failed; no receipt written', [
      { table: 'a', message: 'table a: read ECONNRESET', repeats: false },
      { table: 't', message: `table t: ${nan.message}`, repeats: true, customerMessage: nan.customerMessage },
    ]);
    expect(repeats.repeats).toBe(true);
    expect(describeFailure(dest, repeats)).toMatchObject({
      code: 'operator_action_required',
      reason: nan.customerMessage,
      fix: expect.stringContaining('dropship’s operators must act'),
    });
    const transient = new RunError('account acme: 1 of 3 tables failed; no receipt written', [
      { table: 'a', message: 'table a: read ECONNRESET', repeats: false },
    ]);
    expect(transient.repeats).toBe(false);
    // Not retried is not the same as repeating: a run that lost its ownership (not retryable) is not
    // told as a failure that repeats.
    const lost = new RunError('account acme: 1 of 1 tables failed; no receipt written', [
      { table: 'a', message: 'table a: the ledger was unreachable', repeats: repeatsOf(new OwnerLost('x')) },
    ]);
    expect(describeFailure(dest, lost).fix).toContain('the next run retries automatically');
    expect(describeFailure(dest, transient)).toMatchObject({
      code: 'internal',
      reason: INTERNAL_CUSTOMER_MESSAGE,
      fix: expect.stringContaining('the next run retries automatically'),
    });
  });
});
