import { randomBytes } from 'node:crypto';
import { runSimulation } from '@cloud-copilot/iam-simulate';

/**
 * A small IAM: accounts, users with access keys, roles with trust and permission policies, and
 * temporary sessions. Who is allowed what is not decided here: every request is judged by
 * `@cloud-copilot/iam-simulate` (a simulator of AWS's own policy evaluation: identity, resource and
 * session policies, every condition operator, explicit denies, cross-account rules). This file only
 * wires our principals, roles and request context into its simulation.
 *
 * Where the simulator disagrees with the evaluator this file used to hold, AWS's documentation
 * sides with the simulator:
 *   - s3:ListBucket under `StringLike s3:prefix` (the reader policy): S3 puts the listing's prefix
 *     into the request as s3:prefix (S3 condition keys), so a listing of the granted prefix is
 *     allowed; the old guard never set the key and denied every such listing.
 *   - there are no sqs:*Batch IAM actions: SQS authorises SendMessageBatch as sqs:SendMessage etc.
 *   - across accounts (IAM "cross-account policy evaluation logic") a request needs the caller's
 *     identity policy AND the resource's policy: AssumeRole needs the caller's sts:AssumeRole
 *     permission besides the trust policy (the old one read the trust policy alone), and an S3 or
 *     KMS request into another account needs a bucket/key policy (the old one allowed on identity
 *     policies alone).
 *   - every condition operator (ArnLike, Bool, Numeric*, Date*, …IfExists, ForAnyValue/ForAllValues):
 *     the old one knew five and let no statement with another match — a Deny with one never denied.
 *
 * Licence: iam-simulate is AGPL-3.0, so it is a devDependency of this local stack only — production
 * code (src/, handlers/) never imports test/ (`npm run check:deps` enforces it) and nothing bundles it.
 */
export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: { AWS?: string | string[] } | '*';
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: Statement | Statement[];
}

export interface Principal {
  /** arn:aws:iam::ACCT:user/NAME or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION */
  arn: string;
  accountId: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiresAt?: number;
  policies: PolicyDocument[];
  sessionPolicy?: PolicyDocument;
  /** For assumed-role sessions: the role's ARN. */
  roleArn?: string;
}

export interface Role {
  arn: string;
  accountId: string;
  name: string;
  trustPolicy: PolicyDocument;
  policies: PolicyDocument[];
  maxSessionSeconds: number;
}

/** iam-simulate's verdict. */
export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

export interface IamRequest {
  principal: Pick<Principal, 'arn' | 'accountId' | 'policies' | 'sessionPolicy' | 'roleArn'>;
  action: string;
  /** The resource ARN (`*` for actions on no resource, e.g. s3:ListAllMyBuckets). */
  resource: string;
  /** The account that owns the resource: a request into another account needs its resource policy too. */
  resourceAccountId: string;
  /** The request's condition keys (undefined: absent from the request). */
  context?: Record<string, string | string[] | undefined>;
  /** The resource's policy: a role's trust policy, a KMS key policy (S3 bucket policies are not modelled). */
  resourcePolicy?: PolicyDocument;
}

