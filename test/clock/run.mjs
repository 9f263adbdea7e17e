#!/usr/bin/env node
// `npm run test:clock`: the time-sensitive tests (slots, catch-up, the sweeper, leases, status.json,
// runs list --since, the daily external-ID probe, receipt folder names) run with the clock of the
// whole process tree — Node, the CLI children, embedded PostgreSQL — moved by libfaketime to:
//   one year ahead · 03:59:50 and 14:59:50 UTC (seconds before the 04:00 and 15:00 slots) ·
//   23:59:50 UTC on 31 December · 23:59:50 UTC on 28 February of a leap year.
// Instants are computed from today (never hard-coded); the clock keeps ticking from there. Two of
// them also run in a time zone far from UTC (TZ), to catch local-time mistakes in Node and Postgres.
// Needs the Debian package `faketime` (apt-get install -y faketime); without it: a note, exit 0.
//   npm run test:clock                      all instants
//   npm run test:clock -- --only leap       instants whose name contains "leap"
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/faketime/libfaketime.so.1',
];
// LIBFAKETIME_PATH names the library to use (and only that one).
const candidates = process.env.LIBFAKETIME_PATH === undefined ? LIBS : [process.env.LIBFAKETIME_PATH];
const lib = candidates.find((p) => p && existsSync(p));
if (!lib) {
  console.log('test:clock skipped: libfaketime not found (Debian/Ubuntu: apt-get install -y faketime).');
  process.exit(0);
}

/** The test files (and name filters) that depend on the time of day or the date. */
const GROUPS = [
  {
    files: [
      'test/clock/clock.test.ts', // the fake clock reaches Node and Postgres
      'src/contracts/slots.test.ts',
      'src/notify/notify.test.ts', // next slot, slots ahead
      'src/pipeline/sink/layout.test.ts', // receipt folder names
      'test/lambda.test.ts', // schedule slots, duplicate events, catch-up and missed slots
      'test/notify.test.ts', // status.json next_slot, runs list --since 24h, the daily external-ID probe
    ],
  },
  // The sweeper's re-sends of a dead opener's tasks, a task lease running out, a finisher's lease.
  {
    files: ['test/crash/fan-out.test.ts', 'test/crash/finishing.test.ts'],
    filter:
      'crash matrix: Lambda.*(opener dies at after-send|worker dies mid-COPY|finisher dies at before-receipt-put)',
  },
];

const DAY = 86_400_000;
const now = new Date();
const at = (y, m, d, h, min, s) => new Date(Date.UTC(y, m, d, h, min, s));
const y = now.getUTCFullYear();
const tomorrow = new Date(now.getTime() + DAY);
const nextDec31 = at(y, 11, 31, 23, 59, 50) > now ? at(y, 11, 31, 23, 59, 50) : at(y + 1, 11, 31, 23, 59, 50);
let leap = y;
while (!(leap % 4 === 0 && (leap % 100 !== 0 || leap % 400 === 0)) || at(leap, 1, 28, 23, 59, 50) <= now) leap++;
const ymd = (d) => [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
const INSTANTS = [
  { name: 'one-year-ahead', at: new Date(now.getTime() + 365 * DAY) },
  { name: 'before-04:00-slot', at: at(...ymd(tomorrow), 3, 59, 50), tz: 'America/Los_Angeles' },
  { name: 'before-15:00-slot', at: at(...ymd(tomorrow), 14, 59, 50), tz: 'Pacific/Kiritimati' },
  { name: 'new-year', at: nextDec31 },
  { name: 'leap-day', at: at(leap, 1, 28, 23, 59, 50) },
];

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const vitest = join(root, 'node_modules/vitest/vitest.mjs');
const results = [];
for (const instant of INSTANTS.filter((i) => !only || i.name.includes(only))) {
  for (const group of GROUPS) {
    // An offset from the real clock (the same for every process, however late it starts), computed
    // just before the start: the tests begin at the instant and the clock ticks on from there.
    const offset = Math.round((instant.at.getTime() - Date.now()) / 1000);
    const env = {
      ...process.env,
      LD_PRELOAD: [lib, process.env.LD_PRELOAD].filter(Boolean).join(':'),
      FAKETIME: `${offset >= 0 ? '+' : ''}${offset}`,
      // Timers, performance.now() and timeouts keep the real monotonic clock.
      DONT_FAKE_MONOTONIC: '1',
      TEST_CLOCK_AT: instant.at.toISOString(),
      ...(instant.tz ? { TZ: instant.tz } : { TZ: 'UTC' }),
    };
    const label = `${instant.name} (${instant.at.toISOString()}, TZ=${env.TZ}) ${group.files.length > 1 ? `${group.files.length} files` : group.files[0]}${group.filter ? ` -t "${group.filter}"` : ''}`;
    console.log(`\n== test:clock ${label}`);
    const started = Date.now();
    const args = [vitest, 'run', ...group.files, ...(group.filter ? ['-t', group.filter] : [])];
    const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
    results.push({ label, ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000) });
  }
}
console.log('\n== test:clock summary');
for (const r of results) console.log(`${r.ok ? 'pass' : 'FAIL'}  ${String(r.seconds).padStart(4)} s  ${r.label}`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
