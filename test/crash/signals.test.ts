import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { summaryTable } from '../../src/cli/progress.js';
import type { Fault } from '../../src/devstack/s3.js';
import { dispatchOutcomes } from '../../src/notify/dispatch.js';
import { connectSource, sourceClient, sourceSession } from '../../src/pipeline/source/snapshot.js';
import { exportAccounts } from '../../src/run/drivers/in-process.js';
import {
  assertExact,
  assertLedgerAndReceipts,
  cli,
  exportNow,
  type FaultResult,
  h,
  killedUploads,
  latestRun,
  published,
  settings,
  silent,
  spawnExport,
  useCrashStack,
} from './setup.js';

/**
 * SIGINT, SIGTERM and SIGHUP to `dropship export`: once, twice, after the last COPY — uploads aborted, the
 * run cancelled, no receipt; a closed stderr; an interrupted `--due`; then the owner's source sessions (timeouts, keepalives, a snapshot holder
 * kept alive under a short idle-in-transaction timeout), after the signal tests as in the original
 * test/crash.test.ts: the holder test fails when it follows only the session-limits test (a
 * pre-existing order dependency, also in the original file) (shared setup: ./setup.ts).
 */
useCrashStack();

describe('signals: dropship export', () => {
  /** Sends `sig` to the child when the first upload part of the big table arrives. */
  function onFirstPart(act: (child: ChildProcess) => FaultResult): {
    fault: Fault;
    fired: () => boolean;
    attach: (c: ChildProcess) => void;
  } {
    let child: ChildProcess | undefined;
    let done = false;
    const fault: Fault = (r) => {
      if (done || !child || r.bucket !== 'crashcli-data' || !r.query.has('partNumber')) return undefined;
      done = true;
      return act(child);
    };
    return { fault, fired: () => done, attach: (c) => (child = c) };
  }

  async function interrupted(setup: ReturnType<typeof onFirstPart>, env: Record<string, string> = {}) {
    h.stack.s3.faults.push(setup.fault);
    try {
      const spawned = spawnExport(cli, env);
      setup.attach(spawned.child);
      const out = await spawned.exit;
      return { ...out, run: await latestRun(cli) };
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(setup.fault), 1);
    }
  }

  /** The account's failure streak (what pauses its deliveries), as the outcome dispatcher keeps it. */
  async function streak(c: typeof cli): Promise<number> {
    const r = await h.pool.query<{ n: number }>(
      'select consecutive_failures as n from dropship.destination_status where account_id = $1',
      [c.destination.accountId],
    );
    return r.rows[0]?.n ?? 0;
  }

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)(
    'the first %s stops the export within seconds: uploads aborted, run cancelled (never toward the pause), no receipt, exit %i',
    async (sig, code) => {
      // Prepare
      const before = await streak(cli);
      let at = 0;
      const setup = onFirstPart((child) => {
        at = Date.now();
        child.kill(sig);
        return undefined;
      });
      // Act
      const out = await interrupted(setup);
      // Assess
      expect(setup.fired()).toBe(true);
      expect(Date.now() - at).toBeLessThan(5_000);
      expect(out.code, out.stderr).toBe(code);
      expect(out.stderr).toContain(`interrupted by ${sig}`);
      expect(out.run.status).toBe('cancelled');
      expect(out.run.error).toContain(`interrupted by ${sig}`);
      expect(published.get(out.run.runId)).toBeUndefined();
      await assertLedgerAndReceipts(cli);
      // An operator's interruption is told, as a cancel is, but it is not the customer's failure (red team, CLI:
      // six Ctrl-Cs paused a customer's deliveries).
      await dispatchOutcomes(
        { pool: h.pool, settings: settings(), outbox: h.ledger.outcomes },
        { runId: out.run.runId },
      );
      expect(await streak(cli)).toBe(before);
    },
  );

  it('SIGINT after the last COPY was read (as the last shard completes) still writes no receipt', async () => {
    // Prepare: the signal arrives with the big table's CompleteMultipartUpload, after its COPY ended.
    let child: ChildProcess | undefined;
    let sent = false;
    const fault: Fault = (r) => {
      if (!sent && child && r.bucket === 'crashcli-data' && r.method === 'POST' && r.query.has('uploadId')) {
        sent = true;
        child.kill('SIGINT');
      }
      return undefined;
    };
    h.stack.s3.faults.push(fault);
    try {
      const spawned = spawnExport(cli);
      child = spawned.child;
      const out = await spawned.exit;
      const run = await latestRun(cli);
      // Assess
      expect(sent).toBe(true);
      expect(out.code, out.stderr).toBe(130);
      expect(run.status).toBe('cancelled');
      expect(published.get(run.runId)).toBeUndefined();
      await assertLedgerAndReceipts(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
  });

  it('a second SIGINT quits at once and still leaves the ledger clean', async () => {
    // Prepare: the part in flight hangs, so the first SIGINT's clean stop cannot complete.
    let release = (): void => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    let at = 0;
    const setup = onFirstPart((child) => {
      at = Date.now();
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGINT'), 300);
      return { hold };
    });
    try {
      // Act
      const out = await interrupted(setup);
      // Assess
      expect(Date.now() - at).toBeLessThan(5_000);
      expect(out.code, out.stderr).toBe(130);
      expect(out.run.status).toBe('cancelled');
      expect(out.run.error).toMatch(/interrupted twice by SIGINT/);
      expect(published.get(out.run.runId)).toBeUndefined();
    } finally {
      release();
    }
    // The quit process may leave its multipart upload for the lifecycle rule (docs/design/run-lifecycle.md).
    for (const u of await h.stack.s3.unfinishedUploads('crashcli-data')) killedUploads.add(u.uploadId);
    await assertLedgerAndReceipts(cli);
    expect((await exportNow(cli)).ok).toBe(true);
    await assertExact(cli);
  });

  it('a second SIGINT while the ledger does not answer still quits within seconds (red team, CLI: 40 s behind a lock)', async () => {
    // Prepare: the part in flight hangs (the clean stop cannot end) and the runs table is locked by another session
    // (the second signal's record of the run waits).
    let release = (): void => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const locker = await h.pool.connect();
    let at = 0;
    const setup = onFirstPart((child) => {
      at = Date.now();
      child.kill('SIGINT');
      void locker
        .query('begin; lock table dropship.runs in access exclusive mode')
        .then(() => setTimeout(() => child.kill('SIGINT'), 300));
      return { hold };
    });
    h.stack.s3.faults.push(setup.fault);
    try {
      // Act
      const spawned = spawnExport(cli);
      setup.attach(spawned.child);
      const out = await spawned.exit;
      const quitAfter = Date.now() - at;
      await locker.query('rollback');
      // Assess: out within the second signal's 2 s bound (it waited for the lock before: 40 s in the report).
      expect(setup.fired()).toBe(true);
      expect(quitAfter).toBeLessThan(8_000);
      expect(out.code, out.stderr).toBe(130);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(setup.fault), 1);
      await locker.query('rollback').catch(() => {});
      locker.release();
      release();
    }
    // The owner is gone: the next run ends the open one as abandoned and delivers.
    for (const u of await h.stack.s3.unfinishedUploads('crashcli-data')) killedUploads.add(u.uploadId);
    expect((await exportNow(cli)).ok).toBe(true);
    await assertExact(cli);
    await assertLedgerAndReceipts(cli);
  });

  it('a closed stderr (`export 2>&1 | head -1`) does not end the export: it delivers and exits with the run’s own code (red team, CLI: exit 0, run left open)', async () => {
    // Prepare: the reader goes away after the first bytes.
    const spawned = spawnExport(cli);
    spawned.child.stderr!.once('data', () => spawned.child.stderr!.destroy());
    // Act
    const out = await spawned.exit;
    const run = await latestRun(cli);
    // Assess
    expect(out.code).toBe(0);
    expect(run.status).toBe('succeeded');
    expect(published.get(run.runId)).toBeDefined();
    await assertExact(cli);
    await assertLedgerAndReceipts(cli);
  });

  it('an interrupted `export --due`: an account still waiting its turn is not started, recorded or told; one interrupted in its pre-flight is not told either', async () => {
    // Prepare: an interruption that came before either account's run opened.
    const stop = new AbortController();
    stop.abort(new Error('interrupted by SIGINT'));
    const runsBefore = (await h.pool.query('select count(*)::int as n from dropship.runs')).rows[0].n as number;
    const eventsBefore = (await h.pool.query('select count(*)::int as n from dropship.outcome_events')).rows[0]
      .n as number;
    const streakBefore = await streak(cli);
    // Act
    const waiting = await exportAccounts([cli.destination], {
      sourceUrl: h.stack.databaseUrl,
      settings: settings(),
      reporter: silent,
      ledger: h.ledger,
      signal: stop.signal,
    });
    const preflight = await exportNow(cli, { signal: stop.signal });
    // Assess
    const notStarted = waiting.get(cli.destination.accountId);
    expect(notStarted).toMatchObject({ ok: false, notStarted: true });
    expect(String((notStarted as { error: Error }).error.message)).toMatch(/not started \(interrupted by SIGINT\)/);
    expect(summaryTable(waiting)).toContain('NOT STARTED');
    expect(preflight.ok).toBe(false);
    expect((await h.pool.query('select count(*)::int as n from dropship.runs')).rows[0].n).toBe(runsBefore);
    expect((await h.pool.query('select count(*)::int as n from dropship.outcome_events')).rows[0].n).toBe(eventsBefore);
    expect(await streak(cli)).toBe(streakBefore);
  });
});

