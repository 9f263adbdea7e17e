import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptSecret, encryptSecret, generateSecret, sign, validateWebhookUrl, verify } from './webhook.js';

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
  it('accepts https anywhere and http only to loopback', () => {
    expect(validateWebhookUrl('https://hooks.example.com/dropship')).toBe('https://hooks.example.com/dropship');
    for (const ok of ['http://127.0.0.1:8080/x', 'http://localhost:9/x', 'http://[::1]:9/x'])
      expect(() => validateWebhookUrl(ok)).not.toThrow();
    for (const bad of [
      'https://169.254.169.254/latest',
      'https://10.1.2.3/x',
      'https://[fd00::1]/x',
      'http://10.0.0.1/x',
      'http://hooks.example.com/x',
      'ftp://x/y',
      'not a url',
      'https://u:p@h.example/x',
    ])
      expect(() => validateWebhookUrl(bad), bad).toThrow();
  });
});
