import { randomBytes } from 'node:crypto';
import type { ClientBase, Pool, PoolClient } from 'pg';
import type { z } from 'zod';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type { DestinationCompression, Layout } from '../contracts/receipt.js';
import { isTenantMode, type Selection } from '../contracts/selection.js';
import { DEFAULT_SLOTS, type Plan, type SlotsByPlan } from '../contracts/slots.js';
import { checkSelection } from '../pipeline/source/select.js';
import { inTransaction } from '../store/db.js';
import { cancelOpenRunsOf } from '../store/ledger/cancel.js';
import {
  changedDeliveryFields,
  type Destination,
  type DestinationInput,
  destinationInputOf,
  destinationInputSchema,
  differingInputFields,
  s3TargetOf,
} from './destination.js';

/** The registry refused: no such account, an invalid destination, a disabled account. Not retryable. */
export class AccountsError extends DropshipError {
  readonly code: string = 'accounts';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
    this.name = 'AccountsError';
  }
}

export class DestinationNotFound extends AccountsError {
  override readonly code: string = 'destination-not-found';
  constructor(accountId: string) {
    super(`No destination is registered for account "${accountId}" (see: dropship destinations list)`);
    this.name = 'DestinationNotFound';
  }
}

export class InvalidDestination extends AccountsError {
  override readonly code: string = 'invalid-destination';
  constructor(
    readonly problems: string[],
    options?: ErrorOptions,
  ) {
    super(`Invalid destination:\n  - ${problems.join('\n  - ')}`, options);
    this.name = 'InvalidDestination';
  }
}

/**
 * A registry write waited REGISTRY_LOCK_TIMEOUT_SECONDS for the destination row and gave up: a receipt of the account
 * is being published (the finisher holds the row until the run is recorded: src/store/ledger/publication.ts), or
 * another change of it is being written. Nothing was changed; retryable.
 */
export class DestinationBusy extends DropshipError {
  readonly code: string = 'destination-busy';
  constructor(
    accountId: string,
    options?: DropshipErrorOptions,
    message = `account "${accountId}" is busy — a receipt is being published, or another change of it is being written; nothing was changed: try again in a moment`,
  ) {
    super(message, options, { retryable: true });
    this.name = 'DestinationBusy';
  }
}

/**
 * The check of an account's source schema waited its whole budget in the source database — a lock the customer's own
 * session holds on one of its tables (an ALTER, a TRUNCATE, a LOCK TABLE), or a catalog that does not answer. Nothing
 * was changed; retryable once the lock is gone. Before, with a separate source database (DROPSHIP_SOURCE_DATABASE_URL)
 * the check had no bound at all: a registration (and every later line of a bulk import) waited as long as the
 * customer's lock was held, past the API's 29 s (red team, API).
 */
export class SourceBusy extends DestinationBusy {
  override readonly code: string = 'source-busy';
  constructor(accountId: string, schema: string, seconds: number, options?: DropshipErrorOptions) {
    super(
      accountId,
      options,
      `the source schema "${schema}" of account "${accountId}" could not be checked within ${seconds} s — a lock held on one of its tables in the source database, or a catalog that does not answer; nothing was changed: try again once it is released`,
    );
    this.name = 'SourceBusy';
  }
}

/**
 * A change of an account's registration found the account removed meanwhile — and maybe registered again, as
 * another generation with an external ID of its own: nothing was set on the new registration. Not retryable as it
 * is: look at the account as it is now, then change that.
 */
export class DestinationReplaced extends AccountsError {
  override readonly code: string = 'destination-replaced';
  constructor(accountId: string) {
    super(
      `account "${accountId}" was removed while this change was being made (and may have been registered again): nothing was changed on its registration now; look at it (dropship destinations show ${accountId}), then change that`,
    );
    this.name = 'DestinationReplaced';
  }
}

/** The moment a budgeted client's waits end (`withLockBudget`): the source checks of the same write keep it too. */
const LOCK_DEADLINE = Symbol('lock deadline');

/** Postgres's lock_not_available (lock_timeout) and query_canceled (statement_timeout). */
const OUT_OF_TIME = new Set(['55P03', '57014']);

/** Postgres's in_failed_sql_transaction: a statement sent after one of the transaction's failed. */
const IN_FAILED_TRANSACTION = '25P02';

