import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Server-side verification of AWS Signature Version 4 (header form), as S3 and STS do it:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 * The local S3 and STS use it so that a wrong secret, an expired session or a tampered request
 * fails here exactly as it would in AWS.
 */
export interface SignedRequest {
  method: string;
  /** Raw request target as received: path (still percent-encoded) and query. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Hex SHA-256 of the payload, or the x-amz-content-sha256 marker (S3). */
  payloadHash: string;
}

export interface ParsedAuth {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

export class SigV4Error extends Error {
  constructor(
    readonly code: 'MissingAuthenticationToken' | 'IncompleteSignature' | 'SignatureDoesNotMatch' | 'RequestExpired',
    message: string,
  ) {
    super(message);
  }
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

export function parseAuthorization(header: string | undefined): ParsedAuth {
  if (!header) throw new SigV4Error('MissingAuthenticationToken', 'Request is missing Authentication Token');
  const m = AUTH_RE.exec(header);
  if (!m) throw new SigV4Error('IncompleteSignature', 'Authorization header is not a valid AWS4-HMAC-SHA256 header');
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.split(';'),
    signature: m[6]!,
  };
}

function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(query: string): string {
  if (!query) return '';
  const pairs = query
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=');
      const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1));
      return [uriEscape(k), uriEscape(v)] as const;
    })
    .filter(([k]) => k !== 'X-Amz-Signature');
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValue(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(',') : (v ?? '');
  return s.trim().replace(/\s+/g, ' ');
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

export function hashPayload(body: Buffer | string): string {
  return sha256hex(body);
}

/** Throws SigV4Error unless `req` carries a valid signature made with `secret`. */
export function verifySignature(req: SignedRequest, auth: ParsedAuth, secret: string, now = Date.now()): void {
  const amzDate = headerValue(req.headers['x-amz-date']);
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== auth.date) {
    throw new SigV4Error('IncompleteSignature', 'x-amz-date is missing or does not match the credential scope date');
  }
  const signedAt = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (Math.abs(now - signedAt) > 15 * 60_000) {
    throw new SigV4Error('RequestExpired', `Request has expired (signed at ${amzDate})`);
  }
  if (!auth.signedHeaders.includes('host')) {
    throw new SigV4Error('IncompleteSignature', 'The host header must be signed');
  }
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  // S3 signs the path as sent; other services normalise and encode each segment once more.
  const canonicalPath =
    auth.service === 's3'
      ? path || '/'
      : path
          .split('/')
          .map((seg) => uriEscape(decodeSegment(seg)))
          .join('/') || '/';
  const canonicalHeaders = auth.signedHeaders.map((h) => `${h}:${headerValue(req.headers[h])}\n`).join('');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath,
    canonicalQuery(query),
    canonicalHeaders,
    auth.signedHeaders.join(';'),
    req.payloadHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, auth.date), auth.region), auth.service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  const given = Buffer.from(auth.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SigV4Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
}

/** A path segment decoded once; one that is not valid percent-encoding is taken as it is (never a 500). */
function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}
