import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Destination } from '../accounts/destination.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import { KIT_NAMES, type KitSettings, kitDocuments, roleNameAndPath, setupKit } from '../destinations/s3/kit.js';

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
 * The customer's side of a destination as a world document, made from the setup kit the customer
 * deploys (src/destinations/s3/kit.ts): the CloudFormation template's role — its name and path, trust
 * policy, write policy and longest session, exactly as the template declares them — and its bucket
 * (created: a dev stack has none yet) in the destination's region; plus a read-only user for the
 * customer's loader with `dropship policy --reader`'s policy. What the tests provision is what
 * customers deploy.
 */
export function customerWorld(
  dest: Destination,
  settings: KitSettings,
): { world: unknown; roleName: string; awsAccountId: string; userName: string } {
  const template = JSON.parse(setupKit(dest, settings, 'cloudformation').body) as KitTemplate;
  const role = template.Resources[KIT_NAMES.roleResource]?.Properties;
  const bucketName = template.Parameters[KIT_NAMES.parameters.bucketName]?.Default;
  if (!role || !bucketName || !template.Resources[KIT_NAMES.bucketResource])
    throw new DevClientError(`the setup kit of ${dest.accountId} has no role or no bucket`);
  const roleName = `${role.Path.slice(1)}${role.RoleName}`;
  const awsAccountId = roleNameAndPath(dest.roleArn).awsAccountId;
  const userName = `${dest.accountId}-loader`;
  return {
    awsAccountId,
    roleName,
    userName,
    world: {
      accounts: {
        [awsAccountId]: {
          buckets: [{ name: bucketName, region: dest.region }],
          roles: [
            {
              name: roleName,
              trustPolicy: role.AssumeRolePolicyDocument,
              policies: role.Policies.map((p) => p.PolicyDocument),
              maxSessionSeconds: role.MaxSessionDuration,
            },
          ],
          users: [{ name: userName, policies: [kitDocuments(dest, settings).reader] }],
        },
      },
    },
  };
}

/** The parts of the kit's CloudFormation template the dev stack applies. */
interface KitTemplate {
  Parameters: Record<string, { Default?: string }>;
  Resources: Record<
    string,
    | {
        Properties: {
          RoleName: string;
          Path: string;
          MaxSessionDuration: number;
          AssumeRolePolicyDocument: unknown;
          Policies: { PolicyName: string; PolicyDocument: unknown }[];
        };
      }
    | undefined
  >;
}
