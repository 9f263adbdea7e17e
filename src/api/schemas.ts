import { z } from 'zod';
import statusSchema from '../../schemas/status.schema.json' with { type: 'json' };
import { destinationInputSchema } from '../accounts/destination.js';
import { COMPRESSION_CHOICES, LAYOUTS } from '../contracts/receipt.js';
import { PLANS } from '../contracts/slots.js';
import { KIT_FORMATS } from '../destinations/s3/kit.js';
import type { RunPosition } from '../store/ledger/rows.js';

/**
 * The API's bodies, parameters and answers as zod schemas: the router validates with them and the
 * OpenAPI document (./openapi.ts, schemas/openapi.json) is generated from them — one source. The
 * destination's fields are the registry's own schema (src/accounts/destination.ts), the one the CLI's
 * `destinations add` is validated with.
 */

const webhookUrl = z
  .string()
  .min(1)
  .max(2048)
  .describe('POST signed delivery events here (https; http only to loopback in development)');

/** POST /destinations: the destination (the CLI's `destinations add` fields) plus an optional webhook. */
export const createDestinationBody = destinationInputSchema.extend({ webhookUrl: webhookUrl.optional() }).strict();

const shape = destinationInputSchema.shape;
const nullableList = z.union([z.array(z.string()), z.string()]);

/** PATCH /destinations/{accountId}: any mutable field; null clears an optional one (kmsKeyArn, tenant mode, the webhook). */
export const updateDestinationBody = z
  .object({
    plan: shape.plan.optional(),
    bucket: shape.bucket.optional(),
    prefix: z.string().max(512).optional(),
    region: shape.region.optional(),
    roleArn: shape.roleArn.optional(),
    kmsKeyArn: shape.kmsKeyArn.unwrap().nullable().optional(),
    sourceSchema: shape.sourceSchema.optional(),
    layout: z.enum(LAYOUTS).optional(),
    compression: z.enum(COMPRESSION_CHOICES).optional(),
    changes: z.boolean().optional(),
    selection: z
      .object({
        tenantColumn: z.string().nullable().optional(),
        tenantValue: z.string().nullable().optional(),
        dropTenantColumn: z.boolean().optional(),
        globalTables: nullableList.optional(),
        includeTables: nullableList.optional(),
        excludeTables: nullableList.optional(),
        excludeColumns: nullableList.optional(),
      })
      .strict()
      .optional(),
    webhookUrl: webhookUrl.nullable().optional(),
  })
  .strict();

const accountId = z.string().min(1).max(63);
export const accountPath = z.object({ accountId }).strict();
export const runPath = z.object({ runId: z.string().min(1).max(128) }).strict();
const limit = z.coerce.number().int().min(1).max(1000).default(100);
export const listDestinationsQuery = z.object({ limit, cursor: z.string().min(1).optional() }).strict();
export const RUN_STATUSES = ['running', 'finishing', 'succeeded', 'failed', 'cancelled'] as const;

/**
 * GET /runs's cursor: the position of the previous page's last run (its exact start and its id), base64url of
 * `{"s": start, "r": runId}` — opaque to callers. A position needs no run to exist: a run removed meanwhile (retention)
 * does not end the listing (a cursor naming the run ended it, with 200 and no items: red team, API).
 */
export function encodeRunCursor(p: RunPosition): string {
  return Buffer.from(JSON.stringify({ s: p.startedAt, r: p.runId }), 'utf8').toString('base64url');
}

/** What a cursor names: a position, or (a cursor given before positions) a run whose position the ledger knows. */
export type RunCursor = { position: RunPosition } | { runId: string };

const cursorPosition = z
  .object({
    s: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/)
      .refine((t) => {
        const d = new Date(`${t.slice(0, 23)}Z`);
        return d.getTime() >= 0 && d.toISOString().slice(0, 23) === t.slice(0, 23);
      }),
    r: z.string().min(1).max(128),
  })
  .strict();

function decodeRunCursor(c: string): RunCursor | undefined {
  const text = Buffer.from(c, 'base64url').toString('utf8');
  if (text === '' || text.includes('\u0000') || Buffer.from(text, 'utf8').toString('base64url') !== c) return undefined;
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return undefined;
    }
    const p = cursorPosition.safeParse(json);
    return p.success ? { position: { startedAt: p.data.s, runId: p.data.r } } : undefined;
  }
  // The format before positions: base64url of a run id (no run id starts with "{").
  return text.length <= 128 ? { runId: text } : undefined;
}

const runCursor = z
  .string()
  .min(1)
  .max(1024)
  .transform((c, ctx) => {
    const decoded = decodeRunCursor(c);
    if (decoded === undefined) {
      ctx.addIssue({ code: 'custom', message: 'not a cursor from a previous page' });
      return z.NEVER;
    }
    return decoded;
  })
  .describe('`nextCursor` of the previous page');

export const listRunsQuery = z
  .object({
    accountId: accountId.optional(),
    status: z.enum(RUN_STATUSES).optional(),
    limit,
    cursor: runCursor.optional(),
  })
  .strict();

const iso = z.string().describe('ISO 8601 time, UTC');

