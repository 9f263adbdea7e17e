import { describe, expect, it } from 'vitest';
import { createLogger } from '../log/logger.js';
import { INTERNAL_API_DETAIL } from './problem.js';
import { type ApiDeps, type HttpApiEvent, handleApiEvent } from './router.js';

/**
 * The router's edges with fakes (the real API runs against the local stack in test/api.test.ts): an
 * unknown path or method, and a failure on dropship's side, which says only what status.json would.
 */
const lines: string[] = [];
const deps = {
  log: createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } }),
  registry: {
    get: async () => {
      throw new Error('connect ECONNREFUSED 10.0.0.5:5432 (password=hunter2)');
    },
  },
} as unknown as ApiDeps;

const event = (method: string, rawPath: string): HttpApiEvent => ({
  rawPath,
  rawQueryString: '',
  headers: {},
  requestContext: { requestId: 'r-1', http: { method }, authorizer: { iam: { userArn: 'arn:aws:iam::1:user/a' } } },
});

describe('handleApiEvent', () => {
  it('answers an unknown path 404 and a known path with another method 405, as problem+json', async () => {
    const none = await handleApiEvent(event('GET', '/nothing'), deps);
    expect(none.statusCode).toBe(404);
    expect(none.headers['content-type']).toBe('application/problem+json');
    const put = await handleApiEvent(event('PUT', '/destinations'), deps);
    expect(put.statusCode).toBe(405);
    expect(JSON.parse(put.body!)).toMatchObject({ status: 405, instance: 'urn:dropship:request:r-1' });
  });

  it('answers a path segment that is not valid percent-encoding 400, naming it (not a 500 on its side)', async () => {
    for (const path of ['/destinations/acme%', '/destinations/%ZZ/status']) {
      const res = await handleApiEvent(event('GET', path), deps);
      expect(res.statusCode, path).toBe(400);
      expect(JSON.parse(res.body!).errors).toEqual([{ field: 'accountId', message: 'not valid percent-encoding' }]);
    }
  });

  it('answers a failure on its side 500 in words for any request (not the export’s), never the internal detail', async () => {
    const res = await handleApiEvent(event('GET', '/destinations/acme'), deps);
    expect(res.statusCode).toBe(500);
    const body = JSON.parse(res.body!);
    expect(body).toEqual({
      type: 'urn:dropship:problem:internal',
      title: 'Internal Server Error',
      status: 500,
      detail: INTERNAL_API_DETAIL,
      instance: 'urn:dropship:request:r-1',
    });
    expect(res.body).not.toContain('10.0.0.5');
    expect(lines.join('\n')).toContain('api request failed'); // the operator's detail goes to the log
  });

  it('answers a NUL character anywhere in a request 400 naming where, before any query (red team: 500s, a stuck import)', async () => {
    const post = (body: string): HttpApiEvent => ({
      ...event('POST', '/destinations'),
      headers: { 'content-type': 'application/json' },
      body,
    });
    const cases: [HttpApiEvent, string][] = [
      [event('GET', '/destinations/%00'), 'accountId'],
      [event('DELETE', '/destinations/a%00b'), 'accountId'],
      [event('GET', '/runs/%00'), 'runId'],
      [{ ...event('GET', '/runs'), rawQueryString: 'accountId=%00' }, 'accountId'],
      [{ ...event('GET', '/destinations'), rawQueryString: 'cursor=AA' }, 'cursor'],
      [post('{"accountId":"acme","sourceSchema":"s\\u0000"}'), 'sourceSchema'],
      [post('{"selection":{"excludeTables":["ok","x\\u0000"]}}'), 'selection.excludeTables[1]'],
    ];
    for (const [e, field] of cases) {
      const res = await handleApiEvent(e, deps);
      expect(res.statusCode, `${e.requestContext.http.method} ${e.rawPath}?${e.rawQueryString}`).toBe(400);
      expect(JSON.parse(res.body!).errors.map((x: { field: string }) => x.field)).toContain(field);
    }
  });

  it('refuses ?__proto__= as an unknown query parameter, and a body nested 200,000 deep without overflowing', async () => {
    const proto = await handleApiEvent({ ...event('GET', '/destinations'), rawQueryString: '__proto__=1' }, deps);
    expect(proto.statusCode).toBe(400);
    expect(JSON.parse(proto.body!).errors).toContainEqual({ field: '__proto__', message: expect.any(String) });
    const deep = await handleApiEvent(
      {
        ...event('POST', '/destinations'),
        headers: { 'content-type': 'application/json' },
        body: `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
      },
      deps,
    );
    expect(deep.statusCode).toBe(400);
  });
});
