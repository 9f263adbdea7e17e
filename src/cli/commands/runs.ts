import type { Command } from 'commander';
import type { ActiveRun, Run, RunStatus, Task } from '../../store/ledger/rows.js';
import { formatBytes, formatCount, renderTable } from '../format.js';
import { examples, out, UsageError } from '../usage.js';
import { withApp } from '../with-app.js';
import { isDate } from './slot.js';

const RUN_STATUSES = ['running', 'finishing', 'succeeded', 'failed', 'cancelled'] as const;

/** `dropship runs …`: watch runs (status per account and table, duration, rows, bytes, errors) and cancel one. */
export function registerRunsCommands(program: Command): void {
  const runs = program
    .command('runs')
    .description('Watch runs: status per account and table, duration, rows, bytes, errors')
    .addHelpText(
      'after',
      examples(
        'dropship runs list',
        'dropship runs list --account acme',
        'dropship runs show 20261123T040000Z-3f9a1c',
        'dropship runs cancel 20261123T040000Z-3f9a1c',
      ),
    );
  runs
    .command('list')
    .description('Runs, newest first, a page at a time')
    .option('--account <id>', 'only this account')
    .option('--slot <HH:MM>', 'only runs of this slot (with --date: that day’s)')
    .option('--date <YYYY-MM-DD>', 'only runs of the slot on this day (UTC)')
    .option('--status <status>', `only runs in this status: ${RUN_STATUSES.join(', ')}`)
    .option('--failed', 'only failed runs (= --status failed)')
    .option('--since <age|time>', 'only runs started since: 24h, 30m, 7d, or an ISO time')
    .option('--limit <n>', 'runs per page', '20')
    .option('--before <runId>', 'the next page: runs older than this one (the last line of the previous page)')
    .addHelpText(
      'after',
      examples(
        'dropship runs list --account acme --limit 5',
        'dropship runs list --failed --since 24h',
        'dropship runs list --slot 04:00 --date 2026-12-04 --status failed',
      ),
    )
    .action(
      (o: {
        account?: string;
        limit: string;
        failed?: boolean;
        status?: string;
        since?: string;
        slot?: string;
        date?: string;
        before?: string;
      }) =>
        withApp(async (app) => {
          const status = o.failed ? 'failed' : o.status;
          if (status !== undefined && !(RUN_STATUSES as readonly string[]).includes(status))
            throw new UsageError(`--status is one of ${RUN_STATUSES.join(', ')}, not "${status}"`);
          // The format only: runs of a slot configured before (and no longer) are still listed.
          if (o.slot !== undefined) (await import('../slot-option.js')).requireSlotFormat(o.slot);
          if (o.date !== undefined && !isDate(o.date)) throw new UsageError(`--date takes YYYY-MM-DD, not "${o.date}"`);
          if (o.date !== undefined && o.slot === undefined) throw new UsageError('--date goes with --slot');
          const limit = Number(o.limit);
          if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
            throw new UsageError(`--limit takes a whole number from 1 to 10000, not "${o.limit}"`);
          const ledger = await app.ledger();
          if (o.before && !(await ledger.getRun(o.before)))
            throw new UsageError(`no run ${o.before} (--before takes a run id from the previous page)`);
          const list = await ledger.listRuns({
            ...(o.account ? { accountId: o.account } : {}),
            limit,
            ...(status ? { status: status as RunStatus } : {}),
            ...(o.since ? { since: parseSince(o.since) } : {}),
            ...(o.slot ? { slot: o.slot } : {}),
            ...(o.date ? { slotDate: o.date } : {}),
            ...(o.before ? { beforeRunId: o.before } : {}),
          });
          const stale = new Map<string, string>();
          for (const a of await ledger.activeRuns(o.account)) {
            const note = staleNote(a);
            if (note) stale.set(a.runId, note);
          }
          if (list.length === 0) out(o.before ? 'No more runs.' : 'No runs yet.');
          else out(runsTable(list, stale));
          if (list.length === limit) out(`\nmore: the same command with --before ${list[list.length - 1]!.runId}`);
          if (stale.size > 0)
            out('\nStale runs are ended (or finished) by the next run of their account or by the sweeper.');
        }),
    );
  runs
    .command('show <runId>')
    .description('One run: its tables with status, attempts, rows, files, bytes, error')
    .addHelpText('after', examples('dropship runs show 20261123T040000Z-3f9a1c'))
    .action((runId: string) =>
      withApp(async (app) => {
        const ledger = await app.ledger();
        const run = await ledger.getRun(runId);
        if (!run) throw new UsageError(`no run ${runId} (see: dropship runs list)`);
        out(runsTable([run]));
        out('');
        out(tasksTable(await ledger.tasks(runId)));
        if (run.error) out(`\nerror: ${run.error}`);
      }),
    );

  runs
    .command('cancel <runId>')
    .description(
      'Cancel a running or finishing run: its owner stops and aborts its uploads; no receipt is written; the account is free',
    )
    .option('--by <who>', 'recorded in the run’s error', 'operator')
    .addHelpText('after', examples('dropship runs cancel 20261123T040000Z-3f9a1c'))
    .action((runId: string, o: { by: string }) =>
      withApp(async (app) => {
        const { cancelRun } = await import('../../operations/runs.js');
        const res = await cancelRun(await app.operations(), runId, o.by);
        if (res.ok) {
          out(`Cancelled ${runId}. Its owner stops within DROPSHIP_RUN_STALE_SECONDS / 4 and aborts its uploads.`);
          return;
        }
        if (res.status === undefined) throw new UsageError(`no run ${runId} (see: dropship runs list)`);
        throw new UsageError(`run ${runId} has already ended (${res.status})`);
      }),
    );
}

