import { z } from 'zod';
import { COMPONENTS, type ComponentName, ROUTES } from './routes.js';
import { statusDocumentSchema } from './schemas.js';

/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the routes (./routes.ts) and their zod
 * schemas (z.toJSONSchema, JSON Schema 2020-12 — OpenAPI 3.1's own dialect). `npm run docs:openapi`
 * writes it to schemas/openapi.json; test/openapi.test.ts fails when the committed one differs.
 */
const ref = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return rest;
}

function parameters(obj: z.ZodObject | undefined, where: 'path' | 'query'): unknown[] {
  if (!obj) return [];
  const s = jsonSchema(obj, 'input') as { properties: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(s.properties).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name,
      in: where,
      required: where === 'path' || (s.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const responses: Record<string, unknown> = {};
    for (const [status, a] of Object.entries(r.responses)) {
      const type = a.schema === 'Problem' ? 'application/problem+json' : 'application/json';
      responses[status] = {
        description: a.description,
        ...(a.schema ? { content: { [type]: { schema: ref(a.schema) } } } : {}),
      };
    }
    const params = [...parameters(r.params, 'path'), ...parameters(r.query, 'query')];
    if (r.idempotent)
      params.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          'Retry safely: the same key with the same request answers the first response again (for 24 hours, per caller); with a different request, 422.',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      });
    paths[r.path] ??= {};
    paths[r.path]![r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      description: r.description,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(r.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: ref(r.body.name) } } } }
        : {}),
      responses,
    };
  }
  const schemas: Record<string, unknown> = {};
  for (const [name, c] of Object.entries(COMPONENTS)) schemas[name] = jsonSchema(c.schema, c.io);
  schemas.DestinationStatus = statusDocumentSchema();
  schemas.GatewayError = {
    type: 'object',
    description:
      'What AWS (API Gateway) answers when it refuses a call (IAM refused it, or its body is over 10 MB); not problem+json',
    properties: { message: { type: 'string' } },
    required: ['message'],
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'dropship API',
      version: '1',
      description:
        'Register, check, run and watch customers’ destinations. Every call is signed with AWS Signature Version 4 (service `execute-api`) by a principal allowed `execute-api:Invoke` on the API; errors are RFC 9457 problem details. See docs/operations/api.md.',
    },
    security: [{ sigv4: [] }],
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => (a < b ? -1 : 1))),
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          description: 'AWS Signature Version 4 (AWS_IAM authorization of API Gateway)',
        },
      },
    },
  };
}
