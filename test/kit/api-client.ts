import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import Ajv2020 from 'ajv/dist/2020.js';
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from '../../src/api/client/schema.js';

/**
 * The contract tests' client, none of it hand-written: openapi-fetch typed by the openapi-typescript
 * types of schemas/openapi.json, over a fetch that signs every request with AWS Signature Version 4
 * (@smithy/signature-v4, the AWS SDK's own signer; service execute-api) — as a vendor's backend
 * calls the deployed API. Every response is checked against the document by ajv's JSON Schema
 * 2020-12 validator (OpenAPI 3.1's schema dialect; it resolves the document's own $refs, so no
 * dereferencing step is needed): its status must be documented for the operation, its content type
 * and body must match the documented schema.
 */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignOptions {
  region?: string;
  /** Sign as if at this time (a request replayed later). */
  signingDate?: Date;
}

export async function signedRequest(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string },
  creds: Credentials,
  o: SignOptions = {},
): Promise<{ url: string; method: string; headers: Record<string, string>; body?: string }> {
  const u = new URL(url);
  const signer = new SignatureV4({
    service: 'execute-api',
    region: o.region ?? 'us-east-1',
    credentials: creds,
    sha256: Hash.bind(null, 'sha256'),
  });
  const query: Record<string, string> = {};
  for (const [k, v] of u.searchParams) query[k] = v;
  const signed = await signer.sign(
    {
      method: init.method,
      protocol: u.protocol,
      hostname: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      query,
      headers: { host: u.host, ...(init.headers ?? {}) },
      ...(init.body !== undefined ? { body: init.body } : {}),
    },
    o.signingDate ? { signingDate: o.signingDate } : {},
  );
  const { host: _h, ...headers } = signed.headers as Record<string, string>;
  return { url, method: init.method, headers, ...(init.body !== undefined ? { body: init.body } : {}) };
}

/** A fetch that signs each request (what the client gives it) before sending it. */
export function signingFetch(creds: Credentials, o: SignOptions = {}): (input: Request) => Promise<Response> {
  return async (input) => {
    const body = input.body ? await input.text() : undefined;
    const headers: Record<string, string> = {};
    input.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const r = await signedRequest(
      input.url,
      { method: input.method, headers, ...(body !== undefined ? { body } : {}) },
      creds,
      o,
    );
    return fetch(r.url, { method: r.method, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) });
  };
}

type Doc = {
  paths: Record<
    string,
    Record<string, { operationId: string; responses: Record<string, { content?: Record<string, unknown> }> }>
  >;
};

/** One response as the client saw it. */
export interface Seen {
  operationId: string;
  status: number;
}

/** Validates responses against the OpenAPI document; throws on any status, content type or field it does not document. */
export class ResponseValidator {
  private readonly ajv = new Ajv2020.default({ strict: false, allErrors: true });
  readonly seen: Seen[] = [];

  constructor(readonly doc: Doc) {
    this.ajv.addSchema(doc as object, 'openapi');
  }

  async check(schemaPath: string, method: string, response: Response): Promise<string[]> {
    const m = method.toLowerCase();
    const op = this.doc.paths[schemaPath]?.[m];
    if (!op) return [`${method} ${schemaPath} is not in the document`];
    this.seen.push({ operationId: op.operationId, status: response.status });
    const documented = op.responses[String(response.status)];
    if (!documented) return [`${op.operationId}: status ${response.status} is not documented`];
    const text = await response.clone().text();
    if (!documented.content)
      return text === '' ? [] : [`${op.operationId} ${response.status}: a body where none is documented`];
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (!(type in documented.content))
      return [
        `${op.operationId} ${response.status}: content type ${type} is not documented (${Object.keys(documented.content).join(', ')})`,
      ];
    const esc = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
    const ref = `openapi#/paths/${esc(schemaPath)}/${m}/responses/${response.status}/content/${esc(type)}/schema`;
    const validate = this.ajv.getSchema(ref) ?? this.ajv.compile({ $ref: ref });
    if (validate(JSON.parse(text))) return [];
    return (validate.errors ?? []).map(
      (e) => `${op.operationId} ${response.status}: ${e.instancePath || '$'} ${e.message} ${JSON.stringify(e.params)}`,
    );
  }
}

/** The typed client: signed requests, every response validated (a drift throws, failing the call). */
export function apiClient(baseUrl: string, creds: Credentials, validator: ResponseValidator) {
  const client = createClient<paths>({ baseUrl, fetch: signingFetch(creds) });
  const check: Middleware = {
    async onResponse({ schemaPath, request, response }) {
      const problems = await validator.check(schemaPath, request.method, response);
      if (problems.length > 0) throw new Error(`response drifted from schemas/openapi.json:\n${problems.join('\n')}`);
      return undefined;
    },
  };
  client.use(check);
  return client;
}
