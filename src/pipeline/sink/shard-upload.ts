import { createHash, type Hash } from 'node:crypto';
import type { UploadedShard } from '../../contracts/result.js';
import type { DestinationPort } from '../../destinations/port.js';

/**
 * One shard on its way to the destination: bytes written here stream into the port's upload
 * (`DestinationPort.openUpload`: parts of `partSize`, `queueSize` in flight; settle-then-abort on
 * failure, so no unfinished upload is left). SHA-256 and byte count are taken on the way.
 */
export interface ShardTarget {
  port: DestinationPort;
  key: string;
  partSize: number;
  queueSize: number;
}

export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';

export class ShardUpload {
  readonly key: string;
  private readonly upload;
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(target: ShardTarget) {
    this.key = target.key;
    this.upload = target.port.openUpload(target.key, {
      contentType: PARQUET_CONTENT_TYPE,
      partSize: target.partSize,
      queueSize: target.queueSize,
    });
  }

  /** Writes bytes; resolves when the stream can take more (backpressure from the upload). */
  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    await this.upload.write(chunk);
  }

  async complete(): Promise<UploadedShard> {
    await this.upload.complete();
    return { key: this.key, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Stops the upload and waits until the destination has aborted it. */
  async fail(reason: unknown): Promise<void> {
    await this.upload.fail(reason);
  }
}

export type { UploadedShard };
