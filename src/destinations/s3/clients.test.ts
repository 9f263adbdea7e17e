import { type AddressInfo, createServer, type Socket } from 'node:net';
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import type { Destination } from '../../accounts/destination.js';
import { loadSettings } from '../../config/settings.js';
import { customerMessageOf, isRetryable } from '../../contracts/errors.js';
import { MappingError } from '../../pipeline/source/errors.js';
import {
  AwsError,
  DestinationAccessError,
  type DestinationClients,
  explainS3Error,
  isRetryableAws,
  s3SettingsConfig,
  stsClientConfig,
  verifyAssumeRole,
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

describe('AssumeRole refused for the session length', () => {
  it('is explained as the role’s MaxSessionDuration and DROPSHIP_ROLE_SESSION_SECONDS, not as a trust policy', async () => {
    // Prepare: STS answers as AWS does when DurationSeconds exceeds the role's MaxSessionDuration.
    const refusal = sdkError(
      'ValidationError',
      400,
      'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
    const clients = {
      s3: {} as S3Client,
      credentials: async () => {
        throw refusal;
      },
      sessionSeconds: 7200,
    } as DestinationClients;

    // Act
    const error = await verifyAssumeRole(dest, clients).then(
      () => undefined,
      (e: unknown) => e as AwsError,
    );

    // Assess: one line naming MaxSessionDuration, the setting and its value; final, and it repeats until someone acts.
    expect(error).toBeInstanceOf(AwsError);
    expect(error).not.toBeInstanceOf(DestinationAccessError);
    expect(error?.message).toContain('MaxSessionDuration');
    expect(error?.message).toContain('DROPSHIP_ROLE_SESSION_SECONDS');
    expect(error?.message).toContain('aws iam update-role --role-name dropship-writer --max-session-duration 7200');
    expect(error?.message).not.toMatch(/trust policy|\n/);
    expect(error?.retryable).toBe(false);
    expect(error?.repeats).toBe(true);
    expect(customerMessageOf(error)).toContain('MaxSessionDuration');
    expect(customerMessageOf(error)).not.toContain(dest.externalId);
  });
});

describe('AWS client options come from the parsed settings', () => {
  it.each([
    ['1', { forcePathStyle: true }],
    ['true', { forcePathStyle: true }],
    ['0', {}],
    ['false', {}],
  ])('DROPSHIP_S3_FORCE_PATH_STYLE=%s reaches the S3 clients (doctor, load) as %o', (value, expected) => {
    expect(s3SettingsConfig(loadSettings({ DROPSHIP_S3_FORCE_PATH_STYLE: value }))).toMatchObject(expected);
    if (!('forcePathStyle' in expected))
      expect(s3SettingsConfig(loadSettings({ DROPSHIP_S3_FORCE_PATH_STYLE: value }))).not.toHaveProperty(
        'forcePathStyle',
      );
  });

  it('path-style addressing is off by default', () => {
    expect(s3SettingsConfig(loadSettings({}))).not.toHaveProperty('forcePathStyle');
  });

  it('every S3 and STS client is bounded: 60 s to connect and 60 s of silence by default, DROPSHIP_AWS_TIMEOUT_SECONDS else', () => {
    const bounded = { requestHandler: { connectionTimeout: 60_000, socketTimeout: 60_000 } };
    expect(s3SettingsConfig(loadSettings({}))).toMatchObject(bounded);
    expect(stsClientConfig('eu-west-1', loadSettings({}))).toMatchObject(bounded);
    expect(stsClientConfig('eu-west-1', loadSettings({ DROPSHIP_AWS_TIMEOUT_SECONDS: '7' }))).toMatchObject({
      requestHandler: { connectionTimeout: 7000, socketTimeout: 7000 },
    });
    expect(() => loadSettings({ DROPSHIP_AWS_TIMEOUT_SECONDS: '0' })).toThrow(/DROPSHIP_AWS_TIMEOUT_SECONDS/);
  });

  it('an endpoint that accepts the connection and never answers fails the S3 and STS calls as a retryable timeout (red team, fan-out: it held a slot’s message until the Lambda’s timeout)', async () => {
    // Prepare: a server that takes connections and requests and says nothing.
    const held = new Set<Socket>();
    const silent = createServer((socket) => {
      held.add(socket);
      socket.on('data', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const settings = loadSettings({ DROPSHIP_AWS_TIMEOUT_SECONDS: '1', DROPSHIP_AWS_MAX_ATTEMPTS: '1' });
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
    const s3 = new S3Client({ region: 'eu-west-1', endpoint, credentials, ...s3SettingsConfig(settings) });
    const sts = new STSClient({ ...stsClientConfig('eu-west-1', settings), endpoint, credentials });
    try {
      // Act
      const put = await s3
        .send(new PutObjectCommand({ Bucket: 'b', Key: 'receipt.json', Body: '{}' }))
        .catch((e: unknown) => e);
      const assume = await sts
        .send(new AssumeRoleCommand({ RoleArn: dest.roleArn, RoleSessionName: 's', ExternalId: dest.externalId }))
        .catch((e: unknown) => e);
      // Assess: both fail as timeouts (which the SDK's standard mode retries), neither waits for ever.
      expect((put as Error).name).toBe('TimeoutError');
      expect((assume as Error).name).toBe('TimeoutError');
      expect(isRetryableAws(put)).toBe(true);
      expect(held.size).toBeGreaterThan(0);
    } finally {
      s3.destroy();
      sts.destroy();
      for (const socket of held) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('every STS client (the external-ID guard, the doctor) makes DROPSHIP_AWS_MAX_ATTEMPTS attempts', () => {
    expect(stsClientConfig('eu-west-1', loadSettings({ DROPSHIP_AWS_MAX_ATTEMPTS: '7' })).maxAttempts).toBe(7);
    expect(stsClientConfig('eu-west-1', loadSettings({})).maxAttempts).toBe(5);
  });
});
