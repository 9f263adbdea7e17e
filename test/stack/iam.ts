import { randomBytes } from 'node:crypto';

/**
 * A small IAM: accounts, users with access keys, roles with trust and permission policies,
 * temporary sessions, and a policy evaluator (explicit Deny wins; an Allow is needed in the
 * identity policies and, for sessions with a session policy, in that policy too).
 * Supported in policies: Effect, Action/NotAction, Resource/NotResource, Principal.AWS, and
 * Condition operators StringEquals, StringNotEquals, StringLike, StringNotLike, Null.
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

export type Decision = 'allow' | 'deny' | 'implicitDeny';

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function glob(pattern: string, value: string, caseInsensitive = false): boolean {
  const re = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
      .join('')}$`,
    caseInsensitive ? 'is' : 's',
  );
  return re.test(value);
}

function conditionHolds(cond: Statement['Condition'], ctx: Record<string, string | undefined>): boolean {
  if (!cond) return true;
  for (const [op, entries] of Object.entries(cond)) {
    for (const [key, expected] of Object.entries(entries)) {
      const actual = ctx[key];
      const values = list(expected);
      switch (op) {
        case 'StringEquals':
          if (actual === undefined || !values.includes(actual)) return false;
          break;
        case 'StringNotEquals':
          if (actual !== undefined && values.includes(actual)) return false;
          break;
        case 'StringLike':
          if (actual === undefined || !values.some((v) => glob(v, actual))) return false;
          break;
        case 'StringNotLike':
          if (actual !== undefined && values.some((v) => glob(v, actual))) return false;
          break;
        case 'Null': {
          const wantNull = values[0] === 'true';
          if ((actual === undefined) !== wantNull) return false;
          break;
        }
        default:
          // An operator we do not model never matches: Allow statements fail closed.
          return false;
      }
    }
  }
  return true;
}

function statementMatches(
  s: Statement,
  action: string,
  resource: string,
  ctx: Record<string, string | undefined>,
): boolean {
  const actionOk = s.NotAction
    ? !list(s.NotAction).some((a) => glob(a, action, true))
    : list(s.Action).some((a) => glob(a, action, true));
  if (!actionOk) return false;
  const resourceOk = s.NotResource
    ? !list(s.NotResource).some((r) => glob(r, resource))
    : list(s.Resource).some((r) => glob(r, resource));
  return resourceOk && conditionHolds(s.Condition, ctx);
}

export function evaluate(
  policies: PolicyDocument[],
  action: string,
  resource: string,
  ctx: Record<string, string | undefined> = {},
): Decision {
  let allowed = false;
  for (const p of policies) {
    for (const s of list(p.Statement)) {
      if (!statementMatches(s, action, resource, ctx)) continue;
      if (s.Effect === 'Deny') return 'deny';
      allowed = true;
    }
  }
  return allowed ? 'allow' : 'implicitDeny';
}

/** Is `principal` allowed `action` on `resource`? (identity policies ∩ session policy) */
export function authorize(
  principal: Principal,
  action: string,
  resource: string,
  ctx: Record<string, string | undefined> = {},
): boolean {
  if (evaluate(principal.policies, action, resource, ctx) !== 'allow') return false;
  if (principal.sessionPolicy && evaluate([principal.sessionPolicy], action, resource, ctx) !== 'allow') return false;
  return true;
}

/** Does the role's trust policy let `caller` assume it, given the request's context keys? */
export function trusts(role: Role, caller: Principal, ctx: Record<string, string | undefined>): boolean {
  let allowed = false;
  for (const s of list(role.trustPolicy.Statement)) {
    if (!list(s.Action).some((a) => glob(a, 'sts:AssumeRole', true))) continue;
    if (!principalMatches(s.Principal, caller)) continue;
    if (!conditionHolds(s.Condition, ctx)) continue;
    if (s.Effect === 'Deny') return false;
    allowed = true;
  }
  return allowed;
}

function principalMatches(p: Statement['Principal'], caller: Principal): boolean {
  if (p === '*') return true;
  for (const entry of list(p?.AWS)) {
    if (entry === '*') return true;
    if (entry === caller.accountId || entry === `arn:aws:iam::${caller.accountId}:root`) return true;
    if (entry === caller.arn || (caller.roleArn && entry === caller.roleArn)) return true;
  }
  return false;
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
