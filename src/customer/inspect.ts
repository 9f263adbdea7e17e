import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadSettings, type Settings } from '../config/settings.js';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import type { Receipt } from '../contracts/receipt.js';
import { quoteLiteral } from '../contracts/sql.js';
import { s3SettingsConfig } from '../destinations/s3/clients.js';
import { MAX_RECEIPT_BYTES, parseReceiptJson, receiptPrefix, validateReceipt } from '../receipt/validate.js';
import { fetchListed, LoadError } from './loader.js';

/**
 * `dropship inspect`: what a delivery holds, read from its receipt — in S3 (with the reader's own
 * credentials from the standard AWS environment) or in a local copy of the folder. With a sample,
 * the first rows of a table are read by DuckDB from the delivered files themselves (downloaded to a
 * temporary folder first: DuckDB's httpfs extension cannot be installed offline). An InspectError:
 * the delivery cannot be read (missing, not JSON, not a receipt); not retryable.
 */
export class InspectError extends DropshipError {
  override name = 'InspectError';
  readonly code: string = 'inspect';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
  }
}

export interface Delivery {
  /** Where the receipt is (s3://… or a path). */
  location: string;
  receipt: Receipt;
  /** A local path holding the object `key` (downloaded into `workDir` when it is in S3). */
  localFile(key: string, table: string, workDir: string): Promise<string>;
  close(): void;
}

/**
 * An S3 client with the caller's credentials; the endpoint and region come from the standard AWS
 * settings, path-style addressing from dropship's settings.
 */
export function readerS3(
  region: string | undefined,
  settings: Pick<Settings, 'DROPSHIP_S3_FORCE_PATH_STYLE' | 'DROPSHIP_AWS_TIMEOUT_SECONDS'>,
  env: NodeJS.ProcessEnv = process.env,
): S3Client {
  return new S3Client({
    ...s3SettingsConfig(settings),
    // The bucket may live in another region than AWS_REGION: follow S3's answer.
    followRegionRedirects: true,
    region: region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // Unknown-length bodies are never sent here; keep checksums to what S3 requires (local S3s).
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
}

/**
 * The region S3 names for a bucket when a request went to the wrong one (the x-amz-bucket-region header of its
 * error), or undefined. `followRegionRedirects` does not cover every case: a GetObject signed for us-east-1 to a
 * bucket in eu-west-1 fails with a 400 AuthorizationHeaderMalformed (red team, customer tools: `load` died there).
 */
export function bucketRegionOf(e: unknown): string | undefined {
  return (e as { $response?: { headers?: Record<string, string> } }).$response?.headers?.['x-amz-bucket-region'];
}

/** A reader's S3 client for `bucket`: in the region S3 answers from when it is not the environment's. */
export async function readerS3For(
  bucket: string,
  key: string,
  settings: Pick<Settings, 'DROPSHIP_S3_FORCE_PATH_STYLE' | 'DROPSHIP_AWS_TIMEOUT_SECONDS'>,
): Promise<S3Client> {
  const s3 = readerS3(undefined, settings);
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return s3;
  } catch (e) {
    const region = bucketRegionOf(e);
    if (!region) return s3; // another failure: the load reports it with its own words
    s3.destroy();
    return readerS3(region, settings);
  }
}

export async function openDelivery(
  target: string,
  s3Factory: (region?: string) => S3Client = (region) => readerS3(region, loadSettings()),
): Promise<Delivery> {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(target);
  if (m) {
    const bucket = m[1]!;
    const key = m[2]!.endsWith('.json') ? m[2]! : `${m[2]!.replace(/\/+$/, '')}${m[2] ? '/' : ''}receipt.json`;
    let s3 = s3Factory();
    const location = `s3://${bucket}/${key}`;
    let text: string;
    try {
      const get = async (): Promise<string> => {
        const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        if ((res.ContentLength ?? 0) > MAX_RECEIPT_BYTES) {
          (res.Body as { destroy?: () => void }).destroy?.();
          throw new Error(`larger than a receipt may be (${MAX_RECEIPT_BYTES} bytes)`);
        }
        return res.Body!.transformToString();
      };
      try {
        text = await get();
      } catch (e) {
        // The bucket is in another region than the client's: S3 names it in x-amz-bucket-region.
        const region = bucketRegionOf(e);
        if (!region) throw e;
        s3.destroy();
        s3 = s3Factory(region);
        text = await get();
      }
    } catch (e) {
      s3.destroy();
      const err = e as Error & { $metadata?: { httpStatusCode?: number } };
      throw new InspectError(
        `cannot read ${location}: ${err.name}: ${err.message}${err.name === 'AccessDenied' ? ' (inspect uses the AWS credentials in your environment: the customer’s read-only keys)' : ''}`,
        { cause: e },
      );
    }
    const receipt = parseReceipt(text, location, receiptPrefix(key));
    return {
      location,
      receipt,
      localFile: async (objectKey, table, workDir) => {
        const path = join(workDir, `${Math.random().toString(36).slice(2)}-${basename(objectKey)}`);
        // Checked as `load` checks it (size, SHA-256, streamed): a replaced file was printed as the delivery's rows.
        try {
          return await fetchListed(s3, bucket, listedFile(receipt, table, objectKey), path);
        } catch (e) {
          if (e instanceof LoadError) throw new InspectError(e.message, { cause: e });
          throw e;
        }
      },
      close: () => s3.destroy(),
    };
  }
  const path = existsSync(target) && statSync(target).isDirectory() ? join(target, 'receipt.json') : target;
  if (!existsSync(path))
    throw new InspectError(
      `${path} does not exist (give s3://bucket/prefix/receipt.json or a folder holding receipt.json)`,
    );
  const receipt = parseReceipt(readFileSync(path, 'utf8'), path);
  const root = dirname(path);
  return {
    location: path,
    receipt,
    localFile: async (objectKey, table) => {
      // The folder is a copy of the destination prefix: the file sits under the table's folder.
      const file = join(root, receipt.tables[table]!.folder, basename(objectKey));
      if (!existsSync(file)) throw new InspectError(`${file} is listed in the receipt but missing from the folder`);
      const listed = listedFile(receipt, table, objectKey);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > listed.bytes) break;
        hash.update(chunk);
      }
      const sha256 = hash.digest('hex');
      if (size !== listed.bytes || sha256 !== listed.sha256)
        throw new InspectError(
          `${file} is not the file the receipt lists (${size > listed.bytes ? `more than ${listed.bytes}` : size} bytes; the receipt says ${listed.bytes} bytes, sha256 ${listed.sha256})`,
        );
      return file;
    },
    close: () => {},
  };
}

