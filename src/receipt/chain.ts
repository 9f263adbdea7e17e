import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { parseReceiptJson } from './parse.js';

/**
 * The receipt chain: every receipt carries `sequence` (per destination, +1 per published receipt)
 * and `previous_receipt_sha256` (SHA-256 of the previous receipt's exact bytes; null for the
 * first), so a customer holding their receipts can prove that no delivery was skipped or replaced.
 *
 * dropship remembers each published receipt's sequence and hash (dropship.receipt_chain). A run
 * that finishes twice (a finisher died after writing its receipt) gets the same link again, and
 * builds the same bytes from the ledger, so a rewrite never breaks the chain.
 */
export interface ChainLink {
  sequence: number;
  previous_receipt_sha256: string | null;
}

export function sha256Hex(bytes: string | Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The link of a run's receipt: its own (a retried finish), else the next of the destination's chain.
 * One chain per destination generation (issue 22): a removed and re-added account starts at 1.
 * `generation` 0: receipts of destinations removed before generations were recorded.
 */
export async function nextLink(pool: Pool, accountId: string, runId: string, generation = 0): Promise<ChainLink> {
  const mine = await pool.query<{ sequence: string }>('select sequence from dropship.receipt_chain where run_id = $1', [
    runId,
  ]);
  const sequence = mine.rows[0]
    ? Number(mine.rows[0].sequence)
    : Number(
        (
          await pool.query<{ n: string }>(
            'select coalesce(max(sequence), 0) + 1 as n from dropship.receipt_chain where account_id = $1 and generation = $2',
            [accountId, generation],
          )
        ).rows[0]!.n,
      );
  const prev = await pool.query<{ sha256: string }>(
    'select sha256 from dropship.receipt_chain where account_id = $1 and generation = $3 and sequence = $2',
    [accountId, sequence - 1, generation],
  );
  return { sequence, previous_receipt_sha256: prev.rows[0]?.sha256 ?? null };
}

/** After the receipt is written: remember its exact bytes' hash for the next link. */
export async function recordLink(
  pool: Pool,
  r: {
    accountId: string;
    generation?: number;
    runId: string;
    sequence: number;
    receiptKey: string;
    sha256: string;
    /** The ETag S3 answered for the PUT: the next receipt replaces only this object (conditional write). */
    etag?: string | undefined;
    bucket?: string;
  },
): Promise<void> {
  await pool.query(
    `insert into dropship.receipt_chain (account_id, generation, sequence, run_id, receipt_key, sha256, etag, bucket)
     values ($1, $6, $2, $3, $4, $5, $7, $8)
     on conflict (run_id) do update set sha256 = excluded.sha256, etag = coalesce(excluded.etag, receipt_chain.etag),
                                        receipt_key = excluded.receipt_key, bucket = excluded.bucket,
                                        published = true, published_at = now()`,
    [r.accountId, r.sequence, r.runId, r.receiptKey, r.sha256, r.generation ?? 0, r.etag ?? null, r.bucket ?? null],
  );
}

/**
 * What a run's receipt may replace (S3 conditional writes, issue 23): the ETag of the newest receipt
 * published in the same bucket at the same key before this run's link — undefined when there is none, or it is unknown
 * (published before ETags were recorded, or under SSE-KMS). Publishing with `If-Match` on it means a
 * finisher that wakes up late can never put an older receipt over a newer one.
 */
export async function expectedReceiptEtag(
  pool: Pool,
  q: { accountId: string; generation: number; bucket: string; receiptKey: string; sequence: number },
): Promise<string | undefined> {
  const res = await pool.query<{ etag: string | null }>(
    `select etag from dropship.receipt_chain
      where account_id = $1 and generation = $2 and bucket = $5 and receipt_key = $3 and sequence < $4 and published
      order by sequence desc limit 1`,
    [q.accountId, q.generation, q.receiptKey, q.sequence, q.bucket],
  );
  return res.rows[0]?.etag ?? undefined;
}

export type ChainVerdict = { ok: true; detail: string } | { ok: false; detail: string };

/**
 * Checks that `newer` follows `older` (their exact bytes): sequence +1 and previous_receipt_sha256
 * = SHA-256 of older. Tells a gap (receipts missing in between) from a replaced or altered receipt.
 */
export function verifyLink(older: Buffer, newer: Buffer, names = { older: 'older', newer: 'newer' }): ChainVerdict {
  const parse = (
    b: Buffer,
    name: string,
  ): { sequence?: unknown; previous_receipt_sha256?: unknown; run_id?: unknown } => {
    try {
      return parseReceiptJson(b.toString('utf8')) as ReturnType<typeof parse>;
    } catch (e) {
      // Too large or too deep (bounded as every reader of a receipt is), or not JSON.
      throw new Error(e instanceof SyntaxError ? `${name}: not JSON` : `${name}: ${(e as Error).message}`);
    }
  };
  const a = parse(older, names.older);
  const b = parse(newer, names.newer);
  for (const [n, r] of [
    [names.older, a],
    [names.newer, b],
  ] as const) {
    if (!Number.isInteger(r.sequence))
      return { ok: false, detail: `${n} has no sequence (a receipt from before the chain?)` };
  }
  const sa = a.sequence as number;
  const sb = b.sequence as number;
  const hash = sha256Hex(older);
  if (sb <= sa)
    return { ok: false, detail: `${names.newer} (sequence ${sb}) is not newer than ${names.older} (sequence ${sa})` };
  if (sb > sa + 1) {
    const missing = sb - sa - 1;
    return {
      ok: false,
      detail: `gap: ${missing} receipt${missing === 1 ? '' : 's'} missing between sequence ${sa} and ${sb}`,
    };
  }
  if (b.previous_receipt_sha256 !== hash) {
    return {
      ok: false,
      detail: `${names.newer} (sequence ${sb}) does not chain to ${names.older}: previous_receipt_sha256 is ${String(b.previous_receipt_sha256)}, but ${names.older} hashes to ${hash} (replaced or altered)`,
    };
  }
  return { ok: true, detail: `sequence ${sa} → ${sb}: ${names.newer} follows ${names.older} (sha256 ${hash})` };
}
