import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Harness, startHarness } from '../../../test/kit/stack-harness.js';
import type { Destination } from '../../accounts/destination.js';
import type { TaskMessage } from '../../contracts/task.js';
import { type Customer, setupCustomer } from '../../devstack/demo.js';
import { createLogger } from '../../log/logger.js';
import { describeFailure } from '../../notify/reasons.js';
import { Snapshot } from '../../pipeline/source/snapshot.js';
import { startFanOutRun } from '../drivers/fan-out.js';
import { exportAccount } from '../drivers/in-process.js';
import { RunOwner } from '../liveness/owner.js';
import { LogReporter } from '../progress/reporter.js';
import type { PreflightError } from './prepare.js';

/**
 * The one pre-flight (src/run/lifecycle/prepare.ts): for the same bad input, the in-process driver
 * (`exportAccount`) and the fan-out driver (`startFanOutRun`) refuse with the same error — the same
 * class and the same words — on the real local stack (Postgres, S3, STS with trust policies).
 */
let h: Harness;
let acct: Customer;
const silent = new LogReporter(createLogger({ level: 'silent' }));

beforeAll(async () => {
  h = await startHarness();
  await h.pool.query(`create schema prep;
    create table prep.events as select g as id, 'e' || g as name from generate_series(1, 20) g;`);
  acct = await setupCustomer(h.stack, h.registry, {
    accountId: 'prep',
    awsAccountId: '270000000001',
    bucket: 'prep-data',
    schema: 'prep',
  });
});

afterAll(async () => {
  await h?.stop();
});

/** The in-process driver's error for this destination (its outcome carries it). */
async function inProcessError(dest: Destination): Promise<Error> {
  const out = await exportAccount(dest, {
    sourceUrl: h.stack.databaseUrl,
    settings: h.settings(),
    reporter: silent,
    ledger: h.ledger,
  });
  expect(out.ok).toBe(false);
  return (out as { error: Error }).error;
}

/**
 * The fan-out driver's error for this destination: thrown (nothing opened), or recorded as the error
 * of the run it opened and failed at once (the failed run is what operators see); no task is sent.
 */
async function fanOutError(dest: Destination): Promise<{ name: string; message: string; opened: boolean }> {
  const sent: TaskMessage[] = [];
  try {
    const { run, tasks } = await startFanOutRun(dest, {
      sourceUrl: h.stack.databaseUrl,
      ledger: h.ledger,
      settings: h.settings(),
      queue: { send: async (m) => void sent.push(...m) },
      trigger: 'manual',
    });
    expect(run.status).toBe('failed');
    expect(tasks).toBe(0);
    expect(sent).toEqual([]);
    return { name: 'recorded', message: run.error ?? '', opened: true };
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message, opened: false };
  }
}

