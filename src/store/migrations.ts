import type { Pool, PoolClient } from 'pg';
import { DropshipError, type DropshipErrorOptions } from '../contracts/errors.js';
import { inTransaction } from './db.js';

/**
 * Idempotent, ordered migrations of dropship's own schema, applied by `dropship migrate` — an
 * explicit deploy step, before the functions are deployed (docs/operations/upgrades.md) — under an
 * advisory lock, so concurrent starters never race; each version runs once.
 *
 * Every function and CLI command checks the schema before it uses it (`requireKnownSchema`): a
 * schema older than the code → "run dropship migrate"; a schema newer than the code knows → refused,
 * unless every newer migration was declared `additive` (expand-only: the previous release keeps
 * working on it), which is what lets `migrate` run before the new functions are deployed and lets a
 * rollback of the code run on the migrated schema. The floor is stored with each applied version.
 */
interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Expand-only (new tables, nullable or defaulted columns, indexes): code of the previous version still runs on it. */
  additive?: boolean;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'destinations',
    sql: `
      create table dropship.destinations (
        account_id    text primary key
                      check (account_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        plan          text not null check (plan in ('paid', 'free')),
        bucket        text not null,
        prefix        text not null default '',
        region        text not null,
        role_arn      text not null,
        external_id   text not null unique,
        kms_key_arn   text,
        source_schema text not null,
        enabled       boolean not null default true,
        created_at    timestamptz not null default now(),
        updated_at    timestamptz not null default now()
      );
      -- The external ID is generated once and never changes: the customer's trust policy pins it.
      create function dropship.external_id_is_immutable() returns trigger language plpgsql as $$
      begin
        if new.external_id is distinct from old.external_id then
          raise exception 'external_id of account % cannot change', old.account_id;
        end if;
        new.updated_at := now();
        return new;
      end $$;
      create trigger destinations_external_id_immutable
        before update on dropship.destinations
        for each row execute function dropship.external_id_is_immutable();
    `,
  },
  {
    version: 2,
    name: 'destination layout',
    sql: `
      alter table dropship.destinations
        add column layout text not null default 'dreamdata' check (layout in ('dreamdata', 'portable'));
    `,
  },
  {
    version: 3,
    name: 'run ledger',
    sql: `
      create table dropship.runs (
        run_id         text primary key,
        account_id     text not null,
        trigger        text not null check (trigger in ('schedule', 'manual', 'cli')),
        slot           text,
        status         text not null check (status in ('running', 'finishing', 'succeeded', 'failed')),
        layout         text not null,
        folder         text not null,
        started_micros bigint not null,
        started_at     timestamptz not null default now(),
        finished_at    timestamptz,
        lease_until    timestamptz,
        receipt_key    text,
        error          text
      );
      -- One active run per account: a second trigger while one runs is refused, not doubled.
      create unique index runs_one_active_per_account on dropship.runs (account_id) where status in ('running', 'finishing');
      create index runs_by_account on dropship.runs (account_id, started_at desc);
      create table dropship.run_tasks (
        run_id       text not null references dropship.runs (run_id) on delete cascade,
        table_name   text not null,
        status       text not null check (status in ('pending', 'running', 'succeeded', 'failed')),
        attempts     int not null default 0,
        max_attempts int not null default 3,
        lease_until  timestamptz,
        shards_started int not null default 0,
        rows         bigint,
        bytes        bigint,
        result       jsonb,
        error        text,
        started_at   timestamptz,
        finished_at  timestamptz,
        primary key (run_id, table_name)
      );
    `,
  },
  {
    version: 4,
    name: 'range tasks',
    sql: `
      -- A very large table is split into parts by ranges of its integer primary key.
      alter table dropship.run_tasks add column part int not null default 0;
      alter table dropship.run_tasks add column parts int not null default 1;
      alter table dropship.run_tasks add column key_column text;
      alter table dropship.run_tasks add column range_lo bigint;
      alter table dropship.run_tasks add column range_hi bigint;
      alter table dropship.run_tasks drop constraint run_tasks_pkey;
      alter table dropship.run_tasks add primary key (run_id, table_name, part);
    `,
  },
  {
    version: 5,
    name: 'one account per source schema',
    sql: `
      -- Tenant isolation: a destination can never be pointed at another account's data.
      create unique index destinations_source_schema_unique on dropship.destinations (source_schema);
    `,
  },
  {
    version: 6,
    name: 'crash-safe run lifecycle',
    sql: `
      -- Runs can be cancelled by an operator.
      alter table dropship.runs drop constraint runs_status_check;
      alter table dropship.runs add constraint runs_status_check
        check (status in ('running', 'finishing', 'succeeded', 'failed', 'cancelled'));
      -- Who drives the run ('cli:<host>:<pid>' or 'fan-out'), whether that owner holds the session
      -- advisory lock (RUN_LOCK_SPACE, hashtext(run_id)), and its last sign of life.
      alter table dropship.runs add column owner text;
      alter table dropship.runs add column owner_lock boolean not null default false;
      alter table dropship.runs add column heartbeat_at timestamptz;
      alter table dropship.runs add column stale_seconds int not null default 120;
      -- Fan-out: when every task message was sent (null: the sweeper re-sends the pending tasks).
      alter table dropship.runs add column dispatched_at timestamptz;
      -- The scheduled slot's date: at most one scheduled run per account, slot and day.
      alter table dropship.runs add column slot_date date;
      -- The receipt's exact bytes, recorded before its PutObject: a retried finish rewrites the same content.
      alter table dropship.runs add column receipt_body text;
      alter table dropship.runs add column finish_attempts int not null default 0;
      update dropship.runs set heartbeat_at = coalesce(finished_at, started_at);
      alter table dropship.runs alter column heartbeat_at set not null;
      alter table dropship.runs alter column heartbeat_at set default now();
      create unique index runs_one_per_slot on dropship.runs (account_id, slot, slot_date)
        where trigger = 'schedule' and slot_date is not null;
    `,
  },
  {
    version: 7,
    name: 'tenant mode and table/column selection',
    sql: `
      -- What each destination receives (src/accounts/selection.ts). Tenant mode: only the rows whose
      -- tenant_column equals tenant_value (canonical text of the column's type).
      alter table dropship.destinations
        add column tenant_column      text,
        add column tenant_value       text,
        add column drop_tenant_column boolean not null default false,
        add column global_tables      text[] not null default '{}',
        add column include_tables     text[] not null default '{}',
        add column exclude_tables     text[] not null default '{}',
        add column exclude_columns    text[] not null default '{}',
        add constraint destinations_tenant_pair check ((tenant_column is null) = (tenant_value is null));
      -- One account per schema stays the rule for schema-per-account destinations; in tenant mode several
      -- destinations share a schema, one per tenant. (Mixing the two modes on one schema is refused by
      -- the registry under an advisory lock per schema.)
      drop index dropship.destinations_source_schema_unique;
      create unique index destinations_source_schema_unique on dropship.destinations (source_schema)
        where tenant_column is null;
      create unique index destinations_tenant_unique on dropship.destinations (source_schema, tenant_column, tenant_value)
        where tenant_column is not null;
      -- The selection as applied when a run opened (tables left out and why), for its receipt.
      alter table dropship.runs add column selection jsonb;
    `,
  },
  {
    version: 8,
    name: 'compression per destination',
    sql: `
      -- Parquet page codec per destination (gzip stays the default and the model's).
      alter table dropship.destinations add column compression text not null default 'gzip'
        check (compression in ('gzip', 'zstd', 'snappy', 'none'));
    `,
  },
  {
    version: 9,
    name: 'delivery status, webhooks, pause, drift checks, receipt chain',
    sql: `
      -- Per destination: what status.json says, the webhook, the failure streak and the checks.
      create table dropship.destination_status (
        account_id            text primary key references dropship.destinations (account_id) on delete cascade,
        webhook_url           text,
        -- AES-256-GCM under DROPSHIP_WEBHOOK_KEY (v1.<iv>.<tag>.<ciphertext>, base64url): signing needs the secret itself.
        webhook_secret        text,
        consecutive_failures  int not null default 0,
        paused_at             timestamptz,
        last_success          jsonb,
        last_failure          jsonb,
        external_id_verified_at timestamptz,
        last_check_at         timestamptz,
        last_check            jsonb
      );
      -- A run's outcome is recorded once, however many workers see it end.
      create table dropship.run_outcomes (
        run_id      text primary key,
        account_id  text not null,
        ok          boolean not null,
        recorded_at timestamptz not null default now()
      );
      -- The receipt chain: one row per published receipt (sequence +1 per destination).
      create table dropship.receipt_chain (
        account_id   text not null,
        sequence     bigint not null check (sequence >= 1),
        run_id       text not null unique,
        receipt_key  text not null,
        sha256       text not null,
        published_at timestamptz not null default now(),
        primary key (account_id, sequence)
      );
      -- Webhook outbox: every event is stored before it is sent, so a crash never loses one.
      create table dropship.webhook_events (
        id           uuid primary key default gen_random_uuid(),
        seq          bigserial not null,
        account_id   text not null,
        type         text not null,
        body         text not null,
        created_at   timestamptz not null default now(),
        attempts     int not null default 0,
        delivered_at timestamptz,
        given_up_at  timestamptz,
        last_error   text
      );
      create index webhook_events_pending on dropship.webhook_events (seq) where delivered_at is null and given_up_at is null;
      -- Re-enabling a destination (dropship destinations enable) ends an automatic pause.
      create function dropship.destination_resumed() returns trigger language plpgsql as $$
      begin
        update dropship.destination_status set consecutive_failures = 0, paused_at = null where account_id = new.account_id;
        return new;
      end $$;
      create trigger destinations_resumed after update of enabled on dropship.destinations
        for each row when (old.enabled = false and new.enabled = true) execute function dropship.destination_resumed();
    `,
  },
  {
    version: 10,
    name: 'change sets',
    sql: `
      -- Opt-in per destination: every delivery also carries change files since the last successful one.
      alter table dropship.destinations add column changes boolean not null default false;
      -- Per-row state of a delivered table (src/changes/state.ts): one row per primary key with a
      -- 128-bit hash of the exported row. A state is "pending" until its run is 'succeeded' in
      -- dropship.runs; the base of a change set is the state of the account's last succeeded run.
      create table dropship.change_states (
        state_id    bigserial primary key,
        account_id  text not null,
        table_name  text not null,
        run_id      text not null references dropship.runs (run_id) on delete cascade,
        signature   text not null,
        rows        bigint not null default 0,
        created_at  timestamptz not null default now()
      );
      create index change_states_by_table on dropship.change_states (account_id, table_name);
      create table dropship.change_rows (
        state_id bigint not null references dropship.change_states (state_id) on delete cascade,
        k        text collate "C" not null,
        h        uuid not null,
        primary key (state_id, k)
      );
    `,
  },
  {
    version: 11,
    name: 'shared snapshot of fan-out runs',
    sql: `
      -- One consistent snapshot per fan-out run (src/run/lifecycle/shared-snapshot.ts): the worker that holds the
      -- exported snapshot open, the id others import, and the moment it shows.
      alter table dropship.runs
        add column snapshot_holder text,
        add column snapshot_claimed_at timestamptz,
        add column snapshot_export text,
        add column snapshot_id text,
        add column snapshot_at text,
        add column snapshot_released_at timestamptz;
    `,
  },
  {
    version: 12,
    name: 'a delivery belongs to one destination version',
    sql: `
      -- Issue 22. A destination's identity is its generation (a new one at every add, never reused,
      -- never changed) and its version (+1 at every update that changes where or how data is
      -- delivered). Every run, receipt chain link, change state and webhook event belongs to one
      -- generation; a run also records the version and a frozen copy of the destination it serves.
      create sequence dropship.destination_generations;
      alter table dropship.destinations
        add column generation bigint,
        add column version int not null default 1;
      update dropship.destinations set generation = nextval('dropship.destination_generations');
      alter table dropship.destinations
        alter column generation set default nextval('dropship.destination_generations'),
        alter column generation set not null;
      create unique index destinations_generation_unique on dropship.destinations (generation);
      create function dropship.destination_versioned() returns trigger language plpgsql as $$
      begin
        if new.generation is distinct from old.generation then
          raise exception 'generation of account % cannot change', old.account_id;
        end if;
        new.version := old.version;
        if (new.bucket, new.prefix, new.region, new.role_arn, new.kms_key_arn, new.source_schema, new.layout,
            new.compression, new.changes, new.tenant_column, new.tenant_value, new.drop_tenant_column,
            new.global_tables, new.include_tables, new.exclude_tables, new.exclude_columns)
           is distinct from
           (old.bucket, old.prefix, old.region, old.role_arn, old.kms_key_arn, old.source_schema, old.layout,
            old.compression, old.changes, old.tenant_column, old.tenant_value, old.drop_tenant_column,
            old.global_tables, old.include_tables, old.exclude_tables, old.exclude_columns) then
          new.version := old.version + 1;
        end if;
        return new;
      end $$;
      create trigger destinations_versioned before update on dropship.destinations
        for each row execute function dropship.destination_versioned();

      alter table dropship.runs
        add column destination_generation bigint,
        add column destination_version int,
        add column destination jsonb;
      update dropship.runs r set destination_generation = d.generation, destination_version = d.version
        from dropship.destinations d where d.account_id = r.account_id;

      -- The chain restarts at sequence 1 for every generation.
      alter table dropship.receipt_chain add column generation bigint not null default 0;
      update dropship.receipt_chain c set generation = d.generation
        from dropship.destinations d where d.account_id = c.account_id;
      alter table dropship.receipt_chain alter column generation drop default;
      alter table dropship.receipt_chain drop constraint receipt_chain_pkey;
      alter table dropship.receipt_chain add primary key (account_id, generation, sequence);

      alter table dropship.change_states add column generation bigint;
      update dropship.change_states s set generation = d.generation
        from dropship.destinations d where d.account_id = s.account_id;

      alter table dropship.webhook_events add column generation bigint;
      update dropship.webhook_events e set generation = d.generation
        from dropship.destinations d where d.account_id = e.account_id;

      -- The external-ID probe is remembered for one (role ARN, external ID): a new role is probed.
      alter table dropship.destination_status add column external_id_verified_for text;
    `,
  },
  {
    version: 13,
    name: 'receipt ETags for conditional publication',
    additive: true,
    sql: `
      -- The ETag S3 answered for each published receipt: the next receipt at the same key is written with
      -- If-Match on it, so a late finisher can never replace a newer receipt with an older one.
      alter table dropship.receipt_chain add column etag text;
      -- The bucket the receipt was written to: an ETag is only a precondition for the same bucket and key.
      alter table dropship.receipt_chain add column bucket text;
      -- A run that ends (cancelled, failed) while one of its receipt PUTs is in doubt may have published it
      -- (a PUT whose answer was lost, a worker killed right after its PUT). Its link is kept, marked not known
      -- to be published, so the next receipt follows it and the chain never forks; if it was never published,
      -- a verifier sees a gap there, which is the truth: a receipt may be missing. A run whose every PUT was
      -- refused by S3 keeps no link: the next receipt takes its sequence.
      alter table dropship.receipt_chain add column published boolean not null default true;
      -- Receipt PUTs whose outcome is unknown (sent, and no answer from S3: the process died, the
      -- connection dropped); an answer that refuses the PUT takes its doubt back.
      alter table dropship.runs add column receipt_puts_in_doubt int not null default 0;
      create function dropship.keep_possible_receipt_link() returns trigger language plpgsql as $$
      begin
        if old.status = 'finishing' and new.status in ('failed', 'cancelled') and new.receipt_body is not null
           and new.receipt_puts_in_doubt > 0 and new.destination is not null then
          insert into dropship.receipt_chain (account_id, generation, sequence, run_id, receipt_key, sha256, published, bucket)
          values (new.account_id, coalesce(new.destination_generation, 0),
                  (new.receipt_body::jsonb ->> 'sequence')::bigint, new.run_id,
                  case when coalesce(new.destination ->> 'prefix', '') = '' then 'receipt.json'
                       else (new.destination ->> 'prefix') || '/receipt.json' end,
                  encode(sha256(convert_to(new.receipt_body, 'UTF8')), 'hex'), false, new.destination ->> 'bucket')
          on conflict do nothing;
        end if;
        return new;
      end $$;
      create trigger runs_keep_possible_receipt_link after update of status on dropship.runs
        for each row execute function dropship.keep_possible_receipt_link();
    `,
  },
  {
    // Issue 24 (one way a run ends). Another branch may also add a 14 (destinations): renumber freely.
    version: 14,
    name: 'run outcome outbox (one event per ended run)',
    additive: true,
    sql: `
      -- One outcome event per ended run (unique on the run), written in the same transaction as the
      -- ledger's transition that ends the run — by a trigger on dropship.runs, so no transition can
      -- forget it: succeeded, failed (a task, a dead letter, an abandoned run, a missed slot) and
      -- cancelled (an operator, a change or removal of the destination). The dispatcher
      -- (src/notify/dispatch.ts) delivers it: failure streak and pause, status.json, webhook events,
      -- metrics. It carries the run's frozen destination and generation: never re-read for where to write.
      create table dropship.outcome_events (
        run_id          text primary key,
        account_id      text not null,
        status          text not null check (status in ('succeeded', 'failed', 'cancelled')),
        generation      bigint,
        destination     jsonb,
        receipt_key     text,
        error           text,
        rows            bigint,
        bytes           bigint,
        seconds         float8,
        ended_at        timestamptz not null default now(),
        -- Delivery: claimed with a lease, retried with backoff, given up after the last attempt. Due at
        -- once, to the millisecond (the dispatcher's clock has milliseconds: an event is never "not due
        -- yet" to the process that ended its run a few microseconds later).
        attempts        int not null default 0,
        next_attempt_at timestamptz not null default date_trunc('milliseconds', now()),
        lease_until     timestamptz,
        -- The customer's words for a failure, fixed at the first attempt (retries tell the same).
        notice          jsonb,
        last_error      text,
        delivered_at    timestamptz,
        given_up_at     timestamptz
      );
      create index outcome_events_due on dropship.outcome_events (next_attempt_at)
        where delivered_at is null and given_up_at is null;
      create function dropship.run_outcome_event() returns trigger language plpgsql as $$
      begin
        if new.status in ('succeeded', 'failed', 'cancelled')
           and (tg_op = 'INSERT' or old.status in ('running', 'finishing')) then
          insert into dropship.outcome_events (run_id, account_id, status, generation, destination, receipt_key,
                                               error, rows, bytes, seconds, ended_at)
          values (new.run_id, new.account_id, new.status, new.destination_generation, new.destination,
                  new.receipt_key, new.error,
                  (select sum(t.rows) from dropship.run_tasks t where t.run_id = new.run_id),
                  (select sum(t.bytes) from dropship.run_tasks t where t.run_id = new.run_id),
                  greatest(0, extract(epoch from coalesce(new.finished_at, now()) - new.started_at))::float8,
                  coalesce(new.finished_at, now()))
          on conflict (run_id) do nothing;
        end if;
        return new;
      end $$;
      create trigger runs_outcome_event after insert or update of status on dropship.runs
        for each row execute function dropship.run_outcome_event();
      -- When each recorded outcome's run ended: an outcome delivered late never turns the streak back.
      alter table dropship.run_outcomes add column ended_at timestamptz;
    `,
  },
  {
    // Issue 25 (10,000 accounts, millions of task rows; shown with EXPLAIN in test/ledger-indexes.test.ts).
    version: 15,
    name: 'indexes for slots, change-set bases and ledger retention',
    additive: true,
    sql: `
      -- A slot's runs (catch-up's slotRuns, slot status's listRuns by slot and day): runs_one_per_slot leads
      -- with the account, so without this the whole runs table is read.
      create index runs_by_slot on dropship.runs (slot_date, slot) where slot_date is not null;
      -- The change-set base (lastSucceededRun) and retention's "is a newer succeeded run there?".
      create index runs_succeeded_by_account on dropship.runs
        (account_id, destination_generation, finished_at desc, started_micros desc) where status = 'succeeded';
      -- Retention (src/store/ledger/retention.ts): the ended runs, receipt links and outbox rows older than the cutoff.
      create index runs_ended_at on dropship.runs ((coalesce(finished_at, started_at)))
        where status in ('succeeded', 'failed', 'cancelled');
      create index receipt_chain_published_at on dropship.receipt_chain (published_at);
      create index outcome_events_ended_at on dropship.outcome_events (ended_at)
        where delivered_at is not null or given_up_at is not null;
      create index webhook_events_created_at on dropship.webhook_events (created_at);
      create index run_outcomes_recorded_at on dropship.run_outcomes (recorded_at);
      -- Deleting a run cascades to its change states: by run, not by reading them all.
      create index change_states_by_run on dropship.change_states (run_id);
    `,
  },
  {
    // Issue 26 (the HTTP API).
    version: 16,
    name: 'API idempotency keys',
    additive: true,
    sql: `
      -- Idempotency-Key of the API's creating POSTs (src/api/idempotency.ts): per caller principal and
      -- key, the request's digest and, once answered, its status and body (never a webhook secret).
      -- status is null while the first request is being answered. Kept 24 hours.
      create table dropship.api_idempotency (
        principal    text not null,
        key          text not null,
        request_hash text not null,
        status       int,
        body         jsonb,
        created_at   timestamptz not null default now(),
        primary key (principal, key)
      );
    `,
  },
  {
    version: 17,
    name: 'runs by place and folder',
    additive: true,
    sql: `
      -- A run's folder is one no run at the same bucket and prefix used (src/store/ledger/ledger.ts freeFolder):
      -- an account removed and another registered at its place in the same minute get folders of their own.
      create index runs_by_place on dropship.runs ((destination->>'bucket'), (destination->>'prefix'), folder)
        where destination is not null;
    `,
  },
  {
    version: 18,
    name: 'destinations due since',
    additive: true,
    sql: `
      -- Since when the destination has been due in its plan's slots without a break: set at registration, and again
      -- when it is enabled after being disabled (a resume, the end of an automatic pause) or its plan changes. The
      -- catch-up records a slot as missed only for destinations due since before it (src/schedule/slots.ts): one
      -- left out of a slot because it was disabled, or free, then was not "missed" (red team, fan-out).
      alter table dropship.destinations add column due_since timestamptz;
      update dropship.destinations set due_since = created_at;
      alter table dropship.destinations alter column due_since set default now(), alter column due_since set not null;
      create function dropship.destination_due_since() returns trigger language plpgsql as $$
      begin
        if (new.enabled and not old.enabled) or new.plan is distinct from old.plan then
          new.due_since := now();
        end if;
        return new;
      end $$;
      create trigger destinations_due_since before update of enabled, plan on dropship.destinations
        for each row execute function dropship.destination_due_since();
    `,
  },
  {
    version: 19,
    name: 'task re-sends',
    additive: true,
    sql: `
      -- When the sweeper last sent the task again (src/store/ledger/tasks.ts takeForResend): once per task lease.
      alter table dropship.run_tasks add column resent_at timestamptz;
    `,
  },
  {
    version: 20,
    name: 'slots released by a destination change',
    additive: true,
    sql: `
      -- A scheduled run cancelled because its destination was changed gives its slot back (src/store/ledger/cancel.ts):
      -- the catch-up opens the slot again for the new destination version (red team, fan-out: a change at 04:01
      -- left a free account without a delivery for a day). Its row stays, with its slot, for the history.
      alter table dropship.runs add column slot_released boolean not null default false;
      drop index dropship.runs_one_per_slot;
      create unique index runs_one_per_slot on dropship.runs (account_id, slot, slot_date)
        where trigger = 'schedule' and slot_date is not null and not slot_released;
    `,
  },
  {
    version: 21,
    name: 'destinations: enabled since, plan since, previous plan',
    additive: true,
    sql: `
      -- Migration 18 reset due_since at any plan change, also between two plans that both have the slot (04:00 is in
      -- both by default): an upgrade at 04:10 then kept the catch-up from opening the missed 04:00 slot (review).
      -- due_since now means "enabled since"; a plan change records the plan before it and when, and the catch-up
      -- (src/accounts/registry.ts dueSince) takes an account as due at a slot when it was enabled then and its plan
      -- then (the current one if it changed before the slot, else the previous one) had the slot.
      alter table dropship.destinations add column plan_since timestamptz, add column previous_plan text;
      create or replace function dropship.destination_due_since() returns trigger language plpgsql as $$
      begin
        if new.enabled and not old.enabled then
          new.due_since := now();
        end if;
        if new.plan is distinct from old.plan then
          new.previous_plan := old.plan;
          new.plan_since := now();
        end if;
        return new;
      end $$;
    `,
  },
  {
    version: 22,
    name: 'status places: where dropship has written a status.json',
    additive: true,
    sql: `
      -- status.json was written unconditionally: at a bucket-root destination it replaced the customer's own
      -- status.json (as receipt.json did before its first write became create-only). A place's first status.json is
      -- now create-only; once written there, it is dropship's and rewritten at every outcome (src/notify/status.ts).
      create table dropship.status_places (
        bucket        text not null,
        status_key    text not null,
        first_written_at timestamptz not null default now(),
        primary key (bucket, status_key)
      );
      -- Every place where an outcome was recorded wrote its status.json already (best effort: one whose write failed
      -- is taken as dropship's too, as before this migration).
      insert into dropship.status_places (bucket, status_key)
      select distinct d.bucket, case when d.prefix = '' then 'status.json' else d.prefix || '/status.json' end
        from dropship.destinations d join dropship.destination_status s using (account_id)
       where s.last_success is not null or s.last_failure is not null
      on conflict do nothing;
    `,
  },
  {
    version: 23,
    name: 'runs newest first (the API listing)',
    additive: true,
    sql: `
      -- GET /runs (src/store/ledger/ledger.ts listRuns) without an account: newest first (start, then id), a page at a
      -- time from the previous page's last position, optionally by status. Without these every page read the whole
      -- runs table and sorted it (190-217 ms at 300,000 runs: red team, scale); test/ledger-indexes.test.ts EXPLAINs it.
      create index runs_newest on dropship.runs (started_at desc, run_id desc);
      create index runs_by_status_newest on dropship.runs (status, started_at desc, run_id desc);
    `,
  },
  {
    version: 24,
    name: 'webhook versions: an outbox event is sent to the webhook it was queued for only',
    additive: true,
    sql: `
      -- A webhook event was tied to the destination generation only: one queued before a change of the webhook URL (or
      -- a secret rotation) was sent to the new URL, signed with the new secret (red team, notify). The webhook's version
      -- rises at every change of its URL or secret (src/notify/store.ts writeWebhook, setSecret), which gives up the
      -- older versions' pending events; each event carries the version it was queued for, and is sent only while that
      -- version is the status row's.
      alter table dropship.destination_status add column webhook_version bigint not null default 0;
      -- Existing events: version 0, that of every status row now. New ones: the code stamps the version; the trigger
      -- stamps those of a previous release's code (this migration is additive), which neither bumps nor checks it.
      alter table dropship.webhook_events add column webhook_version bigint not null default 0;
      alter table dropship.webhook_events alter column webhook_version drop default;
      create function dropship.webhook_event_version() returns trigger language plpgsql as $$
      begin
        if new.webhook_version is null then
          new.webhook_version := coalesce(
            (select webhook_version from dropship.destination_status where account_id = new.account_id), 0);
        end if;
        return new;
      end $$;
      create trigger webhook_events_version before insert on dropship.webhook_events
        for each row execute function dropship.webhook_event_version();
      -- Also under session_replication_role = replica (a bulk load, a restore): an event is never left without one.
      alter table dropship.webhook_events enable always trigger webhook_events_version;
    `,
  },
  {
    version: 25,
    name: 'webhook outbox: each event has its next attempt time (backoff), retries after first attempts',
    additive: true,
    sql: `
      -- The outbox sent every pending event oldest first at every pass: a few endpoints that accept and never answer
      -- filled every lane for the whole budget at each pass, so a healthy customer's event was never sent, and a day
      -- later never selected again nor given up (red team, notify). Each event now waits for its next attempt time
      -- after a failed pass (null: due now, as every event queued by a previous release's code), counted by
      -- failed_sends (src/notify/outcome.ts deliverPending). Both columns are new and ignored by older code.
      alter table dropship.webhook_events add column next_attempt_at timestamptz,
        add column failed_sends int not null default 0;
    `,
  },
  {
    version: 26,
    name: 'status places: a place may be written (a create-only PUT whose answer was lost)',
    additive: true,
    sql: `
      -- A place was recorded only after its first, create-only status.json PUT was answered: when S3 stored it and the
      -- answer was lost, the place stayed unrecorded, and every later create-only PUT met dropship's own object (412):
      -- status.json was never written there again (red team, notify). A place is now recorded before that PUT, not
      -- written yet (written = false: "maybe written", a place whose next PUT replaces), and forgotten only when S3
      -- answered with a refusal (src/notify/status.ts writeStatus). Every place recorded so far was written.
      alter table dropship.status_places add column written boolean not null default true;
    `,
  },
  {
    version: 27,
    name: 'status places: a place maybe written holds the ETag of the body sent there',
    additive: true,
    sql: `
      -- A place "maybe written" (26) was replaced by the next write without a condition: when the lost answer was a
      -- refusal (412: the customer's own status.json) or the process died before its PUT, that write replaced the
      -- customer's object (review). The place now keeps the ETag (quoted MD5) of the body its unanswered PUT sent, and
      -- the next write replaces only that object (If-Match), or creates one where there is none (If-None-Match).
      alter table dropship.status_places add column maybe_etag text;
    `,
  },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

