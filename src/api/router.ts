import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { z } from 'zod';
import type { Destination } from '../accounts/destination.js';
import { DestinationNotFound } from '../accounts/registry.js';
import { nearestDropshipError } from '../contracts/errors.js';
import type { MessageSender } from '../contracts/task.js';
import { KitError, type SetupKit, setupKit } from '../destinations/s3/kit.js';
import { errorFields, type Logger } from '../log/logger.js';
import { StatusStore } from '../notify/store.js';
import { checkDestination } from '../operations/check.js';
import type { OperationDeps } from '../operations/deps.js';
import { type Created, createDestination, updateDestination } from '../operations/destinations.js';
import { cancelRun, startOnDemandRun } from '../operations/runs.js';
import { destinationStatus } from '../operations/status.js';
import type { Faults } from '../run/lifecycle/faults.js';
import type { Run, Task } from '../store/ledger/rows.js';
import { IdempotencyStore, requestHash } from './idempotency.js';
import { ApiError, fieldErrors, RETRY_AFTER_SECONDS, toProblem } from './problem.js';
import { type OperationId, pathPattern, ROUTES, type Route } from './routes.js';
import {
  type createDestinationBody,
  encodeRunCursor,
  type kitQuery,
  type listDestinationsQuery,
  type listRunsQuery,
  type updateDestinationBody,
} from './schemas.js';

/**
 * The HTTP API over API Gateway HTTP API events (payload format 2.0; a Lambda function URL sends
 * the same shape). AWS IAM has authenticated the caller before the event reaches this function
 * (`authorizer: aws_iam`); its principal ARN is in requestContext.authorizer.iam.userArn and every
 * change is logged with it (one audit line per mutation). Each operation calls the function the CLI
 * calls (src/operations/, the registry, the ledger): there is no second implementation here.
 */
export interface HttpApiEvent {
  version?: string;
  rawPath: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
  requestContext: {
    requestId?: string;
    http: { method: string; path?: string; sourceIp?: string };
    authorizer?: { iam?: { userArn?: string; accountId?: string; accessKey?: string } };
  };
}

export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body?: string;
}

export interface ApiDeps extends OperationDeps {
  log: Logger;
  /** Where an on-demand run's task messages go (the SQS task queue). */
  queue: MessageSender;
  faults?: Faults;
  now?: () => Date;
}

const COMPILED = ROUTES.map((r) => ({ route: r, ...pathPattern(r.path) }));

interface Call {
  route: Route;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  principal: string;
}

interface Reply {
  status: number;
  body?: unknown;
}

/** Keeps a success as the Idempotency-Key's answer, in the transaction `c` of the change it answers. */
type Keep = (c: PoolClient, reply: Reply) => Promise<void>;

