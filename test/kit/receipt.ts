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
