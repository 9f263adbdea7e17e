import { createHash } from 'node:crypto';
import type { Destination } from '../../accounts/destination.js';
import type { Settings } from '../../config/settings.js';
import { DropshipError } from '../../contracts/errors.js';
import { arnAccountId, arnPartition } from './arn.js';
import type { LifecycleConfiguration } from './bucket-lifecycle.js';
import { type PolicyDocument, policyDocuments } from './policies.js';

/**
 * The customer's setup kit (`dropship destinations kit <account> --format …`, and the API's create):
 * what the customer deploys in their own AWS account so that dropship can deliver — the role dropship
 * assumes (trust policy with the account's external ID), its write policy on the bucket/prefix (KMS
 * when set), and optionally the bucket with the recommended lifecycle rules.
 *
 *   - `cloudformation`: a template (JSON) + its quick-create console link with the parameters filled
 *     in (the link needs the template hosted: DROPSHIP_KIT_TEMPLATE_BASE_URL);
 *   - `terraform`: a module (HCL) with the same resources;
 *   - `json`: the raw documents, exactly what `dropship policy` prints.
 *
 * Every IAM document in every format is `policyDocuments()` (src/destinations/s3/policies.ts) written
 * out verbatim — the template carries them as JSON objects, the module as heredocs of the same
 * `JSON.stringify(doc, null, 2)` — never rebuilt with template functions, so what the customer deploys
 * is byte for byte what `dropship policy` prints (test/kit.test.ts parses both and compares).
 * `dropship dev provision` applies the CloudFormation template's role (src/cli/dev-client.ts).
 *
 * The bucket name, role name and external ID are fixed by the registration: the template shows the
 * bucket and the external ID as parameters the customer sees (and the link fills in) but accepts only
 * the registered values; the customer's own choices are whether the stack creates the bucket.
 */
export const KIT_FORMATS = ['cloudformation', 'terraform', 'json'] as const;
export type KitFormat = (typeof KIT_FORMATS)[number];

export type KitSettings = Pick<
  Settings,
  'DROPSHIP_PRINCIPAL_ARN' | 'DROPSHIP_KIT_TEMPLATE_BASE_URL' | 'DROPSHIP_ROLE_SESSION_SECONDS'
>;

export interface SetupKit {
  format: KitFormat;
  /** A file name to save `body` under. */
  fileName: string;
  mediaType: string;
  /** The template, the module or the documents. */
  body: string;
  /** CloudFormation: where the template must be hosted for the link (when the base URL is set). */
  templateUrl?: string;
  /** CloudFormation: the console's quick-create link, parameters filled in (when the base URL is set). */
  quickCreateUrl?: string;
  /** What to do with the file, one line each (for a person; the CLI prints them to stderr). */
  instructions: string[];
}

/** The kit cannot be made: dropship's principal is not configured, or the destination cannot be expressed. */
export class KitError extends DropshipError {
  readonly code: string = 'kit';
  override readonly badInput: boolean = true;
  constructor(message: string) {
    super(message, undefined, { retryable: false });
    this.name = 'KitError';
  }
}

/** Names in the template and the module (the role policy name is the one `dropship policy`'s CLI lines use). */
export const KIT_NAMES = {
  roleResource: 'DropshipRole',
  bucketResource: 'ExportBucket',
  writePolicyName: 'dropship-write',
  parameters: { createBucket: 'CreateBucket', bucketName: 'BucketName', externalId: 'ExternalId' },
} as const;

/** The role's name and path from the registered role ARN (`…:role/path/name`). */
export function roleNameAndPath(roleArn: string): { name: string; path: string; awsAccountId: string } {
  const m = /^arn:[\w-]+:iam::(\d{12}):role(\/(?:[^/]+\/)*)([^/]+)$/.exec(roleArn);
  if (!m) throw new KitError(`role ARN ${roleArn} does not name an account and a role`);
  return { awsAccountId: m[1]!, path: m[2]!, name: m[3]! };
}

/** The documents every format carries: exactly `policyDocuments()` (what `dropship policy` prints). */
export function kitDocuments(dest: Destination, settings: KitSettings): ReturnType<typeof policyDocuments> {
  const principal = settings.DROPSHIP_PRINCIPAL_ARN;
  if (!principal)
    throw new KitError(
      'DROPSHIP_PRINCIPAL_ARN is not set: it is the principal the trust policy names (the Lambda role in production)',
    );
  return policyDocuments(dest, principal);
}

