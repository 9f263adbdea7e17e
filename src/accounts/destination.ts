import { z } from 'zod';
import { COMPRESSION_CHOICES, type DestinationCompression, LAYOUTS, type Layout } from '../contracts/receipt.js';
import { postgresIdentifier, type Selection, selectionSchema } from '../contracts/selection.js';
import { PLANS, type Plan } from '../contracts/slots.js';

/**
 * A customer's destination: where and how an account's tables are delivered.
 * Validated here, once, when it is registered; everything downstream trusts it.
 */
/** What an account id looks like (the registry's check, and dropship.destinations' own constraint). */
export const ACCOUNT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const accountIdSchema = z
  .string()
  .regex(
    ACCOUNT_ID_PATTERN,
    'account ids are 1–63 characters: lowercase letters, digits, "_" and "-", starting with a letter or digit',
  );

const bucketSchema = z
  .string()
  .min(3, 'bucket names have 3–63 characters')
  .max(63, 'bucket names have 3–63 characters')
  .regex(
    /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/,
    'bucket names use lowercase letters, digits, "." and "-", and start and end with a letter or digit (give the name, not the ARN)',
  )
  .refine((b) => !b.includes('..'), 'bucket names cannot contain ".."')
  .refine((b) => !/^\d+\.\d+\.\d+\.\d+$/.test(b), 'bucket names cannot look like an IP address');

const regionSchema = z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$/, 'regions look like "eu-west-1"');

const roleArnSchema = z
  .string()
  .regex(
    /^arn:aws(-cn|-us-gov)?:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
    'role ARNs look like "arn:aws:iam::123456789012:role/dropship-export"',
  );

const kmsKeyArnSchema = z
  .string()
  .regex(
    /^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$|^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:key\/mrk-[0-9a-f]{32}$/,
    'KMS key ARNs look like "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"',
  );

