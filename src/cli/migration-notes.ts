/**
 * What each of dropship's migrations (src/store/migrations.ts) changes, one line each, for `dropship
 * migrate --check` (docs/operations/upgrades.md: "what would change"). `locksRuns` says how a
 * migration holds `dropship.runs` while `dropship migrate`'s transaction runs: index builds block
 * every write to runs until they are built (the run ledger stops: run it away from a slot), column
 * and trigger changes take a short exclusive lock that waits behind open transactions on runs.
 * src/cli/migration-notes.test.ts keeps this list exactly the migrations this release has.
 */
export interface MigrationNote {
  what: string;
  locksRuns?: string;
}

export const MIGRATION_NOTES: Readonly<Record<number, MigrationNote>> = {
  1: { what: 'destinations: the destinations table; the external ID can never change' },
  2: { what: 'destination layout: dreamdata or portable object keys' },
  3: { what: 'run ledger: the runs and run_tasks tables (runs created here)' },
  4: { what: 'range tasks: a table split into key ranges (run_tasks columns, new primary key)' },
  5: { what: 'one account per source schema (a unique index on destinations)' },
  6: {
    what: 'crash-safe run lifecycle: owner, heartbeat, slot date and receipt body on runs',
    locksRuns: 'alters runs, rewrites every row of it and builds runs_one_per_slot',
  },
  7: { what: 'tenant mode and table/column selection', locksRuns: 'adds a column to runs' },
  8: { what: 'compression per destination' },
  9: { what: 'delivery status, webhooks, pause, drift checks, receipt chain (new tables)' },
  10: { what: 'change sets: destinations.changes and the change-state tables' },
  11: { what: 'shared snapshot of fan-out runs', locksRuns: 'adds columns to runs' },
  12: {
    what: 'a delivery belongs to one destination version: generation and version on destinations, runs, receipt chain, events (not additive)',
    locksRuns: 'alters runs and rewrites every row of it',
  },
  13: {
    what: 'receipt ETags for conditional publication',
    locksRuns: 'adds a column and a trigger to runs',
  },
  14: {
    what: 'run outcome outbox: one event per ended run (backfilled from runs)',
    locksRuns: 'adds a trigger to runs',
  },
  15: {
    what: 'indexes for slots, change-set bases and ledger retention',
    locksRuns: 'builds 3 indexes on runs',
  },
  16: { what: 'API idempotency keys (a new table)' },
  17: { what: 'runs by place and folder', locksRuns: 'builds an index on runs' },
  18: { what: 'destinations due since (backfills every destination: its updatedAt reads the migration time)' },
  19: { what: 'task re-sends (a column on run_tasks)' },
  20: {
    what: 'slots released by a destination change',
    locksRuns: 'adds a column to runs and rebuilds runs_one_per_slot',
  },
  21: { what: 'destinations: enabled since, plan since, previous plan' },
  22: { what: 'status places: where dropship has written a status.json (a new table)' },
  23: { what: 'runs newest first (the API listing)', locksRuns: 'builds 2 indexes on runs' },
  24: { what: 'webhook versions: an outbox event goes only to the webhook URL and secret it was queued for' },
  25: { what: 'webhook outbox: each event has its next attempt time (backoff); first attempts before retries' },
  26: { what: 'status places: a place may be written (a create-only status.json PUT whose answer was lost)' },
  27: {
    what: 'status places: a place maybe written holds the ETag of the body sent there (only that object is replaced)',
  },
};

/** One line of `migrate --check` for a pending migration. */
export function migrationLine(version: number): string {
  const note = MIGRATION_NOTES[version];
  if (!note) return `  ${String(version).padStart(3)}  (no description)`;
  return `  ${String(version).padStart(3)}  ${note.what}${note.locksRuns ? `  [locks runs: ${note.locksRuns}; writes to runs wait]` : ''}`;
}