/** The role's longest session: at least what dropship asks for (DROPSHIP_ROLE_SESSION_SECONDS), at least AWS's default hour. */
export function kitMaxSessionSeconds(settings: Pick<KitSettings, 'DROPSHIP_ROLE_SESSION_SECONDS'>): number {
  return Math.max(3600, settings.DROPSHIP_ROLE_SESSION_SECONDS);
}

/**
 * `dropship policy`'s `aws iam create-role` line: the role the kit's template declares — the registered
 * ARN's path (`--path`, else the role AWS creates is another ARN) and, when dropship asks for longer
 * sessions than AWS's default hour, the template's MaxSessionDuration (`--max-session-duration`).
 */
export function createRoleCommand(
  roleArn: string,
  settings: Pick<KitSettings, 'DROPSHIP_ROLE_SESSION_SECONDS'>,
  trustFile = 'file://trust.json',
): string {
  const role = roleNameAndPath(roleArn);
  const maxSession = kitMaxSessionSeconds(settings);
  return [
    `aws iam create-role --role-name ${role.name}`,
    ...(role.path !== '/' ? [`--path ${role.path}`] : []),
    ...(maxSession > 3600 ? [`--max-session-duration ${maxSession}`] : []),
    `--assume-role-policy-document ${trustFile}`,
  ].join(' ');
}

export function setupKit(dest: Destination, settings: KitSettings, format: KitFormat): SetupKit {
  switch (format) {
    case 'cloudformation':
      return cloudFormationKit(dest, settings);
    case 'terraform':
      return terraformKit(dest, settings);
    case 'json':
      return jsonKit(dest, settings);
    default:
      throw new KitError(`unknown kit format ${JSON.stringify(format)} (one of ${KIT_FORMATS.join(', ')})`);
  }
}

// ---------------------------------------------------------------------------------------------- json

function jsonKit(dest: Destination, settings: KitSettings): SetupKit {
  const documents = kitDocuments(dest, settings);
  const body = `${JSON.stringify(
    {
      accountId: dest.accountId,
      roleArn: dest.roleArn,
      externalId: dest.externalId,
      bucket: dest.bucket,
      prefix: dest.prefix,
      region: dest.region,
      ...(dest.kmsKeyArn ? { kmsKeyArn: dest.kmsKeyArn } : {}),
      maxSessionSeconds: kitMaxSessionSeconds(settings),
      documents,
    },
    null,
    2,
  )}\n`;
  return {
    format: 'json',
    fileName: `dropship-${dest.accountId}.policies.json`,
    mediaType: 'application/json',
    body,
    instructions: [
      `create the role ${dest.roleArn} with documents.trust as its trust policy and documents.writer as its permission policy (name: ${KIT_NAMES.writePolicyName})`,
      `merge documents.lifecycle into the bucket's lifecycle rules (dropship policy --account ${dest.accountId} prints the commands)`,
    ],
  };
}

// ------------------------------------------------------------------------------------ cloudformation

/** CloudFormation's lifecycle rule shape for one of dropship's rules (S3's API shape differs). */
export function cfnLifecycleRules(lc: LifecycleConfiguration): Record<string, unknown>[] {
  return lc.Rules.map((r) => ({
    Id: r.ID,
    Status: r.Status,
    Prefix: r.Filter?.Prefix ?? '',
    ...(r.Expiration?.Days !== undefined ? { ExpirationInDays: r.Expiration.Days } : {}),
    ...(r.AbortIncompleteMultipartUpload ? { AbortIncompleteMultipartUpload: r.AbortIncompleteMultipartUpload } : {}),
  }));
}

