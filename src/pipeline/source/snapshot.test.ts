import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Snapshot } from './snapshot.js';

/**
 * A source that accepts connections and never answers (a database behind a firewall that drops, a server stuck in
 * its start-up): what a run connected ahead to must not hold the run up once the run has been refused.
 */
let server: Server | undefined;
const accepted: Socket[] = [];
afterEach(async () => {
  for (const s of accepted.splice(0)) s.destroy();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

async function silentSource(): Promise<{ url: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  server = createServer((s) => {
    sockets.push(s);
    accepted.push(s);
    s.on('error', () => {});
    s.resume(); // reads (and ignores) what the client sends, so its leaving is seen
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `postgres://u:p@127.0.0.1:${port}/db`, sockets };
}

describe('a holder connected ahead', () => {
  it('is dropped at once by close() while its source has not answered, and its socket closed', async () => {
    // Prepare
    const { url, sockets } = await silentSource();
    const pending = Snapshot.connectHolder(url, 'silent');
    for (let i = 0; i < 100 && sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const gone = new Promise<'closed'>((r) => sockets[0]?.once('close', () => r('closed')));
    // Act: the run was refused (its role, say) while the holder was still connecting.
    const outcome = await Promise.race([
      pending.close().then(() => 'returned' as const),
      new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 5000)),
    ]);
    // Assess: close() does not wait for a connection that may never come; the server sees the client leave.
    expect(sockets).toHaveLength(1);
    expect(outcome).toBe('returned');
    expect(await Promise.race([gone, new Promise((r) => setTimeout(() => r('open'), 5000))])).toBe('closed');
  });
});