export const destinationView = z
  .object({
    accountId: z.string(),
    plan: z.enum(PLANS),
    bucket: z.string(),
    prefix: z.string(),
    region: z.string(),
    roleArn: z.string(),
    externalId: z.string().describe('Put it in the role’s trust policy (sts:ExternalId); it never changes'),
    kmsKeyArn: z.string().nullable(),
    sourceSchema: z.string(),
    layout: z.enum(LAYOUTS),
    compression: z.enum(COMPRESSION_CHOICES),
    changes: z.boolean(),
    selection: z
      .object({
        tenantColumn: z.string().optional(),
        tenantValue: z.string().optional(),
        dropTenantColumn: z.boolean(),
        globalTables: z.array(z.string()),
        includeTables: z.array(z.string()),
        excludeTables: z.array(z.string()),
        excludeColumns: z.array(z.string()),
      })
      .strict(),
    enabled: z.boolean(),
    webhookUrl: z
      .string()
      .nullable()
      .describe('The webhook address; its signing secret is never returned after it is set'),
    version: z.number().int(),
    createdAt: iso,
    updatedAt: iso,
  })
  .strict();

/** GET /destinations/{accountId}/kit: which kit. */
export const kitQuery = z
  .object({ format: z.enum(KIT_FORMATS).default('cloudformation').describe('The kit’s format') })
  .strict();

/** The customer's setup kit (src/destinations/s3/kit.ts `setupKit`, what `dropship destinations kit` prints). */
export const setupKitView = z
  .object({
    format: z.enum(KIT_FORMATS),
    fileName: z.string().describe('A file name to save `body` under'),
    mediaType: z.string(),
    body: z
      .string()
      .describe(
        'The CloudFormation template, the Terraform module or the raw documents; its IAM documents are exactly what `dropship policy` prints',
      ),
    templateUrl: z
      .string()
      .optional()
      .describe(
        'CloudFormation: where the template must be hosted for the link (when dropship has a template base URL)',
      ),
    quickCreateUrl: z
      .string()
      .optional()
      .describe('CloudFormation: the console’s quick-create link, external ID and parameters filled in'),
    instructions: z.array(z.string()).describe('What to do with the file, one line each'),
  })
  .strict()
  .describe('The customer’s setup kit: what the customer deploys in their AWS account so that dropship can deliver');

export const createdDestination = z
  .object({
    destination: destinationView,
    externalId: z.string(),
    setupKit: setupKitView
      .nullable()
      .describe(
        'The CloudFormation setup kit (with its quick-create link when dropship hosts templates). null when the kit cannot be made on dropship’s side (DROPSHIP_PRINCIPAL_ARN is not configured): the destination is registered all the same, and GET /destinations/{accountId}/kit says why',
      ),
    webhookSecret: z
      .string()
      .optional()
      .describe('The webhook signing secret, only in the response that set it (not in an idempotent replay)'),
  })
  .strict();

export const updatedDestination = z
  .object({
    destination: destinationView,
    webhookSecret: z.string().optional().describe('A new signing secret, when this change set a webhook'),
  })
  .strict();

export const destinationList = z
  .object({ items: z.array(destinationView), nextCursor: z.string().nullable() })
  .strict();

const check = z
  .object({
    name: z.string(),
    status: z.enum(['pass', 'fail', 'warn']),
    detail: z.string(),
    fix: z.string().optional(),
  })
  .strict();

export const customerFailure = z
  .object({ code: z.string(), reason: z.string(), fix: z.string() })
  .strict()
  .describe('A failure in the customer’s words, as status.json and the webhooks word it');

export const checkResult = z
  .object({
    accountId: z.string(),
    ok: z.boolean(),
    doctor: z
      .object({
        ok: z.boolean(),
        exportAllowed: z.boolean(),
        checks: z.array(check),
        selection: z
          .object({ summary: z.string(), problems: z.array(z.string()) })
          .strict()
          .optional(),
      })
      .strict(),
    drift: z
      .object({ ok: z.boolean(), probed: z.boolean(), checks: z.array(check), failures: z.array(customerFailure) })
      .strict(),
  })
  .strict();

export const runView = z
  .object({
    runId: z.string(),
    accountId: z.string(),
    trigger: z.enum(['schedule', 'manual', 'cli']),
    slot: z.string().nullable(),
    status: z.enum(RUN_STATUSES),
    startedAt: iso,
    finishedAt: iso.nullable(),
    receiptKey: z.string().nullable(),
    error: z.string().nullable(),
  })
  .strict();

export const runDetail = runView
  .extend({
    tasks: z.array(
      z
        .object({
          table: z.string(),
          part: z.number().int(),
          parts: z.number().int(),
          status: z.enum(['pending', 'running', 'succeeded', 'failed']),
          attempts: z.number().int(),
          maxAttempts: z.number().int(),
          rows: z.number().int().nullable(),
          bytes: z.number().int().nullable(),
          error: z.string().nullable(),
        })
        .strict(),
    ),
  })
  .strict();

export const runList = z.object({ items: z.array(runView), nextCursor: z.string().nullable() }).strict();
export const startedRun = z.object({ run: runView, tasks: z.number().int() }).strict();

export const problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    errors: z
      .array(
        z
          .object({
            field: z.string().describe('The field (a dotted path, a query parameter, or a header) at fault'),
            message: z.string(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict()
  .describe('RFC 9457 problem details');

/** status.json's own contract (schemas/status.schema.json), without its document keywords. */
export function statusDocumentSchema(): Record<string, unknown> {
  const { $schema: _s, $id: _i, ...rest } = statusSchema as Record<string, unknown>;
  return rest;
}