/** The source's sessions with this application_name, once the server has ended those whose client left (≤ 2 s). */
async function sourceSessions(name: string): Promise<number> {
  const count = async () =>
    Number(
      (await h.pool.query('select count(*) from pg_stat_activity where application_name = $1', [name])).rows[0].count,
    );
  let n = await count();
  for (let i = 0; i < 100 && n > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    n = await count();
  }
  return n;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('one pre-flight for both drivers', () => {
  it('a disabled account: the same error, nothing opened', async () => {
    // Prepare
    const dest = { ...acct.destination, enabled: false };
    const holders = vi.spyOn(Snapshot, 'connectHolder');
    const locks = vi.spyOn(RunOwner, 'lock');
    // Act
    const inProcess = await inProcessError(dest);
    const fanOut = await fanOutError(dest);
    // Assess: no connection was even started (the run's warm-up comes after the account is known enabled).
    expect(fanOut).toEqual({ name: inProcess.name, message: inProcess.message, opened: false });
    expect(holders).not.toHaveBeenCalled();
    expect(locks).not.toHaveBeenCalled();
    expect(await sourceSessions('dropship prep')).toBe(0);
    expect(inProcess.name).toBe('PreflightError');
    expect(inProcess.message).toBe('account prep is disabled (dropship destinations enable prep)');
    expect((inProcess as PreflightError).badInput).toBe(true);
    expect(await h.ledger.activeRuns('prep')).toEqual([]);
  });

  it('a source schema stored longer than 63 bytes (before names were counted in bytes): refused before the source is read', async () => {
    // Prepare: 60 bytes of another schema's name and a 4-byte emoji; Postgres would cut it to the 60 + 3 bytes.
    const dest = { ...acct.destination, sourceSchema: `${'x'.repeat(60)}\u{1F600}` };
    // Act
    const inProcess = await inProcessError(dest);
    const fanOut = await fanOutError(dest);
    // Assess
    expect(inProcess.name).toBe('PreflightError');
    expect(inProcess.message).toMatch(/^account prep: source schema "x{60}.*" is longer than Postgres' 63 bytes/);
    expect(fanOut).toEqual({ name: 'recorded', message: inProcess.message, opened: true });
  });

  it('a selection that leaves nothing to export: the same words (the fan-out run is failed with them)', async () => {
    // Prepare: the schema lost its only table after registration.
    await h.pool.query('alter table prep.events rename to events_kept; create schema prep_kept;');
    await h.pool.query('alter table prep.events_kept set schema prep_kept');
    try {
      // Act
      const inProcess = await inProcessError(acct.destination);
      const fanOut = await fanOutError(acct.destination);
      // Assess
      expect(inProcess.name).toBe('PreflightError');
      expect(inProcess.message).toBe('account prep: source schema "prep" has no tables or materialized views');
      expect(fanOut).toEqual({ name: 'recorded', message: inProcess.message, opened: true });
    } finally {
      await h.pool.query(
        'alter table prep_kept.events_kept set schema prep; alter table prep.events_kept rename to events',
      );
    }
  });

  it('a role whose trust policy names another external ID: the same words, and the cause says which failure', async () => {
    // Prepare
    const role = h.stack.iam.roles.get(acct.destination.roleArn)!;
    const original = role.trustPolicy;
    role.trustPolicy = JSON.parse(JSON.stringify(original).replace(acct.destination.externalId, 'not-the-right-id'));
    const locks = async () =>
      Number((await h.pool.query(`select count(*) from pg_locks where locktype = 'advisory'`)).rows[0].count);
    const locksBefore = await locks();
    try {
      // Act
      const inProcess = await inProcessError(acct.destination);
      // What the in-process run opened while the role was checked (the snapshot holder's connection, the owner's
      // lock), as the server sees it once the refused run has returned.
      const left = await sourceSessions('dropship prep');
      const locksAfter = await locks();
      const fanOut = await fanOutError(acct.destination);
      // Assess
      expect(left).toBe(0);
      expect(locksAfter).toBe(locksBefore);
      expect(inProcess.message).toContain(`cannot assume role ${acct.destination.roleArn} (AccessDenied)`);
      expect(fanOut).toEqual({ name: 'recorded', message: inProcess.message, opened: true });
      expect(inProcess.name).toBe('PreflightError');
      expect((inProcess.cause as Error).name).toBe('DestinationAccessError');
      // Wrapped, the customer is still told what the role's own error says.
      expect(describeFailure(acct.destination, inProcess).code).toBe('role_not_assumable');
    } finally {
      role.trustPolicy = original;
    }
  });

  it('a run that must wait for another run of the account gives back the readers it joined ahead', async () => {
    // Prepare: a run of the account is open (its owner is the fan-out's, alive as far as the sweep can tell).
    const busy = `20261123T000009Z-${Math.random().toString(16).slice(2, 8)}`;
    await h.ledger.openRun({
      runId: busy,
      accountId: 'prep',
      trigger: 'manual',
      layout: acct.destination.layout,
      folder: '2026-11-23T00:00',
      startedMicros: BigInt(Date.now()) * 1000n,
      tables: ['events'],
    });
    const unjoin = vi.spyOn(Snapshot.prototype, 'unjoin');
    try {
      // Act
      const error = await inProcessError(acct.destination);
      // Assess: refused as before, the readers joined ahead given back as soon as it had to wait, nothing left open.
      expect(error.message).toContain('already has a run in progress');
      expect(unjoin).toHaveBeenCalledTimes(2); // once on waiting, once more at close
      expect(await sourceSessions('dropship prep')).toBe(0);
    } finally {
      await h.ledger.cancelRun({ runId: busy, by: 'prepare.test' });
    }
  });

  it('with the input fixed, both drivers start', async () => {
    const holders = vi.spyOn(Snapshot, 'connectHolder');
    const locks = vi.spyOn(RunOwner, 'lock');
    const ok = await exportAccount(acct.destination, {
      sourceUrl: h.stack.databaseUrl,
      settings: h.settings(),
      reporter: silent,
      ledger: h.ledger,
    });
    expect(ok.ok, JSON.stringify(ok)).toBe(true);
    // The in-process run started its holder's connection and its lock once each (what the disabled case must not do).
    expect(holders).toHaveBeenCalledTimes(1);
    expect(locks).toHaveBeenCalledTimes(1);
    const sent: TaskMessage[] = [];
    const { run, tasks } = await startFanOutRun(acct.destination, {
      sourceUrl: h.stack.databaseUrl,
      ledger: h.ledger,
      settings: h.settings(),
      queue: { send: async (m) => void sent.push(...m) },
      trigger: 'manual',
    });
    expect(run.status).toBe('running');
    expect(tasks).toBe(1);
    expect(sent).toEqual([{ runId: run.runId, accountId: 'prep', table: 'events' }]);
    await h.ledger.cancelRun({ runId: run.runId, by: 'prepare.test' });
  });
});
