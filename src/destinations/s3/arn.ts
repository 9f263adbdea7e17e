/**
 * ARNs dropship builds, in the partition of the ARN they are derived from — `aws`, `aws-cn`,
 * `aws-us-gov`, `aws-iso`, … — so policies and comparisons are right outside the commercial
 * partition too. Written once: every ARN in the policy documents and the doctor comes from here.
 */

/** The partition of an ARN (`arn:<partition>:<service>:…`); `aws` when the text is not an ARN. */
export function arnPartition(arn: string): string {
  const [scheme, partition] = arn.split(':');
  return scheme === 'arn' && partition ? partition : 'aws';
}

/** The account ID field of an ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`). */
export function arnAccountId(arn: string): string | undefined {
  return arn.split(':')[4] || undefined;
}

/** An S3 bucket ARN, or an object ARN (pattern) when `key` is given, in `partition`. */
export function s3Arn(partition: string, bucket: string, key?: string): string {
  return `arn:${partition}:s3:::${bucket}${key === undefined ? '' : `/${key}`}`;
}

/** The ARN that names a whole AWS account as an IAM principal, in `partition`. */
export function accountRootArn(partition: string, accountId: string): string {
  return `arn:${partition}:iam::${accountId}:root`;
}