/** The receipt's entry for one of a table's files (its size and SHA-256). */
function listedFile(receipt: Receipt, table: string, key: string): { key: string; bytes: number; sha256: string } {
  const f = receipt.tables[table]?.files?.find((x) => x.key === key);
  if (!f) throw new InspectError(`${key} is not a file of table ${table} in the receipt`);
  return f;
}

/** `prefix`: the receipt's own (S3), every key must be under it; absent for a local folder (checked per segment). */
function parseReceipt(text: string, location: string, prefix?: string): Receipt {
  let value: unknown;
  try {
    value = parseReceiptJson(text);
  } catch (e) {
    throw new InspectError(`${location} cannot be read as a receipt (${(e as Error).message})`);
  }
  const violations = validateReceipt(value, prefix === undefined ? {} : { prefix });
  if (violations.length > 0)
    throw new InspectError(
      `${location} is not a valid receipt:\n  ${violations.map((v) => `${v.path} ${v.message}`).join('\n  ')}`,
    );
  return value as Receipt;
}

/** The first `n` rows of a table, every value as DuckDB prints it (NULL as null). */
export async function sampleRows(
  delivery: Delivery,
  table: string,
  n: number,
): Promise<{ columns: string[]; rows: (string | null)[][] }> {
  const t = delivery.receipt.tables[table];
  if (!t)
    throw new InspectError(
      `the receipt has no table ${table} (it has: ${Object.keys(delivery.receipt.tables).join(', ')})`,
    );
  const work = mkdtempSync(join(tmpdir(), 'dropship-inspect-'));
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await db.connect();
  try {
    // Only the files needed for n rows, in order.
    const paths: string[] = [];
    let rows = 0;
    // A table listed without its files (the model's format) has nothing to sample.
    for (const f of t.files ?? []) {
      if (rows >= n && paths.length > 0) break;
      if (f.rows === 0 && paths.length > 0) continue;
      paths.push(await delivery.localFile(f.key, table, work));
      rows += f.rows;
    }
    const list = `[${paths.map((p) => quoteLiteral(p, 'duckdb')).join(', ')}]`;
    const res = await conn
      .runAndReadAll(`select columns(*)::varchar from read_parquet(${list}) limit ${Math.max(0, Math.floor(n))}`)
      .catch((e: unknown) => {
        throw new InspectError(`table ${table}: its files cannot be read as Parquet (${(e as Error).message})`, {
          cause: e,
        });
      });
    return {
      columns: res.columnNames(),
      rows: res.getRowsJS().map((r) => r.map((v) => (v === null ? null : String(v)))),
    };
  } finally {
    conn.closeSync();
    db.closeSync();
    rmSync(work, { recursive: true, force: true });
  }
}
