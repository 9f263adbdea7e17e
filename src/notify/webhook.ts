import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
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

/**
 * Where a webhook may go. Checked twice: when the URL is set (a friendly early error on literal
 * addresses) and when connecting, on every address the host name resolves to (a DNS name can point
 * anywhere, and change): the connection goes to the address that was checked, never re-resolved.
 *
 * Refused: private (10/8, 172.16/12, 192.168/16), loopback (127/8, ::1), link-local (169.254/16 —
 * the cloud metadata service —, fe80::/10), CGNAT (100.64/10), benchmarking (198.18/15), the
 * IETF/documentation ranges (192.0.0/24, 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32),
 * unspecified, multicast, reserved and broadcast (0/8, 224/4, 240/4), ULA (fc00::/7), site-local
 * (fec0::/10), and IPv6 forms that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96 — checked as
 * the IPv4 address it is —, IPv4-compatible ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4
 * 2002::/16, Teredo and the rest of 2001::/23). Loopback (and plain http, to loopback only) are
 * allowed in development mode alone: DROPSHIP_WEBHOOK_ALLOW_LOOPBACK=true, for a local receiver.
 */
const REFUSED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  REFUSED.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 96], // unspecified and IPv4-compatible (::a.b.c.d); ::1 is loopback (below)
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['3fff::', 20],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  REFUSED.addSubnet(net, bits, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export interface WebhookNetworkOptions {
  /** Development mode (DROPSHIP_WEBHOOK_ALLOW_LOOPBACK): loopback addresses, and plain http to them. */
  allowLoopback?: boolean;
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d, ::ffff:hhhh:hhhh) stands for. */
function mappedIPv4(address: string): string | undefined {
  const m = /^(?:0{0,4}:){0,5}:?ffff:(.+)$/i.exec(address);
  if (!m || isIP(address) !== 6) return undefined;
  const tail = m[1]!;
  if (isIP(tail) === 4) return tail;
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(tail);
  if (!hex) return undefined;
  const hi = Number.parseInt(hex[1]!, 16);
  const lo = Number.parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Why a webhook must not connect to `address` (an IP literal), or undefined when it may. */
export function addressRefusal(address: string, opts: WebhookNetworkOptions = {}): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  const v4 = family === 4 ? address : mappedIPv4(address);
  if (v4 !== undefined) {
    if (LOOPBACK.check(v4, 'ipv4')) return opts.allowLoopback ? undefined : `${address} is a loopback address`;
    return REFUSED.check(v4, 'ipv4') ? `${address} is a private or reserved address` : undefined;
  }
  if (LOOPBACK.check(address, 'ipv6')) return opts.allowLoopback ? undefined : `${address} is a loopback address`;
  return REFUSED.check(address, 'ipv6') ? `${address} is a private or reserved address` : undefined;
}

/**
 * https to a public host; with `allowLoopback` (development mode) also loopback, over http too.
 * No credentials in the URL. Literal addresses are checked here; names when connecting.
 */
export function validateWebhookUrl(raw: string, opts: WebhookNetworkOptions = {}): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookError(`webhook URL "${raw}" is not a URL (e.g. https://hooks.example.com/dropship)`);
  }
  if (url.username || url.password) throw new WebhookError('webhook URLs cannot carry a user name or password');
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new WebhookError(`webhook URL must use https: ${raw}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopbackName = host === 'localhost' || host.endsWith('.localhost');
  if (loopbackName && !opts.allowLoopback)
    throw new WebhookError(
      `webhook URL points at a loopback address (${host}); loopback is allowed only in development mode (DROPSHIP_WEBHOOK_ALLOW_LOOPBACK)`,
    );
  const refusal = isIP(host) ? addressRefusal(host, opts) : undefined;
  if (refusal)
    throw new WebhookError(
      `webhook URL points at a private, loopback or reserved address (${refusal}); use a public https endpoint`,
    );
  if (url.protocol === 'http:') {
    const loopback =
      loopbackName ||
      (isIP(host) !== 0 &&
        LOOPBACK.check(mappedIPv4(host) ?? host, isIP(mappedIPv4(host) ?? host) === 4 ? 'ipv4' : 'ipv6'));
    // A name is checked when connecting (http only when it resolves to loopback addresses alone).
    if (!(opts.allowLoopback && (loopback || isIP(host) === 0)))
      throw new WebhookError(
        `webhook URL must use https (plain http is allowed only to loopback, in development mode): ${raw}`,
      );
  }
  return url.toString();
}

/** A resolver: every address of a host name (node:dns by default; tests inject one). */
export type WebhookLookup = (host: string) => Promise<{ address: string; family: number }[]>;

const systemLookup: WebhookLookup = (host) => dnsLookup(host, { all: true, verbatim: true });

/** A delivery that must not happen (the URL or an address it resolves to is refused). Not retried. */
class Refused extends Error {}

export function sign(secret: string, body: string, t: number): string {
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

export type Verification = { ok: true; t: number } | { ok: false; reason: string };

/** The verification a receiver does (the same as the ten lines in docs/customer/webhooks.md), with reasons. */
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

/**
 * `p`, or the signal's reason once `signal` aborts first (what `p` settles to later is dropped). A DNS lookup cannot be
 * cancelled, but it need not be waited for.
 */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * One POST with a time limit — the whole attempt, the DNS lookup included (red team, notify: a slow resolver held each
 * attempt as long as it liked, past DROPSHIP_WEBHOOK_TIMEOUT_MS); redirects are not followed (a redirect is a failed
 * delivery). The host is resolved here, every address checked (one refused address refuses the delivery), and the
 * connection made to the checked address (a `lookup` that returns it: no second resolution a
 * rebinding DNS could answer differently); an address literal is checked as it is.
 */
async function postOnce(
  url: string,
  secret: string,
  body: string,
  opts: { timeoutMs: number; nowSeconds?: number; lookup?: WebhookLookup } & WebhookNetworkOptions,
): Promise<PostResult> {
  const t = Math.floor(opts.nowSeconds ?? Date.now() / 1000);
  const signal = AbortSignal.timeout(opts.timeoutMs);
  try {
    const target = new URL(validateWebhookUrl(url, opts));
    const host = target.hostname.replace(/^\[|\]$/g, '');
    let pinned: { address: string; family: number } | undefined;
    if (!isIP(host)) {
      const addresses = await untilAborted((opts.lookup ?? systemLookup)(host), signal);
      if (addresses.length === 0) return { ok: false, error: `${host} does not resolve` };
      for (const a of addresses) {
        const refusal = addressRefusal(a.address, opts);
        if (refusal) throw new Refused(`refused: ${host} resolves to ${a.address} (${refusal})`);
      }
      if (target.protocol === 'http:' && !addresses.every((a) => addressRefusal(a.address, {}) !== undefined))
        throw new Refused(`refused: plain http to ${host}, which is not a loopback address`);
      pinned = addresses[0]!;
    }
    const lookup: LookupFunction | undefined = pinned
      ? (_h, o, cb) => {
          if ((o as { all?: boolean }).all)
            (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [pinned!]);
          else cb(null, pinned!.address, pinned!.family);
        }
      : undefined;
    // node:http and node:https are loaded when a webhook is sent, not when this module is: a static ES import of
    // node:http makes Node build its module facade, which reads every export — and node:http's lazy getters
    // (WebSocket, …) load undici: ~25 ms of CPU at every process's start, webhook or not (a CPU profile of the bench's
    // export child, test/bench/export-child.ts, 1,000 rows).
    const request =
      target.protocol === 'https:' ? (await import('node:https')).request : (await import('node:http')).request;
    return await new Promise<PostResult>((resolve, reject) => {
      const req = request(
        target,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': 'dropship-webhooks/1',
            [SIGNATURE_HEADER]: sign(secret, body, t),
          },
          signal,
          ...(lookup ? { lookup } : {}),
          // The TLS name is the URL's host, whatever address it was pinned to.
          ...(target.protocol === 'https:' && pinned ? { servername: host } : {}),
        },
        (res) => {
          res.resume();
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            resolve(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  } catch (e) {
    if (e instanceof Refused || e instanceof WebhookError)
      throw new Refused(
        (e as Error).message.startsWith('refused') ? (e as Error).message : `refused: ${(e as Error).message}`,
      );
    const err = e as Error & { code?: string; cause?: { code?: string } };
    if (signal.aborted || err.name === 'AbortError' || err.name === 'TimeoutError')
      return { ok: false, error: 'timed out' };
    return { ok: false, error: err.code ?? err.cause?.code ?? err.message };
  }
}

export interface DeliveryOptions extends WebhookNetworkOptions {
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
  onAttempt?: (n: number, r: PostResult) => void;
  /** Resolver for the URL's host (tests inject one). */
  lookup?: WebhookLookup;
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
  opts: DeliveryOptions,
): Promise<PostResult & { attempts: number }> {
  return deliverToCurrent(async () => ({ url, secret }), body, opts);
}

/**
 * As `deliverWithRetries`, with the URL and secret asked of `target` right before each POST (the outbox reads them
 * from the event's own registration and webhook version: src/notify/outcome.ts). `target` answering undefined stops
 * the delivery before that POST: `withdrawn`, with the attempts made before it.
 */
export async function deliverToCurrent(
  target: () => Promise<{ url: string; secret: string } | undefined>,
  body: string,
  opts: DeliveryOptions,
): Promise<PostResult & { attempts: number; withdrawn?: true }> {
  let last: PostResult = { ok: false, error: 'not attempted' };
  for (let n = 1; n <= opts.attempts; n++) {
    const to = await target();
    if (to === undefined) return { ...last, attempts: n - 1, withdrawn: true };
    try {
      last = await postOnce(to.url, to.secret, body, opts);
    } catch (e) {
      // A refused target is refused the same way every time: no retries.
      last = { ok: false, error: (e as Error).message };
      opts.onAttempt?.(n, last);
      return { ...last, attempts: n };
    }
    opts.onAttempt?.(n, last);
    if (last.ok) return { ...last, attempts: n };
    if (n < opts.attempts) {
      const delay = opts.backoffMs * 2 ** (n - 1) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return { ...last, attempts: opts.attempts };
}
