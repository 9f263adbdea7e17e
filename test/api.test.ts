import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../src/accounts/registry.js';
import { IdempotencyStore, requestHash } from '../src/api/idempotency.js';
import type { ApiDeps } from '../src/api/router.js';
import { ROUTES } from '../src/api/routes.js';
import { createDestinationBody } from '../src/api/schemas.js';
import type { Settings } from '../src/config/settings.js';
import { permissionPolicy, policyDocuments, trustPolicy } from '../src/destinations/s3/policies.js';
import { LocalApi, MAX_BODY_BYTES } from '../src/devstack/api.js';
import { createDemoSchema } from '../src/devstack/demo.js';
import type { Principal } from '../src/devstack/iam.js';
import { PLATFORM_ACCOUNT_ID, REPO_ROOT } from '../src/devstack/stack.js';
import { createLogger } from '../src/log/logger.js';
import { Wiring } from '../src/run/wiring.js';
import { holdDestination } from '../src/store/ledger/publication.js';
import { apiClient, type Credentials, ResponseValidator, signedRequest } from './kit/api-client.js';
import { type Harness, startHarness } from './kit/stack-harness.js';

/**
 * The HTTP API against the local stack, through a client we did not write (openapi-fetch typed by
 * openapi-typescript from schemas/openapi.json, requests signed by the AWS SDK's SigV4 signer), every
 * response validated against the document. The last test fails when a documented operation or
 * status was never exercised; the middleware fails any call whose status, content type or field is
 * not documented.
 */
const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/openapi.json'), 'utf8'));
const validator = new ResponseValidator(doc);
let h: Harness;
let wiring: Wiring;
let api: LocalApi;
let caller: Credentials;
let client: ReturnType<typeof apiClient>;
let deps: ApiDeps;
const KIT_BASE = 'https://dropship-kits.s3.us-east-1.amazonaws.com/templates';
const logLines: Record<string, unknown>[] = [];
const ROLE = (account: string) => `arn:aws:iam::222222222222:role/dropship-export-${account}`;
const destination = (account: string) => ({
  accountId: account,
  plan: 'paid' as const,
  bucket: `${account}-data`,
  prefix: 'dropship',
  region: 'us-east-1',
  roleArn: ROLE(account),
  sourceSchema: account,
});

beforeAll(async () => {
  h = await startHarness();
  const c = new pg.Client({ connectionString: h.stack.databaseUrl });
  await c.connect();
  for (const s of ['apico', 'apico2', 'apico3', 'apico4', 'apico5']) await createDemoSchema(c, s, 500);
  await c.end();
  const settings = h.settings({
    DROPSHIP_WEBHOOK_KEY: Buffer.alloc(32, 7).toString('base64'),
    DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
    DROPSHIP_KIT_TEMPLATE_BASE_URL: KIT_BASE,
  });
  wiring = new Wiring({ settings, databaseUrl: h.stack.databaseUrl });
  const log = createLogger({
    level: 'info',
    destination: { write: (s: string) => void logLines.push(JSON.parse(s)) },
  });
  deps = {
    settings,
    pool: await wiring.pool(),
    registry: await wiring.registry(),
    ledger: await wiring.ledger(),
    sourceUrl: wiring.sourceUrl,
    queue: await wiring.queue('api test'),
    log,
  };
  api = new LocalApi(h.stack.iam, async () => deps, { region: 'us-east-1', accountId: PLATFORM_ACCOUNT_ID });
  await api.start();
  caller = h.stack.platform;
  client = apiClient(api.url, caller, validator);
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await wiring?.close();
  await h?.stop();
});

/** The customer's side in the local AWS, from the destination's own documents (what `dev provision` does). */
async function provision(account: string): Promise<void> {
  const dest = await h.registry.get(account);
  await h.stack.applyWorld({
    accounts: {
      '222222222222': {
        buckets: [{ name: dest.bucket, region: dest.region }],
        roles: [
          {
            name: `dropship-export-${account}`,
            trustPolicy: trustPolicy(dest, h.stack.platform.arn) as never,
            policies: [permissionPolicy(dest) as never],
          },
        ],
      },
    },
  });
}

const fields = (body: unknown) => ((body as { errors?: { field: string }[] }).errors ?? []).map((e) => e.field);