/**
 * The registry write's client, each statement preceded by `lock_timeout` set to what is left of the write's one bound:
 * `lock_timeout` bounds each wait, and a write may wait for several (a place's lock, then a schema's, the row, the
 * runs it cancels, their tasks, the status row) — 18 s each added up past the API's 29 s timeout (red team, API;
 * review). One more round trip per statement of a registry write (an operator's change, not a hot path).
 */
export function withLockBudget(c: PoolClient, deadline: number): PoolClient {
  const budgeted = Object.create(c) as PoolClient & { [LOCK_DEADLINE]?: number };
  budgeted[LOCK_DEADLINE] = deadline;
  const query = async (...args: unknown[]): Promise<unknown> => {
    const left = Math.max(1, Math.ceil(deadline - Date.now()));
    // Not in a failed transaction (a savepoint's statement failed; the next one rolls back to it): Postgres refuses
    // every statement there but ROLLBACK, and the setting from the statement before still holds. The client's
    // transaction status is only a hint: it comes with ReadyForQuery, which can arrive after the failed statement's
    // promise settled (a reply split across two reads), so a refusal of the setting itself (25P02) is expected too.
    if (c.getTransactionStatus() !== 'E') {
      try {
        await c.query(`select set_config('lock_timeout', $1, true)`, [`${left}ms`]);
      } catch (e) {
        if ((e as { code?: unknown }).code !== IN_FAILED_TRANSACTION) throw e;
      }
    }
    return (c.query as (...a: unknown[]) => Promise<unknown>)(...args);
  };
  (budgeted as unknown as { query: typeof query }).query = query;
  return budgeted;
}

/**
 * How long a registry write waits for its locks (the destination row, a schema's or a place's), all of them together
 * (`withLockBudget`): under the API's 29 s timeout, so a caller gets the registry's answer (DestinationBusy), never a
 * gateway timeout with the change maybe committed after it.
 */
export const REGISTRY_LOCK_TIMEOUT_SECONDS = 20;

/** A bulk import's line names an account registered with other fields (and --update was not given). */
export class DestinationDiffers extends AccountsError {
  override readonly code: string = 'destination-differs';
  constructor(
    accountId: string,
    readonly fields: string[],
  ) {
    super(
      `account "${accountId}" is registered with a different ${fields.join(', ')} (nothing changed; import with --update to apply the line, or: dropship destinations update ${accountId} …)`,
    );
    this.name = 'DestinationDiffers';
  }
}

/**
 * More of a registry write, in its transaction (`c`, the destination's row written and locked): what must commit with
 * the destination or not at all — the webhook of a create or an update (red team, API: set after the registration had
 * committed, a failure there left a destination without the webhook its 500 said nothing about).
 */
export type WithinWrite = (c: PoolClient, destination: Destination) => Promise<void>;

/** What `Registry.put` did with one destination, and which fields it changed ('updated'). */
export interface PutResult {
  outcome: 'created' | 'unchanged' | 'updated';
  destination: Destination;
  changed: string[];
}

type ParsedInput = z.output<typeof destinationInputSchema>;

/** The one validation of a destination's fields (add, update, import): the zod schema, problems by field. */
function parseDestinationInput(input: DestinationInput): ParsedInput {
  const parsed = destinationInputSchema.safeParse(input);
  if (!parsed.success) throw new InvalidDestination(problemsOf(parsed.error));
  return parsed.data;
}

/** A second `add` for an account that already has a destination. */
export class DestinationExists extends AccountsError {
  override readonly code: string = 'destination-exists';
  constructor(
    readonly accountId: string,
    options?: DropshipErrorOptions,
  ) {
    super(`Account "${accountId}" already has a destination (see: dropship destinations show ${accountId})`, options);
    this.name = 'DestinationExists';
  }
}

/** 192 random bits, URL-safe: unguessable, and within the external ID alphabet [\w+=,.@:/-]. */
function generateExternalId(): string {
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
  changes: boolean;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  generation: string;
  version: number;
  tenant_column: string | null;
  tenant_value: string | null;
  drop_tenant_column: boolean;
  global_tables: string[];
  include_tables: string[];
  exclude_tables: string[];
  exclude_columns: string[];
}

