import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { CLIENT_TYPES_PATH, clientTypesText, OPENAPI_PATH, openApiText } from '../src/api/openapi-files.js';
import { ROUTES } from '../src/api/routes.js';
import { REPO_ROOT } from '../src/devstack/stack.js';

/**
 * schemas/openapi.json is generated from the API's routes and zod schemas (npm run docs:openapi), and
 * src/api/client/schema.ts from it by openapi-typescript: both committed files must be what the
 * generators write now, and the document must be valid OpenAPI 3.1 to a validator we did not write.
 */
const committed = (p: string) => readFileSync(join(REPO_ROOT, p), 'utf8');

describe('the OpenAPI document', () => {
  it('is the one generated from the routes and zod schemas (run npm run docs:openapi after a change)', () => {
    expect(committed(OPENAPI_PATH)).toBe(openApiText());
  });

  it('has client types generated from it by openapi-typescript, current', async () => {
    expect(committed(CLIENT_TYPES_PATH)).toBe(await clientTypesText(committed(OPENAPI_PATH)));
  });

  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const res = await validator.validate(JSON.parse(committed(OPENAPI_PATH)));
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('is what docs/operations/api.md lists, operation by operation, with the same statuses', () => {
    const page = committed('docs/operations/api.md');
    for (const r of ROUTES) {
      const statuses = Object.keys(r.responses)
        .filter((s) => s !== '403' && s !== '500')
        .join(', ');
      expect(page, r.operationId).toMatch(
        new RegExp(
          `\\| \`${r.method} ${r.path.replace(/[{}]/g, '\\$&')}\` +\\| ${r.operationId} +\\|[^\\n]*\\| ${statuses} +\\|`,
        ),
      );
    }
  });

  it('lists every route the router serves, and nothing else', () => {
    const doc = JSON.parse(committed(OPENAPI_PATH)) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, o]) => `${m.toUpperCase()} ${p} ${o.operationId}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path} ${r.operationId}`).sort());
  });
});
