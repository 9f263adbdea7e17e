import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Fault } from '../../src/devstack/s3.js';
import { createLogger } from '../../src/log/logger.js';
import type { CrashPoint } from '../../src/run/lifecycle/crash.js';
import { RUN_LOCK_SPACE } from '../../src/store/ledger/rows.js';
import { dropship } from '../kit/index.js';
import {
  assertExact,
  assertLedgerAndReceipts,
  cli,
  cliOutput,
  exportNow,
  h,
  killedUploads,
  latestRun,
  published,
  settings,
  spawnExport,
  useCrashStack,
} from './setup.js';

/**
 * The crash matrix of the in-process driver: `dropship export` (a child process) killed with SIGKILL
 * at every point of the run lifecycle, frozen, cut from its lock, cancelled; the next export ends the
 * run and succeeds exactly (shared setup: ./setup.ts).
 */
useCrashStack();

describe('crash matrix: dropship export (a child process, SIGKILL)', () => {
  const points: { point: CrashPoint; ends: 'failed' | 'succeeded' }[] = [
    { point: 'after-open-run', ends: 'failed' },
    { point: 'mid-copy', ends: 'failed' },
    { point: 'after-last-task', ends: 'succeeded' },
    { point: 'before-receipt-put', ends: 'succeeded' },
    { point: 'after-receipt-put', ends: 'succeeded' },
  ];
  it.each(points)(
    'killed at $point: the next export ends the run ($ends) and succeeds exactly',
    async ({ point, ends }) => {
      // Act: the owner dies at the point.
      const { exit } = spawnExport(cli, { DROPSHIP_TEST_CRASH_AT: point });
      const died = await exit;
      expect(died.signal, died.stderr).toBe('SIGKILL');
      const dead = await latestRun(cli);
      expect(['running', 'finishing']).toContain(dead.status);
      // Its advisory lock died with it: the next export notices at once, without waiting for the bound.
      const lines: string[] = [];
      const log = createLogger({ level: 'info', destination: { write: (m: string) => void lines.push(m) } });
      const next = await exportNow(cli, { log });
      expect(next.ok, JSON.stringify(next)).toBe(true);
      // Assess
      const after = await h.ledger.getRun(dead.runId);
      expect(after?.status).toBe(ends);
      if (ends === 'failed') expect(after?.error).toMatch(/^abandoned: its owner cli:.* is gone/);
      // …and says so in a log line.
      const said = lines.map((l) => JSON.parse(l) as { msg: string; runId?: string; level: string });
      expect(said).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          runId: dead.runId,
          msg: ends === 'failed' ? 'abandoned run ended' : 'orphaned run finished',
        }),
      );
      await assertExact(cli);
      await assertLedgerAndReceipts(cli);
      if (point === 'after-receipt-put') expect(published.get(dead.runId)).toHaveLength(2);
    },
  );

  it('a receipt PutObject that keeps failing keeps the run finishing; the next run publishes the same bytes', async () => {
    // Prepare: the receipt answers 500 to every attempt of the export's three finishing rounds.
    let refused = 0;
    const fault: Fault = (r) =>
      r.bucket === 'crashcli-data' && r.key === 'receipt.json' && r.method === 'PUT' && refused++ < 15
        ? { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' }
        : undefined;
    h.stack.s3.faults.push(fault);
    let first: Awaited<ReturnType<typeof exportNow>>;
    try {
      first = await exportNow(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    // Assess: not failed — finishing, with its receipt bytes recorded and nothing published.
    expect(first.ok).toBe(false);
    expect(String((first as { error: Error }).error.message)).toMatch(
      /is finishing but its receipt could not be written yet/,
    );
    expect(refused).toBe(15);
    const open = await h.ledger.getRun(first.runId);
    expect(open?.status).toBe('finishing');
    expect(open?.receiptBody).toBeTruthy();
    expect(published.get(first.runId)).toBeUndefined();
    // Act: the next export finishes it first, then runs.
    const next = await exportNow(cli);
    expect(next.ok).toBe(true);
    const done = await h.ledger.getRun(first.runId);
    expect(done?.status).toBe('succeeded');
    expect(published.get(first.runId)).toEqual([open?.receiptBody]);
    await assertExact(cli);
    await assertLedgerAndReceipts(cli);
  });

  it('killed mid-upload: the run is ended; only the killed process leaves an unfinished upload', async () => {
    // Prepare: the first part of the big table's multipart upload kills the process.
    let child: ChildProcess | undefined;
    let killed = false;
    const fault = (r: { bucket: string; query: URLSearchParams }) => {
      if (killed || r.bucket !== 'crashcli-data' || !r.query.has('partNumber')) return undefined;
      killed = true;
      child?.kill('SIGKILL');
      return { drop: true } as const;
    };
    h.stack.s3.faults.push(fault);
    try {
      const spawned = spawnExport(cli);
      child = spawned.child;
      const died = await spawned.exit;
      expect(died.signal).toBe('SIGKILL');
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
    }
    const dead = await latestRun(cli);
    const left = await h.stack.s3.unfinishedUploads('crashcli-data');
    expect(left.length).toBeGreaterThanOrEqual(1);
    for (const u of left) {
      expect(u.key.startsWith(`${dead.folder}/big/`)).toBe(true);
      killedUploads.add(u.uploadId);
    }
    // Act
    const next = await exportNow(cli);
    // Assess
    expect(next.ok).toBe(true);
    expect((await h.ledger.getRun(dead.runId))?.status).toBe('failed');
    await assertExact(cli);
    await assertLedgerAndReceipts(cli);
  });

  it('a frozen owner (SIGSTOP; its connection lingers) is ended after DROPSHIP_RUN_STALE_SECONDS and stops when it wakes', async () => {
    // Prepare: the owner freezes as its big table starts uploading; its heartbeat bound is 2 s.
    let child: ChildProcess | undefined;
    let stopped = false;
    const fault = (r: { bucket: string; query: URLSearchParams }) => {
      if (!stopped && r.bucket === 'crashcli-data' && r.query.has('uploads')) {
        stopped = true;
        child?.kill('SIGSTOP');
      }
      return undefined;
    };
    h.stack.s3.faults.push(fault);
    const spawned = spawnExport(cli, { DROPSHIP_RUN_STALE_SECONDS: '2' });
    child = spawned.child;
    try {
      for (let i = 0; i < 200 && !stopped; i++) await new Promise((r) => setTimeout(r, 50));
      expect(stopped).toBe(true);
      const frozen = await latestRun(cli);
      expect(frozen.staleSeconds).toBe(2);
      // Its lock is still held (the connection lingers): only the heartbeat can tell.
      await new Promise((r) => setTimeout(r, 3_000));
      const active = (await h.ledger.activeRuns('crashcli')).find((a) => a.runId === frozen.runId)!;
      expect(active.ownerGone).toBe(false);
      expect(active.silentSeconds).toBeGreaterThan(2);
      const list = await cliOutput(['runs', 'list', '--account', 'crashcli']);
      expect(list).toMatch(new RegExp(`${frozen.runId}.*running \\(stale: no heartbeat for \\d+ s\\)`));
      // Act: the next export (in another minute's folder) ends it and succeeds.
      const next = await exportNow(cli, { clock: () => BigInt(Date.now() + 120_000) * 1000n });
      expect(next.ok).toBe(true);
      const ended = await h.ledger.getRun(frozen.runId);
      expect(ended?.status).toBe('failed');
      expect(ended?.error).toMatch(/has not been heard from for \d+ s \(DROPSHIP_RUN_STALE_SECONDS=2\)/);
      // The owner wakes up, sees its run ended, aborts its uploads and writes no receipt.
      child.kill('SIGCONT');
      const woke = await spawned.exit;
      expect(woke.code, woke.stderr).toBe(1);
      expect(woke.stderr).toMatch(/run stopped \(run .* was failed: abandoned/);
      expect(published.get(frozen.runId)).toBeUndefined();
      await assertExact(cli);
      await assertLedgerAndReceipts(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(fault), 1);
      child.kill('SIGKILL');
    }
  });

  it('the owner loses its lock connection (a ledger restart, a dropped socket): it takes the lock again and finishes', async () => {
    // Prepare: a slow S3, so the run is still going when its lock connection is cut.
    const slow: Fault = (r) => (r.bucket === 'crashcli-data' ? { delayMs: 300 } : undefined);
    h.stack.s3.faults.push(slow);
    try {
      const running = exportNow(cli, { settings: settings({ DROPSHIP_RUN_STALE_SECONDS: '2' }) });
      let cut = 0;
      for (let i = 0; i < 100 && cut === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const res = await h.pool.query(
          `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and classid = $1 and granted`,
          [RUN_LOCK_SPACE],
        );
        cut = res.rowCount ?? 0;
      }
      expect(cut).toBe(1);
      // Act: within a heartbeat (500 ms here) the owner holds its lock again, on a new connection.
      let relocked = 0;
      for (let i = 0; i < 40 && relocked === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const res = await h.pool.query(
          `select 1 from pg_locks where locktype = 'advisory' and classid = $1 and granted`,
          [RUN_LOCK_SPACE],
        );
        relocked = res.rowCount ?? 0;
      }
      expect(relocked).toBe(1);
      const out = await running;
      // Assess
      expect(out.ok, JSON.stringify(out)).toBe(true);
      await assertExact(cli);
      await assertLedgerAndReceipts(cli);
    } finally {
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    }
  });

  it('runs cancel: the owner stops within seconds, aborts its uploads and writes no receipt', async () => {
    // Prepare: an export whose uploads wait until the cancel has been issued (and are slowed down
    // after), so it is cancelled mid-way however fast the machine or slow the cancel command's start.
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => {
      open = r;
    });
    // The cancel's own status.json (it tells the customer before it exits, issue 24) is not held.
    const slow = (req: { action: string; key: string }) =>
      req.action === 's3:PutObject' && !req.key.endsWith('status.json')
        ? { gate: gate.then(() => new Promise((r) => setTimeout(r, 150))) }
        : undefined;
    h.stack.s3.faults.push(slow);
    try {
      const spawned = spawnExport(cli, { DROPSHIP_RUN_STALE_SECONDS: '2' });
      const mine = `:${spawned.child.pid}`;
      let run = await latestRun(cli);
      for (let i = 0; i < 200 && !(run?.status === 'running' && run.owner?.endsWith(mine)); i++) {
        await new Promise((r) => setTimeout(r, 50));
        run = await latestRun(cli);
      }
      expect(run?.owner?.endsWith(mine)).toBe(true);
      // Act
      const cancel = await dropship(h.stack, ['runs', 'cancel', run.runId]);
      expect(cancel.code, cancel.stderr).toBe(0);
      open();
      const t0 = Date.now();
      const out = await spawned.exit;
      // Assess
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr).toMatch(/was cancelled: cancelled by operator/);
      expect((await h.ledger.getRun(run.runId))?.status).toBe('cancelled');
      expect(published.get(run.runId)).toBeUndefined();
      await assertLedgerAndReceipts(cli);
    } finally {
      open();
      h.stack.s3.faults.splice(h.stack.s3.faults.indexOf(slow), 1);
    }
  });
});