/** `24h`, `30m`, `7d` (ago) or an ISO time. */
function parseSince(v: string, now = new Date()): Date {
  const m = /^(\d+)([mhd])$/.exec(v);
  if (m)
    return new Date(now.getTime() - Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd']);
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) throw new UsageError(`--since takes 24h, 30m, 7d or an ISO time, not "${v}"`);
  return t;
}

/** Why an active run looks dead (`runs list` marks it; the next run or the sweeper ends it). */
function staleNote(a: ActiveRun): string | undefined {
  const silent = a.silentSeconds > a.staleSeconds;
  if (a.owner !== 'fan-out') {
    if (a.ownerGone) return 'stale: owner gone';
    if (silent) return `stale: no heartbeat for ${Math.round(a.silentSeconds)} s`;
    return undefined;
  }
  if (a.status === 'finishing' && a.finishLeaseExpired) return 'stale: finisher gone';
  if (silent && a.dispatchedAt === null) return 'stale: tasks not all sent';
  if (silent && a.tasksTotal > 0 && a.tasksSucceeded === a.tasksTotal) return 'stale: not finished';
  return undefined;
}

function runsTable(runs: Run[], stale: Map<string, string> = new Map()): string {
  return renderTable(
    ['run', 'account', 'trigger', 'slot', 'status', 'started (UTC)', 'seconds', 'receipt / error'],
    runs.map((r) => [
      r.runId,
      r.accountId,
      r.trigger,
      r.slot ?? '—',
      stale.has(r.runId) ? `${r.status} (${stale.get(r.runId)})` : r.status,
      r.startedAt.toISOString().slice(0, 19).replace('T', ' '),
      r.finishedAt ? ((r.finishedAt.getTime() - r.startedAt.getTime()) / 1000).toFixed(1) : '—',
      r.status === 'succeeded' ? (r.receiptKey ?? '') : (r.error ?? '').slice(0, 80),
    ]),
    [6],
  );
}

function tasksTable(tasks: Task[]): string {
  return renderTable(
    ['table', 'status', 'attempts', 'rows', 'files', 'bytes', 'seconds', 'error'],
    tasks.map((t) => [
      t.table,
      t.status,
      `${t.attempts}/${t.maxAttempts}`,
      t.rows === null ? '—' : formatCount(t.rows),
      t.result ? String(t.result.files.length) : '—',
      t.bytes === null ? '—' : formatBytes(t.bytes),
      t.result ? t.result.seconds.toFixed(2) : '—',
      (t.error ?? '').slice(0, 100),
    ]),
    [2, 3, 4, 5, 6],
  );
}