describe('source sessions', () => {
  it('carry an idle-in-transaction timeout, a statement timeout and TCP keepalives (configured limits are kept)', async () => {
    // Prepare
    const session = sourceSession(settings());
    const show = async (url: string, s = session) => {
      const c = sourceClient(url, 'dropship session-test', s);
      await connectSource(c, s);
      try {
        const r = await c.query(`select current_setting('statement_timeout') as st,
            current_setting('idle_in_transaction_session_timeout') as idle, current_setting('tcp_keepalives_idle') as ka`);
        return r.rows[0] as { st: string; idle: string; ka: string };
      } finally {
        await c.end();
      }
    };
    // Act + Assess
    expect(await show(h.stack.databaseUrl)).toEqual({ st: '2h', idle: '5min', ka: '30' });
    expect((await show(`${h.stack.databaseUrl}?options=-c%20statement_timeout%3D200`)).st).toBe('200ms');
    // A transaction left idle (a frozen exporter) is ended by Postgres.
    const short = sourceSession(settings({ DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: '1' }));
    const c = sourceClient(h.stack.databaseUrl, 'dropship session-test', short);
    await connectSource(c, short);
    await c.query('begin');
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(c.query('select 1')).rejects.toThrow(/idle-in-transaction timeout|terminat|Connection/i);
    await c.end().catch(() => {});
  });

  it('the run owner keeps its snapshot holder alive under a short idle-in-transaction timeout', async () => {
    // Prepare: a slow S3, so the run lasts several times the 2 s timeout. (At 1 s the owner's pings,
    // every 333 ms, were late by a whole second on a loaded 2-core machine: the test failed there
    // although nothing was wrong. 2 s still ends a holder whose pings stop, and the run outlasts it.)
    const slow: Fault = (r) => (r.bucket === 'crashcli-data' ? { delayMs: 800 } : undefined);
    h.stack.s3.faults.push(slow);
    const out = await exportNow(cli, {
      // One table at a time: the holder sits idle while the big table is exported, longer than 2 s.
      settings: settings({
        DROPSHIP_SOURCE_IDLE_IN_TRANSACTION_SECONDS: '2',
        DROPSHIP_RUN_STALE_SECONDS: '2',
        DROPSHIP_TABLE_CONCURRENCY: '1',
      }),
    });
    h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    expect(out.ok, JSON.stringify(out)).toBe(true);
    await assertExact(cli);
  });
});