/** The database's schema is not one this code can run on. Not retryable: an operator migrates or deploys. */
export class SchemaVersionError extends DropshipError {
  readonly code: string = 'schema-version';
  override readonly badInput: boolean = true;
  constructor(message: string, options?: DropshipErrorOptions) {
    super(message, options, { retryable: false });
    this.name = 'SchemaVersionError';
  }
}

export interface SchemaState {
  /** The newest applied migration (0: none). */
  version: number;
  /** The oldest code version that can run on it. */
  floor: number;
}

export async function readSchemaState(c: Pool | PoolClient): Promise<SchemaState> {
  const exists = await c.query(`select to_regclass('dropship.schema_migrations') is not null as ok`);
  if (!exists.rows[0]?.ok) return { version: 0, floor: 0 };
  const hasFloor = await c.query(
    `select 1 from information_schema.columns where table_schema = 'dropship' and table_name = 'schema_migrations' and column_name = 'oldest_code'`,
  );
  const res = await c.query<{ version: number | null; floor: number | null }>(
    `select max(version) as version, ${hasFloor.rowCount ? 'max(coalesce(oldest_code, version))' : 'max(version)'} as floor from dropship.schema_migrations`,
  );
  return { version: res.rows[0]?.version ?? 0, floor: res.rows[0]?.floor ?? 0 };
}