function fromRow(r: Row): Destination {
  return {
    target: s3TargetOf({
      bucket: r.bucket,
      prefix: r.prefix,
      region: r.region,
      roleArn: r.role_arn,
      ...(r.kms_key_arn ? { kmsKeyArn: r.kms_key_arn } : {}),
    }),
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
    selection: {
      ...(r.tenant_column !== null && r.tenant_value !== null
        ? { tenantColumn: r.tenant_column, tenantValue: r.tenant_value }
        : {}),
      dropTenantColumn: r.drop_tenant_column,
      globalTables: r.global_tables,
      includeTables: r.include_tables,
      excludeTables: r.exclude_tables,
      excludeColumns: r.exclude_columns,
    },
    compression: r.compression ?? 'gzip',
    changes: r.changes ?? false,
    enabled: r.enabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    generation: Number(r.generation),
    version: r.version,
  };
}

function problemsOf(e: z.ZodError): string[] {
  return e.issues.map((i) => `${i.path.join('.') || 'destination'}: ${i.message}`);
}

/**
 * A connection to the database the customers' data is read from, for the registry's checks of a
 * destination's source schema and selection; `release` ends it. `timeoutMs` is what is left of the registry write's
 * budget: the connection must be made, and every statement on it end, within it (src/run/wiring.ts).
 */
export type SourceConnect = (opts: {
  timeoutMs: number;
}) => Promise<{ client: ClientBase; release: () => Promise<void> }>;

/**
 * The destinations registry (table dropship.destinations). Its rows live in the registry database;
 * a destination's source schema is checked in the source database: `source` connects to it when it
 * is another database (DROPSHIP_SOURCE_DATABASE_URL), else the registry's own connection is used.
 */
export class Registry {
  constructor(
    private readonly pool: Pool,
    private readonly source?: SourceConnect,
    /** Tests only: a shorter lock wait than REGISTRY_LOCK_TIMEOUT_SECONDS. */
    private readonly lockTimeoutSeconds = REGISTRY_LOCK_TIMEOUT_SECONDS,
  ) {}

  /**
   * Registers a destination. `then`, when given, runs in the same transaction once the row is written (the webhook of
   * a create: src/operations/destinations.ts): its failure registers nothing.
   */
  async add(input: DestinationInput, then?: WithinWrite): Promise<Destination> {
    const d = parseDestinationInput(input);
    return this.write(d.accountId, async (c) => {
      const created = await this.insert(c, d);
      await then?.(c, created);
      return created;
    });
  }

  /**
   * One destination of a bulk import (`dropship destinations import`): validated exactly as `add`
   * validates (the same schema, the same source checks), in one transaction. An account not yet
   * registered is created; one registered with the same fields is left as it is ('unchanged', so a
   * file imported twice changes nothing); one registered with other fields is refused with the fields
   * named (DestinationDiffers) unless `update` is set, then it is updated as `update` would.
   */
  async put(input: unknown, opts: { update?: boolean } = {}): Promise<PutResult> {
    const d = parseDestinationInput(input as DestinationInput);
    return this.write(d.accountId, async (c) => {
      const cur = await c.query<Row>('select * from dropship.destinations where account_id = $1 for update', [
        d.accountId,
      ]);
      if (cur.rowCount === 0) return { outcome: 'created', destination: await this.insert(c, d), changed: [] };
      const before = fromRow(cur.rows[0]!);
      const registered = destinationInputOf(before);
      // The same fields as registered: nothing to write, and nothing to check in the source again.
      if (differingInputFields(registered, d).length === 0)
        return { outcome: 'unchanged', destination: before, changed: [] };
      // The place's lock before the source schema's, as add and update take them (else two writers could deadlock).
      if (opts.update && (d.bucket !== before.bucket || d.prefix !== before.prefix))
        await refuseSharedPlace(c, d.accountId, d.bucket, d.prefix);
      // Else compare once more with the source's canonical tenant value ("042" is 42 in an integer column).
      const selection = await this.checkSource(c, d.accountId, d.sourceSchema, d.selection);
      const changed = differingInputFields(registered, { ...d, selection });
      if (changed.length === 0) return { outcome: 'unchanged', destination: before, changed };
      if (!opts.update) throw new DestinationDiffers(d.accountId, changed);
      return { outcome: 'updated', destination: await this.replace(c, before, d), changed };
    });
  }

