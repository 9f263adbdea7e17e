import { describe, expect, it } from 'vitest';
import type { CrashPoint } from '../../src/run/lifecycle/crash.js';
import { base, crashAt, deliver, instance, nextExportIsExact, receiveFor } from './lambda.js';
import {
  assertLedgerAndReceipts,
  exportAccountHandler,
  h,
  lam,
  pastTheBound,
  published,
  sweeper,
  useCrashStack,
  worker,
} from './setup.js';

/**
 * The crash matrix of the finisher (Lambda): the worker that finishes the run dies before, while or
 * after it publishes the receipt; the sweeper finishes the run with one receipt content (shared
 * setup: ./setup.ts, the Lambda side: ./lambda.ts).
 */
useCrashStack();

describe('crash matrix: Lambda (the handler abandoned, its database sessions terminated)', () => {
  const finishPoints: CrashPoint[] = ['after-last-task', 'before-receipt-put', 'after-receipt-put'];
  it.each(finishPoints)(
    'the finisher dies at %s: the sweeper finishes the run (one receipt content)',
    async (point) => {
      // Prepare: every task but one done normally. The run's snapshot holder died before any task ran
      // (its role is taken, its snapshot gone), so no worker exports other tasks than its message's
      // (src/run/lifecycle/shared-snapshot.ts) and the last message's worker is the finisher.
      await instance();
      const { runId } = (await exportAccountHandler({ accountId: 'crashlam' })) as { runId: string };
      expect(await h.ledger.snapshot.claimHolder({ runId, holder: 'a holder that died' })).toBe(true);
      await h.ledger.snapshot.record({ runId, exportId: '00000003-000000AB-1', id: '1:1:', at: 'gone' });
      // 22 small tables, 2 a message (./setup.ts): the last message's second table is the run's last task.
      const messages = await receiveFor(runId, 11);
      expect(messages.map((m) => (JSON.parse(m.body) as { tables?: string[] }).tables?.length)).toEqual(
        Array(11).fill(2),
      );
      for (const m of messages.slice(0, -1)) await deliver(m);
      // The last message's first table was done by a duplicate one-task message (as the sweeper re-sends),
      // so its second table is the run's last task.
      const last = JSON.parse(messages.at(-1)!.body) as { runId: string; accountId: string; tables: string[] };
      await worker(
        {
          Records: [{ messageId: 'dup', body: JSON.stringify({ ...last, tables: undefined, table: last.tables[0] }) }],
        },
        base,
      );
      expect((await h.ledger.tasks(runId)).filter((t) => t.status !== 'succeeded').map((t) => t.table)).toEqual([
        last.tables[1],
      ]);
      // Act: the last message's worker dies at the point (its second table's task is the run's last).
      await crashAt(point, () => worker({ Records: [messages.at(-1)!] }, base));
      const dead = await h.ledger.getRun(runId);
      expect(dead?.status).toBe(point === 'after-last-task' ? 'running' : 'finishing');
      expect(published.get(runId)?.length ?? 0).toBe(point === 'after-receipt-put' ? 1 : 0);
      await pastTheBound(runId);
      const swept = (await sweeper({})) as { runs: { runId: string; action: string }[] };
      // Assess
      expect(swept.runs).toEqual([expect.objectContaining({ runId, action: 'finished' })]);
      expect((await h.ledger.getRun(runId))?.status).toBe('succeeded');
      expect(published.get(runId)).toHaveLength(point === 'after-receipt-put' ? 2 : 1);
      await assertLedgerAndReceipts(lam);
      await nextExportIsExact(lam);
    },
  );
});
