import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../config/settings.js';
import { secureParameter } from './ssm.js';

// A stand-in SSM endpoint on loopback: answers GetParameter with the value set per test.
let value: string | undefined;
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
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
