import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { API_IDEMPOTENCY_KEEP_HOURS } from '../store/ledger/retention.js';

/**
 * `Idempotency-Key` on the POSTs that create things (a destination, a run), kept in
 * dropship.api_idempotency (migration 16) per caller principal and key for KEEP_HOURS: the same key
 * with the same request answers the first response again; with a different request, 422; while the
 * first is still being answered, 409. Only a success is kept: an error answer (a 4xx — a conflict, a busy account, an
 * invalid destination — or a 5xx) releases the key, so the client's retry with it is a new request (red team, API: a
 * retryable 409 "busy" was replayed for 24 hours). A reservation never answered (its Lambda killed by the API's
 * 29 s timeout) is released after STALE_RESERVATION_SECONDS. A webhook secret is not kept (it is shown once): a replay of a
 * create that set a webhook answers without it. The periodic function's ledger retention prunes rows
 * older than that (src/store/ledger/retention.ts, one constant for both).
 */
export const KEEP_HOURS = API_IDEMPOTENCY_KEEP_HOURS;

/** A reservation still without an answer after this long was abandoned (the API function's timeout is 29 s). */
export const STALE_RESERVATION_SECONDS = 60;

export type Reservation =
  | { kind: 'new' }
  | { kind: 'replay'; status: number; body: unknown }
  | { kind: 'mismatch' }
  | { kind: 'in-progress' };

/** The digest of a request: method, path and its body as JSON with sorted keys (key order does not matter). */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method}\n${path}\n${canonical(body)}`)
    .digest('hex');
}

function canonical(v: unknown): string {
  return JSON.stringify(v ?? null, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}

export class IdempotencyStore {
  constructor(private readonly pool: Pool) {}

  /** Reserves (principal, key) for this request, or says what an earlier request with it got. */
  async reserve(principal: string, key: string, hash: string): Promise<Reservation> {
    await this.pool.query(
      `delete from dropship.api_idempotency where principal = $1 and key = $2
          and (created_at < now() - make_interval(hours => $3)
               or (status is null and created_at < now() - make_interval(secs => $4)))`,
      [principal, key, KEEP_HOURS, STALE_RESERVATION_SECONDS],
    );
    const ins = await this.pool.query(
      `insert into dropship.api_idempotency (principal, key, request_hash) values ($1, $2, $3)
       on conflict (principal, key) do nothing`,
      [principal, key, hash],
    );
    if (ins.rowCount === 1) return { kind: 'new' };
    const res = await this.pool.query<{ request_hash: string; status: number | null; body: unknown }>(
      'select request_hash, status, body from dropship.api_idempotency where principal = $1 and key = $2',
      [principal, key],
    );
    const row = res.rows[0];
    if (!row) return this.reserve(principal, key, hash); // expired and deleted in between
    if (row.request_hash !== hash) return { kind: 'mismatch' };
    if (row.status === null) return { kind: 'in-progress' };
    return { kind: 'replay', status: row.status, body: row.body };
  }

  /**
   * Records the answer of a reserved request: a success; an error answer releases the key instead. `c`: in that
   * transaction — the one of the change the answer tells of, so a change committed always has its answer kept (a
   * function killed after the commit, before answering, left a retry to meet 409 "exists").
   */
  async complete(principal: string, key: string, status: number, body: unknown, c?: PoolClient): Promise<void> {
    if (status >= 400) return this.release(principal, key);
    await (c ?? this.pool).query(
      'update dropship.api_idempotency set status = $3, body = $4 where principal = $1 and key = $2',
      [principal, key, status, JSON.stringify(body ?? null)],
    );
  }

  /** Forgets a reservation: the next request with the key is a new one. */
  async release(principal: string, key: string): Promise<void> {
    await this.pool.query('delete from dropship.api_idempotency where principal = $1 and key = $2', [principal, key]);
  }
}
