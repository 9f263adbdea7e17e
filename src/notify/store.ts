import type { Pool, PoolClient } from 'pg';
import { secureParameter } from '../aws/ssm.js';
import { ConfigError, type Settings } from '../config/settings.js';
import { inTransaction } from '../store/db.js';
import type { StatusPlaces } from './status.js';

/**
 * dropship's side of delivery status (table dropship.destination_status): the failure streak and
 * pause, what status.json last said, the webhook (URL + encrypted secret), the drift checks; plus
 * the run outcomes already recorded and the webhook outbox (dropship.webhook_events).
 */
export interface LastSuccess {
  run_id: string;
  receipt_key: string;
  finished_at: string;
}
export interface LastFailure {
  run_id: string;
  at: string;
  reason: string;
  fix: string;
}

export interface DestinationStatusRow {
  accountId: string;
  webhookUrl: string | null;
  webhookSecret: string | null;
  consecutiveFailures: number;
  pausedAt: Date | null;
  lastSuccess: LastSuccess | null;
  lastFailure: LastFailure | null;
  externalIdVerifiedAt: Date | null;
  /** What the verification was for: a digest of (role ARN, external ID) — a new role is probed again. */
  externalIdVerifiedFor: string | null;
  lastCheckAt: Date | null;
  /**
   * Rises at every change of the webhook's URL or secret: an outbox event carries the version it was queued for and is
   * sent only while that version is in force (the older versions' pending events are given up at the change).
   */
  webhookVersion: number;
}

export interface PendingEvent {
  id: string;
  accountId: string;
  type: string;
  body: string;
  attempts: number;
  /**
   * The event belongs to the account's current destination generation (issue 22). An event of a
   * removed or re-registered destination is never sent (not even to a new owner of the account id).
   */
  current: boolean;
}

/** A pending event due for a send now (`StatusStore.dueEvents`). */
export interface DueEvent extends PendingEvent {
  /** Sent before and not delivered (it is a retry). */
  retry: boolean;
  /** Its account's webhook failed recently: one of the account's pending events is a retry. */
  failing: boolean;
}

/** Why an event queued for a webhook version no longer in force was given up (its `last_error`). */
const WEBHOOK_REMOVED = 'webhook removed before delivery';
const WEBHOOK_CHANGED =
  'webhook changed (URL and secret set again) before delivery: an event goes only to the webhook it was queued for';
const SECRET_ROTATED =
  'webhook secret rotated before delivery: an event is signed only with the secret it was queued under';
const WEBHOOK_CHANGED_OR_ROTATED =
  'webhook changed or its secret rotated before delivery: an event goes only to the webhook it was queued for';
/** How long an outbox event is tried: older undelivered ones are given up (with this reason, then their last error). */
export const WEBHOOK_RETENTION_HOURS = 24;
export const WEBHOOK_EXPIRED = 'not delivered within a day';
/** Pause after an event's n-th failed send: 4 min × 2^(n-1), at most an hour (the sweeper passes every 5 minutes). */
export const WEBHOOK_RETRY_BASE_SECONDS = 240;
export const WEBHOOK_RETRY_MAX_SECONDS = 3600;

/** The account's webhook version now (SQL, the account id as $2): 0 before a status row exists. */
const WEBHOOK_VERSION_NOW =
  'coalesce((select webhook_version from dropship.destination_status where account_id = $2), 0)';

// biome-ignore lint/suspicious/noExplicitAny: pg rows
function toRow(r: any): DestinationStatusRow {
  return {
    accountId: r.account_id,
    webhookUrl: r.webhook_url,
    webhookSecret: r.webhook_secret,
    consecutiveFailures: r.consecutive_failures,
    pausedAt: r.paused_at,
    lastSuccess: r.last_success,
    lastFailure: r.last_failure,
    externalIdVerifiedAt: r.external_id_verified_at,
    externalIdVerifiedFor: r.external_id_verified_for ?? null,
    lastCheckAt: r.last_check_at,
    webhookVersion: Number(r.webhook_version ?? 0),
  };
}