const UPGRADES = 'docs/operations/upgrades.md';

/** What a schema in `state` means for code that knows up to `known`: undefined when it can run. */
export function schemaProblem(state: SchemaState, known: number = SCHEMA_VERSION): string | undefined {
  if (state.version === 0)
    return `the dropship schema is not installed in this database: run \`dropship migrate\` (${UPGRADES})`;
  if (state.version < known)
    return `the dropship schema is at version ${state.version}, this dropship needs ${known}: run \`dropship migrate\` before deploying the functions (${UPGRADES})`;
  if (state.floor > known)
    return `the dropship schema is at version ${state.version}, migrated by a newer dropship that this one (schema ${known}) cannot run on: deploy that release or newer; a rollback of the code never rolls the schema back (${UPGRADES})`;
  return undefined;
}

/** Refuses a schema this code cannot run on (every function's and CLI command's first use of the database). */
export async function requireKnownSchema(pool: Pool): Promise<SchemaState> {
  const state = await readSchemaState(pool);
  const problem = schemaProblem(state);
  if (problem) throw new SchemaVersionError(problem);
  return state;
}

/**
 * `dropship migrate`: applies the migrations this code has and the database lacks; idempotent.
 * Refuses a database migrated by a newer release beyond what this code can run on.
 */
export async function migrate(pool: Pool): Promise<number[]> {
  return inTransaction(pool, async (client) => {
    await client.query(`select pg_advisory_xact_lock(hashtext('dropship.migrations'))`);
    await client.query('create schema if not exists dropship');
    await client.query(`create table if not exists dropship.schema_migrations (
      version int primary key, name text not null, applied_at timestamptz not null default now())`);
    await client.query('alter table dropship.schema_migrations add column if not exists oldest_code int');
    const before = await readSchemaState(client);
    if (before.floor > SCHEMA_VERSION) throw new SchemaVersionError(schemaProblem(before)!);
    const done = new Set(
      (await client.query<{ version: number }>('select version from dropship.schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const applied: number[] = [];
    let floor = before.floor;
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      floor = m.additive ? floor : m.version;
      await client.query('insert into dropship.schema_migrations (version, name, oldest_code) values ($1, $2, $3)', [
        m.version,
        m.name,
        floor,
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}
