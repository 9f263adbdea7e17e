import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the local stand-ins' HTTP servers (admin, API, SQS, STS) share: listening on the loopback
 * interface only, closing, and reading a request body.
 */

/** Listens on 127.0.0.1 (`port` 0: any free one); resolves with the server's base URL. */
export async function listenLoopback(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes the server, if any, once its connections are done. */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A request body longer than the reader's bound: nothing more of it was read. */
export class BodyTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super(`the request body is larger than ${maxBytes} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/**
 * The whole request body, at most `maxBytes` of it: a larger one (its Content-Length, or the bytes as they arrive) is
 * refused with BodyTooLarge before more than the bound is held in memory (a 1 GB body took 2 GB of memory: red team).
 */
export async function readBody(req: IncomingMessage, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw new BodyTooLarge(maxBytes);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (e?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', done);
      if (e) reject(e);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        // Stop reading: what was held is let go; the caller answers and closes the connection.
        chunks.length = 0;
        req.pause();
        done(new BodyTooLarge(maxBytes));
      } else chunks.push(c);
    };
    const onEnd = () => done();
    req.on('data', onData).on('end', onEnd).on('error', done);
  });
}