export async function handleApiEvent(event: HttpApiEvent, deps: ApiDeps): Promise<HttpApiResult> {
  const requestId = event.requestContext.requestId ?? randomUUID();
  const instance = `urn:dropship:request:${requestId}`;
  const method = event.requestContext.http.method.toUpperCase();
  const path = event.rawPath;
  const principal = event.requestContext.authorizer?.iam?.userArn ?? 'unknown';
  const headers = lower(event.headers ?? {});
  let route: Route | undefined;
  let reply: Reply;
  let replayed = false;
  try {
    const found = match(method, path);
    route = found.route;
    const call = parse(found.route, found.params, event, headers, principal);
    const key = headers['idempotency-key'];
    if (key !== undefined && route.idempotent) {
      if (key.length < 1 || key.length > 255)
        throw new ApiError(400, 'invalid-request', 'Idempotency-Key has 1–255 characters', [
          { field: 'Idempotency-Key', message: 'has 1–255 characters' },
        ]);
      const store = new IdempotencyStore(deps.pool);
      const hash = requestHash(method, path, call.body);
      const r = await store.reserve(principal, key, hash);
      if (r.kind === 'mismatch')
        throw new ApiError(422, 'idempotency-key-reused', 'This Idempotency-Key was used with a different request', [
          { field: 'Idempotency-Key', message: 'used with a different request' },
        ]);
      if (r.kind === 'in-progress')
        throw new ApiError(
          409,
          'idempotency-key-in-progress',
          'A request with this Idempotency-Key is still being answered',
          [{ field: 'Idempotency-Key', message: 'in progress' }],
        );
      if (r.kind === 'replay') {
        await refuseOutdatedReplay(call, r.status, r.body, deps);
        reply = { status: r.status, ...(r.body === null ? {} : { body: r.body }) };
        replayed = true;
      } else {
        // An operation that can keeps its answer in the transaction of its change (`keep`): committed together.
        let kept = false;
        const keep: Keep = async (c, r) => {
          await store.complete(principal, key, r.status, withoutSecret(r.body), c);
          kept = true;
        };
        reply = await answer(call, deps, instance, keep).catch((e: unknown) => ({ status: 0, body: e }));
        const failed = reply.status === 0;
        const stored = failed ? toProblem(reply.body, instance) : reply;
        const status = failed ? (stored as { status: number }).status : reply.status;
        // An answer that cannot be kept releases the key (it must not stay "in progress" for a day): the caller still
        // gets this answer.
        if (failed || !kept)
          await store.complete(principal, key, status, failed ? stored : withoutSecret(reply.body)).catch(async (e) => {
            deps.log.error({ requestId, method, path, ...errorFields(e) }, 'api idempotency answer not kept');
            await store.release(principal, key).catch(() => {});
          });
        if (failed) throw reply.body;
      }
    } else {
      reply = await answer(call, deps, instance);
    }
  } catch (e) {
    const p = toProblem(e, instance);
    if (p.status >= 500) deps.log.error({ requestId, method, path, ...errorFields(e) }, 'api request failed');
    reply = { status: p.status, body: p };
  }
  if (route?.mutation)
    deps.log.info(
      {
        audit: true,
        principalArn: principal,
        operation: route.operationId,
        method,
        path,
        status: reply.status,
        requestId,
        ...(replayed ? { idempotentReplay: true } : {}),
      },
      'api change',
    );
  return respond(reply, replayed);
}

/**
 * A create's answer is replayed only while it still describes the registration: the same one (its external ID: a
 * removal and a new `add` make another) at the same version (a change of where or how data is delivered makes the
 * answer's setup kit wrong). Else 409, saying which: a vendor's client retrying a create whose destination was
 * removed since must not be told it exists (it got 201 with the old external ID and kit: red team, API), nor have it
 * registered again behind the removal's back — a new Idempotency-Key registers it again, on purpose.
 */
async function refuseOutdatedReplay(call: Call, status: number, body: unknown, deps: ApiDeps): Promise<void> {
  if (call.route.operationId !== 'createDestination' || status !== 201) return;
  const kept = body as { externalId: string; destination: { accountId: string; version: number } };
  const accountId = kept.destination.accountId;
  const now = await deps.registry.get(accountId).catch((e: unknown) => {
    if (nearestDropshipError(e) instanceof DestinationNotFound) return undefined;
    throw e;
  });
  if (now === undefined || now.externalId !== kept.externalId)
    throw new ApiError(
      409,
      'idempotency-key-outdated',
      `The destination this Idempotency-Key registered for account "${accountId}" has been removed since${now ? ' (the account was registered again, with another external ID)' : ''}: its answer is not replayed. To register the account again, send the request with a new Idempotency-Key`,
      [{ field: 'Idempotency-Key', message: 'its destination was removed since' }],
    );
  if (now.version !== kept.destination.version)
    throw new ApiError(
      409,
      'idempotency-key-outdated',
      `The destination this Idempotency-Key registered for account "${accountId}" has been changed since (version ${kept.destination.version} → ${now.version}): its answer and setup kit are out of date and not replayed. Read it with GET /destinations/${accountId} (its kit: GET /destinations/${accountId}/kit)`,
      [{ field: 'Idempotency-Key', message: 'its destination was changed since' }],
    );
}

