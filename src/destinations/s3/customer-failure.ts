import type { Destination } from '../../accounts/destination.js';
import type { CustomerFailure, CustomerFailureCode } from '../../contracts/customer-failure.js';
import { customerMessageOf, INTERNAL_CUSTOMER_MESSAGE, repeatsOf } from '../../contracts/errors.js';
import { errorText } from '../port.js';
import { writeResourcesText } from './policies.js';

/**
 * The customer's words for a failure (status.json, webhooks, drift warnings, and the
 * `customerMessage` of the errors that carry a `failure` code, src/destinations/s3/clients.ts) — one source.
 *
 * A failed run, told to the customer: what happened and what they can do — worded for them, from
 * a fixed set of sentences. Internal details (our error messages, stack traces, database or row
 * data, credentials, the external ID) never reach status.json or a webhook: anything not
 * recognised as a problem on the customer's side is reported as ours, with no action for them.
 */

export type { CustomerFailure, CustomerFailureCode } from '../../contracts/customer-failure.js';

/** How AWS words a denial by KMS (explainS3Error, src/destinations/s3/clients.ts, and describeS3Failure below). */
export const KMS_DENIAL = /perform: kms:|KMS\.\w*Exception|KMS key .* (disabled|pending deletion)/i;

export type FailureDest = Pick<Destination, 'accountId' | 'bucket' | 'prefix' | 'region' | 'roleArn' | 'kmsKeyArn'>;

/**
 * The customer's words for each kind of failure. `reason` (for `operator_action_required`) is the
 * error's own customer sentence (DropshipError.customerMessage), never its operator detail.
 */
export function failureFor(code: CustomerFailure['code'], dest: FailureDest, reason?: string): CustomerFailure {
  const where = `s3://${dest.bucket}/${dest.prefix ? `${dest.prefix}/` : ''}`;
  switch (code) {
    case 'external_id_not_enforced':
      return {
        code,
        reason: `the role ${dest.roleArn} can be assumed without dropship's external ID, so dropship does not deliver to it (confused-deputy protection)`,
        fix: 'add the condition "StringEquals": { "sts:ExternalId": "<your external ID>" } to the role\'s trust policy, exactly as in the trust policy dropship gave you',
      };
    case 'role_not_assumable':
      return {
        code,
        reason: `dropship could not assume the role ${dest.roleArn}`,
        fix: "make sure the role exists and its trust policy allows dropship's principal to sts:AssumeRole with the condition sts:ExternalId = the external ID dropship gave you",
      };
    case 'bucket_missing':
      return {
        code,
        reason: `the bucket ${dest.bucket} does not exist`,
        fix: `create the bucket ${dest.bucket} in ${dest.region}, or tell us the right bucket name`,
      };
    case 'bucket_wrong_region':
      return {
        code,
        reason: `the bucket ${dest.bucket} is not in the registered region ${dest.region}`,
        fix: "tell us the bucket's actual region, or use a bucket in the registered region",
      };
    case 'kms_denied':
      return {
        code,
        reason: `the KMS key ${dest.kmsKeyArn} refused dropship's role`,
        fix: `allow kms:GenerateDataKey and kms:Decrypt on ${dest.kmsKeyArn} to the role ${dest.roleArn}, in the role's policy and in the key policy`,
      };
    case 'write_denied':
      return {
        code,
        reason: `dropship's role was denied writing to ${where}`,
        fix: `allow s3:PutObject and s3:AbortMultipartUpload on ${writeResourcesText(dest)} in the role's permission policy${dest.kmsKeyArn ? `, and kms:GenerateDataKey and kms:Decrypt on ${dest.kmsKeyArn}` : ''}`,
      };
    case 'operator_action_required':
      return {
        code,
        reason: reason ?? INTERNAL_CUSTOMER_MESSAGE,
        fix: 'nothing to do on your side, but this failure repeats on every run until dropship’s operators fix it: dropship’s operators must act (they are alerted), and you will be told — here and by a delivery.succeeded webhook — when deliveries resume',
      };
    default:
      return {
        code: 'internal',
        reason: INTERNAL_CUSTOMER_MESSAGE,
        fix: 'nothing to do on your side: dropship’s operators are alerted, and the next run retries automatically',
      };
  }
}

const CODES = new Set<string>([
  'role_not_assumable',
  'external_id_not_enforced',
  'bucket_missing',
  'bucket_wrong_region',
  'kms_denied',
  'write_denied',
]);

/** The customer failure an error (or one of its causes) says it is (DestinationAccessError's `failure`). */
export function failureCodeOf(e: unknown): CustomerFailureCode | undefined {
  let c: unknown = e;
  for (let i = 0; c instanceof Error && i < 8; i++) {
    const failure = (c as { failure?: unknown }).failure;
    if (typeof failure === 'string' && CODES.has(failure)) return failure as CustomerFailureCode;
    c = c.cause;
  }
  return undefined;
}

/**
 * A run's error in the customer's words. An error that knows which customer failure it is
 * (src/destinations/s3/clients.ts sets `failure` where AWS refuses) answers for itself; otherwise — an error
 * read back from the ledger as text (a run that died), a table failure inside a RunError — its text
 * is classified by dropship's own wording (src/destinations/s3/clients.ts); anything unrecognised is ours.
 * Whether ours repeats is the error's own verdict (`repeats`, asked of the nearest DropshipError,
 * never read from its text): a failure that will repeat (a value with no Parquet form, a bad
 * setting) says dropship's operators must act; only a transient one says the next run retries. An
 * error known only as text (the ledger keeps messages, not verdicts) counts as transient.
 */
export function describeS3Failure(dest: FailureDest, error: unknown): CustomerFailure {
  const known = failureCodeOf(error);
  if (known) return failureFor(known, dest);
  const text = errorText(error);
  const code: CustomerFailure['code'] =
    /can be assumed without the external ID|assumed (without an|with a wrong) external ID/.test(text)
      ? 'external_id_not_enforced'
      : /cannot assume role|AssumeRole on \S+ failed: AccessDenied/.test(text)
        ? 'role_not_assumable'
        : /bucket "[^"]*" does not exist/.test(text)
          ? 'bucket_missing'
          : /is not in region|PermanentRedirect|AuthorizationHeaderMalformed/.test(text)
            ? 'bucket_wrong_region'
            : dest.kmsKeyArn && KMS_DENIAL.test(text)
              ? 'kms_denied'
              : /access denied writing|AccessDenied/.test(text)
                ? 'write_denied'
                : 'internal';
  if (code === 'internal' && repeatsOf(error))
    return failureFor('operator_action_required', dest, customerMessageOf(error));
  return failureFor(code, dest);
}
