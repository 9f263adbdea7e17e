import { loadSettings } from '../../src/config/settings.js';
import { forecast } from '../../src/schedule/capacity.js';
import { capacityRates, WORKER_TIMEOUT_SECONDS } from '../../src/schedule/capacity-source.js';

/**
 * The sizing table of docs/operations/production-database.md, computed by the forecast itself
 * (src/schedule/capacity.ts) with the default rates (DROPSHIP_CAPACITY_*: their sources are in
 * docs/operations/capacity.md), DROPSHIP_SPLIT_ROWS and the 11 hours from the 04:00 slot to the 15:00
 * one (the tighter of the default slots). Each destination has 10 tables of equal size.
 * test/sizing-doc.test.ts checks the docs hold exactly this table.
 *
 *   node --import tsx test/bench/sizing.ts
 */
export function sizingTable(): string {
  const settings = loadSettings({});
  const rows: string[] = [
    '| destinations | rows per destination | tasks | worker-hours | workers needed for 11 h | hours at 8 workers (at most) | Lambda cost per slot |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const n of [1_000, 10_000]) {
    for (const perDest of [100_000, 1_000_000, 10_000_000, 100_000_000]) {
      const f = forecast({
        slot: '04:00',
        windowSeconds: 11 * 3600,
        splitRows: settings.DROPSHIP_SPLIT_ROWS,
        configuredConcurrency: 8,
        workerTimeoutSeconds: WORKER_TIMEOUT_SECONDS,
        rates: capacityRates(settings),
        destinations: Array.from({ length: n }, (_, i) => ({
          accountId: `a${i}`,
          tables: Array.from({ length: 10 }, (_, t) => ({ table: `t${t}`, rows: perDest / 10, bytes: 0 })),
        })),
      });
      rows.push(
        `| ${n.toLocaleString('en-US')} | ${perDest.toLocaleString('en-US')} | ${f.tasks.toLocaleString('en-US')} | ${(f.workerSeconds / 3600).toFixed(1)} | ${f.neededConcurrency ?? 'none'} | ${(f.secondsAtConfigured.atMost / 3600).toFixed(1)} | $${f.lambdaCostUsd.toFixed(2)} |`,
      );
    }
  }
  return rows.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(sizingTable());