/** The template as an object (the kit's body is its JSON). */
export function cloudFormationTemplate(dest: Destination, settings: KitSettings): Record<string, unknown> {
  const docs = kitDocuments(dest, settings);
  const role = roleNameAndPath(dest.roleArn);
  const P = KIT_NAMES.parameters;
  const rules = cfnLifecycleRules(docs.lifecycle);
  const folder = `s3://${dest.bucket}/${dest.prefix ? `${dest.prefix}/` : ''}`;
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `dropship exports for ${dest.accountId}: the role dropship assumes (only with your external ID) and its write access to ${folder}; optionally the bucket. Deploy in AWS account ${role.awsAccountId}, region ${dest.region}.`,
    Metadata: {
      'AWS::CloudFormation::Interface': {
        ParameterGroups: [
          { Label: { default: 'Your choice' }, Parameters: [P.createBucket] },
          { Label: { default: 'Fixed by your dropship registration' }, Parameters: [P.bucketName, P.externalId] },
        ],
        ParameterLabels: {
          [P.createBucket]: { default: 'Create the bucket in this stack?' },
          [P.bucketName]: { default: 'Bucket dropship writes to' },
          [P.externalId]: { default: 'External ID dropship presents' },
        },
      },
    },
    Parameters: {
      [P.createBucket]: {
        Type: 'String',
        AllowedValues: ['true', 'false'],
        Default: 'false',
        Description: `true: the stack creates ${dest.bucket} in ${dest.region} (private, lifecycle rules for dropship's run folders${dest.kmsKeyArn ? ', SSE-KMS with your key' : ''}) and keeps it when the stack is deleted; false: the bucket exists already.`,
      },
      [P.bucketName]: {
        Type: 'String',
        AllowedValues: [dest.bucket],
        Default: dest.bucket,
        Description:
          'The bucket registered with dropship (the write policy names it). To use another bucket, have the registration changed and get a new link.',
      },
      [P.externalId]: {
        Type: 'String',
        AllowedValues: [dest.externalId],
        Default: dest.externalId,
        Description:
          "Your account's external ID; the role's trust policy requires it, so only dropship, asking for your account, can assume the role.",
      },
    },
    Conditions: { [P.createBucket]: { 'Fn::Equals': [{ Ref: P.createBucket }, 'true'] } },
    Resources: {
      [KIT_NAMES.roleResource]: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: role.name,
          Path: role.path,
          Description: `dropship writes ${dest.accountId}'s exports to ${folder}`,
          MaxSessionDuration: kitMaxSessionSeconds(settings),
          AssumeRolePolicyDocument: docs.trust,
          Policies: [{ PolicyName: KIT_NAMES.writePolicyName, PolicyDocument: docs.writer }],
        },
      },
      [KIT_NAMES.bucketResource]: {
        Type: 'AWS::S3::Bucket',
        Condition: P.createBucket,
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          BucketName: { Ref: P.bucketName },
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
          ...(dest.kmsKeyArn
            ? {
                BucketEncryption: {
                  ServerSideEncryptionConfiguration: [
                    {
                      ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: dest.kmsKeyArn },
                      BucketKeyEnabled: true,
                    },
                  ],
                },
              }
            : {}),
          ...(rules.length > 0 ? { LifecycleConfiguration: { Rules: rules } } : {}),
        },
      },
    },
    Outputs: {
      RoleArn: {
        Description: 'The role dropship assumes (registered with dropship as this ARN)',
        Value: { 'Fn::GetAtt': [KIT_NAMES.roleResource, 'Arn'] },
      },
      [P.externalId]: { Description: 'The external ID the trust policy requires', Value: { Ref: P.externalId } },
    },
  };
}

/** The AWS console's host in the role's partition. */
function consoleHost(partition: string): string {
  if (partition === 'aws-cn') return 'console.amazonaws.cn';
  if (partition === 'aws-us-gov') return 'console.amazonaws-us-gov.com';
  return 'console.aws.amazon.com';
}

/** Stack names: letters, digits and hyphens, starting with a letter, at most 128 characters. */
export function kitStackName(accountId: string): string {
  return `dropship-${accountId.replace(/[^A-Za-z0-9-]/g, '-')}`.slice(0, 128);
}

/**
 * Where the template is hosted: `<base>/<account>/<first 16 hex of its sha256>.template.json` —
 * content-addressed, so a link never shows a template other than the one it was made for (a changed
 * destination gets a new file and a new link).
 */
export function kitTemplateUrl(base: string, accountId: string, body: string): string {
  const h = createHash('sha256').update(body, 'utf8').digest('hex').slice(0, 16);
  return `${base.replace(/\/+$/, '')}/${encodeURIComponent(accountId)}/${h}.template.json`;
}

/** The console's quick-create link for a hosted template, parameters filled in. */
export function quickCreateUrl(
  dest: Pick<Destination, 'accountId' | 'region' | 'roleArn'>,
  templateUrl: string,
  parameters: Record<string, string>,
): string {
  const q = new URLSearchParams({ templateURL: templateUrl, stackName: kitStackName(dest.accountId) });
  for (const [k, v] of Object.entries(parameters)) q.set(`param_${k}`, v);
  return `https://${consoleHost(arnPartition(dest.roleArn))}/cloudformation/home?region=${encodeURIComponent(dest.region)}#/stacks/quickcreate?${q.toString()}`;
}

