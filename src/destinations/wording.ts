import type { Target } from '../accounts/destination.js';
import { customerMessageOf, repeatsOf } from '../contracts/errors.js';
import { errorText } from './port.js';
import {
  type CustomerFailure,
  describeS3Failure,
  type FailureDest,
  failureCodeOf,
  failureFor,
} from './s3/customer-failure.js';

export type { CustomerFailure };
export { errorText, failureCodeOf };

/**
 * A run's error in the customer's words (status.json, webhooks, slot status), by the kind of the
 * destination's target: an S3 destination's failures are worded by the S3 adapter (role, bucket,
 * region, KMS key, permissions: src/destinations/s3/customer-failure.ts). A target of another kind
 * has none of those words: its failures are ours — the operators act when the failure repeats,
 * otherwise the next run retries. A destination without a target (an older frozen copy) is S3.
 */
export function describeFailure(
  dest: FailureDest & { target?: Pick<Target, 'kind'> },
  error: unknown,
): CustomerFailure {
  if (!dest.target || dest.target.kind === 's3') return describeS3Failure(dest, error);
  if (repeatsOf(error)) return failureFor('operator_action_required', dest, customerMessageOf(error));
  return failureFor('internal', dest);
}