/** dropship.status_places read and written through `c` (a pool, or the connection holding the status.json lock). */
export function statusPlaces(c: Pool | PoolClient): StatusPlaces {
  return {
    async state(bucket, key) {
      const res = await c.query<{ written: boolean }>(
        'select written from dropship.status_places where bucket = $1 and status_key = $2',
        [bucket, key],
      );
      const r = res.rows[0];
      return r === undefined ? undefined : r.written ? 'written' : 'maybe';
    },
    async maybe(bucket, key, etag) {
      await c.query(
        `insert into dropship.status_places (bucket, status_key, written, maybe_etag) values ($1, $2, false, $3)
         on conflict (bucket, status_key) do update set maybe_etag = $3 where not status_places.written`,
        [bucket, key, etag],
      );
    },
    async maybeEtag(bucket, key) {
      const res = await c.query<{ maybe_etag: string | null }>(
        'select maybe_etag from dropship.status_places where bucket = $1 and status_key = $2 and not written',
        [bucket, key],
      );
      return res.rows[0]?.maybe_etag ?? undefined;
    },
    async record(bucket, key) {
      await c.query(
        `insert into dropship.status_places (bucket, status_key, written) values ($1, $2, true)
         on conflict (bucket, status_key) do update set written = true where not status_places.written`,
        [bucket, key],
      );
    },
    async forget(bucket, key) {
      await c.query('delete from dropship.status_places where bucket = $1 and status_key = $2 and not written', [
        bucket,
        key,
      ]);
    },
  };
}

/** How long a status.json write waits for the account's status.json lock before it gives up (retried later). */
export const STATUS_LOCK_WAIT_SECONDS = 10;
/** How long the lock's holder may stay idle (its PUT under way) before Postgres ends its session and the lock. */
export const STATUS_LOCK_IDLE_SECONDS = 120;

export class StatusStore {
  constructor(readonly pool: Pool) {}

