import type { Destination } from '../../accounts/destination.js';
import { DropshipError } from '../../contracts/errors.js';
import { arnPartition, s3Arn } from './arn.js';
import { lifecycleConfiguration } from './bucket-lifecycle.js';

/**
 * The IAM documents a customer creates for dropship, generated from the destination:
 *   - trust policy: only dropship's principal, only with this account's external ID
 *     (the condition that closes the confused-deputy hole);
 *   - permission policy: s3:PutObject and s3:AbortMultipartUpload on the keys dropship writes under
 *     `<bucket>/<prefix>/` (`writeResources`) and nothing else (no read, list or delete); kms:GenerateDataKey + kms:Decrypt on the
 *     key when SSE-KMS is configured (multipart uploads with SSE-KMS need both).
 * The same permission policy is passed as the session policy on every AssumeRole, so even a
 * customer role that grants more yields credentials that can do only this.
 *
 * `dropship policy` also prints, for the customer's side: the bucket lifecycle configuration that
 * expires dumps and aborts incomplete uploads (src/destinations/s3/bucket-lifecycle.ts: only dropship's run
 * folders, never the bucket root), and a reader policy for whoever loads the exports.
 * Every ARN is built in the partition of the destination's role ARN (src/destinations/s3/arn.ts).
 */
export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string };
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** A stored destination's prefix that IAM would read as a pattern (refused at registration since). Not retryable. */
export class WildcardPrefix extends DropshipError {
  readonly code: string = 'invalid-destination';
  override readonly badInput: boolean = true;
  constructor(prefix: string) {
    super(
      `Invalid destination:\n  - prefix: "${prefix}" contains "*", "?" or "$", which IAM reads as wildcards: change the destination's prefix`,
      undefined,
      { retryable: false },
    );
    this.name = 'WildcardPrefix';
  }
}

/**
 * The destination's folder as a key prefix: `prefix/`, or empty at the bucket root. A prefix with an IAM wildcard
 * (`*`, `?`) or a policy variable (`$`) is refused here too, not only at registration: a policy built from it would
 * reach objects outside dropship's folder (a destination stored before registration refused them).
 */
function keyPrefix(dest: Pick<Destination, 'prefix'>): string {
  if (/[*?$]/.test(dest.prefix)) throw new WildcardPrefix(dest.prefix);
  return dest.prefix ? `${dest.prefix}/` : '';
}

/**
 * The objects dropship writes, and no other key under the prefix: its run folders (`<prefix>/2…`: every folder is
 * named after its start time, year first, in both layouts), `receipt.json`, `status.json` and the doctor's probes.
 * `<prefix>/*` let dropship's credentials replace any object of the customer's under the prefix (red team,
 * retention); a role granting the older `<prefix>/*` keeps working (the session policy narrows it to these).
 */
export function writeResources(dest: Pick<Destination, 'bucket' | 'prefix' | 'roleArn'>): string[] {
  const partition = arnPartition(dest.roleArn);
  const prefix = keyPrefix(dest);
  return [`${prefix}2*`, `${prefix}receipt.json`, `${prefix}status.json`, `${prefix}_dropship_probe/*`].map((k) =>
    s3Arn(partition, dest.bucket, k),
  );
}

/** The write resources as one line for a fix a person reads. */
export function writeResourcesText(dest: Pick<Destination, 'bucket' | 'prefix' | 'roleArn'>): string {
  return writeResources(dest).join(', ');
}

export function trustPolicy(dest: Pick<Destination, 'externalId'>, principalArn: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'DropshipAssumeRole',
        Effect: 'Allow',
        Principal: { AWS: principalArn },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'sts:ExternalId': dest.externalId } },
      },
    ],
  };
}

export function permissionPolicy(
  dest: Pick<Destination, 'bucket' | 'prefix' | 'roleArn' | 'kmsKeyArn'>,
): PolicyDocument {
  const statements: PolicyStatement[] = [
    {
      Sid: 'DropshipWriteExports',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
      Resource: writeResources(dest),
    },
  ];
  if (dest.kmsKeyArn) {
    statements.push({
      Sid: 'DropshipKmsEncryption',
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: dest.kmsKeyArn,
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}

/** AWS's bound on a session policy's plain text (AssumeRole `Policy`: "can't exceed 2,048 characters"). */
export const SESSION_POLICY_MAX_CHARS = 2048;

/**
 * The session policy of every AssumeRole, as JSON: the permission policy — or, when its four resources do not fit
 * AWS's 2,048 characters (a prefix of several hundred characters), the same statement on `<prefix>/*`. The role's own
 * policy (printed, in the kit) stays the narrow one, and the session's rights are the intersection of the two.
 */
export function sessionPolicyJson(dest: Pick<Destination, 'bucket' | 'prefix' | 'roleArn' | 'kmsKeyArn'>): string {
  const narrow = JSON.stringify(permissionPolicy(dest));
  if (narrow.length <= SESSION_POLICY_MAX_CHARS) return narrow;
  const broad = permissionPolicy(dest);
  broad.Statement[0]!.Resource = s3Arn(arnPartition(dest.roleArn), dest.bucket, `${keyPrefix(dest)}*`);
  return JSON.stringify(broad);
}

/** Read access to the delivered exports, for the customer's own readers (loaders, warehouses). */
export function readerPolicy(dest: Pick<Destination, 'bucket' | 'prefix' | 'roleArn' | 'kmsKeyArn'>): PolicyDocument {
  const partition = arnPartition(dest.roleArn);
  const prefix = keyPrefix(dest);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ReadDropshipExports',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: s3Arn(partition, dest.bucket, `${prefix}*`),
      },
      {
        Sid: 'ListDropshipExports',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: s3Arn(partition, dest.bucket),
        ...(prefix ? { Condition: { StringLike: { 's3:prefix': [`${prefix}*`] } } } : {}),
      },
      ...(dest.kmsKeyArn
        ? [{ Sid: 'DecryptDropshipExports', Effect: 'Allow' as const, Action: 'kms:Decrypt', Resource: dest.kmsKeyArn }]
        : []),
    ],
  };
}

/** The documents `dropship policy` prints. */
export function policyDocuments(dest: Destination, principalArn: string) {
  return {
    trust: trustPolicy(dest, principalArn),
    writer: permissionPolicy(dest),
    lifecycle: lifecycleConfiguration(dest),
    reader: readerPolicy(dest),
  };
}
