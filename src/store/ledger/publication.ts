import pg from 'pg';

/**
 * How long the hold may stay idle in its transaction (the receipt PUT's duration): past it Postgres
 * ends the session and the lock goes — a finisher frozen with its hold (an abandoned Lambda handler)
 * keeps an operator's update waiting at most this long. A receipt is a few KB; a PUT that takes
 * longer loses the hold, and an update landing then cancels the run as before this hold existed (the
 * finisher reports "ended while its receipt was published"; the chain keeps its link).
 */
export const PUBLICATION_HOLD_SECONDS = 60;

/** How long the hold waits for an update or removal of the destination in progress to commit. */
export const PUBLICATION_LOCK_WAIT_SECONDS = 30;

/** The hold's session name in pg_stat_activity (an operator, or a test playing a process's death, can end it). */
export function publicationSessionName(accountId: string): string {
  // As Postgres keeps it (63 bytes; account ids are ASCII): an exact match finds it for any account id.
  return `dropship publication ${accountId}`.slice(0, 63);
}

/** The destination row, share-locked for as long as a receipt is being published. */
export interface PublicationHold {
  /** Ends the hold (commit, close); never throws. */
  release(): Promise<void>;
}

/**
 * Takes a share lock on the destination row of `accountId`, on a connection of its own, and keeps it
 * until `release()`: an update or removal of the destination (src/accounts/registry.ts, which locks the
 * row FOR UPDATE before it cancels the account's open runs) waits for a receipt PUT in flight, then
 * finds its run ended. Without it, an update landing between the finisher's last look and its PUT
 * cancelled a run whose receipt was then published — a delivery the ledger called cancelled.
 *
 * A dedicated connection, not one of the pool's: the publication's own ledger statements need pool
 * connections while the hold is kept, and finishers holding pool connections while waiting for others
 * can starve a small pool (the Lambda's 3; measured as a hang with two finishers in an earlier attempt).
 * It costs one connection per publication (tens of ms, once per run).
 */
export async function holdDestination(
  pool: pg.Pool,
  accountId: string,
  /** Tests only: shorter bounds than production's. */
  bounds: { holdSeconds?: number; lockWaitSeconds?: number } = {},
): Promise<PublicationHold> {
  const client = new pg.Client({ ...pool.options, application_name: publicationSessionName(accountId) });
  client.on('error', () => {}); // a dropped connection ends the hold; the next statement reports it
  const close = () => client.end().catch(() => {});
  try {
    await client.connect();
    await client.query('begin');
    // Transaction-local (a transaction pooler in front of the ledger keeps them to this transaction).
    await client.query(
      `select set_config('lock_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`,
      [
        `${bounds.lockWaitSeconds ?? PUBLICATION_LOCK_WAIT_SECONDS}s`,
        `${bounds.holdSeconds ?? PUBLICATION_HOLD_SECONDS}s`,
      ],
    );
    await client.query('select 1 from dropship.destinations where account_id = $1 for share', [accountId]);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    release: async () => {
      await client.query('commit').catch(() => {});
      await close();
    },
  };
}
