import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addressRefusal,
  decryptSecret,
  deliverWithRetries,
  encryptSecret,
  generateSecret,
  sign,
  validateWebhookUrl,
  verify,
} from './webhook.js';

describe('webhook signatures', () => {
  const secret = generateSecret();
  const body = '{"id":"e1","type":"delivery.succeeded","account":"acme"}';

  it('signs t.<body> with HMAC-SHA256 and verifies within the tolerance', () => {
    // Prepare
    const header = sign(secret, body, 1_700_000_000);
    // Act / Assess
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verify(secret, header, body, { nowSeconds: 1_700_000_100 })).toEqual({ ok: true, t: 1_700_000_000 });
    expect(verify(secret, header, Buffer.from(body), { nowSeconds: 1_700_000_000 }).ok).toBe(true);
  });

  it('refuses a replay outside the tolerance, an altered body, another secret and malformed headers', () => {
    const header = sign(secret, body, 1_700_000_000);
    expect(verify(secret, header, body, { nowSeconds: 1_700_000_301 })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('replayed'),
    });
    expect(verify(secret, header, body.replace('acme', 'acmf'), { nowSeconds: 1_700_000_000 }).ok).toBe(false);
    expect(verify(generateSecret(), header, body, { nowSeconds: 1_700_000_000 }).ok).toBe(false);
    expect(verify(secret, 'v1=abc', body).ok).toBe(false);
    expect(verify(secret, 't=1700000000', body, { nowSeconds: 1_700_000_000 }).ok).toBe(false);
    expect(verify(secret, header.replace(/v1=../, 'v1=zz'), body, { nowSeconds: 1_700_000_000 }).ok).toBe(false);
  });

  it('generates 256-bit whsec_ secrets', () => {
    const a = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(generateSecret());
  });
});

describe('webhook secrets at rest', () => {
  it('round-trips through AES-256-GCM and refuses another key or a tampered value', () => {
    const key = randomBytes(32);
    const secret = generateSecret();
    const stored = encryptSecret(secret, key);
    expect(stored).not.toContain(secret.slice(6, 20));
    expect(decryptSecret(stored, key)).toBe(secret);
    expect(encryptSecret(secret, key)).not.toBe(stored); // fresh IV
    expect(() => decryptSecret(stored, randomBytes(32))).toThrow(/DROPSHIP_WEBHOOK_KEY differs/);
    const parts = stored.split('.');
    parts[3] = Buffer.from('x'.repeat(10)).toString('base64url');
    expect(() => decryptSecret(parts.join('.'), key)).toThrow();
  });
});

describe('webhook URLs', () => {
  it('accepts https to public hosts; http and loopback only in development mode (DROPSHIP_WEBHOOK_ALLOW_LOOPBACK)', () => {
    expect(validateWebhookUrl('https://hooks.example.com/dropship')).toBe('https://hooks.example.com/dropship');
    for (const ok of [
      'http://127.0.0.1:8080/x',
      'http://localhost:9/x',
      'http://[::1]:9/x',
      'https://127.0.0.1:9001/x',
    ])
      expect(() => validateWebhookUrl(ok, { allowLoopback: true }), ok).not.toThrow();
    for (const bad of [
      'https://169.254.169.254/latest',
      'https://10.1.2.3/x',
      'https://[fd00::1]/x',
      'https://[::ffff:10.0.0.1]/x',
      'https://[::ffff:169.254.169.254]/x',
      'https://[64:ff9b::a9fe:a9fe]/x',
      'https://[fec0::1]/x',
      'https://198.18.0.1/x',
      'https://127.0.0.1:443/x',
      'https://localhost/x',
      'http://127.0.0.1:9001/2018-06-01/runtime/invocation/next',
      'http://10.0.0.1/x',
      'http://hooks.example.com/x',
      'ftp://x/y',
      'not a url',
      'https://u:p@h.example/x',
    ])
      expect(() => validateWebhookUrl(bad), bad).toThrow();
    // Development mode opens loopback only: never private ranges, never plain http elsewhere.
    // (plain http to a name is checked when connecting: it must resolve to loopback alone.)
    for (const bad of ['https://10.1.2.3/x', 'http://10.0.0.1/x', 'http://8.8.8.8/x', 'https://[::ffff:10.0.0.1]/x'])
      expect(() => validateWebhookUrl(bad, { allowLoopback: true }), bad).toThrow();
  });

  it.each([
    // [address, refused in production, refused in development mode]
    ['93.184.216.34', false, false],
    ['8.8.8.8', false, false],
    ['2606:4700:4700::1111', false, false],
    ['::ffff:8.8.8.8', false, false],
    ['127.0.0.1', true, false],
    ['127.255.0.9', true, false],
    ['::1', true, false],
    ['::ffff:127.0.0.1', true, false],
    ['10.0.0.1', true, true],
    ['172.16.0.1', true, true],
    ['172.31.255.255', true, true],
    ['172.32.0.1', false, false],
    ['192.168.1.1', true, true],
    ['169.254.169.254', true, true],
    ['100.64.0.1', true, true],
    ['100.127.255.254', true, true],
    ['100.128.0.1', false, false],
    ['198.18.0.1', true, true],
    ['198.19.255.255', true, true],
    ['0.0.0.0', true, true],
    ['255.255.255.255', true, true],
    ['224.0.0.1', true, true],
    ['192.0.2.10', true, true],
    ['198.51.100.7', true, true],
    ['203.0.113.9', true, true],
    ['192.0.0.8', true, true],
    ['::', true, true],
    ['::ffff:10.0.0.1', true, true],
    ['::ffff:169.254.169.254', true, true],
    ['::ffff:a9fe:a9fe', true, true],
    ['::10.0.0.1', true, true],
    ['64:ff9b::a9fe:a9fe', true, true],
    ['64:ff9b::808:808', true, true],
    ['64:ff9b:1::1', true, true],
    ['2002:a9fe:a9fe::1', true, true],
    ['2001:0:4136:e378::1', true, true],
    ['fc00::1', true, true],
    ['fd12:3456::1', true, true],
    ['fe80::1', true, true],
    ['fec0::1', true, true],
    ['ff02::1', true, true],
    ['2001:db8::1', true, true],
  ])('address %s: refused %s (production), %s (development mode)', (address, prod, dev) => {
    expect(addressRefusal(address, { allowLoopback: false }) !== undefined).toBe(prod);
    expect(addressRefusal(address, { allowLoopback: true }) !== undefined).toBe(dev);
  });
});