function cloudFormationKit(dest: Destination, settings: KitSettings): SetupKit {
  const template = cloudFormationTemplate(dest, settings);
  const body = `${JSON.stringify(template, null, 2)}\n`;
  const fileName = `dropship-${dest.accountId}.template.json`;
  const P = KIT_NAMES.parameters;
  const account = arnAccountId(dest.roleArn);
  const base = settings.DROPSHIP_KIT_TEMPLATE_BASE_URL;
  if (!base) {
    return {
      format: 'cloudformation',
      fileName,
      mediaType: 'application/json',
      body,
      instructions: [
        'no quick-create link: DROPSHIP_KIT_TEMPLATE_BASE_URL is not set. To make one, host the templates in an S3 bucket the console can read over https',
        '(e.g. a bucket with a policy allowing s3:GetObject on its templates/ folder) and set DROPSHIP_KIT_TEMPLATE_BASE_URL=https://<bucket>.s3.<region>.amazonaws.com/templates;',
        `then \`dropship destinations kit ${dest.accountId} --format cloudformation\` prints the upload command and the link.`,
        `Without a link, the customer deploys ${fileName} themselves: CloudFormation > Create stack > Upload a template file,`,
        `in AWS account ${account}, region ${dest.region} (or: aws cloudformation deploy --template-file ${fileName} --stack-name ${kitStackName(dest.accountId)} --capabilities CAPABILITY_NAMED_IAM --region ${dest.region}).`,
      ],
    };
  }
  const templateUrl = kitTemplateUrl(base, dest.accountId, body);
  const link = quickCreateUrl(dest, templateUrl, {
    [P.createBucket]: 'false',
    [P.bucketName]: dest.bucket,
    [P.externalId]: dest.externalId,
  });
  return {
    format: 'cloudformation',
    fileName,
    mediaType: 'application/json',
    body,
    templateUrl,
    quickCreateUrl: link,
    instructions: [
      `host the template where the link points: upload ${fileName} to ${templateUrl} (e.g. aws s3 cp ${fileName} <the s3:// form of that URL> --content-type application/json)`,
      `then send the customer the quick-create link (open it signed in to AWS account ${account}; tick "create IAM resources", Create stack):`,
      link,
    ],
  };
}

// ------------------------------------------------------------------------------------------- terraform

/** An HCL string literal: JSON's escapes, plus HCL's own `${` and `%{` escaped. */
export function hclString(s: string): string {
  return JSON.stringify(s).replaceAll('${', '$${').replaceAll('%{', '%%{');
}

/**
 * A document as an indented heredoc whose content is exactly `JSON.stringify(doc, null, 2)` plus a
 * newline. A template sequence in it would be interpolated by Terraform; the destination schema makes
 * one impossible, and this refuses rather than escapes (escaping would change the bytes).
 */
function heredoc(doc: PolicyDocument, indent: string): string {
  const json = JSON.stringify(doc, null, 2);
  if (json.includes('${') || json.includes('%{'))
    throw new KitError('a policy document contains "${" or "%{", which Terraform would interpolate');
  const body = json
    .split('\n')
    .map((l) => `${indent}  ${l}`)
    .join('\n');
  return `<<-JSON\n${body}\n${indent}JSON`;
}

