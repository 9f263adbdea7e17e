import { describe, expect, it } from 'vitest';
import { importDestinations, type LineResult, streamLines } from './bulk.js';
import { InvalidDestination, type PutResult, type Registry } from './registry.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* chunks(...parts: (Buffer | string)[]): AsyncGenerator<Buffer | string> {
  for (const p of parts) yield p;
}

describe('streamLines', () => {
  it('splits on \\n and \\r\\n, across chunks, a multi-byte character split between chunks, no final newline', async () => {
    const bytes = Buffer.from('{"a":"ü"}\r\nsecond\n\nlast', 'utf8');
    const at = bytes.indexOf(0xbc); // the second byte of "ü"
    const lines = await collect(
      streamLines(chunks(bytes.subarray(0, at), bytes.subarray(at, at + 3), bytes.subarray(at + 3))),
    );
    expect(lines).toEqual(['{"a":"ü"}', 'second', '', 'last']);
  });

  it('reports an overlong line as one item without holding it, and goes on', async () => {
    const long = 'x'.repeat(50);
    const lines = await collect(streamLines(chunks('ok\n', long.slice(0, 30), long.slice(30), '\nafter\n', long), 40));
    expect(lines.map((l) => (typeof l === 'string' ? l : 'TOO LONG'))).toEqual(['ok', 'TOO LONG', 'after', 'TOO LONG']);
  });
});

describe('importDestinations', () => {
  /** A registry whose put answers after 30 ms for a line marked slow, else 1 ms, remembering what ran at once. */
  function fakeRegistry() {
    const seen = new Set<string>();
    let inFlight = 0;
    let maxInFlight = 0;
    const order: string[] = [];
    const registry: Pick<Registry, 'put'> = {
      put: async (input: unknown): Promise<PutResult> => {
        const { accountId, bad, slow } = input as { accountId: string; bad?: boolean; slow?: boolean };
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, slow ? 30 : 1));
        inFlight--;
        order.push(accountId);
        if (bad) throw new InvalidDestination(['bucket: bucket names have 3–63 characters']);
        const outcome = seen.has(accountId) ? 'unchanged' : 'created';
        seen.add(accountId);
        return { outcome, destination: {} as PutResult['destination'], changed: [] };
      },
    };
    return { registry, order, max: () => maxInFlight };
  }

  it('reports in file order with a bounded window; a repeated account waits for its earlier line', async () => {
    const f = fakeRegistry();
    const text = ['a', 'b', 'a', 'c', 'd', 'e', 'f']
      .map((accountId, i) => JSON.stringify({ accountId, ...(i === 0 ? { slow: true } : {}) }))
      .join('\n');
    const reported: LineResult[] = [];
    const summary = await importDestinations(f.registry, chunks(text), { concurrency: 3 }, (r) => reported.push(r));
    expect(reported.map((r) => [r.line, r.accountId, r.outcome])).toEqual([
      [1, 'a', 'created'],
      [2, 'b', 'created'],
      [3, 'a', 'unchanged'], // in the same window as line 1, yet ran after it although line 1 was slow
      [4, 'c', 'created'],
      [5, 'd', 'created'],
      [6, 'e', 'created'],
      [7, 'f', 'created'],
    ]);
    expect(f.order.indexOf('b')).toBeLessThan(f.order.indexOf('a')); // b did not wait for the slow a
    expect(f.max()).toBeLessThanOrEqual(3);
    expect(summary).toEqual({ lines: 7, created: 6, unchanged: 1, updated: 0, failed: 0 });
  });

  it('a bad line is that line’s error (field named); lines that are not objects or not JSON too', async () => {
    const f = fakeRegistry();
    const text = [
      JSON.stringify({ accountId: 'a' }),
      JSON.stringify({ accountId: 'b', bad: true }),
      '[1,2]',
      '{nope',
      '',
      JSON.stringify({ accountId: 'c' }),
    ].join('\n');
    const reported: LineResult[] = [];
    const summary = await importDestinations(f.registry, chunks(text), {}, (r) => reported.push(r));
    expect(reported.map((r) => [r.line, r.outcome, r.details[0]?.split(':')[0]])).toEqual([
      [1, 'created', undefined],
      [2, 'error', 'bucket'],
      [3, 'error', 'line'],
      [4, 'error', 'line'],
      [6, 'created', undefined],
    ]);
    expect(summary).toEqual({ lines: 5, created: 2, unchanged: 0, updated: 0, failed: 3 });
  });

  it('an error that is not the line’s fault stops the import and is thrown', async () => {
    const registry: Pick<Registry, 'put'> = {
      put: async () => {
        throw new Error('connection terminated');
      },
    };
    await expect(importDestinations(registry, chunks('{"accountId":"a"}\n'), {}, () => {})).rejects.toThrow(
      'connection terminated',
    );
  });
});