/** AWS's verdict on one request, as iam-simulate computes it. */
export async function judge(req: IamRequest): Promise<Decision> {
  const now = new Date();
  const contextVariables: Record<string, string | string[]> = {
    // Global keys AWS puts into every request (aws:PrincipalArn of a role session is the role's ARN).
    'aws:PrincipalArn': req.principal.roleArn ?? req.principal.arn,
    'aws:PrincipalAccount': req.principal.accountId,
    'aws:CurrentTime': now.toISOString(),
    'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
  };
  for (const [k, v] of Object.entries(req.context ?? {})) if (v !== undefined) contextVariables[k] = v;
  const result = await runSimulation(
    {
      request: {
        principal: req.principal.arn,
        action: req.action,
        resource: { resource: req.resource, accountId: req.resourceAccountId },
        contextVariables,
      },
      identityPolicies: req.principal.policies.map((policy, i) => ({ name: `policy-${i + 1}`, policy })),
      ...(req.principal.sessionPolicy ? { sessionPolicy: req.principal.sessionPolicy } : {}),
      ...(req.resourcePolicy ? { resourcePolicy: req.resourcePolicy } : {}),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  // A policy or request the simulator rejects as invalid is a bug in the stack or its world file.
  if (result.resultType === 'error')
    throw new Error(
      `IAM simulation of ${req.action} on ${req.resource} by ${req.principal.arn} is invalid: ${JSON.stringify(result.errors)}`,
    );
  return result.overallResult as Decision;
}

/** Is `principal` allowed `action` on `resource` (owned by `resourceAccountId`)? */
export async function authorize(
  principal: IamRequest['principal'],
  action: string,
  resource: string,
  opts: Omit<IamRequest, 'principal' | 'action' | 'resource' | 'resourceAccountId'> & {
    resourceAccountId?: string;
  } = {},
): Promise<boolean> {
  const resourceAccountId = opts.resourceAccountId ?? principal.accountId;
  return (await judge({ principal, action, resource, ...opts, resourceAccountId })) === 'Allowed';
}

/** Does the role's trust policy (and the caller's own policies) let `caller` assume it, given the request's keys? */
export async function trusts(
  role: Role,
  caller: IamRequest['principal'],
  context: Record<string, string | undefined>,
): Promise<boolean> {
  return authorize(caller, 'sts:AssumeRole', role.arn, {
    resourceAccountId: role.accountId,
    resourcePolicy: role.trustPolicy,
    context,
  });
}

/**
 * KMS key policies are not modelled: every key's policy delegates to IAM in the caller's account
 * (as AWS's default key policy does for the key's own account), so the caller's identity and
 * session policies decide kms:GenerateDataKey / kms:Decrypt.
 */
export function keyPolicyDelegatingTo(accountId: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'EnableIamPolicies',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  };
}

export function newAccessKey(prefix: 'AKIA' | 'ASIA'): { accessKeyId: string; secretAccessKey: string } {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = Array.from(randomBytes(16), (b) => alphabet[b % 32]).join('');
  return { accessKeyId: prefix + id, secretAccessKey: randomBytes(30).toString('base64') };
}

export class Iam {
  readonly principals = new Map<string, Principal>();
  readonly roles = new Map<string, Role>();

  createUser(accountId: string, name: string, policies: PolicyDocument[], keys = newAccessKey('AKIA')): Principal {
    const p: Principal = { arn: `arn:aws:iam::${accountId}:user/${name}`, accountId, ...keys, policies };
    this.principals.set(p.accessKeyId, p);
    return p;
  }

  putRole(
    accountId: string,
    name: string,
    trustPolicy: PolicyDocument,
    policies: PolicyDocument[],
    maxSessionSeconds = 3600,
  ): Role {
    const role: Role = {
      arn: `arn:aws:iam::${accountId}:role/${name}`,
      accountId,
      name,
      trustPolicy,
      policies,
      maxSessionSeconds,
    };
    this.roles.set(role.arn, role);
    return role;
  }

  /** Drops every session issued for `roleArn` (as when a role's credentials are revoked). */
  revokeSessions(roleArn: string): void {
    for (const [k, p] of this.principals) if (p.roleArn === roleArn) this.principals.delete(k);
  }

  issueSession(role: Role, sessionName: string, seconds: number, sessionPolicy?: PolicyDocument): Principal {
    const keys = newAccessKey('ASIA');
    const p: Principal = {
      arn: `arn:aws:sts::${role.accountId}:assumed-role/${role.name}/${sessionName}`,
      accountId: role.accountId,
      ...keys,
      sessionToken: randomBytes(48).toString('base64'),
      expiresAt: Date.now() + seconds * 1000,
      policies: role.policies,
      ...(sessionPolicy ? { sessionPolicy } : {}),
      roleArn: role.arn,
    };
    this.principals.set(p.accessKeyId, p);
    return p;
  }
}
