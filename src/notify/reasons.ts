import { customerMessageOf, repeatsOf } from '../contracts/errors.js';
import { KMS_DENIAL } from '../destinations/s3/clients.js';
import {
  type CustomerFailure,
  type CustomerFailureCode,
  type FailureDest,
  failureFor,
} from '../destinations/s3/customer-failure.js';

/** Every message of an error and its causes, plus per-table failures when the error carries them. */
export function errorText(e: unknown): string {
  if (e === undefined || e === null) return '';
  if (typeof e === 'string') return e;
  const parts: string[] = [];
  let c: unknown = e;
  for (let i = 0; c && i < 8; i++) {
    parts.push(c instanceof Error ? c.message : String(c));
    const failures = (c as { failures?: { message: string }[] }).failures;
    if (Array.isArray(failures)) parts.push(...failures.map((f) => f.message));
    c = c instanceof Error ? c.cause : undefined;
  }
  return parts.join('\n');
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
 * (src/aws/clients.ts sets `failure` where AWS refuses) answers for itself; otherwise — an error
 * read back from the ledger as text (a run that died), a table failure inside a RunError — its text
 * is classified by dropship's own wording (src/aws/clients.ts); anything unrecognised is ours.
 * Whether ours repeats is the error's own verdict (`repeats`, asked of the nearest DropshipError,
 * never read from its text): a failure that will repeat (a value with no Parquet form, a bad
 * setting) says dropship's operators must act; only a transient one says the next run retries. An
 * error known only as text (the ledger keeps messages, not verdicts) counts as transient.
 */
export function describeFailure(dest: FailureDest, error: unknown): CustomerFailure {
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
