import type { Destination } from './destination.js';

/**
 * The IAM documents a customer creates for dropship, generated from the destination:
 *   - trust policy: only dropship's principal, only with this account's external ID
 *     (the condition that closes the confused-deputy hole);
 *   - permission policy: s3:PutObject and s3:AbortMultipartUpload under `<bucket>/<prefix>/*`
 *     and nothing else (no read, list or delete); kms:GenerateDataKey + kms:Decrypt on the
 *     key when SSE-KMS is configured (multipart uploads with SSE-KMS need both).
 * The same permission policy is passed as the session policy on every AssumeRole, so even a
 * customer role that grants more yields credentials that can do only this.
 */
export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string };
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export function partition(arn: string): string {
  return arn.split(':')[1] ?? 'aws';
}

export function writeResource(dest: Pick<Destination, 'bucket' | 'prefix' | 'roleArn'>): string {
  return `arn:${partition(dest.roleArn)}:s3:::${dest.bucket}/${dest.prefix ? `${dest.prefix}/` : ''}*`;
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
      Resource: writeResource(dest),
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
