import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Destination } from '../accounts/destination.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import { policyDocuments } from '../destinations/s3/policies.js';

/**
 * The second shell's side of `dropship dev`: finds the running stack's admin endpoint (flags, then
 * DROPSHIP_DEV_ADMIN_URL/TOKEN, then `<dev dir>/admin.json`) and talks HTTP to it. It never imports
 * the local stack itself: what it sends is the same world document a person could write by hand.
 */
export interface AdminFile {
  url: string;
  token: string;
  pid: number;
  /** The environment that points a dropship process at the stack (what `dropship dev env` prints). */
  env: Record<string, string>;
}

/** No dev stack to talk to, or it refused. Not retryable: someone has to start or fix it. */
export class DevClientError extends DropshipError {
  override name = 'DevClientError';
  readonly code: string = 'dev';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
  }
}

export function devDir(env: NodeJS.ProcessEnv, repoRoot: string): string {
  return env.DROPSHIP_DEV_DIR ? resolve(env.DROPSHIP_DEV_DIR) : join(repoRoot, '.dropship', 'dev');
}

export function adminFilePath(dir: string): string {
  return join(dir, 'admin.json');
}

export function readAdminFile(dir: string): AdminFile {
  const path = adminFilePath(dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new DevClientError(
      `no running dev stack found (${path} does not exist): start \`npx dropship dev\` in another shell, or pass --admin-url and --admin-token`,
    );
  }
  const file = JSON.parse(text) as AdminFile;
  try {
    process.kill(file.pid, 0);
  } catch {
    throw new DevClientError(
      `the dev stack that wrote ${path} (pid ${file.pid}) is no longer running: start \`npx dropship dev\` again`,
    );
  }
  return file;
}

export function adminTarget(
  flags: { adminUrl?: string; adminToken?: string },
  env: NodeJS.ProcessEnv,
  repoRoot: string,
): { url: string; token: string } {
  const url = flags.adminUrl ?? env.DROPSHIP_DEV_ADMIN_URL;
  const token = flags.adminToken ?? env.DROPSHIP_DEV_ADMIN_TOKEN;
  if (url && token) return { url: url.replace(/\/+$/, ''), token };
  const file = readAdminFile(devDir(env, repoRoot));
  return { url: (url ?? file.url).replace(/\/+$/, ''), token: token ?? file.token };
}

export interface WorldUser {
  arn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** POSTs a world document to the running stack; returns the users it created with their keys. */
export async function applyWorld(
  target: { url: string; token: string },
  world: unknown,
): Promise<{ users: WorldUser[]; buckets: number; roles: number }> {
  let res: Response;
  try {
    res = await fetch(`${target.url}/v1/world`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(world),
    });
  } catch (e) {
    throw new DevClientError(
      `no dev stack answers at ${target.url} (${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}): is \`npx dropship dev\` running?`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; problems?: string[] };
  if (res.status === 401) throw new DevClientError(`the dev stack at ${target.url} refused the admin token`);
  if (!res.ok) {
    throw new DevClientError(
      `the dev stack refused the request (${res.status}): ${body.error ?? res.statusText}${body.problems ? `\n  - ${body.problems.join('\n  - ')}` : ''}`,
    );
  }
  return body as { users: WorldUser[]; buckets: number; roles: number };
}

/**
 * The customer's side of a destination as a world document: its bucket in its region, the role
 * with exactly the trust and permission policies `dropship policy --account <id>` prints, and a
 * read-only user for the customer's loader with the `--reader` policy.
 */
export function customerWorld(
  dest: Destination,
  principalArn: string,
): { world: unknown; roleName: string; awsAccountId: string; userName: string } {
  const m = /^arn:[\w-]+:iam::(\d{12}):role\/(.+)$/.exec(dest.roleArn);
  if (!m) throw new DevClientError(`role ARN ${dest.roleArn} does not name an account and a role`);
  const [, awsAccountId, roleName] = m as unknown as [string, string, string];
  const docs = policyDocuments(dest, principalArn);
  const userName = `${dest.accountId}-loader`;
  return {
    awsAccountId,
    roleName,
    userName,
    world: {
      accounts: {
        [awsAccountId]: {
          buckets: [{ name: dest.bucket, region: dest.region }],
          roles: [{ name: roleName, trustPolicy: docs.trust, policies: [docs.writer] }],
          users: [{ name: userName, policies: [docs.reader] }],
        },
      },
    },
  };
}
