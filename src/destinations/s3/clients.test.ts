import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { Destination } from '../../accounts/destination.js';
import { loadSettings } from '../../config/settings.js';
import { customerMessageOf, isRetryable } from '../../contracts/errors.js';
import { MappingError } from '../../pipeline/source/errors.js';
import {
  AwsError,
  DestinationAccessError,
  explainS3Error,
  isRetryableAws,
  s3SettingsConfig,
  stsClientConfig,
} from './clients.js';
import { failureFor } from './customer-failure.js';

const dest = {
  accountId: 'acme',
  bucket: 'acme-exports',
  prefix: 'dropship',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::123456789012:role/dropship-writer',
  externalId: 'ext-secret-0123456789',
} as Destination;

/** An error as the AWS SDK throws it after its own retries. */
function sdkError(name: string, status: number, message = name): S3ServiceException {
  return new S3ServiceException({
    name,
    message,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, attempts: 3 },
  });
}

describe('AWS SDK errors are classified where they enter', () => {
  it('AccessDenied is final, a 503 is retryable', () => {
    // Prepare
    const denied = sdkError('AccessDenied', 403, 'Access Denied');
    const unavailable = sdkError('ServiceUnavailable', 503, 'Please reduce your request rate.');

    // Act
    const deniedAtEdge = explainS3Error(dest, 'dropship/x.parquet', denied);
    const unavailableAtEdge = explainS3Error(dest, 'dropship/x.parquet', unavailable);

    // Assess
    expect(deniedAtEdge).toBeInstanceOf(DestinationAccessError);
    expect(deniedAtEdge.code).toBe('destination-access');
    expect(deniedAtEdge.retryable).toBe(false);
    expect(deniedAtEdge.cause).toBe(denied);
    expect(unavailableAtEdge).toBeInstanceOf(AwsError);
    expect(unavailableAtEdge).not.toBeInstanceOf(DestinationAccessError);
    expect(unavailableAtEdge.code).toBe('aws');
    expect(unavailableAtEdge.retryable).toBe(true);
    expect(isRetryableAws(denied)).toBe(false);
    expect(isRetryableAws(unavailable)).toBe(true);
  });

  it('a code outside the explained ones still gets its verdict from the one list (NOT_RETRYABLE)', () => {
    // Prepare
    const kms = sdkError('KMS.AccessDeniedException', 400, 'not authorized to perform: kms:GenerateDataKey');
    const slowDown = sdkError('SlowDown', 503);

    // Act
    const kmsAtEdge = explainS3Error(dest, 'k', kms);
    const slowAtEdge = new AwsError('throttled', { cause: slowDown });

    // Assess
    expect(kmsAtEdge.name).toBe('AwsError');
    expect(kmsAtEdge.retryable).toBe(false);
    expect(slowAtEdge.retryable).toBe(true);
  });

  it('a wrapper keeps the verdict of the classified error it wraps', () => {
    // Prepare
    const atEdge = explainS3Error(dest, 'k', sdkError('NoSuchBucket', 404));

    // Act
    const wrapped = new Error(`table t: ${atEdge.message}`, { cause: atEdge });

    // Assess
    expect(isRetryable(wrapped)).toBe(false);
    expect(isRetryableAws(wrapped)).toBe(false);
    expect(isRetryableAws(new Error('x', { cause: new MappingError('no exact form') }))).toBe(false);
    expect(isRetryableAws(new Error('socket hang up'))).toBe(true);
  });

  it('the customer is told what to fix; the operator detail (and never the external ID) stays in the message', () => {
    // Prepare
    const denied = sdkError('AccessDenied', 403, 'Access Denied');

    // Act
    const e = explainS3Error(dest, 'dropship/receipt.json', denied);

    // Assess
    expect(e.message).toContain('s3:PutObject');
    expect(e.message).toContain('dropship destinations show acme');
    // The same sentence status.json and webhooks tell (one source: src/destinations/s3/customer-failure.ts).
    expect(customerMessageOf(e)).toBe("dropship's role was denied writing to s3://acme-exports/dropship/");
    expect(customerMessageOf(e)).toBe(failureFor('write_denied', dest).reason);
    expect((e as DestinationAccessError).failure).toBe('write_denied');
    expect(customerMessageOf(e)).not.toContain('dropship destinations');
    expect(`${e.message} ${customerMessageOf(e)}`).not.toContain(dest.externalId);
  });
});

describe('AWS client options come from the parsed settings', () => {
  it.each([
    ['1', { forcePathStyle: true }],
    ['true', { forcePathStyle: true }],
    ['0', {}],
    ['false', {}],
  ])('DROPSHIP_S3_FORCE_PATH_STYLE=%s reaches the S3 clients (doctor, load) as %o', (value, expected) => {
    expect(s3SettingsConfig(loadSettings({ DROPSHIP_S3_FORCE_PATH_STYLE: value }))).toEqual(expected);
  });

  it('path-style addressing is off by default', () => {
    expect(s3SettingsConfig(loadSettings({}))).toEqual({});
  });

  it('every STS client (the external-ID guard, the doctor) makes DROPSHIP_AWS_MAX_ATTEMPTS attempts', () => {
    expect(stsClientConfig('eu-west-1', loadSettings({ DROPSHIP_AWS_MAX_ATTEMPTS: '7' })).maxAttempts).toBe(7);
    expect(stsClientConfig('eu-west-1', loadSettings({})).maxAttempts).toBe(5);
  });
});