describe('webhook delivery checks the address it connects to', () => {
  const received: string[] = [];
  let http: Server;
  let https: Server;
  let httpPort = 0;
  let httpsPort = 0;
  const dir = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
  beforeAll(async () => {
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      received.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.writeHead(req.url === '/redirect' ? 302 : 204, { location: '/elsewhere' }).end());
    };
    http = createHttpServer(handler);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=hooks.example.test',
      ],
      { stdio: 'ignore' },
    );
    https = createHttpsServer(
      { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) },
      handler,
    );
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as { port: number }).port;
    httpsPort = (https.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => http.close(r));
    await new Promise((r) => https.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const opts = { attempts: 2, backoffMs: 1, timeoutMs: 2000 };
  /** A resolver that answers every name with `address` (what a hostile DNS record does). */
  const resolvingTo = (address: string) => {
    const names: string[] = [];
    return {
      names,
      lookup: async (host: string) => {
        names.push(host);
        return [{ address, family: address.includes(':') ? 6 : 4 }];
      },
    };
  };

  it('a DNS name resolving to 127.0.0.1 or 169.254.169.254 is refused when connecting, once, with no request sent', async () => {
    for (const address of ['127.0.0.1', '169.254.169.254', '::ffff:127.0.0.1']) {
      received.length = 0;
      const dns = resolvingTo(address);
      const r = await deliverWithRetries(`https://hooks.example.test:${httpsPort}/hook`, 's', '{}', {
        ...opts,
        lookup: dns.lookup,
      });
      expect(r, address).toMatchObject({ ok: false, attempts: 1 });
      expect(r.error).toContain(`refused: hooks.example.test resolves to ${address}`);
      expect(dns.names).toEqual(['hooks.example.test']);
      expect(received).toEqual([]);
    }
  });

  it('an address literal is checked too (no DNS), and loopback http works only in development mode, through the same resolver', async () => {
    received.length = 0;
    const literal = await deliverWithRetries(`http://127.0.0.1:${httpPort}/hook`, 's', '{}', opts);
    expect(literal).toMatchObject({ ok: false, attempts: 1 });
    expect(received).toEqual([]);
    const dns = resolvingTo('127.0.0.1');
    const dev = await deliverWithRetries(`http://hooks.example.test:${httpPort}/hook`, 's', '{}', {
      ...opts,
      lookup: dns.lookup,
      allowLoopback: true,
    });
    expect(dev).toMatchObject({ ok: true, status: 204 });
    expect(dns.names).toEqual(['hooks.example.test']);
    expect(received).toEqual(['POST /hook']);
    // Even in development mode, plain http goes to loopback only.
    const publicName = await deliverWithRetries(`http://hooks.example.test:${httpPort}/hook`, 's', '{}', {
      ...opts,
      lookup: resolvingTo('93.184.216.34').lookup,
      allowLoopback: true,
    });
    expect(publicName).toMatchObject({ ok: false, attempts: 1, error: expect.stringContaining('refused: plain http') });
  });

  it("a slow DNS answer counts in the attempt's time limit: each attempt ends at the timeout", async () => {
    // Prepare: a resolver that answers after 4 s (an attacker-run authoritative server), 300 ms per attempt.
    const names: string[] = [];
    const slow = (host: string) => {
      names.push(host);
      return new Promise<{ address: string; family: number }[]>((r) =>
        setTimeout(() => r([{ address: '93.184.216.34', family: 4 }]), 4000).unref(),
      );
    };
    const t0 = performance.now();

    // Act
    const r = await deliverWithRetries('https://hooks.example.test/hook', 's', '{}', {
      attempts: 2,
      backoffMs: 1,
      timeoutMs: 300,
      lookup: slow,
    });

    // Assess: two attempts, each timed out at its limit (not after the resolver's 4 s).
    const elapsed = performance.now() - t0;
    expect(r).toMatchObject({ ok: false, attempts: 2, error: 'timed out' });
    expect(names).toEqual(['hooks.example.test', 'hooks.example.test']);
    expect(elapsed).toBeLessThan(2000);
  });

  it('redirects are not followed', async () => {
    received.length = 0;
    const r = await deliverWithRetries(`http://127.0.0.1:${httpPort}/redirect`, 's', '{}', {
      ...opts,
      allowLoopback: true,
    });
    expect(r).toMatchObject({ ok: false, status: 302 });
    expect(received).toEqual(['POST /redirect', 'POST /redirect']);
  });
});