describe('the HTTP API through the generated client', () => {
  let externalId = '';
  let webhookSecret = '';
  let runId = '';

  it('creates a destination: 201 with its external ID and the webhook secret, once; Idempotency-Key replays it', async () => {
    const body = { ...destination('apico'), webhookUrl: 'http://127.0.0.1:9/hook' };
    const first = await client.POST('/destinations', { body, headers: { 'Idempotency-Key': 'create-apico-1' } });
    expect(first.response.status).toBe(201);
    externalId = first.data!.externalId;
    webhookSecret = first.data!.webhookSecret!;
    expect(externalId).toMatch(/^dropship-[\w-]{32}$/);
    expect(first.data!.destination).toMatchObject({
      accountId: 'apico',
      externalId,
      webhookUrl: 'http://127.0.0.1:9/hook',
    });
    expect(webhookSecret).toMatch(/^whsec_/);
    // The customer's setup kit: the CloudFormation template whose IAM documents are `dropship policy`'s
    // (policyDocuments with dropship's principal), byte for byte, and the quick-create link with the external ID.
    const kit = first.data!.setupKit!;
    expect(kit.format).toBe('cloudformation');
    const docs = policyDocuments(await h.registry.get('apico'), h.stack.platform.arn);
    const role = JSON.parse(kit.body).Resources.DropshipRole.Properties;
    expect(JSON.stringify(role.AssumeRolePolicyDocument, null, 2)).toBe(JSON.stringify(docs.trust, null, 2));
    expect(JSON.stringify(role.Policies[0].PolicyDocument, null, 2)).toBe(JSON.stringify(docs.writer, null, 2));
    expect(JSON.stringify(docs.trust)).toContain(externalId);
    const link = new URL(kit.quickCreateUrl!);
    expect(link.hash.startsWith('#/stacks/quickcreate?')).toBe(true);
    const q = new URLSearchParams(link.hash.replace(/^#\/stacks\/quickcreate\?/, ''));
    expect(q.get('param_ExternalId')).toBe(externalId);
    expect(q.get('templateURL')).toBe(kit.templateUrl);
    expect(kit.templateUrl!.startsWith(`${KIT_BASE}/apico/`)).toBe(true);
    // The same key and body: the same answer (without the secret, shown once), nothing registered twice.
    const again = await client.POST('/destinations', { body, headers: { 'Idempotency-Key': 'create-apico-1' } });
    expect(again.response.status).toBe(201);
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
    expect(again.data!.externalId).toBe(externalId);
    expect(again.data!.webhookSecret).toBeUndefined();
    expect(again.data!.setupKit).toEqual(kit);
    // The same key with another body: 422, naming the header.
    const other = await client.POST('/destinations', {
      body: { ...body, plan: 'free' },
      headers: { 'Idempotency-Key': 'create-apico-1' },
    });
    expect(other.response.status).toBe(422);
    expect(other.response.headers.get('content-type')).toBe('application/problem+json');
    expect(fields(other.error)).toEqual(['Idempotency-Key']);
    // A key whose first request is still being answered (reserved, no answer yet): 409, nothing done.
    const pending = { ...destination('apico9'), sourceSchema: 'apico3' };
    await new IdempotencyStore(h.pool).reserve(
      h.stack.platform.arn,
      'pending-1',
      requestHash('POST', '/destinations', createDestinationBody.parse(pending)),
    );
    const busy = await client.POST('/destinations', { body: pending, headers: { 'Idempotency-Key': 'pending-1' } });
    expect(busy.response.status).toBe(409);
    expect(fields(busy.error)).toEqual(['Idempotency-Key']);
    expect((await h.registry.list()).map((d) => d.accountId)).not.toContain('apico9');
    await provision('apico');
  });

  it('keeps only a success under an Idempotency-Key: after an error answer, or a reservation abandoned by a killed function, the retry is a new request', async () => {
    // An error answer (the source schema does not exist yet): the key is released, not replayed for a day.
    const body = { ...destination('apicoidem'), sourceSchema: 'apicoidem' };
    const first = await client.POST('/destinations', { body, headers: { 'Idempotency-Key': 'idem-err-1' } });
    expect(first.response.status).toBe(400);
    await h.pool.query('create schema apicoidem; create table apicoidem.t (id int primary key)');
    const retry = await client.POST('/destinations', { body, headers: { 'Idempotency-Key': 'idem-err-1' } });
    expect(retry.response.status).toBe(201);
    expect(retry.response.headers.get('idempotent-replayed')).toBeNull();
    // A reservation its function never answered (killed by the 29 s timeout) stops blocking the key after a minute.
    const other = { ...destination('apicoidem2'), sourceSchema: 'apicoidem2' };
    await h.pool.query('create schema apicoidem2; create table apicoidem2.t (id int primary key)');
    const store = new IdempotencyStore(h.pool);
    const hash = requestHash('POST', '/destinations', createDestinationBody.parse(other));
    await store.reserve(h.stack.platform.arn, 'idem-stale-1', hash);
    const blocked = await client.POST('/destinations', { body: other, headers: { 'Idempotency-Key': 'idem-stale-1' } });
    expect(blocked.response.status).toBe(409);
    await h.pool.query(
      `update dropship.api_idempotency set created_at = now() - interval '61 seconds' where key = 'idem-stale-1'`,
    );
    const freed = await client.POST('/destinations', { body: other, headers: { 'Idempotency-Key': 'idem-stale-1' } });
    expect(freed.response.status).toBe(201);
    for (const id of ['apicoidem', 'apicoidem2']) await h.registry.remove(id);
  });

  it('refuses a second create for the account (409), unknown fields and invalid values (400 naming the field), a non-JSON body (415)', async () => {
    const dup = await client.POST('/destinations', { body: destination('apico') });
    expect(dup.response.status).toBe(409);
    expect(dup.error).toMatchObject({ status: 409, type: 'urn:dropship:problem:destination-exists' });
    expect(fields(dup.error)).toEqual(['accountId']);
    const unknown = await client.POST('/destinations', { body: { ...destination('apico2'), colour: 'red' } as never });
    expect(unknown.response.status).toBe(400);
    expect((unknown.error as { errors: unknown }).errors).toEqual([{ field: 'colour', message: 'unknown field' }]);
    const nested = await client.POST('/destinations', {
      body: { ...destination('apico2'), selection: { includeTables: ['events'], colour: 1 } } as never,
    });
    expect(fields(nested.error)).toEqual(['selection.colour']);
    const bad = await client.POST('/destinations', { body: { ...destination('apico2'), bucket: 'Not_A_Bucket' } });
    expect(bad.response.status).toBe(400);
    expect(fields(bad.error)).toEqual(['bucket']);
    // The registry's own checks (the source schema exists) name their field too.
    const noSchema = await client.POST('/destinations', { body: { ...destination('apico2'), sourceSchema: 'nope' } });
    expect(noSchema.response.status).toBe(400);
    expect(fields(noSchema.error)).toEqual(['sourceSchema']);
    const text = await client.POST('/destinations', {
      body: destination('apico2'),
      bodySerializer: (b) => JSON.stringify(b),
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(text.response.status).toBe(415);
    expect(
      (await client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apico2' } } })).response.status,
    ).toBe(404);
  });

  it('reads a destination (never its webhook secret) and lists them a page at a time', async () => {
    for (const a of ['apico2', 'apico3'])
      expect((await client.POST('/destinations', { body: destination(a) })).response.status).toBe(201);
    const one = await client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apico' } } });
    expect(one.data).toMatchObject({
      accountId: 'apico',
      externalId,
      plan: 'paid',
      webhookUrl: 'http://127.0.0.1:9/hook',
    });
    expect(JSON.stringify(one.data)).not.toContain(webhookSecret);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await client.GET('/destinations', { params: { query: { limit: 2, ...(cursor ? { cursor } : {}) } } });
      expect(r.response.status).toBe(200);
      seen.push(...r.data!.items.map((d) => d.accountId));
      if (r.data!.nextCursor === null) break;
      cursor = r.data!.nextCursor;
    }
    expect(seen).toEqual(['apico', 'apico2', 'apico3']);
    const badCursor = await client.GET('/destinations', { params: { query: { cursor: '!!' } } });
    expect(badCursor.response.status).toBe(400);
    expect(fields(badCursor.error)).toEqual(['cursor']);
    const badLimit = await client.GET('/destinations', { params: { query: { limit: 0 } } });
    expect(fields(badLimit.error)).toEqual(['limit']);
    // A destination removed between the page's read and its view (a DELETE racing the list): the page still answers
    // (it was a 500 on the status row's foreign key), and reading writes no status row.
    expect((await client.POST('/destinations', { body: destination('apico5') })).response.status).toBe(201);
    const real = deps.registry;
    const racing = Object.create(real) as Registry;
    racing.page = async (q) => {
      const page = await real.page(q);
      await real.remove('apico5');
      return page;
    };
    deps.registry = racing;
    try {
      const raced = await client.GET('/destinations', { params: { query: { limit: 100 } } });
      expect(raced.response.status).toBe(200);
      expect(raced.data!.items.map((d) => d.accountId)).toContain('apico5');
    } finally {
      deps.registry = real;
    }
    const rows = await h.pool.query(`select 1 from dropship.destination_status where account_id = 'apico5'`);
    expect(rows.rowCount).toBe(0);
  });

  it('updates a destination; a new webhook returns a new secret once; 400/404/415 name the field', async () => {
    const up = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'apico3' } },
      body: { plan: 'free', webhookUrl: 'http://127.0.0.1:9/other' },
    });
    expect(up.response.status).toBe(200);
    expect(up.data!.destination).toMatchObject({ plan: 'free', webhookUrl: 'http://127.0.0.1:9/other' });
    expect(up.data!.webhookSecret).toMatch(/^whsec_/);
    const off = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'apico3' } },
      body: { webhookUrl: null },
    });
    expect(off.data!.destination.webhookUrl).toBeNull();
    expect(off.data!.webhookSecret).toBeUndefined();
    const unknown = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'apico3' } },
      body: { externalId: 'mine' } as never,
    });
    expect(unknown.response.status).toBe(400);
    expect(fields(unknown.error)).toEqual(['externalId']);
    const invalid = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'apico3' } },
      body: { region: 'Mars' },
    });
    expect(fields(invalid.error)).toEqual(['region']);
    const missing = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'nobody' } },
      body: { plan: 'free' },
    });
    expect(missing.response.status).toBe(404);
    expect(fields(missing.error)).toEqual(['accountId']);
    const text = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'apico3' } },
      body: { plan: 'paid' },
      bodySerializer: (b) => JSON.stringify(b),
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(text.response.status).toBe(415);
    // A refused webhook address is refused before anything changes: the prefix and the version stay.
    const before = await client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apico3' } } });
    const refused = await client.PATCH('/destinations/{accountId}', {
      params: { path: { accountId: 'apico3' } },
      body: { prefix: 'elsewhere', webhookUrl: 'https://169.254.169.254/latest' },
    });
    expect(refused.response.status).toBe(400);
    const after = await client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apico3' } } });
    expect(after.data).toEqual(before.data);
  });

  it('a create or a change with a webhook is one transaction: a failure setting the webhook (or keeping the answer) changes nothing, and the create’s retry with its Idempotency-Key registers it (red team, API)', async () => {
    // Prepare: Postgres itself fails the first write of a webhook whose address has "fail-once" (and the first keeping
    // of an answer for key "keep-fails-1"), then lets the next one through (a sequence: not undone by the rollback).
    await h.pool.query(`
      create schema apicowh; create table apicowh.t (id int primary key);
      create schema apicowh2; create table apicowh2.t (id int primary key);
      create sequence public.rt_fault;
      create function public.rt_fault_webhook() returns trigger language plpgsql as $$
      begin
        if new.webhook_url like '%fail-once%' then
          if nextval('public.rt_fault') % 2 = 1 then
            raise exception 'connection terminated (injected)';
          end if;
        end if;
        return new;
      end $$;
      create function public.rt_fault_answer() returns trigger language plpgsql as $$
      begin
        if new.key = 'keep-fails-1' and new.status is not null then
          if nextval('public.rt_fault') % 2 = 1 then
            raise exception 'connection terminated (injected)';
          end if;
        end if;
        return new;
      end $$;
      create trigger rt_fault before insert or update on dropship.destination_status
        for each row execute function public.rt_fault_webhook();
      create trigger rt_fault before update on dropship.api_idempotency
        for each row execute function public.rt_fault_answer();`);
    // How many requests failed with the injected error (and nothing else).
    const earlier = logLines.length;
    const injected = () => {
      const failures = logLines.slice(earlier).filter((l) => l.msg === 'api request failed');
      expect(failures.map((l) => l.error).filter((e) => e !== 'connection terminated (injected)')).toEqual([]);
      return failures.length;
    };
    try {
      const body = { ...destination('apicowh'), webhookUrl: 'http://127.0.0.1:9/fail-once' };
      const headers = { 'Idempotency-Key': 'create-wh-1' };
      const get = () => client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apicowh' } } });
      // Act: the create's webhook write fails.
      const first = await client.POST('/destinations', { body, headers });
      // Assess: 500 in words for any request (not the export's), and nothing registered.
      expect(first.response.status).toBe(500);
      expect(injected()).toBe(1);
      const detail = (first.error as { detail: string }).detail;
      expect(detail).toMatch(/request failed on dropship’s side/);
      expect(detail).not.toMatch(/export/);
      expect((await get()).response.status).toBe(404);
      // The retry with the same key: a new request (nothing was kept), registered with its webhook and secret.
      const retry = await client.POST('/destinations', { body, headers });
      expect(retry.response.status).toBe(201);
      expect(retry.response.headers.get('idempotent-replayed')).toBeNull();
      expect(retry.data!.webhookSecret).toMatch(/^whsec_/);
      expect(retry.data!.destination.webhookUrl).toBe('http://127.0.0.1:9/fail-once');
      const registered = await get();
      expect(registered.data).toEqual(retry.data!.destination);
      const again = await client.POST('/destinations', { body, headers });
      expect(again.response.headers.get('idempotent-replayed')).toBe('true');
      expect(again.data!.externalId).toBe(retry.data!.externalId);

      // A change of fields and webhook whose webhook write fails: 500, and the fields are as they were.
      const patch = { prefix: 'moved', webhookUrl: 'http://127.0.0.1:9/fail-once-2' };
      const path = { params: { path: { accountId: 'apicowh' } } };
      const failed = await client.PATCH('/destinations/{accountId}', { ...path, body: patch });
      expect(failed.response.status).toBe(500);
      expect(injected()).toBe(2);
      expect((failed.error as { detail: string }).detail).not.toMatch(/export/);
      expect((await get()).data).toEqual(registered.data);
      const changed = await client.PATCH('/destinations/{accountId}', { ...path, body: patch });
      expect(changed.response.status).toBe(200);
      expect(changed.data!.destination).toMatchObject({
        prefix: 'moved',
        webhookUrl: 'http://127.0.0.1:9/fail-once-2',
        version: registered.data!.version + 1,
      });

      // The answer kept for an Idempotency-Key commits with the registration: when it cannot be kept, nothing is
      // registered (a function killed between the two left a destination whose retry met 409 "exists").
      const other = { ...destination('apicowh2') };
      const keepFails = { 'Idempotency-Key': 'keep-fails-1' };
      const lost = await client.POST('/destinations', { body: other, headers: keepFails });
      expect(lost.response.status).toBe(500);
      expect(injected()).toBe(3);
      expect(
        (await client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apicowh2' } } })).response
          .status,
      ).toBe(404);
      const kept = await client.POST('/destinations', { body: other, headers: keepFails });
      expect(kept.response.status).toBe(201);
      const row = await h.pool.query(`select status from dropship.api_idempotency where key = 'keep-fails-1'`);
      expect(row.rows).toEqual([{ status: 201 }]);
    } finally {
      await h.pool.query(`drop trigger rt_fault on dropship.destination_status;
        drop trigger rt_fault on dropship.api_idempotency; drop function public.rt_fault_webhook();
        drop function public.rt_fault_answer(); drop sequence public.rt_fault`);
    }
  });

  it('replays a create only while its destination is the one it registered: removed (and registered again) or its delivery changed since, 409 (red team, API)', async () => {
    // Prepare: two destinations created with Idempotency-Keys.
    await h.pool.query(`create schema apicogone; create table apicogone.t (id int primary key);
      create schema apicochg; create table apicochg.t (id int primary key);`);
    const gone = { body: destination('apicogone'), headers: { 'Idempotency-Key': 'create-gone-1' } };
    const chg = { body: destination('apicochg'), headers: { 'Idempotency-Key': 'create-chg-1' } };
    const first = await client.POST('/destinations', gone);
    expect(first.response.status).toBe(201);
    expect((await client.POST('/destinations', chg)).response.status).toBe(201);
    const path = (accountId: string) => ({ params: { path: { accountId } } });
    // Act: one is removed, then replayed; registered again with a new key, then the old key replayed again; the other
    // changes where it delivers (a new version), then is replayed; a change of its plan alone is not a new version.
    expect((await client.DELETE('/destinations/{accountId}', path('apicogone'))).response.status).toBe(204);
    const afterRemoval = await client.POST('/destinations', gone);
    const again = await client.POST('/destinations', { ...gone, headers: { 'Idempotency-Key': 'create-gone-2' } });
    const afterReRegistration = await client.POST('/destinations', gone);
    expect(
      (await client.PATCH('/destinations/{accountId}', { ...path('apicochg'), body: { plan: 'free' } })).response
        .status,
    ).toBe(200);
    const afterPlan = await client.POST('/destinations', chg);
    expect(
      (await client.PATCH('/destinations/{accountId}', { ...path('apicochg'), body: { prefix: 'moved' } })).response
        .status,
    ).toBe(200);
    const afterMove = await client.POST('/destinations', chg);
    // Assess
    for (const r of [afterRemoval, afterReRegistration, afterMove]) {
      expect(r.response.status).toBe(409);
      expect(r.response.headers.get('idempotent-replayed')).toBeNull();
      expect(r.error).toMatchObject({ type: 'urn:dropship:problem:idempotency-key-outdated' });
      expect(fields(r.error)).toEqual(['Idempotency-Key']);
    }
    expect((afterRemoval.error as { detail: string }).detail).toMatch(/removed since.*new Idempotency-Key/);
    expect((afterReRegistration.error as { detail: string }).detail).toMatch(/registered again, with another/);
    expect((afterMove.error as { detail: string }).detail).toMatch(/changed since \(version 1 → 2\)/);
    expect(again.response.status).toBe(201);
    expect(again.data!.externalId).not.toBe(first.data!.externalId);
    expect(afterPlan.response.status).toBe(201);
    expect(afterPlan.response.headers.get('idempotent-replayed')).toBe('true');
    // Nothing was registered by a refused replay: the account's registration is the new key's.
    expect((await h.registry.get('apicogone')).externalId).toBe(again.data!.externalId);
  });

  it('checks a destination (doctor + drift) and reads its status (the status.json facts)', async () => {
    const check = await client.POST('/destinations/{accountId}/check', { params: { path: { accountId: 'apico' } } });
    expect(check.response.status).toBe(200);
    expect(check.data!.doctor.checks.find((c) => c.name === 'assume role')?.status).toBe('pass');
    expect(check.data!.drift).toMatchObject({ ok: true, failures: [] });
    // An unprovisioned role: the findings carry the customer's words (status.json's).
    const broken = await client.POST('/destinations/{accountId}/check', { params: { path: { accountId: 'apico2' } } });
    expect(broken.data!.ok).toBe(false);
    expect(broken.data!.drift.failures.map((f) => f.code)).toContain('role_not_assumable');
    const status = await client.GET('/destinations/{accountId}/status', { params: { path: { accountId: 'apico' } } });
    expect(status.response.status).toBe(200);
    expect(status.data).toMatchObject({ account: 'apico', last_run: null, consecutive_failures: 0, paused: false });
    const none = await client.GET('/destinations/{accountId}/status', { params: { path: { accountId: 'nobody' } } });
    expect(none.response.status).toBe(404);
    const noCheck = await client.POST('/destinations/{accountId}/check', { params: { path: { accountId: 'nobody' } } });
    expect(noCheck.response.status).toBe(404);
  });

  it('starts an on-demand run (202, idempotent), refuses a second one (409), lists, shows and cancels it', async () => {
    // STS throttles the customer's role for a moment: nothing is opened, 503 with Retry-After (it was a 500).
    h.stack.sts.faults.push((action, params) =>
      action === 'AssumeRole' && params.get('RoleArn') === ROLE('apico')
        ? { status: 400, code: 'Throttling', message: 'Rate exceeded' }
        : undefined,
    );
    try {
      const throttled = await client.POST('/destinations/{accountId}/runs', {
        params: { path: { accountId: 'apico' } },
      });
      expect(throttled.response.status).toBe(503);
      expect(throttled.response.headers.get('retry-after')).toBe('30');
      expect(throttled.error).toMatchObject({ type: 'urn:dropship:problem:aws-unavailable' });
    } finally {
      h.stack.sts.faults.length = 0;
    }
    expect(await h.ledger.activeRuns('apico')).toEqual([]);
    const start = await client.POST('/destinations/{accountId}/runs', {
      params: { path: { accountId: 'apico' } },
      headers: { 'Idempotency-Key': 'run-apico-1' },
    });
    expect(start.response.status).toBe(202);
    expect(start.data!.run).toMatchObject({ accountId: 'apico', status: 'running', trigger: 'manual' });
    expect(start.data!.tasks).toBeGreaterThan(0);
    runId = start.data!.run.runId;
    const replay = await client.POST('/destinations/{accountId}/runs', {
      params: { path: { accountId: 'apico' } },
      headers: { 'Idempotency-Key': 'run-apico-1' },
    });
    expect(replay.data!.run.runId).toBe(runId);
    const reused = await client.POST('/destinations/{accountId}/runs', {
      params: { path: { accountId: 'apico2' } },
      headers: { 'Idempotency-Key': 'run-apico-1' },
    });
    expect(reused.response.status).toBe(422);
    const second = await client.POST('/destinations/{accountId}/runs', { params: { path: { accountId: 'apico' } } });
    expect(second.response.status).toBe(409);
    expect(fields(second.error)).toEqual(['accountId']);
    const none = await client.POST('/destinations/{accountId}/runs', { params: { path: { accountId: 'nobody' } } });
    expect(none.response.status).toBe(404);

    const list = await client.GET('/runs', { params: { query: { accountId: 'apico', limit: 1 } } });
    expect(list.data!.items.map((r) => r.runId)).toEqual([runId]);
    const badStatus = await client.GET('/runs', { params: { query: { status: 'sleeping' as never } } });
    expect(fields(badStatus.error)).toEqual(['status']);
    const show = await client.GET('/runs/{runId}', { params: { path: { runId } } });
    expect(show.data!.tasks.length).toBe(start.data!.tasks);
    expect((await client.GET('/runs/{runId}', { params: { path: { runId: 'no-such-run' } } })).response.status).toBe(
      404,
    );

    const cancel = await client.POST('/runs/{runId}/cancel', { params: { path: { runId } } });
    expect(cancel.response.status).toBe(200);
    expect(cancel.data).toMatchObject({ runId, status: 'cancelled' });
    expect(cancel.data!.error).toContain(h.stack.platform.arn);
    const again = await client.POST('/runs/{runId}/cancel', { params: { path: { runId } } });
    expect(again.response.status).toBe(409);
    expect(fields(again.error)).toEqual(['runId']);
    expect(
      (await client.POST('/runs/{runId}/cancel', { params: { path: { runId: 'no-such-run' } } })).response.status,
    ).toBe(404);
  });

  it('pages GET /runs by position: a run removed between two pages (retention) does not end the listing; a cursor naming no run is 400 (red team, API)', async () => {
    // Prepare: eight ended runs of one account, started within one millisecond (a Date cannot tell them apart), two of
    // them in the same microsecond (the id breaks the tie): newest first, 7, 6, 5, 4, 3, 2, 1, 0.
    await h.pool.query(
      `insert into dropship.runs (run_id, account_id, trigger, status, layout, folder, started_micros, started_at, finished_at)
       select 'cursor-run-' || i, 'apicursor', 'manual', 'failed', 'dreamdata', 'f' || i, 0, t, t
         from generate_series(0, 7) i,
              lateral (select timestamptz '2026-01-01 04:00:00.123000+00'
                              + (case when i = 5 then 4 else i end) * interval '1 microsecond' as t) s`,
    );
    const page = async (cursor?: string) => {
      const r = await client.GET('/runs', {
        params: { query: { accountId: 'apicursor', limit: 2, ...(cursor ? { cursor } : {}) } },
      });
      expect(r.response.status).toBe(200);
      return { ids: r.data!.items.map((x) => x.runId), next: r.data!.nextCursor };
    };
    // Act: page through, the last run of each page removed before the next page is read (as retention would).
    const seen: string[] = [];
    let next: string | null | undefined;
    for (let n = 0; n < 6; n++) {
      const p = await page(next ?? undefined);
      seen.push(...p.ids);
      next = p.next;
      if (next === null) break;
      await h.pool.query('delete from dropship.runs where run_id = $1', [p.ids[p.ids.length - 1]]);
    }
    // Assess
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1, 0].map((i) => `cursor-run-${i}`));
    expect(next).toBeNull();
    // A cursor naming a run (the format before positions): read on while the run exists; once it is gone, 400.
    const legacy = (runId: string) => Buffer.from(runId, 'utf8').toString('base64url');
    expect((await page(legacy('cursor-run-5'))).ids).toEqual(['cursor-run-3', 'cursor-run-1']);
    for (const cursor of [
      legacy('cursor-run-6'), // removed above
      legacy('no-such-run'),
      Buffer.from('{"s":"2026-02-30T04:00:00.000000Z","r":"x"}').toString('base64url'),
      Buffer.from('{"s":"2026-01-01T04:00:00.123Z","r":"x"}').toString('base64url'),
      '!!',
    ]) {
      const bad = await client.GET('/runs', { params: { query: { cursor } } });
      expect(bad.response.status, cursor).toBe(400);
      expect(fields(bad.error)).toEqual(['cursor']);
    }
  });

  it('serves the setup kit (CloudFormation, Terraform, JSON: `dropship policy`’s documents); 400 names `format`, 404', async () => {
    const docs = policyDocuments(await h.registry.get('apico'), h.stack.platform.arn);
    const path = { accountId: 'apico' };
    const cfn = await client.GET('/destinations/{accountId}/kit', { params: { path } });
    expect(cfn.response.status).toBe(200);
    expect(cfn.data!.format).toBe('cloudformation');
    expect(new URL(cfn.data!.quickCreateUrl!).hash).toContain(`param_ExternalId=${externalId}`);
    const json = await client.GET('/destinations/{accountId}/kit', { params: { path, query: { format: 'json' } } });
    expect(json.data!.format).toBe('json');
    expect(json.data!.quickCreateUrl).toBeUndefined();
    expect(JSON.stringify(JSON.parse(json.data!.body).documents, null, 2)).toBe(JSON.stringify(docs, null, 2));
    const tf = await client.GET('/destinations/{accountId}/kit', {
      params: { path, query: { format: 'terraform' } },
    });
    expect(tf.data!.format).toBe('terraform');
    const module = await parseHcl('main.tf', tf.data!.body);
    const trust = module.resource.aws_iam_role.dropship[0].assume_role_policy as string;
    const writer = module.resource.aws_iam_role_policy.dropship_write[0].policy as string;
    expect(JSON.stringify(JSON.parse(trust), null, 2)).toBe(JSON.stringify(docs.trust, null, 2));
    expect(JSON.stringify(JSON.parse(writer), null, 2)).toBe(JSON.stringify(docs.writer, null, 2));
    const bad = await client.GET('/destinations/{accountId}/kit', {
      params: { path, query: { format: 'pulumi' as never } },
    });
    expect(bad.response.status).toBe(400);
    expect(fields(bad.error)).toEqual(['format']);
    const none = await client.GET('/destinations/{accountId}/kit', { params: { path: { accountId: 'nobody' } } });
    expect(none.response.status).toBe(404);
    expect(fields(none.error)).toEqual(['accountId']);
  });

  it('a kit that cannot be made (DROPSHIP_PRINCIPAL_ARN unset) does not fail the create: 201, setupKit null; GET …/kit answers 500 saying why', async () => {
    const saved = deps.settings;
    const { DROPSHIP_PRINCIPAL_ARN: _principal, ...without } = saved;
    deps.settings = without as Settings;
    try {
      const r = await client.POST('/destinations', { body: destination('apico4') });
      expect(r.response.status, JSON.stringify(r.error)).toBe(201);
      expect(r.data!.setupKit).toBeNull();
      expect((await h.registry.get('apico4')).externalId).toBe(r.data!.externalId);
      const kit = await client.GET('/destinations/{accountId}/kit', { params: { path: { accountId: 'apico4' } } });
      expect(kit.response.status).toBe(500);
      expect(kit.error).toMatchObject({ status: 500, type: 'urn:dropship:problem:setup-kit-unavailable' });
      expect((kit.error as { detail: string }).detail).toContain('DROPSHIP_PRINCIPAL_ARN is not set');
    } finally {
      deps.settings = saved;
    }
    // Configured again, the same destination's kit is served.
    const kit = await client.GET('/destinations/{accountId}/kit', { params: { path: { accountId: 'apico4' } } });
    expect(kit.response.status).toBe(200);
  });

  it('answers 409 to PATCH and DELETE while a receipt of the account is being published (the registry gave up waiting)', async () => {
    const before = await h.registry.get('apico3');
    const saved = deps.registry;
    deps.registry = new Registry(deps.pool, undefined, 1); // waits 1 s instead of 20
    const hold = await holdDestination(deps.pool, 'apico3');
    try {
      const path = { params: { path: { accountId: 'apico3' } } };
      const patch = await client.PATCH('/destinations/{accountId}', {
        ...path,
        body: { plan: before.plan === 'paid' ? 'free' : 'paid' },
      });
      expect(patch.response.status).toBe(409);
      expect(patch.error).toMatchObject({ status: 409, type: 'urn:dropship:problem:destination-busy' });
      const del = await client.DELETE('/destinations/{accountId}', path);
      expect(del.response.status).toBe(409);
    } finally {
      await hold.release();
      deps.registry = saved;
    }
    expect(await h.registry.get('apico3')).toEqual(before); // nothing changed
  });

  it('a PATCH whose account is removed and registered again before its webhook is set: 409, and the new registration has no webhook (red team, API)', async () => {
    // Prepare: the registry the API reads; between the PATCH's last read and its webhook write another caller removes
    // the account and registers it again (a new generation, its own external ID).
    const real = deps.registry;
    const before = await real.get('apico4');
    let reads = 0;
    const racing = Object.create(real) as Registry;
    racing.get = async (id: string) => {
      const d = await real.get(id);
      if (id === 'apico4' && ++reads === 2) {
        await real.remove('apico4');
        await real.add(destination('apico4'));
      }
      return d;
    };
    deps.registry = racing;
    let patch: Awaited<ReturnType<typeof client.PATCH>>;
    try {
      // Act
      patch = await client.PATCH('/destinations/{accountId}', {
        params: { path: { accountId: 'apico4' } },
        body: { webhookUrl: 'http://127.0.0.1:9/the-old-registration' },
      });
    } finally {
      deps.registry = real;
    }
    // Assess: the caller is told; the new registration (another generation) has no webhook.
    expect(patch.response.status).toBe(409);
    expect(patch.error).toMatchObject({ status: 409, type: 'urn:dropship:problem:destination-replaced' });
    const now = await client.GET('/destinations/{accountId}', { params: { path: { accountId: 'apico4' } } });
    expect(now.data!.externalId).not.toBe(before.externalId);
    expect(now.data!.webhookUrl).toBeNull();
  });

  it('deletes a destination (204), then it is gone (404)', async () => {
    const del = await client.DELETE('/destinations/{accountId}', { params: { path: { accountId: 'apico3' } } });
    expect(del.response.status).toBe(204);
    const again = await client.DELETE('/destinations/{accountId}', { params: { path: { accountId: 'apico3' } } });
    expect(again.response.status).toBe(404);
    expect(fields(again.error)).toEqual(['accountId']);
  });

  it('answers 400 naming the parameter for an unknown query parameter, on every operation', async () => {
    for (const r of ROUTES) {
      const path = r.path.replace('{accountId}', 'apico').replace('{runId}', runId);
      const signed = await signedRequest(
        `${api.url}${path}?bogus=1`,
        {
          method: r.method,
          ...(r.body ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
        },
        caller,
      );
      const res = await fetch(signed.url, {
        method: signed.method,
        headers: signed.headers,
        ...(signed.body ? { body: signed.body } : {}),
      });
      expect(await validator.check(r.path, r.method, res), r.operationId).toEqual([]);
      expect(res.status, r.operationId).toBe(400);
      expect(fields(await res.json()), r.operationId).toContain('bogus');
    }
  });

  it('logs one audit line per change with the caller’s principal ARN, and never an external ID or secret', () => {
    const audit = logLines.filter((l) => l.audit === true);
    expect(audit.length).toBeGreaterThanOrEqual(10);
    for (const l of audit) expect(l.principalArn).toBe(h.stack.platform.arn);
    expect(audit.map((l) => l.operation)).toEqual(
      expect.arrayContaining([
        'createDestination',
        'updateDestination',
        'deleteDestination',
        'startRun',
        'cancelRun',
        'checkDestination',
      ]),
    );
    expect(audit.filter((l) => l.method === 'GET')).toEqual([]);
    const all = JSON.stringify(logLines);
    expect(all).not.toContain(externalId);
    expect(all).not.toContain(webhookSecret);
  });

  it('exercised every documented operation and status (but 403 and 413, below, and 500)', () => {
    const missing: string[] = [];
    for (const [, ops] of Object.entries(
      doc.paths as Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>,
    ))
      for (const op of Object.values(ops))
        for (const status of Object.keys(op.responses))
          if (
            !['403', '413', '500'].includes(status) &&
            !validator.seen.some((s) => s.operationId === op.operationId && String(s.status) === status)
          )
            missing.push(`${op.operationId} ${status}`);
    expect(missing).toEqual([]);
  });
});

