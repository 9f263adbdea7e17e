import type { Command } from 'commander';
import { renderTable } from '../format.js';
import { examples, out, UsageError } from '../usage.js';
import { withApp } from '../with-app.js';

/** `dropship slot status`: the operator's view of one slot of one day. */
export function registerSlotCommands(program: Command): void {
  const slot = program
    .command('slot')
    .description("A slot's deliveries at a glance")
    .addHelpText('after', examples('dropship slot status', 'dropship slot status --slot 04:00 --date 2026-12-04'));
  slot
    .command('status')
    .description(
      'Due, succeeded, failed (customer side vs ours), running, stuck, missed, not opened, paused; the longest runs',
    )
    .option('--slot <HH:MM>', 'the slot (default: the latest that has started)')
    .option('--date <YYYY-MM-DD>', 'the day (UTC; default: the latest slot’s)')
    .option('--json', 'print the facts as JSON')
    .addHelpText(
      'after',
      examples(
        'dropship slot status',
        'dropship slot status --slot 15:00 --date 2026-12-03',
        'dropship slot status --json',
      ),
    )
    .action((o: { slot?: string; date?: string; json?: boolean }) =>
      withApp(async (app) => {
        const { currentSlot, slotStatus } = await import('../../schedule/slot-status.js');
        const { allSlots, slotsByPlan } = await import('../../contracts/slots.js');
        if (o.slot !== undefined) (await import('../slot-option.js')).requireConfiguredSlot(o.slot, app.settings);
        if (o.date !== undefined && !isDate(o.date)) throw new UsageError(`--date takes YYYY-MM-DD, not "${o.date}"`);
        const now = new Date();
        const latest = currentSlot(allSlots(slotsByPlan(app.settings)), now);
        const q = {
          slot: o.slot ?? latest.slot,
          date: o.date ?? (o.slot ? now.toISOString().slice(0, 10) : latest.date),
        };
        const s = await slotStatus(
          { ledger: await app.ledger(), registry: await app.registry(), settings: app.settings },
          {
            ...q,
            now,
          },
        );
        if (o.json) {
          out(JSON.stringify(s, null, 2));
          return;
        }
        out(`slot ${s.slot} of ${s.date} (UTC)`);
        out(
          renderTable(
            [
              'due',
              'succeeded',
              'failed: customer',
              'failed: ours',
              'running',
              'stuck',
              'missed',
              'not opened',
              'paused',
            ],
            [
              [
                s.due,
                s.succeeded,
                s.failed.customer,
                s.failed.ours,
                s.running,
                s.stuck,
                s.missed,
                s.notOpened.length,
                s.paused.length,
              ].map(String),
            ],
            [0, 1, 2, 3, 4, 5, 6, 7, 8],
          ),
        );
        const codes = Object.entries(s.failed.byCode);
        if (codes.length) out(`\nfailures by cause: ${codes.map(([c, n]) => `${c} ${n}`).join(', ')}`);
        if (s.notOpened.length)
          out(`not opened: ${s.notOpened.slice(0, 20).join(', ')}${s.notOpened.length > 20 ? ' …' : ''}`);
        if (s.paused.length)
          out(
            `paused: ${s.paused.map((p) => `${p.accountId} (since ${p.since.toISOString().slice(0, 16)})`).join(', ')}`,
          );
        if (s.longest.length) {
          out('\nlongest runs:');
          out(
            renderTable(
              ['run', 'account', 'status', 'seconds'],
              s.longest.map((r) => [r.runId, r.accountId, r.status, r.seconds.toFixed(1)]),
              [3],
            ),
          );
        }
        if (s.failed.ours || s.stuck)
          out('\nfailed: dropship runs list --slot … --date … --status failed; runbook: docs/operations/runbook.md');
      }),
    );
}

/** A real calendar day written YYYY-MM-DD (not 2026-13-04, not 2026-02-30). */
export function isDate(v: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const d = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}
