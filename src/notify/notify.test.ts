import { describe, expect, it } from 'vitest';
import type { Destination } from '../accounts/destination.js';
import { loadSettings } from '../config/settings.js';
import { customerMessageOf, INTERNAL_CUSTOMER_MESSAGE } from '../contracts/errors.js';
import { explainS3Error } from '../destinations/s3/clients.js';
import { failureFor } from '../destinations/s3/customer-failure.js';
import { MappingError, SourceError } from '../pipeline/source/errors.js';
import { slotsAhead } from './drift.js';
import { runMetricsLine } from './outcome.js';
import { describeFailure, failureCodeOf } from './reasons.js';
import { nextSlot } from './status.js';

const dest = {
  accountId: 'acme',
  bucket: 'acme-data',
  prefix: 'exports',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::222222222222:role/dropship',
  kmsKeyArn: 'arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab',
} as Destination;

describe('failures in the customer’s words', () => {
  it('recognises dropship’s own error wording and never passes internals through', () => {
    expect(
      describeFailure(dest, new Error('account acme: cannot assume role arn:… (AccessDenied). The role must exist'))
        .code,
    ).toBe('role_not_assumable');
    expect(describeFailure(dest, 'refusing to export — role x can be assumed without the external ID').code).toBe(
      'external_id_not_enforced',
    );
    expect(
      describeFailure(dest, 'table t: account acme: bucket "acme-data" does not exist (writing s3://…)').code,
    ).toBe('bucket_missing');
    const kms = new Error('table t: account acme: access denied writing s3://…', {
      cause: new Error('User: x is not authorized to perform: kms:Decrypt on resource: k'),
    });
    expect(describeFailure(dest, kms)).toMatchObject({
      code: 'kms_denied',
      fix: expect.stringContaining(dest.kmsKeyArn!),
    });
    expect(
      describeFailure({ ...dest, kmsKeyArn: undefined } as Destination, 'access denied writing s3://x').fix,
    ).toContain('arn:aws:s3:::acme-data/exports/2*, arn:aws:s3:::acme-data/exports/receipt.json');
    const internal = describeFailure(
      dest,
      new Error('column x: numeric NaN has no exact Parquet form; password=hunter2'),
    );
    expect(internal.code).toBe('internal');
    expect(JSON.stringify(internal)).not.toMatch(/NaN|hunter2|column/);
  });
});

describe('the customer’s words follow the error: does the failure repeat?', () => {
  const retryWording = 'the next run retries automatically';
  const operatorWording = 'dropship’s operators must act';
  it('a transient failure (a dropped connection, an unknown error) says the next run retries', () => {
    for (const e of [
      new SourceError('COPY stream ended before its trailer (truncated data)'),
      new Error('read ECONNRESET'),
    ]) {
      const f = describeFailure(dest, e);
      expect(f).toMatchObject({ code: 'internal', reason: INTERNAL_CUSTOMER_MESSAGE });
      expect(f.fix).toContain(retryWording);
    }
  });
  it('a failure that repeats (a value with no Parquet form, itself or wrapped) says operators must act', () => {
    const nan = new MappingError('column x: numeric NaN has no Parquet DECIMAL value');
    for (const e of [nan, new SourceError('table t failed', { cause: nan })]) {
      const f = describeFailure(dest, e);
      expect(f.code).toBe('operator_action_required');
      expect(f.reason).toBe(nan.customerMessage);
      expect(f.fix).toContain(operatorWording);
      expect(f.fix).not.toContain(retryWording);
      expect(JSON.stringify(f)).not.toMatch(/NaN|column x/);
    }
  });
});

describe('slots', () => {
  const settings = loadSettings({});
  it('next slot of a plan, strictly after now, across midnight', () => {
    expect(nextSlot('paid', settings, new Date('2026-11-23T04:00:00Z'))).toBe('2026-11-23T15:00:00Z');
    expect(nextSlot('paid', settings, new Date('2026-11-23T16:00:00Z'))).toBe('2026-11-24T04:00:00Z');
    expect(nextSlot('free', settings, new Date('2026-11-23T03:59:59Z'))).toBe('2026-11-23T04:00:00Z');
  });
  it('the check an hour before picks the coming slot only', () => {
    expect(slotsAhead(new Date('2026-11-23T03:00:00Z'), ['04:00', '15:00'])).toEqual(['04:00']);
    expect(slotsAhead(new Date('2026-11-23T14:00:00Z'), ['04:00', '15:00'])).toEqual(['15:00']);
    expect(slotsAhead(new Date('2026-11-23T23:30:00Z'), ['00:30'])).toEqual(['00:30']);
    expect(slotsAhead(new Date('2026-11-23T10:00:00Z'), ['04:00', '15:00'])).toEqual([]);
  });
});

describe('embedded metric format', () => {
  it('one line with the metrics by account and across accounts', () => {
    const line = JSON.parse(
      runMetricsLine(
        'Dropship/prod',
        { accountId: 'acme', runId: 'r', ok: false, rows: 10, bytes: 2048, seconds: 1.23456 },
        new Date(0),
      ),
    );
    expect(line._aws).toEqual({
      Timestamp: 0,
      CloudWatchMetrics: [
        {
          Namespace: 'Dropship/prod',
          Dimensions: [['AccountId'], []],
          Metrics: [
            { Name: 'Rows', Unit: 'Count' },
            { Name: 'Bytes', Unit: 'Bytes' },
            { Name: 'Seconds', Unit: 'Seconds' },
            { Name: 'FailedRuns', Unit: 'Count' },
            { Name: 'SucceededRuns', Unit: 'Count' },
          ],
        },
      ],
    });
    expect(line).toMatchObject({
      AccountId: 'acme',
      Rows: 10,
      Bytes: 2048,
      Seconds: 1.235,
      FailedRuns: 1,
      SucceededRuns: 0,
    });
  });
});

describe('an error that knows its customer failure answers for itself', () => {
  it('uses the error’s failure code, even where its text would read differently', () => {
    // Prepare: AccessDenied caused by the destination's KMS key (S3 names the KMS action).
    const kmsDest = { ...dest, kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/k' } as Destination;
    const sdk = Object.assign(new Error('User is not authorized to perform: kms:GenerateDataKey'), {
      name: 'AccessDenied',
    });
    // Act
    const explained = explainS3Error(kmsDest, 'dropship/x.parquet.gz', sdk);
    const plain = explainS3Error({ ...kmsDest, kmsKeyArn: undefined } as Destination, 'dropship/x.parquet.gz', sdk);
    // Assess
    expect(failureCodeOf(explained)).toBe('kms_denied');
    expect(describeFailure(kmsDest, new Error('table t failed', { cause: explained })).code).toBe('kms_denied');
    expect(failureCodeOf(plain)).toBe('write_denied');
    expect(failureCodeOf(new Error('connection reset'))).toBeUndefined();
    expect(customerMessageOf(explained)).toBe(failureFor('kms_denied', kmsDest).reason);
  });
});