  async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  /**
   * Runs `fn` — the account's status.json write: a re-read, then the PUT — holding the account's status.json lock (a
   * session advisory lock, on a connection of its own that `fn` gets, outside any transaction: what `fn` records, such
   * as a place maybe written before its PUT, stays even when the PUT fails; released when `fn` ends, or when the
   * connection is lost). Two writes of one account's status.json never overlap, so the PUT that lands last is the
   * last one started; whoever re-reads under the lock sees every outcome recorded before it (red team, notify: run 1's
   * slower PUT landed after run 2's, and status.json went back in time). `fn` must use `c` for the ledger, not the
   * pool: a small pool's connections may all be lanes waiting here.
   */
  async underStatusLock<T>(accountId: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      // Bounded both ways (review: a holder frozen with the lock — a Lambda torn down without FIN, a suspended laptop
      // — kept its session and the lock for Postgres's TCP keepalive, ~2 h, and every status write of the account
      // waited without end, each holding a pool connection, the sweeper's dispatch with them): the wait ends after
      // STATUS_LOCK_WAIT_SECONDS (an error: the outcome is retried later), and the holder's session ends once idle
      // for STATUS_LOCK_IDLE_SECONDS (Postgres 14's idle_session_timeout; older servers keep the wait bound only).
      await c
        .query(
          `select set_config('lock_timeout', $2, false),
                  pg_advisory_lock(hashtext('dropship.status_json'), hashtext($1))`,
          [accountId, `${STATUS_LOCK_WAIT_SECONDS}s`],
        )
        .catch((e: Error) => {
          broken = e;
          throw e;
        });
      await c
        .query(`select set_config('lock_timeout', '0', false), set_config('idle_session_timeout', $1, false)`, [
          `${STATUS_LOCK_IDLE_SECONDS}s`,
        ])
        .catch(() => c.query(`select set_config('lock_timeout', '0', false)`))
        .catch((e: Error) => {
          broken = e;
          throw e;
        });
      try {
        return await fn(c);
      } finally {
        await c
          .query(
            `select pg_advisory_unlock(hashtext('dropship.status_json'), hashtext($1)),
                    set_config('idle_session_timeout', '0', false)`,
            [accountId],
          )
          .catch(() =>
            c.query(`select pg_advisory_unlock(hashtext('dropship.status_json'), hashtext($1))`, [accountId]),
          )
          .catch((e: Error) => {
            broken = e;
          });
      }
    } finally {
      // A connection whose lock may still be held is closed (that releases it), never handed to someone else.
      c.release(broken);
    }
  }

  /** Whether an outcome of another run of the account that ended after `endedAt` is recorded (read through `c`). */
  async newerOutcome(c: Pool | PoolClient, accountId: string, runId: string, endedAt: Date): Promise<boolean> {
    const res = await c.query(
      'select 1 from dropship.run_outcomes where account_id = $1 and run_id <> $2 and ended_at > $3 limit 1',
      [accountId, runId, endedAt],
    );
    return (res.rowCount ?? 0) > 0;
  }

  async get(accountId: string, c: Pool | PoolClient = this.pool): Promise<DestinationStatusRow> {
    await c.query(
      'insert into dropship.destination_status (account_id) values ($1) on conflict (account_id) do nothing',
      [accountId],
    );
    const res = await c.query('select * from dropship.destination_status where account_id = $1', [accountId]);
    return toRow(res.rows[0]);
  }

  /**
   * Records a run's end once (later calls for the same run return undefined): resets or extends
   * the failure streak, and pauses the destination (enabled = false) when the streak reaches
   * `pauseAfter`. Returns the new row and whether this outcome paused it. An outcome recorded after
   * that of a run which ended later (`late`) changes neither the streak nor last success/failure;
   * one that does not count toward the pause (a cancel) records the failure without extending the streak.
   */
  async recordOutcome(
    o: {
      accountId: string;
      runId: string;
      ok: boolean;
      endedAt?: Date;
      countsTowardPause?: boolean;
      success?: LastSuccess;
      failure?: LastFailure;
      /**
       * The destination generation the run served: the outcome is recorded only while it is still the account's
       * (checked with the destination row locked, so a removal waits for the recording or comes first).
       */
      generation?: number | null;
    },
    pauseAfter: number,
    /** Webhook events to put in the outbox in the same transaction (when a webhook is set). */
    events: (
      row: DestinationStatusRow,
      pausedNow: boolean,
    ) => { type: string; build: (id: string) => string }[] = () => [],
  ): Promise<
    { row: DestinationStatusRow; pausedNow: boolean; eventIds: string[]; late: boolean } | 'removed' | undefined
  > {
    return this.tx(async (c) => {
      if (o.generation !== undefined && o.generation !== null) {
        const cur = await c.query<{ generation: string }>(
          // NO KEY UPDATE, not SHARE: two recordings of one account then queue here, rather than both holding a
          // share lock that the pause's update of this row (below) would wait on — a deadlock.
          'select generation from dropship.destinations where account_id = $1 for no key update',
          [o.accountId],
        );
        if (cur.rows[0] === undefined || Number(cur.rows[0].generation) !== o.generation) return 'removed';
      }
      const endedAt = o.endedAt ?? new Date();
      const first = await c.query(
        `insert into dropship.run_outcomes (run_id, account_id, ok, ended_at) values ($1, $2, $3, $4)
         on conflict (run_id) do nothing`,
        [o.runId, o.accountId, o.ok, endedAt],
      );
      if (first.rowCount !== 1) return undefined;
      // Serialised per account (the status row's lock), so "a newer outcome was recorded" is exact.
      await this.get(o.accountId, c);
      await c.query('select 1 from dropship.destination_status where account_id = $1 for update', [o.accountId]);
      const newer = await c.query(
        'select 1 from dropship.run_outcomes where account_id = $1 and run_id <> $2 and ended_at > $3 limit 1',
        [o.accountId, o.runId, endedAt],
      );
      const late = (newer.rowCount ?? 0) > 0;
      const counts = !o.ok && (o.countsTowardPause ?? true);
      const res = late
        ? await c.query('select * from dropship.destination_status where account_id = $1', [o.accountId])
        : await c.query(
            o.ok
              ? `update dropship.destination_status set consecutive_failures = 0, last_success = $2
                  where account_id = $1 returning *`
              : `update dropship.destination_status set consecutive_failures = consecutive_failures + $3::int,
                        last_failure = $2
                  where account_id = $1 returning *`,
            o.ok ? [o.accountId, JSON.stringify(o.success)] : [o.accountId, JSON.stringify(o.failure), counts ? 1 : 0],
          );
      let row = toRow(res.rows[0]);
      let pausedNow = false;
      if (counts && !late && row.consecutiveFailures >= pauseAfter && row.pausedAt === null) {
        const d = await c.query(
          'update dropship.destinations set enabled = false where account_id = $1 and enabled returning 1',
          [o.accountId],
        );
        if (d.rowCount === 1) {
          const p = await c.query(
            'update dropship.destination_status set paused_at = now() where account_id = $1 returning *',
            [o.accountId],
          );
          row = toRow(p.rows[0]);
          pausedNow = true;
        }
      }
      const eventIds: string[] = [];
      if (row.webhookUrl)
        for (const ev of events(row, pausedNow))
          eventIds.push((await this.insertEvent(c, o.accountId, ev.type, ev.build))!);
      return { row, pausedNow, eventIds, late };
    });
  }

  /**
   * Sets the account's webhook — of the registration `generation` only: the destination row is share-locked and must
   * still be that generation, so a change racing a removal and a new registration of the same account id never lands
   * on the new one (red team, API: a PATCH's webhook did). Returns false (nothing set) when the generation is gone.
   */
  async setWebhook(
    accountId: string,
    generation: number,
    url: string | null,
    encryptedSecret: string | null,
  ): Promise<boolean> {
    return this.tx(async (c) => {
      const cur = await c.query(
        'select 1 from dropship.destinations where account_id = $1 and generation = $2 for share',
        [accountId, generation],
      );
      if (cur.rowCount === 0) return false;
      await this.writeWebhook(c, accountId, url, encryptedSecret);
      return true;
    });
  }

  /**
   * Sets the account's webhook in the caller's transaction `c` — one that holds the destination's row (it has just
   * registered or changed it: src/operations/destinations.ts), so the webhook commits with that change or not at all.
   * A new webhook version: the events still pending for the previous URL and secret are given up in `c` (they are never
   * sent to the new URL nor signed with the new secret).
   */
  async writeWebhook(
    c: PoolClient,
    accountId: string,
    url: string | null,
    encryptedSecret: string | null,
  ): Promise<void> {
    await this.get(accountId, c);
    await this.newWebhookVersion(
      c,
      accountId,
      'webhook_url = $2, webhook_secret = $3',
      [url, encryptedSecret],
      url === null ? WEBHOOK_REMOVED : WEBHOOK_CHANGED,
    );
  }

  /**
   * In `c`: sets the webhook columns `set` (parameters from $2: `values`) and raises the webhook version; the events of
   * older versions still pending are given up, with `reason` as their last error.
   */
  private async newWebhookVersion(
    c: PoolClient,
    accountId: string,
    set: string,
    values: unknown[],
    reason: string,
  ): Promise<void> {
    const res = await c.query<{ webhook_version: string }>(
      `update dropship.destination_status set ${set}, webhook_version = webhook_version + 1
        where account_id = $1 returning webhook_version`,
      [accountId, ...values],
    );
    const version = res.rows[0]?.webhook_version;
    if (version === undefined) return;
    await c.query(
      `update dropship.webhook_events set given_up_at = now(), last_error = $3
        where account_id = $1 and webhook_version < $2 and delivered_at is null and given_up_at is null`,
      [accountId, version, reason],
    );
  }

  /** The webhook addresses of these accounts (none: absent), read without creating status rows. */
  async webhookUrls(accountIds: string[]): Promise<Map<string, string>> {
    const res = await this.pool.query<{ account_id: string; webhook_url: string }>(
      `select account_id, webhook_url from dropship.destination_status
        where account_id = any($1::text[]) and webhook_url is not null`,
      [accountIds],
    );
    return new Map(res.rows.map((r) => [r.account_id, r.webhook_url]));
  }

  /**
   * Replaces the webhook's signing secret — of the registration `generation` only (as `setWebhook`); false: gone. A new
   * webhook version, as `writeWebhook`: the events still pending under the old secret are given up.
   */
  async setSecret(accountId: string, generation: number, encryptedSecret: string): Promise<boolean> {
    return this.tx(async (c) => {
      const cur = await c.query(
        'select 1 from dropship.destinations where account_id = $1 and generation = $2 for share',
        [accountId, generation],
      );
      if (cur.rowCount === 0) return false;
      await this.newWebhookVersion(c, accountId, 'webhook_secret = $2', [encryptedSecret], SECRET_ROTATED);
      return true;
    });
  }

  /** The external-ID probe passed for `verifiedFor` (see externalIdKey, src/notify/drift.ts). */
  async noteExternalIdVerified(accountId: string, verifiedFor: string): Promise<void> {
    await this.get(accountId);
    await this.pool.query(
      'update dropship.destination_status set external_id_verified_at = now(), external_id_verified_for = $2 where account_id = $1',
      [accountId, verifiedFor],
    );
  }

  /**
   * The last drift check's result — of the registration `generation` at destination `version` only: a removed
   * registration's check, or one of a version changed since (the check read the destination before an update), lands
   * nowhere (red team, notify: a stale check of a wrong role was recorded as the fixed version's last check). Returns
   * whether it was recorded.
   */
  async noteCheck(accountId: string, generation: number, version: number, result: unknown): Promise<boolean> {
    await this.get(accountId);
    const res = await this.pool.query(
      `update dropship.destination_status s set last_check_at = now(), last_check = $2
         from dropship.destinations d
        where s.account_id = $1 and d.account_id = $1 and d.generation = $3 and d.version = $4`,
      [accountId, JSON.stringify(result), generation, version],
    );
    return res.rowCount === 1;
  }

  async addEvent(accountId: string, type: string, build: (id: string) => string): Promise<string> {
    return (await this.insertEvent(this.pool, accountId, type, build))!;
  }

  /**
   * An event about the registration `generation` only: none (undefined) when the account was removed meanwhile,
   * and maybe registered again — a drift check of the old role or bucket is not the new customer's (review). With
   * `version`, of that destination version only: none when the destination was changed since (a check of the version
   * before an update tells the customer nothing).
   */
  async addEventFor(
    accountId: string,
    generation: number,
    type: string,
    build: (id: string) => string,
    version?: number,
  ): Promise<string | undefined> {
    return this.insertEvent(this.pool, accountId, type, build, { generation, version: version ?? null });
  }

  private async insertEvent(
    c: Pool | PoolClient,
    accountId: string,
    type: string,
    build: (id: string) => string,
    of?: { generation: number; version: number | null },
  ): Promise<string | undefined> {
    const { rows } = await c.query<{ id: string }>('select gen_random_uuid()::text as id');
    const id = rows[0]!.id;
    if (of !== undefined) {
      const res = await c.query(
        `insert into dropship.webhook_events (id, account_id, type, body, generation, webhook_version)
         select $1, $2, $3, $4, generation, ${WEBHOOK_VERSION_NOW}
           from dropship.destinations
          where account_id = $2 and generation = $5 and ($6::bigint is null or version = $6)`,
        [id, accountId, type, build(id), of.generation, of.version],
      );
      return res.rowCount === 1 ? id : undefined;
    }
    // The event belongs to the destination generation registered now, and to its webhook version now.
    await c.query(
      `insert into dropship.webhook_events (id, account_id, type, body, generation, webhook_version)
       values ($1, $2, $3, $4, (select generation from dropship.destinations where account_id = $2),
               ${WEBHOOK_VERSION_NOW})`,
      [id, accountId, type, build(id)],
    );
    return id;
  }

  /**
   * The pending events to send in this pass (of one account, some ids, or all younger than a day): those due — never
   * sent, or their pause after a failed send (`noteDelivery`) over; named `ids` are due at once — accounts whose
   * webhook did not fail recently first, then first attempts before retries, then oldest first. `failing`: the account
   * has a pending event that failed (within the day, as every pending one).
   */
  async dueEvents(opts: { accountId?: string; ids?: string[] } = {}): Promise<DueEvent[]> {
    const res = await this.pool.query(
      `with p as (
         select e.id, e.seq, e.account_id, e.type, e.body, e.attempts, e.generation, e.next_attempt_at,
                (e.attempts > 0 or e.failed_sends > 0) as retry
           from dropship.webhook_events e
          where e.delivered_at is null and e.given_up_at is null
            and ($1::text is null or e.account_id = $1)
            and ($2::uuid[] is null or e.id = any($2::uuid[]))
            and e.created_at > now() - make_interval(hours => $3)
       ), a as (
         select e.account_id, bool_or(e.attempts > 0 or e.failed_sends > 0) as failing
           from dropship.webhook_events e
          where e.delivered_at is null and e.given_up_at is null
            and e.created_at > now() - make_interval(hours => $3)
            and e.account_id in (select account_id from p)
          group by e.account_id
       )
       select p.id::text, p.account_id, p.type, p.body, p.attempts, p.retry, a.failing,
              (d.generation is not null and (p.generation is null or d.generation = p.generation)) as current
         from p join a using (account_id) left join dropship.destinations d on d.account_id = p.account_id
        where $2::uuid[] is not null or p.next_attempt_at is null or p.next_attempt_at <= now()
        order by a.failing, p.retry, p.seq`,
      [opts.accountId ?? null, opts.ids ?? null, WEBHOOK_RETENTION_HOURS],
    );
    return res.rows.map((r) => ({
      id: r.id,
      accountId: r.account_id,
      type: r.type,
      body: r.body,
      attempts: r.attempts,
      current: r.current,
      retry: r.retry,
      failing: r.failing,
    }));
  }

  /**
   * Gives up the pending events older than the outbox keeps trying (WEBHOOK_RETENTION_HOURS): never selected again,
   * they are counted (`webhooksGivenUp`) rather than silently left. Returns how many.
   */
  async expireEvents(): Promise<number> {
    const res = await this.pool.query(
      `update dropship.webhook_events
          set given_up_at = now(), last_error = $2 || coalesce(' (last error: ' || last_error || ')', '')
        where delivered_at is null and given_up_at is null and created_at <= now() - make_interval(hours => $1)`,
      [WEBHOOK_RETENTION_HOURS, WEBHOOK_EXPIRED],
    );
    return res.rowCount ?? 0;
  }

  /** Events given up undelivered after a day of attempts, in the day before `now` (the outbox gauge). */
  async webhooksGivenUp(now: Date): Promise<number> {
    const res = await this.pool.query<{ n: number }>(
      `select count(*)::int as n from dropship.webhook_events
        where given_up_at > $1::timestamptz - interval '1 day' and starts_with(last_error, $2)`,
      [now, WEBHOOK_EXPIRED],
    );
    return res.rows[0]?.n ?? 0;
  }

  /**
   * Where event `id` may be sent now, read right before each POST in one query: the webhook URL and (encrypted) secret
   * of the event's own registration (its generation still the account's) and webhook version (neither URL nor secret
   * changed since it was queued: a change that raced its insert gave nothing up), or why not — `settled` (delivered or given
   * up meanwhile, e.g. by a removal: nothing more to note) or `withdrawn` (to be given up, with that reason). An event
   * read as pending before a removal and a new registration of the account id never reaches the new owner's URL nor is
   * signed with its secret (red team, notify).
   */
  async sendTarget(id: string): Promise<{ url: string; secret: string } | { settled: true } | { withdrawn: string }> {
    const res = await this.pool.query<{
      settled: boolean;
      current: boolean;
      same_webhook: boolean;
      webhook_url: string | null;
      webhook_secret: string | null;
    }>(
      `select e.delivered_at is not null or e.given_up_at is not null as settled, d.account_id is not null as current,
              s.webhook_version is not distinct from e.webhook_version as same_webhook, s.webhook_url, s.webhook_secret
         from dropship.webhook_events e
         left join dropship.destinations d on d.account_id = e.account_id and d.generation = e.generation
         left join dropship.destination_status s on s.account_id = d.account_id
        where e.id = $1`,
      [id],
    );
    const r = res.rows[0];
    if (r === undefined || r.settled) return { settled: true };
    if (!r.current) return { withdrawn: 'destination removed or re-registered before delivery' };
    if (!r.webhook_url || !r.webhook_secret) return { withdrawn: WEBHOOK_REMOVED };
    if (!r.same_webhook) return { withdrawn: WEBHOOK_CHANGED_OR_ROTATED };
    return { url: r.webhook_url, secret: r.webhook_secret };
  }

  /**
   * Notes a delivery's attempts and result — of a pending event only: one delivered or given up meanwhile (a removal
   * gives its events up while a POST may be under way) keeps that end (a given-up event is never marked delivered).
   * An event not delivered waits before its next send (WEBHOOK_RETRY_BASE_SECONDS doubling, at most
   * WEBHOOK_RETRY_MAX_SECONDS), and is given up once older than WEBHOOK_RETENTION_HOURS (or with `giveUp`).
   * Returns whether it was noted.
   */
  async noteDelivery(
    id: string,
    attempts: number,
    delivered: boolean,
    error: string | null,
    giveUp: boolean,
  ): Promise<boolean> {
    const res = await this.pool.query(
      `update dropship.webhook_events
          set attempts = attempts + $2, last_error = $4,
              delivered_at = case when $3 then now() end,
              given_up_at = case when not $3 and ($5 or created_at <= now() - make_interval(hours => $6)) then now() end,
              failed_sends = failed_sends + case when $3 then 0 else 1 end,
              next_attempt_at = case when not $3
                then now() + make_interval(secs => least($8::float8, $7::float8 * 2 ^ least(failed_sends, 16))) end
        where id = $1 and delivered_at is null and given_up_at is null`,
      [
        id,
        attempts,
        delivered,
        error,
        giveUp,
        WEBHOOK_RETENTION_HOURS,
        WEBHOOK_RETRY_BASE_SECONDS,
        WEBHOOK_RETRY_MAX_SECONDS,
      ],
    );
    return res.rowCount === 1;
  }

  /** Destinations paused after consecutive failures (and not re-enabled since), with when. */
  async paused(): Promise<Map<string, Date>> {
    const res = await this.pool.query<{ account_id: string; paused_at: Date }>(
      `select s.account_id, s.paused_at from dropship.destination_status s
         join dropship.destinations d using (account_id)
        where s.paused_at is not null and not d.enabled order by s.account_id`,
    );
    return new Map(res.rows.map((r) => [r.account_id, r.paused_at]));
  }

  // Housekeeping of events and recorded outcomes: src/store/ledger/retention.ts (the periodic function).

  /** The most recent events of an account (for `dropship destinations show` and tests). */
  async events(accountId: string, limit = 20) {
    const res = await this.pool.query(
      `select id::text, type, body, attempts, delivered_at, given_up_at, last_error from dropship.webhook_events
        where account_id = $1 order by seq desc limit $2`,
      [accountId, limit],
    );
    return res.rows as {
      id: string;
      type: string;
      body: string;
      attempts: number;
      delivered_at: Date | null;
      given_up_at: Date | null;
      last_error: string | null;
    }[];
  }
}

let ssmKey: Promise<Buffer> | undefined;

/** The key that encrypts webhook secrets: DROPSHIP_WEBHOOK_KEY, or the SSM SecureString named by DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER. */
export async function webhookKey(settings: Settings): Promise<Buffer> {
  if (settings.DROPSHIP_WEBHOOK_KEY) return Buffer.from(settings.DROPSHIP_WEBHOOK_KEY, 'base64');
  const name = settings.DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER;
  if (!name)
    throw new ConfigError(
      'DROPSHIP_WEBHOOK_KEY is not set; it is needed to store webhook signing secrets encrypted (generate one with: openssl rand -base64 32; in production use DROPSHIP_WEBHOOK_KEY_SSM_PARAMETER)',
    );
  ssmKey ??= secureParameter(
    name,
    (value) => {
      const key = Buffer.from(value, 'base64');
      return key.length === 32 ? key : undefined;
    },
    '32 bytes in base64',
    { maxAttempts: settings.DROPSHIP_AWS_MAX_ATTEMPTS },
  );
  ssmKey.catch(() => {
    ssmKey = undefined;
  });
  return ssmKey;
}