function lower(h: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

function match(method: string, path: string): { route: Route; params: Record<string, string> } {
  let pathMatched = false;
  for (const c of COMPILED) {
    const m = c.re.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (c.route.method !== method) continue;
    const params: Record<string, string> = {};
    c.names.forEach((n, i) => {
      try {
        params[n] = decodeURIComponent(m[i + 1]!);
      } catch {
        // `acme%` or `%ZZ`: a client's mistake, not dropship's (a URIError would have answered 500).
        throw new ApiError(400, 'invalid-request', `The path segment for ${n} is not valid percent-encoding`, [
          { field: n, message: 'not valid percent-encoding' },
        ]);
      }
    });
    return { route: c.route, params };
  }
  if (pathMatched) throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${path}`);
  throw new ApiError(404, 'no-such-route', `No operation at ${path}`);
}

function parse(
  route: Route,
  rawParams: Record<string, string>,
  event: HttpApiEvent,
  headers: Record<string, string>,
  principal: string,
): Call {
  refuseNul(rawParams, '');
  const params = (route.params ? check(route.params, rawParams, '') : {}) as Record<string, string>;
  // A prototype-less object: `?__proto__=1` is a key like any other (and refused as unknown), not a prototype.
  const rawQuery: Record<string, string> = Object.create(null);
  for (const [k, v] of new URLSearchParams(event.rawQueryString ?? '')) rawQuery[k] = v;
  refuseNul(rawQuery, '');
  if (!route.query && Object.keys(rawQuery).length > 0)
    throw new ApiError(
      400,
      'invalid-request',
      'This operation takes no query parameters',
      Object.keys(rawQuery).map((k) => ({ field: k, message: 'unknown query parameter' })),
    );
  const query = route.query ? check(route.query, rawQuery, '') : {};
  let body: unknown;
  const text = event.body
    ? event.isBase64Encoded
      ? Buffer.from(event.body, 'base64').toString('utf8')
      : event.body
    : '';
  if (route.body) {
    const type = headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type))
      throw new ApiError(415, 'unsupported-media-type', 'Send the body as application/json', [
        { field: 'Content-Type', message: 'must be application/json' },
      ]);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ApiError(400, 'invalid-json', 'The body is not JSON', [{ field: 'body', message: 'not JSON' }]);
    }
    refuseNul(json, '');
    body = check(route.body.schema, json, '');
  } else if (text.trim() !== '') {
    throw new ApiError(400, 'invalid-request', 'This operation takes no body', [
      { field: 'body', message: 'not expected' },
    ]);
  }
  return { route, params, query, body, principal };
}

/**
 * No string of a request may hold a NUL character: Postgres text cannot (the query failed with 500, a bulk import
 * stopped at the line, a problem body quoting the value could not be kept for its Idempotency-Key). One walk over the
 * parsed request (bounded by its size), before any schema: a 400 naming the field.
 */
function refuseNul(value: unknown, root: string): void {
  // Iterative: a body nested a million arrays deep (JSON.parse takes it) must not overflow the stack here.
  const todo: [unknown, string][] = [[value, root]];
  for (let item = todo.pop(); item; item = todo.pop()) {
    const [v, at] = item;
    if (typeof v === 'string') {
      if (v.includes('\u0000'))
        throw new ApiError(400, 'invalid-request', 'The request is not valid', [
          { field: at || 'body', message: 'cannot contain a NUL character (\\u0000)' },
        ]);
    } else if (Array.isArray(v)) for (const [i, x] of v.entries()) todo.push([x, `${at}[${i}]`]);
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        const field = at ? `${at}.${k}` : k;
        todo.push([k, field], [x, field]);
      }
  }
}

function check<T extends z.ZodType>(schema: T, value: unknown, prefix: string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ApiError(400, 'invalid-request', 'The request is not valid', fieldErrors(r.error, prefix));
  return r.data;
}

function withoutSecret(body: unknown): unknown {
  if (body && typeof body === 'object' && 'webhookSecret' in body) {
    const { webhookSecret: _s, ...rest } = body as Record<string, unknown>;
    return rest;
  }
  return body;
}

function respond(reply: Reply, replayed: boolean): HttpApiResult {
  const problem = reply.status >= 400;
  const headers: Record<string, string> = {};
  if (replayed) headers['idempotent-replayed'] = 'true';
  if (reply.status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  if (reply.body === undefined) return { statusCode: reply.status, headers };
  headers['content-type'] = problem ? 'application/problem+json' : 'application/json';
  return { statusCode: reply.status, headers, body: JSON.stringify(reply.body) };
}

/** GET /destinations's cursors are opaque to callers: the last item's key (an account id), base64url. */
const encodeCursor = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
function decodeCursor(c: string | undefined): string | undefined {
  if (c === undefined) return undefined;
  const s = Buffer.from(c, 'base64url').toString('utf8');
  if (s === '' || s.includes('\u0000') || encodeCursor(s) !== c)
    throw new ApiError(400, 'invalid-request', 'The cursor is not one this API gave', [
      { field: 'cursor', message: 'not a cursor from a previous page' },
    ]);
  return s;
}

/**
 * The API's view of destinations, their webhooks read in one query that writes nothing (a status row was inserted per
 * destination read: one removed meanwhile failed the whole page with 500 on the foreign key — red team, API).
 */
async function viewsOf(
  deps: ApiDeps,
  ds: Destination[],
): Promise<z.input<typeof import('./schemas.js').destinationView>[]> {
  const hooks = await new StatusStore(deps.pool).webhookUrls(ds.map((d) => d.accountId));
  return ds.map((d) => viewOf(d, hooks.get(d.accountId) ?? null));
}

async function viewOne(deps: ApiDeps, d: Destination): Promise<z.input<typeof import('./schemas.js').destinationView>> {
  return (await viewsOf(deps, [d]))[0]!;
}

function viewOf(d: Destination, webhookUrl: string | null): z.input<typeof import('./schemas.js').destinationView> {
  return {
    accountId: d.accountId,
    plan: d.plan,
    bucket: d.bucket,
    prefix: d.prefix,
    region: d.region,
    roleArn: d.roleArn,
    externalId: d.externalId,
    kmsKeyArn: d.kmsKeyArn ?? null,
    sourceSchema: d.sourceSchema,
    layout: d.layout,
    compression: d.compression,
    changes: d.changes,
    selection: d.selection,
    enabled: d.enabled,
    webhookUrl,
    version: d.version,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

function runOf(r: Run) {
  return {
    runId: r.runId,
    accountId: r.accountId,
    trigger: r.trigger,
    slot: r.slot,
    status: r.status,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt ? r.finishedAt.toISOString() : null,
    receiptKey: r.receiptKey,
    error: r.error,
  };
}

function taskOf(t: Task) {
  return {
    table: t.table,
    part: t.part,
    parts: t.parts,
    status: t.status,
    attempts: t.attempts,
    maxAttempts: t.maxAttempts,
    rows: t.rows,
    bytes: t.bytes,
    error: t.error,
  };
}

function kitOf(k: SetupKit) {
  return {
    format: k.format,
    fileName: k.fileName,
    mediaType: k.mediaType,
    body: k.body,
    ...(k.templateUrl ? { templateUrl: k.templateUrl } : {}),
    ...(k.quickCreateUrl ? { quickCreateUrl: k.quickCreateUrl } : {}),
    instructions: k.instructions,
  };
}

const noRun = (runId: string) =>
  new ApiError(404, 'run-not-found', `No run ${runId}`, [{ field: 'runId', message: 'no such run' }]);

/**
 * The 201 of a create, made from what was written (no read after the commit): the destination with the webhook it was
 * registered with (a new registration has no other), its external ID, its kit, the webhook secret (shown once).
 */
function createdReply(deps: ApiDeps, created: Created): Reply {
  // A kit that cannot be made does not fail the create (null; GET …/kit says why).
  let kit: SetupKit | null = null;
  try {
    kit = setupKit(created.destination, deps.settings, 'cloudformation');
  } catch (e) {
    if (!(nearestDropshipError(e) instanceof KitError)) throw e;
    deps.log.warn({ accountId: created.destination.accountId, ...errorFields(e) }, 'no setup kit in the create answer');
  }
  return {
    status: 201,
    body: {
      destination: viewOf(created.destination, created.webhookUrl ?? null),
      externalId: created.destination.externalId,
      setupKit: kit === null ? null : kitOf(kit),
      ...(created.webhookSecret ? { webhookSecret: created.webhookSecret } : {}),
    },
  };
}

/** The operations: each calls the function the CLI's command calls. */
async function answer(call: Call, deps: ApiDeps, _instance: string, keep?: Keep): Promise<Reply> {
  const p = call.params as { accountId: string; runId: string };
  const op: Record<OperationId, () => Promise<Reply>> = {
    createDestination: async () => {
      const { webhookUrl, ...input } = call.body as z.output<typeof createDestinationBody>;
      // The destination, its webhook and (with an Idempotency-Key) the answer kept for it: one transaction.
      let reply: Reply | undefined;
      const created = await createDestination(deps, input, webhookUrl, async (c, made) => {
        reply = createdReply(deps, made);
        await keep?.(c, reply);
      });
      return reply ?? createdReply(deps, created);
    },
    listDestinations: async () => {
      const q = call.query as z.output<typeof listDestinationsQuery>;
      const after = decodeCursor(q.cursor);
      const page = await deps.registry.page({ ...(after ? { after } : {}), limit: q.limit + 1 });
      const items = page.slice(0, q.limit);
      const more = page.length > q.limit;
      return {
        status: 200,
        body: {
          items: await viewsOf(deps, items),
          nextCursor: more ? encodeCursor(items[items.length - 1]!.accountId) : null,
        },
      };
    },
    getDestination: async () => ({ status: 200, body: await viewOne(deps, await deps.registry.get(p.accountId)) }),
    updateDestination: async () => {
      const { webhookUrl, ...patch } = call.body as z.output<typeof updateDestinationBody>;
      await deps.registry.get(p.accountId); // 404 before anything changes
      // The fields and the webhook in one transaction; a webhook it would refuse is refused first: a 400 changes nothing.
      const done = await updateDestination(deps, p.accountId, patch, webhookUrl);
      return {
        status: 200,
        body: {
          destination: await viewOne(deps, done.destination),
          ...(done.webhook ? { webhookSecret: done.webhook.secret } : {}),
        },
      };
    },
    deleteDestination: async () => {
      await deps.registry.remove(p.accountId);
      return { status: 204 };
    },
    checkDestination: async () => {
      const dest = await deps.registry.get(p.accountId);
      const { doctor, drift } = await checkDestination(deps, dest);
      return {
        status: 200,
        body: {
          accountId: dest.accountId,
          ok: doctor.ok && drift.ok,
          doctor: {
            ok: doctor.ok,
            exportAllowed: doctor.report.exportAllowed,
            checks: doctor.report.checks,
            ...(doctor.selection ? { selection: doctor.selection } : {}),
          },
          drift: { ok: drift.ok, probed: drift.probed, checks: drift.checks, failures: drift.failures },
        },
      };
    },
    getDestinationStatus: async () => ({
      status: 200,
      body: await destinationStatus(deps, p.accountId, deps.now?.() ?? new Date()),
    }),
    getSetupKit: async () => {
      const q = call.query as z.output<typeof kitQuery>;
      const dest = await deps.registry.get(p.accountId);
      try {
        return { status: 200, body: kitOf(setupKit(dest, deps.settings, q.format)) };
      } catch (e) {
        if (!(nearestDropshipError(e) instanceof KitError)) throw e;
        // dropship's configuration, not the caller's input: 500, saying what is missing.
        throw new ApiError(500, 'setup-kit-unavailable', `The setup kit cannot be made: ${(e as Error).message}`);
      }
    },
    startRun: async () => {
      const { run, tasks } = await startOnDemandRun(deps, p.accountId);
      return { status: 202, body: { run: runOf(run), tasks } };
    },
    listRuns: async () => {
      const q = call.query as z.output<typeof listRunsQuery>;
      const c = q.cursor;
      // A cursor given before cursors held a position names a run: read on from it while the run exists; once it is
      // gone (retention), 400 — never an empty last page.
      if (c && 'runId' in c && !(await deps.ledger.getRun(c.runId)))
        throw new ApiError(
          400,
          'invalid-request',
          'The cursor names a run that no longer exists: list again from the first page',
          [{ field: 'cursor', message: 'its run no longer exists' }],
        );
      const runs = await deps.ledger.listRuns({
        ...(q.accountId ? { accountId: q.accountId } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(c ? ('position' in c ? { before: c.position } : { beforeRunId: c.runId }) : {}),
        limit: q.limit + 1,
      });
      const items = runs.slice(0, q.limit);
      return {
        status: 200,
        body: {
          items: items.map(runOf),
          nextCursor: runs.length > q.limit ? encodeRunCursor(items[items.length - 1]!.position) : null,
        },
      };
    },
    getRun: async () => {
      const run = await deps.ledger.getRun(p.runId);
      if (!run) throw noRun(p.runId);
      return { status: 200, body: { ...runOf(run), tasks: (await deps.ledger.tasks(p.runId)).map(taskOf) } };
    },
    cancelRun: async () => {
      const res = await cancelRun(deps, p.runId, `api:${call.principal}`);
      if (!res.ok) {
        if (res.status === undefined) throw noRun(p.runId);
        throw new ApiError(409, 'run-ended', `Run ${p.runId} has already ended (${res.status})`, [
          { field: 'runId', message: `already ${res.status}` },
        ]);
      }
      const run = await deps.ledger.getRun(p.runId);
      return { status: 200, body: runOf(run!) };
    },
  };
  return op[call.route.operationId]();
}
