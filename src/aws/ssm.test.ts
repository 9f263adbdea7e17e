import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadSettings } from '../config/settings.js';
import { withSourceUrlFromSsm } from '../run/lambda.js';
import { secureParameter } from './ssm.js';

// A stand-in SSM endpoint on loopback: answers GetParameter with the value set per test.
let value: string | undefined;
/** The parameter names asked for, in order. */
const asked: string[] = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => {
    body += c;
  });
  req.on('end', () => {
    asked.push((JSON.parse(body) as { Name: string }).Name);
    res.setHeader('content-type', 'application/x-amz-json-1.1');
    if (value === undefined) {
      res.statusCode = 400;
      res.end(JSON.stringify({ __type: 'ParameterNotFound', message: 'not found' }));
      return;
    }
    res.end(JSON.stringify({ Parameter: { Name: '/p', Type: 'SecureString', Value: value, Version: 1 } }));
  });
});
const saved = { ...process.env };

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SSM: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
});
afterAll(() => {
  process.env = saved;
  server.close();
});

const postgresUrl = (v: string) => (/^postgres(ql)?:\/\//.test(v) ? v : undefined);

describe('SSM SecureString parameters', () => {
  it('returns the checked value', async () => {
    value = 'postgres://u:p@db:5432/dropship';
    await expect(secureParameter('/p', postgresUrl, 'a postgres:// URL', { maxAttempts: 1 })).resolves.toBe(value);
  });

  it('refuses a value that fails the check, naming the parameter but not the value', async () => {
    value = 'mysql://secret@db';
    const e = await secureParameter('/p', postgresUrl, 'a postgres:// URL', { maxAttempts: 1 }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toBe('SSM parameter /p does not hold a postgres:// URL');
  });

  it('turns a missing parameter into a ConfigError that keeps the cause', async () => {
    value = undefined;
    const e = await secureParameter('/p', postgresUrl, 'a postgres:// URL', { maxAttempts: 1 }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/^cannot read SSM parameter \/p: ParameterNotFound/);
    expect(e.cause).toBeDefined();
  });
});

describe('the source database URL on Lambda (deploy red team: a deployment had no way to give it)', () => {
  it('is read from the SecureString DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER names, once, at cold start', async () => {
    value = 'postgres://reader:pw@replica.internal:5432/data';
    asked.length = 0;
    const settings = await withSourceUrlFromSsm(
      loadSettings({ DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: '/dropship/prod/source-url' }),
    );
    expect(settings.DROPSHIP_SOURCE_DATABASE_URL).toBe(value);
    expect(asked).toEqual(['/dropship/prod/source-url']);
  });

  it('is not asked for without the parameter (the registry’s database), nor when the URL is given directly', async () => {
    asked.length = 0;
    expect((await withSourceUrlFromSsm(loadSettings({}))).DROPSHIP_SOURCE_DATABASE_URL).toBeUndefined();
    // serverless.yml sets the variable empty when the deploy did not give it: an empty variable is an unset setting.
    expect(
      (await withSourceUrlFromSsm(loadSettings({ DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: '' })))
        .DROPSHIP_SOURCE_DATABASE_URL,
    ).toBeUndefined();
    const direct = loadSettings({
      DROPSHIP_SOURCE_DATABASE_URL: 'postgres://u@direct/data',
      DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: '/dropship/prod/source-url',
    });
    expect((await withSourceUrlFromSsm(direct)).DROPSHIP_SOURCE_DATABASE_URL).toBe('postgres://u@direct/data');
    expect(asked).toEqual([]);
  });

  it('refuses a parameter that does not hold a postgres:// URL, naming the parameter', async () => {
    value = 'not a url';
    const e = await withSourceUrlFromSsm(
      loadSettings({
        DROPSHIP_SOURCE_DATABASE_URL_SSM_PARAMETER: '/dropship/prod/source-url',
        DROPSHIP_AWS_MAX_ATTEMPTS: '1',
      }),
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toBe('SSM parameter /dropship/prod/source-url does not hold a postgres:// URL');
  });
});