/** The module as HCL text (one file, `main.tf`). */
export function terraformModule(dest: Destination, settings: KitSettings): string {
  const docs = kitDocuments(dest, settings);
  const role = roleNameAndPath(dest.roleArn);
  const rules = docs.lifecycle.Rules;
  const folder = `s3://${dest.bucket}/${dest.prefix ? `${dest.prefix}/` : ''}`;
  const out: string[] = [
    `# dropship exports for ${dest.accountId}: the role dropship assumes (only with your external ID) and its`,
    `# write access to ${folder}; optionally the bucket. Generated by \`dropship destinations kit ${dest.accountId} --format terraform\`:`,
    '# the policy documents are exactly what `dropship policy` prints; regenerate rather than edit them.',
    `# Apply with credentials of AWS account ${role.awsAccountId}; with create_bucket = true, the provider's region must be ${dest.region}.`,
    '',
    'terraform {',
    '  required_version = ">= 1.3"',
    '  required_providers {',
    '    aws = {',
    '      source  = "hashicorp/aws"',
    '      version = ">= 4.0"',
    '    }',
    '  }',
    '}',
    '',
    'variable "create_bucket" {',
    `  description = ${hclString(`true: create ${dest.bucket} (private, lifecycle rules for dropship's run folders${dest.kmsKeyArn ? ', SSE-KMS with your key' : ''}); false: it exists already`)}`,
    '  type        = bool',
    '  default     = false',
    '}',
    '',
    'data "aws_caller_identity" "current" {}',
    '',
    'resource "aws_iam_role" "dropship" {',
    `  name                 = ${hclString(role.name)}`,
    `  path                 = ${hclString(role.path)}`,
    `  description          = ${hclString(`dropship writes ${dest.accountId}'s exports to ${folder}`)}`,
    `  max_session_duration = ${kitMaxSessionSeconds(settings)}`,
    `  assume_role_policy   = ${heredoc(docs.trust, '  ')}`,
    '',
    '  lifecycle {',
    '    precondition {',
    `      condition     = data.aws_caller_identity.current.account_id == ${hclString(role.awsAccountId)}`,
    `      error_message = ${hclString(`dropship is registered with the role ${dest.roleArn}: apply this module in AWS account ${role.awsAccountId}.`)}`,
    '    }',
    '  }',
    '}',
    '',
    'resource "aws_iam_role_policy" "dropship_write" {',
    `  name   = ${hclString(KIT_NAMES.writePolicyName)}`,
    '  role   = aws_iam_role.dropship.id',
    `  policy = ${heredoc(docs.writer, '  ')}`,
    '}',
    '',
    'resource "aws_s3_bucket" "exports" {',
    '  count  = var.create_bucket ? 1 : 0',
    `  bucket = ${hclString(dest.bucket)}`,
    '}',
    '',
    'resource "aws_s3_bucket_public_access_block" "exports" {',
    '  count                   = var.create_bucket ? 1 : 0',
    '  bucket                  = aws_s3_bucket.exports[0].id',
    '  block_public_acls       = true',
    '  block_public_policy     = true',
    '  ignore_public_acls      = true',
    '  restrict_public_buckets = true',
    '}',
    '',
    'resource "aws_s3_bucket_ownership_controls" "exports" {',
    '  count  = var.create_bucket ? 1 : 0',
    '  bucket = aws_s3_bucket.exports[0].id',
    '  rule {',
    '    object_ownership = "BucketOwnerEnforced"',
    '  }',
    '}',
  ];
  if (dest.kmsKeyArn) {
    out.push(
      '',
      'resource "aws_s3_bucket_server_side_encryption_configuration" "exports" {',
      '  count  = var.create_bucket ? 1 : 0',
      '  bucket = aws_s3_bucket.exports[0].id',
      '  rule {',
      '    apply_server_side_encryption_by_default {',
      '      sse_algorithm     = "aws:kms"',
      `      kms_master_key_id = ${hclString(dest.kmsKeyArn)}`,
      '    }',
      '    bucket_key_enabled = true',
      '  }',
      '}',
    );
  }
  if (rules.length > 0) {
    out.push(
      '',
      'resource "aws_s3_bucket_lifecycle_configuration" "exports" {',
      '  count  = var.create_bucket ? 1 : 0',
      '  bucket = aws_s3_bucket.exports[0].id',
    );
    for (const r of rules) {
      out.push(
        '  rule {',
        `    id     = ${hclString(r.ID ?? '')}`,
        `    status = ${hclString(r.Status)}`,
        '    filter {',
        `      prefix = ${hclString(r.Filter?.Prefix ?? '')}`,
        '    }',
      );
      if (r.Expiration?.Days !== undefined) out.push('    expiration {', `      days = ${r.Expiration.Days}`, '    }');
      if (r.AbortIncompleteMultipartUpload)
        out.push(
          '    abort_incomplete_multipart_upload {',
          `      days_after_initiation = ${r.AbortIncompleteMultipartUpload.DaysAfterInitiation}`,
          '    }',
        );
      out.push('  }');
    }
    out.push('}');
  }
  out.push(
    '',
    'output "role_arn" {',
    '  description = "The role dropship assumes (registered with dropship as this ARN)"',
    '  value       = aws_iam_role.dropship.arn',
    '}',
    '',
    'output "external_id" {',
    '  description = "The external ID the trust policy requires"',
    `  value       = ${hclString(dest.externalId)}`,
    '}',
    '',
  );
  return out.join('\n');
}

function terraformKit(dest: Destination, settings: KitSettings): SetupKit {
  const body = terraformModule(dest, settings);
  return {
    format: 'terraform',
    fileName: 'main.tf',
    mediaType: 'text/plain',
    body,
    instructions: [
      `save it as dropship-${dest.accountId}/main.tf and use it as a module (module "dropship" { source = "./dropship-${dest.accountId}" }),`,
      `or apply it on its own: terraform init && terraform apply [-var create_bucket=true], with credentials of AWS account ${arnAccountId(dest.roleArn)}.`,
    ],
  };
}
