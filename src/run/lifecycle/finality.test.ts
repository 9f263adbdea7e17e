import { describe, expect, it } from 'vitest';
import { type Destination, s3TargetOf } from '../../accounts/destination.js';
import { ChangeSetError } from '../../changes/changes.js';
import { loadSettings } from '../../config/settings.js';
import { isRetryable } from '../../contracts/errors.js';
import { openTarget } from '../../destinations/open.js';
import { MappingError, SourceError } from '../../pipeline/source/errors.js';
import { TableExportError } from '../../pipeline/table.js';
import { LedgerError } from '../../store/ledger/ledger.js';

// The queue worker's verdict on a released table task (src/run/lifecycle/lifecycle.ts: retry = isRetryable(e)),
// for the errors a task can end with, wrapped the way src/pipeline/table.ts and src/changes/changes.ts wrap them.
// The errors come through the S3 adapter of the destination port, as in a run (no request is made).
const s3 = { bucket: 'b', prefix: 'p', region: 'eu-west-1', roleArn: 'arn:aws:iam::123456789012:role/r' };
const dest = { accountId: 'a', ...s3, target: s3TargetOf(s3) } as Destination;
const port = openTarget(dest, 'r', loadSettings({}));
/** An S3 service error as the SDK throws it (its name is S3's error code; $metadata has the HTTP status). */
const sdk = (name: string, status: number) =>
  Object.assign(new Error(name), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
const tableFailed = (e: unknown) => {
  const err = port.explain('k', e);
  return new TableExportError('t', `table t: ${(err as Error).message}`, {
    cause: err,
    retryable: port.isRetryable(err),
  });
};
const changesFailed = (e: unknown) =>
  new ChangeSetError(`table t: change set: ${(e as Error).message}`, { cause: e, retryable: port.isRetryable(e) });

describe('which failed table tasks the worker retries', () => {
  it.each([
    ['the destination refuses a part (AccessDenied)', tableFailed(sdk('AccessDenied', 403))],
    ['the bucket is missing', tableFailed(sdk('NoSuchBucket', 404))],
    ['the bucket is in another region', tableFailed(sdk('PermanentRedirect', 301))],
    ['a value has no exact Parquet form (while copying)', tableFailed(new MappingError('numeric NaN'))],
    ['a table vanished from the selection (planning)', new MappingError('table t no longer exists')],
    ['the change set upload is refused', changesFailed(sdk('AccessDenied', 403))],
    ['the change set meets a value with no exact form', changesFailed(new MappingError('numeric NaN'))],
  ])('final: %s', (_what, error) => {
    // Act
    const retry = isRetryable(error);

    // Assess
    expect(retry).toBe(false);
  });

  it.each([
    ['S3 stays unavailable after the SDK retries (503)', tableFailed(sdk('ServiceUnavailable', 503))],
    [
      'the backend was terminated mid-COPY',
      tableFailed(Object.assign(new Error('terminating connection'), { code: '57P01' })),
    ],
    ['the COPY stream was truncated', tableFailed(new SourceError('COPY stream ended before its trailer'))],
    ['the ledger refused a step', tableFailed(new LedgerError('run r is no longer finishing'))],
    ['the change set read back fewer rows', new ChangeSetError('table t: 3 changed keys but 2 rows read back')],
    ['the run was stopped (abort)', new Error('run r was cancelled')],
    ['a stale shard could not be covered (raw SDK 500)', sdk('InternalError', 500)],
  ])('retried: %s', (_what, error) => {
    // Act
    const retry = isRetryable(error);

    // Assess
    expect(retry).toBe(true);
  });
});