describe('the local API refuses what AWS IAM refuses (403, API Gateway’s body)', () => {
  const get = async (headers: Record<string, string>) => fetch(`${api.url}/destinations`, { headers });
  const refused = async (res: Response) => {
    expect(res.status).toBe(403);
    expect(await validator.check('/destinations', 'GET', res)).toEqual([]);
    return ((await res.json()) as { message: string }).message;
  };

  it('an unsigned request', async () => {
    expect(await refused(await get({}))).toMatch(/missing Authentication Token/i);
  });

  /**
   * Sends the headers and `sent` bytes of a body that never ends (its declared Content-Length, if any, is `declared`):
   * the answer must come while the body is still being sent, so the server cannot have waited for (or held) the rest.
   */
  async function answerWhileSending(
    method: string,
    path: string,
    headers: Record<string, string>,
    sent: number,
  ): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const req = httpRequest(`${api.url}${path}`, { method, headers });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error('no answer while the body was still being sent: the server waits for all of it'));
      }, 10_000);
      req.on('error', () => {}); // the server closes the connection after answering: writes after it fail
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          req.destroy();
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve(new Response(Buffer.concat(chunks).toString('utf8'), { status: res.statusCode!, headers: h }));
        });
      });
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      let written = 0;
      const more = (): void => {
        while (written < sent) {
          written += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', more);
            return;
          }
        }
      };
      more();
    });
  }

  it('an unsigned request is refused before its body is read (a 1 GB body was read whole first: red team)', async () => {
    const res = await answerWhileSending(
      'POST',
      '/destinations',
      { 'content-type': 'application/json', 'content-length': String(1024 ** 3) },
      1024 * 1024,
    );
    expect(await refused(res)).toMatch(/missing Authentication Token/i);
  });

  it('a body over 10 MB (API Gateway’s limit) gets 413 without being read: declared, or as it arrives', async () => {
    const signed = await signedRequest(
      `${api.url}/destinations`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
      caller,
    );
    const { 'content-length': _length, ...headers } = Object.fromEntries(
      Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]),
    );
    const tooLarge = async (res: Response, method: string, path: string) => {
      expect(res.status).toBe(413);
      expect(await validator.check(path, method, res)).toEqual([]);
      expect(await res.json()).toEqual({ message: 'Request Entity Too Large' });
    };
    // Declared: refused at once.
    const declared = { ...headers, 'content-length': String(MAX_BODY_BYTES + 1) };
    await tooLarge(await answerWhileSending('POST', '/destinations', declared, 1024 * 1024), 'POST', '/destinations');
    await tooLarge(
      await answerWhileSending('PATCH', '/destinations/apico', declared, 1024 * 1024),
      'PATCH',
      '/destinations/{accountId}',
    );
    // Chunked (no length): refused once more than 10 MB has arrived, the body still coming.
    const chunked = { ...headers, 'transfer-encoding': 'chunked' };
    await tooLarge(
      await answerWhileSending('POST', '/destinations', chunked, MAX_BODY_BYTES + 1024 * 1024),
      'POST',
      '/destinations',
    );
    // The API still answers afterwards.
    expect((await client.GET('/destinations', { params: { query: { limit: 1 } } })).response.status).toBe(200);
  });

  it('a tampered request (body changed after signing)', async () => {
    const s = await signedRequest(
      `${api.url}/destinations`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(destination('tamper')),
      },
      caller,
    );
    const res = await fetch(s.url, {
      method: 'POST',
      headers: s.headers,
      body: JSON.stringify(destination('tampered')),
    });
    expect(await refused(res)).toMatch(/signature we calculated does not match/);
    expect((await h.registry.list()).map((d) => d.accountId)).not.toContain('tampered');
  });

  it('a signed request whose path is not valid percent-encoding reaches the router: 400 naming the segment, not 500', async () => {
    const s = await signedRequest(`${api.url}/destinations/acme%ZZ`, { method: 'GET' }, caller);
    const res = await fetch(s.url, { headers: s.headers });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['accountId']);
  });

  it('a wrong secret', async () => {
    const s = await signedRequest(
      `${api.url}/destinations`,
      { method: 'GET' },
      { ...caller, secretAccessKey: 'wrong' },
    );
    expect(await refused(await get(s.headers))).toMatch(/signature we calculated does not match/);
  });

  it('a request replayed outside the SigV4 time window', async () => {
    const s = await signedRequest(`${api.url}/destinations`, { method: 'GET' }, caller, {
      signingDate: new Date(Date.now() - 20 * 60_000),
    });
    expect(await refused(await get(s.headers))).toMatch(/expired/);
  });

  it('a principal whose identity policy does not allow execute-api:Invoke', async () => {
    const stranger: Principal = h.stack.iam.createUser(PLATFORM_ACCOUNT_ID, 'no-api', []);
    const s = await signedRequest(`${api.url}/destinations`, { method: 'GET' }, stranger);
    expect(await refused(await get(s.headers))).toMatch(/not authorized to perform: execute-api:Invoke/);
  });
});
