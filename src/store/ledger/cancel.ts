import type { PoolClient } from 'pg';

/**
 * Cancels the account's open runs (running and finishing) with `reason`, and fails their unfinished
 * tasks — in the caller's transaction: the registry's, which holds the destination row while it
 * changes or removes it (src/accounts/registry.ts). Each cancelled run gets its outcome event from
 * the ledger's trigger in that transaction (src/store/ledger/outbox.ts). The claims and finishers
 * check the run's status (src/store/ledger/ledger*.ts), so nothing more is written or published for them;
 * whatever a worker still uploads goes under the run's own frozen bucket, prefix and folder.
 * Lock order as everywhere in the ledger: task rows (in key order), then the run rows.
 */
export async function cancelOpenRunsOf(
  c: PoolClient,
  accountId: string,
  reason: string,
  /**
   * A destination change (not a removal): a cancelled scheduled run gives its slot back (`slot_released`), so the
   * catch-up opens the slot again for the new version instead of leaving the account without the slot's delivery.
   */
  opts: { releaseSlots?: boolean } = {},
): Promise<string[]> {
  await c.query(
    `select 1 from dropship.run_tasks
      where run_id in (select run_id from dropship.runs where account_id = $1 and status in ('running', 'finishing'))
      order by run_id, table_name, part for update`,
    [accountId],
  );
  const res = await c.query<{ run_id: string }>(
    `update dropship.runs set status = 'cancelled', finished_at = now(), lease_until = null, error = $2,
                             slot_released = (trigger = 'schedule' and slot_date is not null and $3::boolean)
      where account_id = $1 and status in ('running', 'finishing') returning run_id`,
    [accountId, reason, opts.releaseSlots ?? false],
  );
  const ids = res.rows.map((r) => r.run_id);
  if (ids.length > 0)
    await c.query(
      `update dropship.run_tasks set status = 'failed', lease_until = null, finished_at = now(),
              error = coalesce(error, 'run cancelled')
        where run_id = any($1::text[]) and status in ('pending', 'running')`,
      [ids],
    );
  return ids;
}
