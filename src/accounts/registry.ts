import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import type { z } from 'zod';
import {
  type Destination,
  type DestinationCompression,
  type DestinationInput,
  destinationInputSchema,
  type Layout,
  type Plan,
} from './destination.js';

export class AccountsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AccountsError';
  }
}

export class DestinationNotFound extends AccountsError {
  constructor(accountId: string) {
    super(`No destination is registered for account "${accountId}" (see: dropship destinations list)`);
    this.name = 'DestinationNotFound';
  }
}

export class InvalidDestination extends AccountsError {
  constructor(
    readonly problems: string[],
    options?: ErrorOptions,
  ) {
    super(`Invalid destination:\n  - ${problems.join('\n  - ')}`, options);
    this.name = 'InvalidDestination';
  }
}

/** 192 random bits, URL-safe: unguessable, and within the external ID alphabet [\w+=,.@:/-]. */
export function generateExternalId(): string {
  return `dropship-${randomBytes(24).toString('base64url')}`;
}

interface Row {
  account_id: string;
  plan: Plan;
  bucket: string;
  prefix: string;
  region: string;
  role_arn: string;
  external_id: string;
  kms_key_arn: string | null;
  source_schema: string;
  layout: Layout;
  compression: DestinationCompression;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

function fromRow(r: Row): Destination {
  return {
    accountId: r.account_id,
    plan: r.plan,
    bucket: r.bucket,
    prefix: r.prefix,
    region: r.region,
    roleArn: r.role_arn,
    externalId: r.external_id,
    ...(r.kms_key_arn ? { kmsKeyArn: r.kms_key_arn } : {}),
    sourceSchema: r.source_schema,
    layout: r.layout,
    compression: r.compression ?? 'gzip',
    enabled: r.enabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function problemsOf(e: z.ZodError): string[] {
  return e.issues.map((i) => `${i.path.join('.') || 'destination'}: ${i.message}`);
}

/** The destinations registry (table dropship.destinations). */
export class Registry {
  constructor(private readonly pool: Pool) {}

  async add(input: DestinationInput): Promise<Destination> {
    const parsed = destinationInputSchema.safeParse(input);
    if (!parsed.success) throw new InvalidDestination(problemsOf(parsed.error));
    const d = parsed.data;
    const schemaExists = await this.pool.query('select 1 from pg_catalog.pg_namespace where nspname = $1', [
      d.sourceSchema,
    ]);
    if (schemaExists.rowCount === 0) {
      throw new InvalidDestination([`sourceSchema: schema "${d.sourceSchema}" does not exist in the source database`]);
    }
    try {
      const res = await this.pool.query<Row>(
        `insert into dropship.destinations
           (account_id, plan, bucket, prefix, region, role_arn, external_id, kms_key_arn, source_schema, layout, compression)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *`,
        [
          d.accountId,
          d.plan,
          d.bucket,
          d.prefix,
          d.region,
          d.roleArn,
          generateExternalId(),
          d.kmsKeyArn ?? null,
          d.sourceSchema,
          d.layout,
          d.compression,
        ],
      );
      return fromRow(res.rows[0]!);
    } catch (e) {
      if ((e as { code?: string; constraint?: string }).constraint === 'destinations_source_schema_unique') {
        throw new InvalidDestination([`sourceSchema: schema "${d.sourceSchema}" already belongs to another account`], {
          cause: e,
        });
      }
      if ((e as { code?: string }).code === '23505') {
        throw new AccountsError(
          `Account "${d.accountId}" already has a destination (see: dropship destinations show ${d.accountId})`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  async get(accountId: string): Promise<Destination> {
    const res = await this.pool.query<Row>('select * from dropship.destinations where account_id = $1', [accountId]);
    if (res.rowCount === 0) throw new DestinationNotFound(accountId);
    return fromRow(res.rows[0]!);
  }

  async list(): Promise<Destination[]> {
    const res = await this.pool.query<Row>('select * from dropship.destinations order by account_id');
    return res.rows.map(fromRow);
  }

  /** Enabled destinations whose plan is scheduled in `slot` ("04:00" or "15:00"). */
  async due(slot: string, slotsByPlan: Record<Plan, string[]> = DEFAULT_SLOTS): Promise<Destination[]> {
    const plans = (Object.keys(slotsByPlan) as Plan[]).filter((p) => slotsByPlan[p].includes(slot));
    const res = await this.pool.query<Row>(
      'select * from dropship.destinations where enabled and plan = any($1::text[]) order by account_id',
      [plans],
    );
    return res.rows.map(fromRow);
  }

  async setEnabled(accountId: string, enabled: boolean): Promise<Destination> {
    const res = await this.pool.query<Row>(
      'update dropship.destinations set enabled = $2 where account_id = $1 returning *',
      [accountId, enabled],
    );
    if (res.rowCount === 0) throw new DestinationNotFound(accountId);
    return fromRow(res.rows[0]!);
  }

  async remove(accountId: string): Promise<void> {
    const res = await this.pool.query('delete from dropship.destinations where account_id = $1', [accountId]);
    if (res.rowCount === 0) throw new DestinationNotFound(accountId);
  }
}

/** Which daily slots (UTC) each plan gets: paid twice a day, free once. */
export const DEFAULT_SLOTS: Record<Plan, string[]> = { paid: ['04:00', '15:00'], free: ['04:00'] };
