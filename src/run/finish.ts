import type { S3Client } from '@aws-sdk/client-s3';
import type { Destination } from '../accounts/destination.js';
import { buildReceipt, writeReceipt } from '../receipt/receipt.js';
import type { Ledger } from './ledger.js';
import type { TableResult } from './table.js';

/**
 * Writes the receipt if this caller wins the run's transition to `finishing` (see Ledger.tryFinish):
 * exactly one receipt per run, built from the ledger's recorded results, written last. Returns the
 * receipt key, or undefined when the run is not complete yet or someone else is finishing it.
 */
export async function finishRun(
  ledger: Ledger,
  runId: string,
  dest: Destination,
  s3: S3Client,
): Promise<string | undefined> {
  const run = await ledger.tryFinish(runId);
  if (!run) return undefined;
  try {
    const tasks = await ledger.tasks(runId);
    const results = tasks.map((t) => t.result as TableResult);
    const receipt = buildReceipt(run.runId, run.startedMicros, results, run.layout);
    const key = await writeReceipt(s3, dest, receipt);
    await ledger.finishSucceeded(runId, key);
    return key;
  } catch (e) {
    await ledger.reopen(runId, (e as Error).message).catch(() => {});
    throw e;
  }
}
