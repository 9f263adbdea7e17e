import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type ApiDeps, type HttpApiEvent, handleApiEvent } from '../api/router.js';
import { BodyTooLarge, closeServer, listenLoopback, readBody } from './http.js';
import { authorize, type Iam } from './iam.js';
import { hashPayload, parseAuthorization, SigV4Error, verifySignature } from './sigv4.js';

/**
 * The HTTP API on 127.0.0.1, as API Gateway serves it with `authorizer: aws_iam`: every request must
 * be SigV4-signed (service `execute-api`) by a principal of the local IAM whose identity policy
 * allows `execute-api:Invoke` on the route's ARN (judged by iam-simulate, src/devstack/iam.ts). An
 * unsigned, wrongly signed or expired request (outside the 15-minute SigV4 window), an unknown key
 * or a denied principal gets 403 with API Gateway's `{"message": …}` body; an allowed one becomes a
 * payload-2.0 event (requestContext.authorizer.iam carries the caller) for the same router the
 * Lambda runs (src/api/router.ts).
 */
export const LOCAL_API_ID = 'local';

/** API Gateway's payload limit (HTTP API: 10 MB): a larger request gets 413 with its body, never reaching dropship. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export class LocalApi {
  private server: Server | undefined;
  url = '';

  constructor(
    private readonly iam: Iam,
    private readonly deps: () => Promise<ApiDeps>,
    private readonly opts: { region: string; accountId: string; port?: number; now?: () => number },
  ) {}

  /** The execute-api ARN of a route, as IAM policies name it. */
  arnOf(method: string, path: string): string {
    return `arn:aws:execute-api:${this.opts.region}:${this.opts.accountId}:${LOCAL_API_ID}/$default/${method}${path}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((e: Error) => {
        if (!res.headersSent) send(res, 500, { message: `Internal Server Error: ${e.message}` });
        else res.end();
      });
    });
    this.url = await listenLoopback(this.server, this.opts.port ?? 0);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQueryString = q < 0 ? '' : url.slice(q + 1);
    let principal: NonNullable<ReturnType<Iam['principals']['get']>>;
    let body: Buffer;
    try {
      // Who signed, from the headers alone, before any byte of the body is read: an unsigned request (or one signed
      // with an unknown key) is refused without reading what it sends (a 1 GB unsigned body was read whole: red team).
      const auth = parseAuthorization(req.headers.authorization);
      if (auth.service !== 'execute-api')
        return refuse(res, 403, { message: `Credential should be scoped to correct service: 'execute-api'.` });
      const p = this.iam.principals.get(auth.accessKeyId);
      if (!p) return refuse(res, 403, { message: 'The security token included in the request is invalid.' });
      try {
        body = await readBody(req, MAX_BODY_BYTES);
      } catch (e) {
        if (e instanceof BodyTooLarge) return refuse(res, 413, { message: 'Request Entity Too Large' });
        throw e;
      }
      verifySignature(
        { method, url, headers: req.headers, payloadHash: hashPayload(body) },
        auth,
        p.secretAccessKey,
        this.opts.now?.() ?? Date.now(),
      );
      if (p.sessionToken !== undefined) {
        if (req.headers['x-amz-security-token'] !== p.sessionToken)
          return send(res, 403, { message: 'The security token included in the request is invalid.' });
        if (p.expiresAt !== undefined && Date.now() >= p.expiresAt)
          return send(res, 403, { message: 'The security token included in the request is expired' });
      }
      principal = p;
    } catch (e) {
      if (e instanceof SigV4Error) return refuse(res, 403, { message: e.message });
      throw e;
    }
    // A path that is not valid percent-encoding is authorised as it came (the router then answers 400 naming it);
    // decodeURI threw, and the local API answered 500 (red team, API).
    let path = rawPath;
    try {
      path = decodeURI(rawPath);
    } catch {}
    const resource = this.arnOf(method, path);
    if (!(await authorize(principal, 'execute-api:Invoke', resource, { resourceAccountId: this.opts.accountId })))
      return send(res, 403, {
        message: `User: ${principal.arn} is not authorized to perform: execute-api:Invoke on resource: ${resource}`,
      });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
    const event: HttpApiEvent = {
      version: '2.0',
      rawPath,
      rawQueryString,
      headers,
      ...(body.length > 0 ? { body: body.toString('utf8') } : {}),
      isBase64Encoded: false,
      requestContext: {
        requestId: randomUUID(),
        http: { method, path: rawPath, sourceIp: req.socket.remoteAddress ?? '' },
        authorizer: {
          iam: { userArn: principal.arn, accountId: principal.accountId, accessKey: principal.accessKeyId },
        },
      },
    };
    const out = await handleApiEvent(event, await this.deps());
    res.writeHead(out.statusCode, out.headers);
    res.end(out.body ?? '');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * An answer given before the request's body was read (or all of it): the connection is closed after it, so the rest
 * of the body is never read (Node would otherwise read it through to keep the connection alive).
 */
function refuse(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify(body));
}
