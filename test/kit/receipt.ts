import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Receipt } from '../../src/contracts/receipt.js';
import { type Customer, customerS3 } from '../../src/devstack/demo.js';
import type { LocalStack } from '../../src/devstack/stack.js';

/**
 * The customer's receipt.json (under the destination's prefix), read with the customer's own
 * credentials, as their loader would: a test that reads it this way also shows the customer may.
 */
export async function readReceipt(stack: LocalStack, c: Customer): Promise<Receipt> {
  const s3 = customerS3(stack.s3.endpoint, c.destination.region, c.reader);
  try {
    const key = c.destination.prefix ? `${c.destination.prefix}/receipt.json` : 'receipt.json';
    const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString()) as Receipt;
  } finally {
    s3.destroy();
  }
}

/**
 * Objects of the customer's bucket, fetched with the customer's own credentials into `dir` (each at `dir/<key>`):
 * their paths, in `keys`' order.
 */
export async function downloadKeys(stack: LocalStack, c: Customer, keys: string[], dir: string): Promise<string[]> {
  const s3 = customerS3(stack.s3.endpoint, c.destination.region, c.reader);
  const out: string[] = [];
  try {
    for (const key of keys) {
      const res = await s3.send(new GetObjectCommand({ Bucket: c.destination.bucket, Key: key }));
      const path = join(dir, key);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, Buffer.from(await res.Body!.transformToByteArray()));
      out.push(path);
    }
  } finally {
    s3.destroy();
  }
  return out;
}
