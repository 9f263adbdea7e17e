import type { Command } from 'commander';
import { formatBytes, formatCount, renderTable } from '../format.js';
import { examples, out } from '../usage.js';
import { withApp } from '../with-app.js';

/**
 * `dropship capacity`: will each slot finish before the next one? Reads the registry and the source's
 * size estimates (catalog only) and prints, per slot, the forecast of src/schedule/capacity.ts.
 */
export function registerCapacityCommand(program: Command): void {
  program
    .command('capacity')
    .description(
      'Forecast per slot: destinations, tables, estimated rows and bytes, workers needed before the next slot, Lambda cost',
    )
    .option('--slot <HH:MM>', 'only this slot (UTC; default: every configured slot)')
    .option('--json', 'print the forecasts as JSON')
    .addHelpText(
      'after',
      `\nExit code 1 when a slot will not finish before the next one at the configured concurrency (or a task exceeds the\nworker's timeout); 0 otherwise, also when some tables have no row estimate (a warning).\nRates and prices are settings (DROPSHIP_CAPACITY_*, DROPSHIP_WORKER_CONCURRENCY, DROPSHIP_SPLIT_ROWS);\nwhere their defaults come from: docs/operations/capacity.md.\n${examples(
        'dropship capacity',
        'dropship capacity --slot 04:00',
        'DROPSHIP_WORKER_CONCURRENCY=32 dropship capacity --json',
      )}`,
    )
    .action((o: { slot?: string; json?: boolean }) =>
      withApp(async (app) => {
        if (o.slot !== undefined) (await import('../slot-option.js')).requireConfiguredSlot(o.slot, app.settings);
        const { slotForecasts } = await import('../../schedule/capacity-source.js');
        const report = await slotForecasts(
          { registry: await app.registry(), settings: app.settings, sourceUrl: app.sourceUrl },
          o.slot,
        );
        if (report.forecasts.some((f) => !f.fits)) process.exitCode = 1;
        if (o.json) {
          out(JSON.stringify(report, null, 2));
          return;
        }
        const hours = (s: number) => (s / 3600).toFixed(2);
        out(
          renderTable(
            [
              'slot',
              'destinations',
              'tables',
              'tasks',
              'est. rows',
              'est. bytes',
              'worker-hours',
              'hours to next',
              'workers needed',
              'configured',
              'hours at configured',
              'Lambda cost',
            ],
            report.forecasts.map((f) => [
              f.slot,
              formatCount(f.destinations),
              formatCount(f.tables),
              formatCount(f.tasks),
              formatCount(f.estimatedRows),
              formatBytes(f.estimatedBytes),
              hours(f.workerSeconds),
              hours(f.windowSeconds),
              f.neededConcurrency === null ? 'none fits' : String(f.neededConcurrency),
              String(f.configuredConcurrency),
              `${hours(f.secondsAtConfigured.atLeast)}–${hours(f.secondsAtConfigured.atMost)}`,
              `$${f.lambdaCostUsd.toFixed(4)}`,
            ]),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
          ),
        );
        for (const f of report.forecasts) for (const w of f.warnings) out(`warning: ${w}`);
        for (const p of report.problems) out(`not estimated: ${p}`);
      }),
    );
}
