import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PreconditionFailed } from '../port.js';
import { LocalDestination, LocalTargetError } from './adapter.js';

let root: string;
let port: LocalDestination;
const etag = (s: string) => `"${createHash('sha256').update(s).digest('hex')}"`;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'dropship-local-port-'));
  port = new LocalDestination({ kind: 'local', root, prefix: 'p' });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('the local adapter of the destination port', () => {
  it('puts a small object and returns its content hash as ETag', async () => {
    // Act
    const put = await port.putObject('p/receipt.json', '{"a":1}\n', { contentType: 'application/json' });
    // Assess
    expect(put).toEqual({ key: 'p/receipt.json', etag: etag('{"a":1}\n') });
    expect(readFileSync(join(root, 'p/receipt.json'), 'utf8')).toBe('{"a":1}\n');
  });

  it('an upload has taken a chunk when its write resolves: the caller may reuse the chunk (ObjectUpload.write)', async () => {
    // Prepare: one buffer the caller refills after every write (as the Parquet writer reuses page buffers).
    const chunk = Buffer.alloc(1024); // below the file stream's high-water mark: a write that is only queued resolves at once
    const upload = port.openUpload('p/t/t_000000000000.parquet.gz', {
      contentType: 'x',
      partSize: 5 << 20,
      queueSize: 2,
    });
    const expected: Buffer[] = [];

    // Act
    for (let i = 0; i < 12; i++) {
      chunk.fill(i + 1);
      expected.push(Buffer.from(chunk));
      await upload.write(chunk);
    }
    chunk.fill(0xee);
    await upload.complete();

    // Assess: every chunk as it was when written.
    expect(readFileSync(join(root, 'p/t/t_000000000000.parquet.gz')).equals(Buffer.concat(expected))).toBe(true);
  });

  it('conditional writes: If-Match replaces only the object with that ETag; If-None-Match only creates', async () => {
    // Prepare
    const first = await port.putObject('p/r.json', 'one', { contentType: 'application/json' });
    // Act + Assess: a stale ETag is refused and the object stays as it was.
    await expect(
      port.putObject('p/r.json', 'two', { contentType: 'application/json', ifMatch: etag('other') }),
    ).rejects.toBeInstanceOf(PreconditionFailed);
    expect(readFileSync(join(root, 'p/r.json'), 'utf8')).toBe('one');
    // The current ETag is accepted.
    const second = await port.putObject('p/r.json', 'two', { contentType: 'application/json', ifMatch: first.etag! });
    expect(second.etag).toBe(etag('two'));
    expect(readFileSync(join(root, 'p/r.json'), 'utf8')).toBe('two');
    // If-Match on a missing object is refused (as S3 answers 404), If-None-Match on an existing one too.
    await expect(
      port.putObject('p/none.json', 'x', { contentType: 'application/json', ifMatch: first.etag! }),
    ).rejects.toBeInstanceOf(PreconditionFailed);
    await expect(
      port.putObject('p/r.json', 'three', { contentType: 'application/json', ifNoneMatch: '*' }),
    ).rejects.toBeInstanceOf(PreconditionFailed);
    await port.putObject('p/new.json', 'n', { contentType: 'application/json', ifNoneMatch: '*' });
    expect(existsSync(join(root, 'p/new.json'))).toBe(true);
  });

  it('two conditional writes on the same ETag at once: exactly one wins', async () => {
    // Prepare
    const first = await port.putObject('p/r.json', 'one', { contentType: 'application/json' });
    // Act
    const results = await Promise.allSettled(
      ['a', 'b'].map((b) => port.putObject('p/r.json', b, { contentType: 'application/json', ifMatch: first.etag! })),
    );
    // Assess
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof PreconditionFailed)).toHaveLength(1);
  });

  it('streams an object into place only when complete; a failed upload leaves nothing', async () => {
    // Act
    const ok = port.openUpload('p/t/a.parquet', { contentType: 'x', partSize: 5, queueSize: 1 });
    await ok.write(Buffer.from('hello '));
    expect(existsSync(join(root, 'p/t/a.parquet'))).toBe(false);
    await ok.write(Buffer.from('world'));
    await ok.complete();
    const bad = port.openUpload('p/t/b.parquet', { contentType: 'x', partSize: 5, queueSize: 1 });
    await bad.write(Buffer.from('partial'));
    await bad.fail(new Error('source broke'));
    // Assess
    expect(readFileSync(join(root, 'p/t/a.parquet'), 'utf8')).toBe('hello world');
    expect(existsSync(join(root, 'p/t/b.parquet'))).toBe(false);
    expect(readdirSync(join(root, '.dropship-tmp'))).toEqual([]);
  });

  it('refuses keys outside its root, and classifies a missing root as final', async () => {
    // Act + Assess
    await expect(port.putObject('../escape.json', 'x', { contentType: 'x' })).rejects.toBeInstanceOf(LocalTargetError);
    const gone = new LocalDestination({ kind: 'local', root: join(root, 'missing'), prefix: '' });
    const e = await gone.verifyAccess().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(LocalTargetError);
    expect(gone.deniesAccess(e)).toBe(true);
    expect(gone.isRetryable(e)).toBe(false);
  });
});
