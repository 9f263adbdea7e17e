import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { expect } from 'vitest';
import type { Receipt } from '../../src/contracts/receipt.js';
import type { Customer } from '../../src/devstack/demo.js';
import type { LocalStack } from '../../src/devstack/stack.js';
import { validateReceipt } from '../../src/receipt/validate.js';
import { compareTable, downloadReceiptFiles } from '../compare.js';
import { readReceipt } from './receipt.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface ExactOptions {
  /**
   * Upload ids that may stay unfinished in the bucket (a SIGKILLed process's, which the bucket's
   * AbortIncompleteMultipartUpload rule cleans). Every other unfinished multipart upload fails.
   */
  unfinishedAllowed?: ReadonlySet<string>;
}

/**
 * The exactness check: what the customer can read is exactly the source.
 *   - the customer's receipt.json validates against the published schema;
 *   - every file the receipt lists is downloaded with the customer's credentials and has the
 *     receipt's SHA-256; every table is compared value by value with Postgres (DuckDB reads the
 *     Parquet: test/compare.ts), and both sides count the receipt's rows;
 *   - no multipart upload is left unfinished in the bucket (but those `unfinishedAllowed`).
 * Returns the receipt, for a test's own further checks.
 */
export async function assertExact(
  h: { stack: LocalStack; pool: pg.Pool },
  c: Customer,
  opts: ExactOptions = {},
): Promise<Receipt> {
  const receipt = await readReceipt(h.stack, c);
  expect(validateReceipt(receipt)).toEqual([]);
  const dir = mkdtempSync(join(tmpdir(), `dropship-exact-${c.destination.accountId}-`));
  const client = await h.pool.connect();
  try {
    const files = await downloadReceiptFiles(
      h.stack.s3.endpoint,
      c.destination.region,
      c.reader,
      c.destination.bucket,
      receipt,
      dir,
    );
    for (const [name, t] of Object.entries(receipt.tables)) {
      const paths = files.get(name)!;
      t.files.forEach((f, i) => {
        expect(sha256(readFileSync(paths[i]!)), f.key).toBe(f.sha256);
      });
      const d = await compareTable(client, c.destination.sourceSchema, name, t.columns, paths);
      expect(d.examples, name).toEqual([]);
      expect(d.pgRows, name).toBe(t.row_count);
      expect(d.parquetRows, name).toBe(t.row_count);
    }
  } finally {
    client.release();
    rmSync(dir, { recursive: true, force: true });
  }
  const unfinished = await h.stack.s3.unfinishedUploads(c.destination.bucket);
  expect(unfinished.filter((u) => !opts.unfinishedAllowed?.has(u.uploadId))).toEqual([]);
  return receipt;
}