/** A key prefix ("folder") inside the bucket; slashes at either end are dropped. */
const prefixSchema = z
  .string()
  .max(512, 'prefixes are at most 512 characters')
  .transform((p) => p.replace(/^\/+|\/+$/g, ''))
  .refine(
    (p) => p === '' || !p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..'),
    'prefixes cannot contain empty, "." or ".." segments',
  )
  .refine(
    (p) => !/[\u0000-\u001f\u007f\\{}^%`\]["~<>#|]/.test(p),
    'prefixes use letters, digits and safe punctuation only',
  )
  // In IAM, `*` and `?` in a resource ARN or a StringLike condition are wildcards, `$` starts a policy variable: the
  // prefix goes into the write, reader and session policies, where "exp*" would also grant "experiments/…".
  .refine((p) => !/[*?$]/.test(p), 'prefixes cannot contain "*", "?" or "$" (IAM reads them as wildcards)');

const sourceSchemaSchema = postgresIdentifier;

export const destinationInputSchema = z
  .object({
    accountId: accountIdSchema,
    plan: z.enum(PLANS),
    bucket: bucketSchema,
    prefix: prefixSchema.default(''),
    region: regionSchema,
    roleArn: roleArnSchema,
    kmsKeyArn: kmsKeyArnSchema.optional(),
    sourceSchema: sourceSchemaSchema,
    layout: z.enum(LAYOUTS).default('dreamdata'),
    /** Tenant mode and table/column selection (src/contracts/selection.ts). */
    selection: selectionSchema.default({
      dropTenantColumn: false,
      globalTables: [],
      includeTables: [],
      excludeTables: [],
      excludeColumns: [],
    }),
    compression: z
      .enum(COMPRESSION_CHOICES, { message: `compression is one of ${COMPRESSION_CHOICES.join(', ')}` })
      .default('gzip'),
    /** Change sets (src/changes/): each delivery also carries what changed since the last successful one. */
    changes: z.boolean().default(false),
  })
  .strict();

export type DestinationInput = z.input<typeof destinationInputSchema>;

/**
 * Where a destination's objects go, by kind (src/destinations/: one adapter per kind behind one port).
 * The registry stores S3 targets (its columns); `local` is a directory on this machine, for tests and
 * `dropship dev` only — refused unless DROPSHIP_ALLOW_LOCAL_TARGET is set (src/destinations/open.ts).
 */
export interface S3Target {
  kind: 's3';
  bucket: string;
  prefix: string;
  region: string;
  roleArn: string;
  kmsKeyArn?: string;
}

export interface LocalTarget {
  kind: 'local';
  /** An absolute directory; object keys are paths below it. */
  root: string;
  prefix: string;
}

export type Target = S3Target | LocalTarget;
export type TargetKind = Target['kind'];

/** The S3 target of a destination's registered bucket, prefix, region, role and KMS key. */
export function s3TargetOf(d: Pick<Destination, 'bucket' | 'prefix' | 'region' | 'roleArn' | 'kmsKeyArn'>): S3Target {
  return {
    kind: 's3',
    bucket: d.bucket,
    prefix: d.prefix,
    region: d.region,
    roleArn: d.roleArn,
    ...(d.kmsKeyArn ? { kmsKeyArn: d.kmsKeyArn } : {}),
  };
}

/**
 * A destination: the account's settings (plan, source, selection, layout, codec, change sets, state)
 * plus its `target` — where objects are written, and the only part the writers see (through the
 * port, src/destinations/port.ts). `bucket`, `prefix`, `region`, `roleArn` and `kmsKeyArn` are the
 * registered S3 bucket as the registry stores it and the CLI shows it (policies, doctor, the
 * customer's words); for an S3 destination `target` holds the same values (`s3TargetOf`).
 */
export interface Destination {
  /** Where the run's objects go (kind-specific; the port hides the kind from the writers). */
  target: Target;
  accountId: string;
  plan: Plan;
  bucket: string;
  prefix: string;
  region: string;
  roleArn: string;
  externalId: string;
  kmsKeyArn?: string;
  sourceSchema: string;
  layout: Layout;
  selection: Selection;
  /** Parquet page codec of every file written for this destination (default gzip). */
  compression: DestinationCompression;
  /** Change sets since the last successful delivery (tables with a primary key; src/changes/). */
  changes: boolean;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  /**
   * The destination's identity beyond its account id: a new value at every `add` (never reused), so
   * a removed and re-added account shares nothing with its predecessor (issue 22).
   */
  generation: number;
  /**
   * +1 at every update that changes where or how data is delivered (bucket, prefix, region, role,
   * KMS key, source schema, layout, compression, change sets, selection); not for plan or enabled.
   * A run serves one (generation, version): an update that bumps the version cancels open runs.
   */
  version: number;
}

/** The fields whose change bumps a destination's version (they decide where and how data is delivered). */
export const DELIVERY_FIELDS = [
  'bucket',
  'prefix',
  'region',
  'roleArn',
  'kmsKeyArn',
  'sourceSchema',
  'layout',
  'compression',
  'changes',
  'selection',
] as const satisfies readonly (keyof Destination)[];

/** The delivery fields that differ between two versions of a destination (in DELIVERY_FIELDS order). */
export function changedDeliveryFields(a: Destination, b: Destination): string[] {
  return DELIVERY_FIELDS.filter((f) => JSON.stringify(a[f] ?? null) !== JSON.stringify(b[f] ?? null));
}

/**
 * A destination as a run froze it (dropship.runs.destination, JSON): dates revived. The run's copy is
 * what every task, finisher, sweep and notification of the run uses — never the registry's current row.
 */
export function reviveDestination(json: unknown): Destination | null {
  if (json === null || json === undefined) return null;
  const d = json as Omit<Destination, 'target'> & {
    target?: Target;
    createdAt: string | Date;
    updatedAt: string | Date;
  };
  // Runs frozen before destinations had a target (migration-free): their target is the S3 bucket they name.
  return {
    ...d,
    target: d.target ?? s3TargetOf(d),
    createdAt: new Date(d.createdAt),
    updatedAt: new Date(d.updatedAt),
  };
}

/** Joins the destination prefix and a relative key. */
export function objectKey(dest: Pick<Destination, 'prefix'>, relative: string): string {
  return dest.prefix ? `${dest.prefix}/${relative}` : relative;
}

/**
 * A registered destination as the input that registers it (`destinationInputSchema`'s fields, in a
 * fixed order): what `dropship destinations export` prints and `import` accepts, so an exported line
 * imports as 'unchanged'. Not in it: the external ID (dropship generates it; an input that could set
 * one could claim another account's), the enabled state, dates, generation and version.
 */
export function destinationInputOf(d: Omit<Destination, 'target' | 'externalId'> | DestinationInputFields): {
  accountId: string;
  plan: Plan;
  bucket: string;
  prefix: string;
  region: string;
  roleArn: string;
  kmsKeyArn?: string;
  sourceSchema: string;
  layout: Layout;
  selection: Selection;
  compression: DestinationCompression;
  changes: boolean;
} {
  const s = d.selection;
  return {
    accountId: d.accountId,
    plan: d.plan,
    bucket: d.bucket,
    prefix: d.prefix,
    region: d.region,
    roleArn: d.roleArn,
    ...(d.kmsKeyArn ? { kmsKeyArn: d.kmsKeyArn } : {}),
    sourceSchema: d.sourceSchema,
    layout: d.layout,
    selection: {
      ...(s.tenantColumn !== undefined ? { tenantColumn: s.tenantColumn } : {}),
      ...(s.tenantValue !== undefined ? { tenantValue: s.tenantValue } : {}),
      dropTenantColumn: s.dropTenantColumn,
      globalTables: s.globalTables,
      includeTables: s.includeTables,
      excludeTables: s.excludeTables,
      excludeColumns: s.excludeColumns,
    },
    compression: d.compression,
    changes: d.changes,
  };
}

/** A validated destination input (the schema's output). */
export type DestinationInputFields = z.output<typeof destinationInputSchema>;

/** The input fields in which two destinations differ (`selection.includeTables` for the selection's). */
export function differingInputFields(a: DestinationInputFields, b: DestinationInputFields): string[] {
  const flat = (d: DestinationInputFields): Record<string, unknown> => {
    const { selection, ...rest } = destinationInputOf(d);
    return {
      ...rest,
      ...Object.fromEntries(Object.entries(selection).map(([k, v]) => [`selection.${k}`, v])),
    };
  };
  const x = flat(a);
  const y = flat(b);
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])];
  return keys.filter((k) => JSON.stringify(x[k] ?? null) !== JSON.stringify(y[k] ?? null));
}
