import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { access, constants, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { finished } from 'node:stream/promises';
import type { LocalTarget } from '../../accounts/destination.js';
import { DropshipError, type DropshipErrorOptions, isRetryable } from '../../contracts/errors.js';
import {
  type DestinationPort,
  type ObjectUpload,
  PreconditionFailed,
  type PutOptions,
  type PutResult,
  type UploadOptions,
} from '../port.js';

/**
 * The local adapter of the destination port: objects are files under `root` (a key's slashes are
 * folders). Every object is written to a temporary file in `<root>/.dropship-tmp/` and renamed into
 * place when complete, so a reader sees a whole object or none — as with S3. ETags are the quoted
 * SHA-256 of the content, and conditional writes (`ifMatch`, `ifNoneMatch: '*'`) compare them under
 * a per-key lock, so the receipt's conditional PUT behaves as it does on S3 (within one process:
 * the local target serves tests and the local stack, never production — src/destinations/open.ts).
 */
export class LocalDestination implements DestinationPort {
  readonly kind = 'local';
  readonly container: string;
  private readonly root: string;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(target: LocalTarget) {
    this.root = resolve(target.root);
    this.container = `local:${this.root}`;
  }

  /** The file of `key`; refuses a key that would leave the root. */
  private pathOf(key: string): string {
    const p = resolve(this.root, key);
    if (!p.startsWith(this.root + sep)) throw new LocalTargetError(`object key ${key} leaves the target directory`);
    return p;
  }

  private async tempFile(): Promise<string> {
    const dir = join(this.root, '.dropship-tmp');
    await mkdir(dir, { recursive: true });
    return join(dir, randomUUID());
  }

  async verifyAccess(): Promise<void> {
    try {
      if (!(await stat(this.root)).isDirectory()) throw new Error(`${this.root} is not a directory`);
      await access(this.root, constants.W_OK);
    } catch (e) {
      throw this.explain('', e);
    }
  }

  /** A directory on this machine is reachable by this process only: nothing to prove. */
  async verifyIsolation(): Promise<'not-applicable'> {
    return 'not-applicable';
  }

  openUpload(key: string, _opts: UploadOptions): ObjectUpload {
    return new LocalObjectUpload(key, this.pathOf(key), () => this.tempFile());
  }

  async putObject(key: string, body: string, opts: PutOptions): Promise<PutResult> {
    const path = this.pathOf(key);
    return this.locked(path, async () => {
      if (opts.ifMatch || opts.ifNoneMatch) {
        const current = await readFile(path).then(etagOf, (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return undefined;
          throw this.explain(key, e);
        });
        const holds = opts.ifNoneMatch ? current === undefined : current === opts.ifMatch;
        if (!holds) throw new PreconditionFailed(key);
      }
      try {
        const tmp = await this.tempFile();
        await writeFile(tmp, body);
        await mkdir(dirname(path), { recursive: true });
        await rename(tmp, path);
      } catch (e) {
        throw this.explain(key, e);
      }
      return { key, etag: etagOf(Buffer.from(body)) };
    });
  }

  /** Runs `fn` after every earlier write of the same file (conditional writes compare, then write). */
  private async locked<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(path) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    this.locks.set(path, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(path) === run) this.locks.delete(path);
    }
  }

  explain(key: string, e: unknown): unknown {
    if (e instanceof DropshipError) return e;
    const code = (e as NodeJS.ErrnoException)?.code;
    if (typeof code !== 'string') return e;
    const where = `${this.root}${key ? `/${key}` : ''}`;
    // Missing root, refused permission, read-only file system: no retry fixes them.
    const permanent = ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EISDIR'].includes(code);
    return new LocalTargetError(`writing ${where} failed: ${code}: ${(e as Error).message}`, {
      cause: e,
      retryable: !permanent,
    });
  }

  deniesAccess(e: unknown): boolean {
    return e instanceof LocalTargetError && !e.retryable;
  }

  isRetryable(e: unknown): boolean {
    return isRetryable(e);
  }

  refused(e: unknown): boolean {
    // A local write either happened or failed: a failure never leaves it in doubt.
    return e !== undefined;
  }

  close(): void {}
}

/** A local target could not be written. */
export class LocalTargetError extends DropshipError {
  readonly code: string = 'local-target';
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
    this.name = 'LocalTargetError';
  }
}

function etagOf(content: Buffer): string {
  return `"${createHash('sha256').update(content).digest('hex')}"`;
}

/** A streamed object: written to a temporary file, renamed into place by `complete()`, removed by `fail()`. */
class LocalObjectUpload implements ObjectUpload {
  private stream: WriteStream | undefined;
  private readonly opened: Promise<{ tmp: string; stream: WriteStream }>;

  constructor(
    readonly key: string,
    private readonly path: string,
    tempFile: () => Promise<string>,
  ) {
    this.opened = tempFile().then((tmp) => {
      this.stream = createWriteStream(tmp);
      return { tmp, stream: this.stream };
    });
    this.opened.catch(() => {}); // seen by the first write, complete() or fail()
  }

  async write(chunk: Buffer): Promise<void> {
    const { stream } = await this.opened;
    // A copy: the stream keeps what it is given until it is written, and the caller reuses the chunk (ObjectUpload.write).
    if (!stream.write(Buffer.from(chunk))) await once(stream, 'drain');
  }

  async complete(): Promise<void> {
    const { tmp, stream } = await this.opened;
    stream.end();
    await finished(stream);
    await mkdir(dirname(this.path), { recursive: true });
    await rename(tmp, this.path);
  }

  async fail(_reason: unknown): Promise<void> {
    const opened = await this.opened.catch(() => undefined);
    if (!opened) return;
    opened.stream.destroy();
    await finished(opened.stream).catch(() => {});
    await rm(opened.tmp, { force: true });
  }
}
