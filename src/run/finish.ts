import type { S3Client } from '@aws-sdk/client-s3';
import type { Destination } from '../accounts/destination.js';
import { nextLink, recordLink, sha256Hex } from '../receipt/chain.js';
import { buildReceipt, receiptBytes, writeReceipt } from '../receipt/receipt.js';
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
    // Parts of a split table become one receipt entry: files in key order, totals summed.
    const byTable = new Map<string, TableResult>();
    for (const t of tasks) {
      const r = t.result as TableResult;
      const prev = byTable.get(t.table);
      if (!prev) byTable.set(t.table, { ...r, files: [...r.files] });
      else {
        prev.files.push(...r.files);
        prev.rows += r.rows;
        prev.bytes += r.bytes;
        prev.seconds = Math.max(prev.seconds, r.seconds);
      }
    }
    const results = [...byTable.values()];
    for (const r of results) r.files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const link = await nextLink(ledger.pool, run.accountId, runId);
    const receipt = { ...buildReceipt(run.runId, run.startedMicros, results, run.layout), ...link };
    const key = await writeReceipt(s3, dest, receipt);
    await recordLink(ledger.pool, { ...run, ...link, receiptKey: key, sha256: sha256Hex(receiptBytes(receipt)) });
    await ledger.finishSucceeded(runId, key);
    return key;
  } catch (e) {
    await ledger.reopen(runId, (e as Error).message).catch(() => {});
    throw e;
  }
}
