/**
 * node --import tsx test/bench/fixed-cost.ts [--destinations 50] [--tables 8] [--workers 2] [--rounds 1]
 *
 * The fixed cost per destination of the production fan-out path (issue 25, item 3), before and after
 * packing and credential/client reuse, measured in one process on one local stack: N destinations,
 * each its own schema of T near-empty tables (5 rows), its own role and bucket; each exported through
 * `startFanOutRun` + the `--via-queue` worker loops (W of them, the worker Lambda's batch function)
 * against the local SQS, one destination after another:
 *
 *   - before: DROPSHIP_PACK_BYTES=0, DROPSHIP_CLIENT_CACHE_ENTRIES=0 (one message per table, new
 *     credentials and S3 client per message — the code as it was);
 *   - after: the defaults (small tables packed, a run's credentials and clients reused).
 *
 * The modes alternate per round (before, after, before, …) after one warm-up run of each. With
 * near-empty tables nearly all the work is fixed cost: CPU ms and wall ms per destination are this
 * process's (dropship and the in-process S3, STS and SQS stand-ins; Postgres runs in its own
 * process and is not counted). Also counted: AssumeRole calls (the local STS records each),
 * messages sent and received. Prints a table on stderr and one JSON line on stdout.
 */

import { TaskQueue } from '../../src/aws/queue.js';
import { renderTable } from '../../src/cli/format.js';
import type { TaskMessage } from '../../src/contracts/task.js';
import type { Customer } from '../../src/devstack/demo.js';
import { setupCustomer } from '../../src/devstack/demo.js';
import { createLogger } from '../../src/log/logger.js';
import { exportViaQueue } from '../../src/run/drivers/via-queue.js';
import { LogReporter } from '../../src/run/progress/reporter.js';
import { startHarness } from '../kit/stack-harness.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const destinations = Number(arg('destinations', '50'));
const tables = Number(arg('tables', '8'));
const workers = Number(arg('workers', '2'));
const rounds = Number(arg('rounds', '1'));
const say = (s: string): void => void process.stderr.write(`${s}\n`);

interface ModeFigures {
  destinations: number;
  runs_succeeded: number;
  cpu_ms_per_destination: number;
  wall_ms_per_destination: number;
  assume_role_calls: number;
  messages_sent: number;
  messages_received: number;
}

const MODES = {
  before: { DROPSHIP_PACK_BYTES: '0', DROPSHIP_CLIENT_CACHE_ENTRIES: '0' },
  after: {},
} as const;
type Mode = keyof typeof MODES;

async function main(): Promise<void> {
  const h = await startHarness();
  try {
    say(`setting up ${destinations} destinations × ${tables} tables …`);
    const customers: Customer[] = [];
    for (let d = 0; d < destinations + 1; d++) {
      const schema = `fc${d}`;
      const ddl = Array.from(
        { length: tables },
        (_, t) => `create table ${schema}.t${t} as select g as id, 'row ' || g as label from generate_series(1, 5) g;`,
      ).join('\n');
      await h.pool.query(`create schema ${schema};\n${ddl}`);
      customers.push(
        await setupCustomer(h.stack, h.registry, {
          accountId: schema,
          awsAccountId: String(280_000_000_000 + d),
          bucket: `${schema}-data`,
          schema,
        }),
      );
    }
    const [warm, ...measured] = customers;
    const log = createLogger({ level: 'silent' });
    const base = new TaskQueue(h.stack.taskQueueUrl);
    let sent = 0;
    let received = 0;
    const queue = Object.assign(Object.create(base) as TaskQueue, {
      send: async (m: TaskMessage[]) => {
        sent += m.length;
        await base.send(m);
      },
      receive: async (...a: Parameters<TaskQueue['receive']>) => {
        const got = await base.receive(...a);
        received += got.length;
        return got;
      },
    });
    const one = async (c: Customer, mode: Mode): Promise<boolean> => {
      const outcome = await exportViaQueue(c.destination, {
        sourceUrl: h.stack.databaseUrl,
        settings: h.settings({ DROPSHIP_LOG_LEVEL: 'silent', ...MODES[mode] }),
        ledger: h.ledger,
        registry: h.registry,
        queue,
        reporter: new LogReporter(log),
        log,
        workers,
      });
      return outcome.ok;
    };
    // Warm-up: each mode once (module loading, JIT, pools), not counted.
    await one(warm!, 'before');
    await one(warm!, 'after');

    const totals: Record<
      Mode,
      { cpu: number; wall: number; ok: number; n: number; sts: number; sent: number; received: number }
    > = {
      before: { cpu: 0, wall: 0, ok: 0, n: 0, sts: 0, sent: 0, received: 0 },
      after: { cpu: 0, wall: 0, ok: 0, n: 0, sts: 0, sent: 0, received: 0 },
    };
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['before', 'after'] as Mode[]) {
        say(`round ${r + 1}/${rounds}: ${mode} …`);
        const t = totals[mode];
        const sts0 = h.stack.sts.calls.filter((c) => c.ok).length;
        const sent0 = sent;
        const received0 = received;
        const cpu0 = process.cpuUsage();
        const wall0 = performance.now();
        for (const c of measured) if (await one(c, mode)) t.ok++;
        const cpu = process.cpuUsage(cpu0);
        t.wall += performance.now() - wall0;
        t.cpu += (cpu.user + cpu.system) / 1000;
        t.n += measured.length;
        t.sts += h.stack.sts.calls.filter((c) => c.ok).length - sts0;
        t.sent += sent - sent0;
        t.received += received - received0;
      }
    }
    const figures = (mode: Mode): ModeFigures => {
      const t = totals[mode];
      return {
        destinations: t.n,
        runs_succeeded: t.ok,
        cpu_ms_per_destination: Math.round((t.cpu / t.n) * 10) / 10,
        wall_ms_per_destination: Math.round((t.wall / t.n) * 10) / 10,
        assume_role_calls: t.sts,
        messages_sent: t.sent,
        messages_received: t.received,
      };
    };
    const before = figures('before');
    const after = figures('after');
    say(
      renderTable(
        ['', 'cpu ms / dest', 'wall ms / dest', 'AssumeRole', 'messages sent', 'received', 'runs ok'],
        (['before', 'after'] as Mode[]).map((m) => {
          const f = figures(m);
          return [
            m,
            String(f.cpu_ms_per_destination),
            String(f.wall_ms_per_destination),
            String(f.assume_role_calls),
            String(f.messages_sent),
            String(f.messages_received),
            `${f.runs_succeeded}/${f.destinations}`,
          ];
        }),
      ),
    );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'fixed-cost',
        node: process.version,
        destinations,
        tables_per_destination: tables,
        workers,
        rounds,
        before,
        after,
        cpu_ratio: Math.round((after.cpu_ms_per_destination / before.cpu_ms_per_destination) * 100) / 100,
        wall_ratio: Math.round((after.wall_ms_per_destination / before.wall_ms_per_destination) * 100) / 100,
      })}\n`,
    );
  } finally {
    await h.stop();
  }
}

await main();
