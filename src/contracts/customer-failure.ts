/**
 * The customer's words for a failed run, as status.json and the webhooks carry them: a stable code,
 * what happened and what the customer can do. Which words fit which failure is the destination's
 * business (src/destinations/wording.ts; for S3, src/destinations/s3/customer-failure.ts).
 */
export interface CustomerFailure {
  /** Stable code, for automation. */
  code:
    | 'role_not_assumable'
    | 'external_id_not_enforced'
    | 'bucket_missing'
    | 'bucket_wrong_region'
    | 'kms_denied'
    | 'write_denied'
    /** Ours, and it repeats: every run fails the same way until dropship's operators act. */
    | 'operator_action_required'
    /** Ours, and transient: the next run retries. */
    | 'internal';
  reason: string;
  fix: string;
}

export type CustomerFailureCode = CustomerFailure['code'];
