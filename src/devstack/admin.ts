import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { listenLoopback } from './http.js';
import type { LocalStack } from './stack.js';

/**
 * The running dev stack's admin endpoint (`dropship dev`): lets a second shell create customers'
 * buckets, roles and users without restarting the stack (`dropship dev provision`, `dropship dev
 * apply`). It listens on 127.0.0.1 only, refuses any peer that is not a loopback address, and
 * requires `Authorization: Bearer <token>` (compared in constant time); a bad token gets 401.
 *
 *   GET  /v1/health  → { ok: true }
 *   GET  /v1/role?arn=arn:aws:iam::…:role/…  → { arn, trustPolicy, policies } as the stack holds them
 *   POST /v1/world   → a world document (validated with the stack's world schema) is applied;
 *                      answers { users: [{ arn, accessKeyId, secretAccessKey }], buckets, roles }
 */
const MAX_BODY = 1024 * 1024;

/** Is this socket peer address on the loopback interface (127.0.0.0/8, ::1, IPv4-mapped 127.x)? */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Constant-time comparison of a presented token with the expected one (any lengths). */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(presented ?? ''), h(expected)) && presented !== undefined;
}

export class AdminServer {
  private server: Server | undefined;
  url = '';
  readonly token: string;

  constructor(
    private readonly stack: LocalStack,
    token?: string,
  ) {
    this.token = token ?? randomBytes(32).toString('base64url');
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => send(res, 500, { error: (e as Error).message }));
    });
    this.url = await listenLoopback(this.server);
    return this.url;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, { error: 'only loopback clients' });
    const auth = req.headers.authorization;
    const presented = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (!tokenMatches(presented, this.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(res, 401, { error: 'missing or wrong admin token' });
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && path === '/v1/health') return send(res, 200, { ok: true });
    if (req.method === 'GET' && path === '/v1/role') {
      const role = this.stack.iam.roles.get(new URL(req.url ?? '/', 'http://x').searchParams.get('arn') ?? '');
      if (!role) return send(res, 404, { error: 'no such role' });
      return send(res, 200, { arn: role.arn, trustPolicy: role.trustPolicy, policies: role.policies });
    }
    if (req.method === 'POST' && path === '/v1/world') {
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req)).toString('utf8'));
      } catch (e) {
        return send(res, 400, { error: `the body is not JSON: ${(e as Error).message}` });
      }
      try {
        const users = await this.stack.applyWorld(body as never);
        const accounts = Object.values((body as { accounts: Record<string, { buckets?: []; roles?: [] }> }).accounts);
        return send(res, 200, {
          users: [...users.values()].map((u) => ({
            arn: u.arn,
            accessKeyId: u.accessKeyId,
            secretAccessKey: u.secretAccessKey,
          })),
          buckets: accounts.reduce((n, a) => n + (a.buckets?.length ?? 0), 0),
          roles: accounts.reduce((n, a) => n + (a.roles?.length ?? 0), 0),
        });
      } catch (e) {
        if (e instanceof z.ZodError) {
          return send(res, 400, {
            error: 'not a valid world document',
            problems: e.issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`),
          });
        }
        throw e;
      }
    }
    return send(res, 404, { error: `no ${req.method} ${path}` });
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('body larger than 1 MiB');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
