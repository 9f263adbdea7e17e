import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';

/**
 * Signed webhooks. Every POST carries
 *   Dropship-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the secret>
 * and a JSON body with `type`, `account`, `run_id`, `occurred_at` and `receipt_key` or `reason`/`fix`
 * (plus `id`, the event's id, the same on every retry, for de-duplication).
 *
 * The signing secret (`whsec_` + 32 random bytes, base64url) is shown once. dropship needs the
 * secret itself to sign, so it is stored encrypted (AES-256-GCM under DROPSHIP_WEBHOOK_KEY), not
 * hashed; the key lives outside the database (an environment setting locally, SSM SecureString —
 * or a KMS-encrypted value — in production), so a copy of the database alone reveals no secret.
 */
export const EVENT_TYPES = [
  'delivery.succeeded',
  'delivery.failed',
  'destination.check_failed',
  'destination.paused',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface WebhookEvent {
  id: string;
  type: EventType;
  account: string;
  run_id: string | null;
  occurred_at: string;
  receipt_key?: string;
  reason?: string;
  fix?: string;
}

/** A webhook URL or stored secret that cannot be used. Not retryable. */
export class WebhookError extends DropshipError {
  readonly code: string = 'webhook';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
    this.name = 'WebhookError';
  }
}

const SIGNATURE_HEADER = 'Dropship-Signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** https anywhere; plain http only to a loopback address (local testing). No credentials in the URL. */
export function validateWebhookUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookError(`webhook URL "${raw}" is not a URL (e.g. https://hooks.example.com/dropship)`);
  }
  if (url.username || url.password) throw new WebhookError('webhook URLs cannot carry a user name or password');
  if (url.protocol === 'https:') {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isPrivateAddress(host))
      throw new WebhookError(
        `webhook URL points at a private or link-local address (${host}); use a public https endpoint`,
      );
    return url.toString();
  }
  if (url.protocol === 'http:') {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const loopback = host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
    if (loopback) return url.toString();
    throw new WebhookError(`webhook URL must use https (plain http is allowed only to loopback addresses): ${raw}`);
  }
  throw new WebhookError(`webhook URL must use https: ${raw}`);
}

/** Literal private, link-local or unspecified addresses (not loopback): no webhooks into dropship's own network. */
function isPrivateAddress(host: string): boolean {
  if (isIP(host) === 4) {
    const [a, b] = host.split('.').map(Number) as [number, number];
    return (
      a === 10 ||
      a === 0 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254) ||
      (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (isIP(host) === 6) return /^(fc|fd|fe[89ab])/i.test(host) || host === '::';
  return false;
}

export function sign(secret: string, body: string, t: number): string {
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

export type Verification = { ok: true; t: number } | { ok: false; reason: string };

/** The verification a receiver does (the same as the README's ten lines), with reasons. */
export function verify(
  secret: string,
  header: string,
  rawBody: string | Buffer,
  opts: { toleranceSeconds?: number; nowSeconds?: number } = {},
): Verification {
  const fields = new Map<string, string[]>();
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    fields.set(k, [...(fields.get(k) ?? []), part.slice(i + 1).trim()]);
  }
  const tRaw = fields.get('t')?.[0];
  const t = Number(tRaw);
  if (!tRaw || !Number.isInteger(t)) return { ok: false, reason: 'the header has no t=<unix seconds>' };
  const sigs = fields.get('v1') ?? [];
  if (sigs.length === 0) return { ok: false, reason: 'the header has no v1=<signature>' };
  const now = opts.nowSeconds ?? Date.now() / 1000;
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - t) > tolerance)
    return {
      ok: false,
      reason: `the timestamp is ${Math.round(now - t)} s old, outside the ${tolerance} s tolerance (replayed?)`,
    };
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  const match = sigs.some((s) => {
    const given = Buffer.from(s, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return match ? { ok: true, t } : { ok: false, reason: 'the signature does not match the body and secret' };
}

/** AES-256-GCM: `v1.<iv>.<tag>.<ciphertext>` (base64url). */
export function encryptSecret(secret: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ct]
    .map((x) => (typeof x === 'string' ? x : x.toString('base64url')))
    .join('.');
}

export function decryptSecret(stored: string, key: Buffer): string {
  const [v, iv, tag, ct] = stored.split('.');
  if (v !== 'v1' || !iv || !tag || ct === undefined)
    throw new WebhookError('stored webhook secret has an unknown format');
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  } catch (e) {
    throw new WebhookError(
      'cannot decrypt the webhook secret: DROPSHIP_WEBHOOK_KEY differs from the key it was stored with',
      {
        cause: e,
      },
    );
  }
}

export interface PostResult {
  ok: boolean;
  status?: number;
  error?: string;
}

/** One POST with a time limit; redirects are not followed (a redirect is a failed delivery). */
async function postOnce(
  url: string,
  secret: string,
  body: string,
  opts: { timeoutMs: number; nowSeconds?: number },
): Promise<PostResult> {
  const t = Math.floor(opts.nowSeconds ?? Date.now() / 1000);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'dropship-webhooks/1',
        [SIGNATURE_HEADER]: sign(secret, body, t),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.status >= 200 && res.status < 300 ? { ok: true, status: res.status } : { ok: false, status: res.status };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { ok: false, error: err.name === 'TimeoutError' ? 'timed out' : (err.cause?.code ?? err.message) };
  }
}

/**
 * Up to `attempts` POSTs; each non-2xx answer, timeout or connection error waits
 * backoff × 2^(n−1) (with jitter between 50 % and 100 %) before the next. Each attempt is signed
 * with a fresh timestamp.
 */
export async function deliverWithRetries(
  url: string,
  secret: string,
  body: string,
  opts: { attempts: number; backoffMs: number; timeoutMs: number; onAttempt?: (n: number, r: PostResult) => void },
): Promise<PostResult & { attempts: number }> {
  let last: PostResult = { ok: false, error: 'not attempted' };
  for (let n = 1; n <= opts.attempts; n++) {
    last = await postOnce(url, secret, body, { timeoutMs: opts.timeoutMs });
    opts.onAttempt?.(n, last);
    if (last.ok) return { ...last, attempts: n };
    if (n < opts.attempts) {
      const delay = opts.backoffMs * 2 ** (n - 1) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return { ...last, attempts: opts.attempts };
}