  /** Inserts a validated new destination (its source checked first) with a fresh external ID. */
  private async insert(c: PoolClient, d: ParsedInput): Promise<Destination> {
    await refuseSharedPlace(c, d.accountId, d.bucket, d.prefix);
    const selection = await this.checkSource(c, d.accountId, d.sourceSchema, d.selection);
    const res = await c.query<Row>(
      `insert into dropship.destinations
           (account_id, plan, bucket, prefix, region, role_arn, external_id, kms_key_arn, source_schema, layout,
            compression, ${SELECTION_COLUMNS}, changes)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) returning *`,
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
        ...selectionValues(selection),
        d.changes,
      ],
    );
    return fromRow(res.rows[0]!);
  }

  /**
   * Changes a destination's mutable fields (never its account id or external ID): the patch is merged
   * into the stored destination and the result validated exactly as `add` validates a new one. `then`, when given,
   * runs in the same transaction after the change (an update's webhook): its failure changes nothing.
   */
  async update(accountId: string, patch: DestinationPatch, then?: WithinWrite): Promise<Destination> {
    return (await this.updateReporting(accountId, patch, then)).destination;
  }

  /** `update`, also reporting the open runs of the account the change cancelled (none when it changed no delivery field). */
  async updateReporting(
    accountId: string,
    patch: DestinationPatch,
    then?: WithinWrite,
  ): Promise<{ destination: Destination; cancelledRunIds: string[] }> {
    return this.write(accountId, async (c) => {
      const cur = await c.query<Row>('select * from dropship.destinations where account_id = $1 for update', [
        accountId,
      ]);
      if (cur.rowCount === 0) throw new DestinationNotFound(accountId);
      const before = fromRow(cur.rows[0]!);
      const { kmsKeyArn, selection: selPatch, ...rest } = patch;
      const sel: Record<string, unknown> = { ...before.selection };
      for (const [k, v] of Object.entries(selPatch ?? {})) {
        if (v === null) delete sel[k];
        else if (v !== undefined) sel[k] = v;
      }
      const merged = {
        accountId,
        plan: before.plan,
        bucket: before.bucket,
        prefix: before.prefix,
        region: before.region,
        roleArn: before.roleArn,
        sourceSchema: before.sourceSchema,
        layout: before.layout,
        compression: before.compression,
        changes: before.changes,
        ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
        ...(kmsKeyArn === null
          ? {}
          : kmsKeyArn !== undefined
            ? { kmsKeyArn }
            : before.kmsKeyArn
              ? { kmsKeyArn: before.kmsKeyArn }
              : {}),
        selection: sel,
      };
      const cancelledRunIds: string[] = [];
      const after = await this.replace(c, before, parseDestinationInput(merged as DestinationInput), (ids) =>
        cancelledRunIds.push(...ids),
      );
      await then?.(c, after);
      return { destination: after, cancelledRunIds };
    });
  }

  /**
   * Writes a validated destination over the registered one (its source checked first); an update that
   * changes where or how data is delivered cancels the account's open runs.
   */
  private async replace(
    c: PoolClient,
    before: Destination,
    d: ParsedInput,
    onCancelled?: (runIds: string[]) => void,
  ): Promise<Destination> {
    const accountId = before.accountId;
    if (d.bucket !== before.bucket || d.prefix !== before.prefix)
      await refuseSharedPlace(c, accountId, d.bucket, d.prefix);
    const selection = await this.checkSource(c, accountId, d.sourceSchema, d.selection);
    const res = await c.query<Row>(
      `update dropship.destinations
            set plan = $2, bucket = $3, prefix = $4, region = $5, role_arn = $6, kms_key_arn = $7, source_schema = $8,
                layout = $9, tenant_column = $10, tenant_value = $11, drop_tenant_column = $12, global_tables = $13,
                include_tables = $14, exclude_tables = $15, exclude_columns = $16, compression = $17,
                changes = $18
          where account_id = $1 returning *`,
      [
        accountId,
        d.plan,
        d.bucket,
        d.prefix,
        d.region,
        d.roleArn,
        d.kmsKeyArn ?? null,
        d.sourceSchema,
        d.layout,
        ...selectionValues(selection),
        d.compression,
        d.changes,
      ],
    );
    const after = fromRow(res.rows[0]!);
    if (after.version !== before.version) {
      const fields = changedDeliveryFields(before, after);
      const cancelled = await cancelOpenRunsOf(
        c,
        accountId,
        `the destination was changed (${fields.join(', ')}) while this run was open; this run delivers nothing more; the next run delivers to the new destination`,
        { releaseSlots: true },
      );
      onCancelled?.(cancelled);
    }
    return after;
  }

  /** A transaction whose lock waits end after REGISTRY_LOCK_TIMEOUT_SECONDS, as DestinationBusy. */
  private async tx<T>(accountId: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.pool, async (c) =>
        fn(withLockBudget(c, Date.now() + this.lockTimeoutSeconds * 1000)),
      );
    } catch (e) {
      if ((e as { code?: string }).code === '55P03') throw new DestinationBusy(accountId, { cause: e });
      throw e;
    }
  }

  /** One transaction, serialised per account; unique violations become the registry's own errors. */
  private async write<T>(accountId: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    try {
      return await this.tx(accountId, fn);
    } catch (e) {
      const constraint = (e as { constraint?: string }).constraint;
      if (constraint === 'destinations_source_schema_unique')
        throw new InvalidDestination(['sourceSchema: the schema already belongs to another account'], { cause: e });
      if (constraint === 'destinations_tenant_unique')
        throw new InvalidDestination(['tenantValue: this tenant is already exported by another account'], {
          cause: e,
        });
      if ((e as { code?: string }).code === '23505') {
        throw new DestinationExists(accountId, { cause: e });
      }
      throw e;
    }
  }

  /**
   * The source schema exists, the selection fits its catalog (one line per problem), and no other
   * account reads the same data: a schema-per-account destination owns its schema alone; tenant-mode
   * destinations share one, one tenant each. Returns the selection with the canonical tenant value.
   */
  private async checkSource(c: PoolClient, accountId: string, schema: string, sel: Selection): Promise<Selection> {
    const checked = await this.onSource(c, accountId, schema, async (s) => {
      const exists = await s.query('select 1 from pg_catalog.pg_namespace where nspname = $1', [schema]);
      if (exists.rowCount === 0)
        throw new InvalidDestination([`sourceSchema: schema "${schema}" does not exist in the source database`]);
      return checkSelection(s, schema, sel);
    });
    if (checked.problems.length > 0) throw new InvalidDestination(checked.problems);
    const selection = checked.tenantValue !== undefined ? { ...sel, tenantValue: checked.tenantValue } : sel;
    // Registrations of one schema are serialised from here to their commit (who else reads it, then
    // the write); the catalog checks above read only the source, so they run outside the lock, and
    // the lines of a bulk import check their sources side by side.
    await c.query(`select pg_advisory_xact_lock(hashtext('dropship.source_schema'), hashtext($1))`, [schema]);
    const others = await c.query<{ account_id: string; tenant_column: string | null; tenant_value: string | null }>(
      'select account_id, tenant_column, tenant_value from dropship.destinations where source_schema = $1 and account_id <> $2',
      [schema, accountId],
    );
    const owner = others.rows.find((o) => o.tenant_column === null);
    if (owner || (!isTenantMode(selection) && others.rows.length > 0))
      throw new InvalidDestination([
        isTenantMode(selection)
          ? `sourceSchema: schema "${schema}" already belongs to another account (schema-per-account); tenant mode cannot share it`
          : `sourceSchema: schema "${schema}" already belongs to another account`,
      ]);
    // One tenant column per shared schema: with two, a table that has only the other column is "without the tenant
    // column" to one account, and its --global-tables could take another tenant's rows whole (red-team, tenants).
    // A column no table of the schema has any more does not count: when the customer renames the tenant column, the
    // accounts sharing the schema are updated one after the other (each refused while another still had the old one).
    const otherColumns = isTenantMode(selection)
      ? [
          ...new Set(
            others.rows.flatMap((o) =>
              o.tenant_column !== null && o.tenant_column !== selection.tenantColumn ? [o.tenant_column] : [],
            ),
          ),
        ]
      : [];
    const present =
      otherColumns.length === 0
        ? []
        : await this.onSource(c, accountId, schema, async (s) =>
            (
              await s.query<{ attname: string }>(
                `select distinct a.attname from pg_catalog.pg_attribute a
                   join pg_catalog.pg_class r on r.oid = a.attrelid
                   join pg_catalog.pg_namespace n on n.oid = r.relnamespace
                  where n.nspname = $1 and a.attname = any($2::text[]) and a.attnum > 0 and not a.attisdropped
                    and r.relkind in ('r', 'p', 'm')`,
                [schema, otherColumns],
              )
            ).rows.map((r) => r.attname),
          );
    const otherColumn = others.rows.find((o) => o.tenant_column !== null && present.includes(o.tenant_column));
    if (otherColumn)
      throw new InvalidDestination([
        `tenantColumn: the accounts sharing schema "${schema}" are told apart by column "${otherColumn.tenant_column}"; every account of a shared schema uses the same tenant column`,
      ]);
    const same = others.rows.find(
      (o) => o.tenant_column === selection.tenantColumn && o.tenant_value === selection.tenantValue,
    );
    if (same)
      throw new InvalidDestination([
        `tenantValue: tenant ${selection.tenantColumn} = ${JSON.stringify(selection.tenantValue)} of schema "${schema}" is already exported by another account`,
      ]);
    return selection;
  }

  /**
   * Runs `fn` on the source database — its own connection when it is not the registry's — within what is left of the
   * write's budget; a wait that uses it up is SourceBusy (the schema's, not the account row's).
   */
  private async onSource<T>(
    registry: PoolClient,
    accountId: string,
    schema: string,
    fn: (c: ClientBase) => Promise<T>,
  ): Promise<T> {
    const deadline =
      (registry as PoolClient & { [LOCK_DEADLINE]?: number })[LOCK_DEADLINE] ??
      Date.now() + this.lockTimeoutSeconds * 1000;
    const busy = (e: unknown): never => {
      if (OUT_OF_TIME.has((e as { code?: string }).code ?? ''))
        throw new SourceBusy(accountId, schema, this.lockTimeoutSeconds, { cause: e });
      throw e;
    };
    if (!this.source) return fn(registry).catch(busy);
    const { client, release } = await this.source({ timeoutMs: Math.max(1, deadline - Date.now()) });
    try {
      return await fn(client).catch(busy);
    } finally {
      await release();
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

  /** One page of destinations in account order: those after `after` (an account id), at most `limit`. */
  async page(opts: { after?: string; limit: number }): Promise<Destination[]> {
    const res = await this.pool.query<Row>(
      'select * from dropship.destinations where ($1::text is null or account_id > $1) order by account_id limit $2',
      [opts.after ?? null, opts.limit],
    );
    return res.rows.map(fromRow);
  }

  /** Enabled destinations whose plan is scheduled in `slot` ("04:00" or "15:00"). */
  async due(slot: string, slots: SlotsByPlan = DEFAULT_SLOTS): Promise<Destination[]> {
    const plans = (Object.keys(slots) as Plan[]).filter((p) => slots[p].includes(slot));
    const res = await this.pool.query<Row>(
      'select * from dropship.destinations where enabled and plan = any($1::text[]) order by account_id',
      [plans],
    );
    return res.rows.map(fromRow);
  }

  /**
   * The destinations due at `at` (a slot's time) and still enabled: registered and enabled since before it
   * (`due_since`, migrations 18 and 21), and of a plan with the slot then — the current plan if it changed before
   * `at` (`plan_since`), else the plan before the change (`previous_plan`). The catch-up records a missed slot only
   * for these: one disabled at the slot and resumed since, or upgraded to a plan with the slot since, was not due
   * then; one upgraded between two plans that both have the slot still was. Two plan changes after `at` are read as
   * one (the plan before the last change).
   */
  async dueSince(slot: string, slots: SlotsByPlan, at: Date): Promise<Destination[]> {
    const plans = (Object.keys(slots) as Plan[]).filter((p) => slots[p].includes(slot));
    const res = await this.pool.query<Row>(
      `select * from dropship.destinations
        where enabled and due_since < $2
          and (case when plan_since is null or plan_since < $2 then plan else previous_plan end) = any($1::text[])
        order by account_id`,
      [plans, at],
    );
    return res.rows.map(fromRow);
  }

  /** The account ids of `due` (the schedule function needs no more: one query, no rows to parse). */
  async dueIds(slot: string, slots: SlotsByPlan = DEFAULT_SLOTS): Promise<string[]> {
    const plans = (Object.keys(slots) as Plan[]).filter((p) => slots[p].includes(slot));
    const res = await this.pool.query<{ account_id: string }>(
      'select account_id from dropship.destinations where enabled and plan = any($1::text[]) order by account_id',
      [plans],
    );
    return res.rows.map((r) => r.account_id);
  }

  async setEnabled(accountId: string, enabled: boolean): Promise<Destination> {
    const res = await this.tx(accountId, (c) =>
      c.query<Row>('update dropship.destinations set enabled = $2 where account_id = $1 returning *', [
        accountId,
        enabled,
      ]),
    );
    if (res.rowCount === 0) throw new DestinationNotFound(accountId);
    return fromRow(res.rows[0]!);
  }

  /**
   * Removes a destination for good. In the same transaction: its open runs (running and finishing)
   * are cancelled (they deliver nothing more), its undelivered webhook events are given up, its
   * change-set states are dropped, and its status row goes with it (foreign key). Runs, receipt chain
   * links and events stay as history, tied to this generation: a later `add` of the same account id
   * is a new generation and inherits none of it (chain from sequence 1, a full refresh, no old events).
   */
  async remove(accountId: string): Promise<void> {
    await this.tx(accountId, async (c) => {
      const cur = await c.query<{ generation: string }>(
        'select generation from dropship.destinations where account_id = $1 for update',
        [accountId],
      );
      if (cur.rowCount === 0) throw new DestinationNotFound(accountId);
      const generation = cur.rows[0]!.generation;
      await cancelOpenRunsOf(
        c,
        accountId,
        'the destination was removed while this run was open; this run delivers nothing more',
      );
      await c.query(
        `update dropship.webhook_events set given_up_at = now(), last_error = 'destination removed before delivery'
          where account_id = $1 and delivered_at is null and given_up_at is null`,
        [accountId],
      );
      await c.query('delete from dropship.change_states where account_id = $1', [accountId]);
      await c.query('delete from dropship.destinations where account_id = $1 and generation = $2', [
        accountId,
        generation,
      ]);
    });
  }
}

const SELECTION_COLUMNS =
  'tenant_column, tenant_value, drop_tenant_column, global_tables, include_tables, exclude_tables, exclude_columns';

function selectionValues(s: Selection): unknown[] {
  return [
    s.tenantColumn ?? null,
    s.tenantValue ?? null,
    s.dropTenantColumn,
    s.globalTables,
    s.includeTables,
    s.excludeTables,
    s.excludeColumns,
  ];
}

/**
 * A change to a destination: any mutable field; `null` clears an optional one (`kmsKeyArn`, and the
 * tenant column/value to leave tenant mode). The external ID is not a field here and never changes.
 */
export interface DestinationPatch {
  plan?: Plan;
  bucket?: string;
  prefix?: string;
  region?: string;
  roleArn?: string;
  kmsKeyArn?: string | null;
  sourceSchema?: string;
  layout?: Layout;
  compression?: DestinationCompression;
  changes?: boolean;
  selection?: {
    tenantColumn?: string | null;
    tenantValue?: string | null;
    dropTenantColumn?: boolean;
    globalTables?: string[] | string;
    includeTables?: string[] | string;
    excludeTables?: string[] | string;
    excludeColumns?: string[] | string;
  };
}

/** Which daily slots (UTC) each plan gets: paid twice a day, free once. */

/**
 * Two accounts never deliver to the same place: the same bucket with the same prefix, or one prefix inside the other
 * (the bucket root holds every prefix). Their receipts would be one object (`<prefix>/receipt.json`), one account's
 * run folders would sit in the other's, and its reader policy would read them. Serialised per bucket (an advisory lock
 * for the transaction), so two registrations at once cannot both pass.
 */
async function refuseSharedPlace(c: PoolClient, accountId: string, bucket: string, prefix: string): Promise<void> {
  await c.query(`select pg_advisory_xact_lock(hashtext('dropship.place:' || $1))`, [bucket]);
  const other = await c.query<{ account_id: string; prefix: string }>(
    `select account_id, prefix from dropship.destinations
      where bucket = $1 and account_id <> $2
        and (prefix = $3 or prefix = '' or $3 = '' or starts_with($3, prefix || '/') or starts_with(prefix, $3 || '/'))
      order by account_id limit 1`,
    [bucket, accountId, prefix],
  );
  const o = other.rows[0];
  if (o)
    throw new InvalidDestination([
      `prefix: s3://${bucket}/${prefix} meets s3://${bucket}/${o.prefix}, where account "${o.account_id}" is delivered: two accounts' receipts and folders would mix; give each account a prefix of its own (neither inside the other)`,
    ]);
}
