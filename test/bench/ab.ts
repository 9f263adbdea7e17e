/**
 * npx node --import tsx test/bench/ab.ts [--rows 2000000] [--codec none] [--rounds 3] [--baseline <dir>]
 *
 * Two (or more) forms of the export side by side, for a change to the export's CPU: one local stack, the bench's
 * `events` table generated once, then each variant's export in a child process (test/bench/export-child.ts, bundled
 * as for Lambda), in turn, `--rounds` times, so every variant sees the same machine load; medians of process CPU,
 * the export's own CPU (µs/row), rows/s and peak RSS. The machine's load moves single runs by ±10 %: read medians.
 *   --baseline <dir>: another checkout's root (`git worktree add /tmp/base <commit>` plus a node_modules link);
 *     its export-child is bundled as the variant "baseline", beside this tree's ("this tree").
 *   AB_VARIANTS (JSON) instead: [{ "name", "flags"?: [node flags], "env"?: {…}, "bundle"?: path }], e.g. a V8 flag.
 * Example: git worktree add /tmp/base HEAD~1 && ln -s $PWD/node_modules /tmp/base/ &&
 *   npx node --import tsx test/bench/ab.ts --codec zstd --baseline /tmp/base
 */
import { execFile } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { REPO_ROOT } from '../../src/devstack/stack.js';
import { startHarness } from '../kit/stack-harness.js';
import { bundleExportChild, LAMBDA_ENV, LAMBDA_NODE_FLAGS } from './child.js';
import { eventsTableSql, setupBenchAccount } from './events.js';
import { median } from './standalone.js';

// The children run this process's Node (process.execPath): one started by the PATH's `node` may be another major than
// the project's (package.json engines: the CLI, the tests and Lambda run Node 24), and its figures would not be Lambda's.
if (process.versions.node.split('.')[0] !== '24') {
  console.error(
    `ab.ts runs its children with this Node (${process.version}); start it with Node 24, e.g. npx node --import tsx test/bench/ab.ts`,
  );
  process.exit(2);
}

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const rows = Number(arg('rows', '2000000'));
const codec = arg('codec', 'none');
const rounds = Number(arg('rounds', '3'));
const baseline = arg('baseline', '');
interface Variant {
  name: string;
  flags?: string[];
  env?: Record<string, string>;
  bundle?: string;
}
const bundleOf = (root: string, name: string): Promise<string> => bundleExportChild(root, `ab-${name}`);
const bundle = await bundleOf(REPO_ROOT, 'this-tree');
const variants: Variant[] = process.env.AB_VARIANTS
  ? (JSON.parse(process.env.AB_VARIANTS) as Variant[])
  : [...(baseline ? [{ name: 'baseline', bundle: await bundleOf(baseline, 'baseline') }] : []), { name: 'this tree' }];
const harness = await startHarness();
const { pool } = harness;
try {
  await setupBenchAccount(harness);
  await pool.query(eventsTableSql(rows));
  await pool.query('vacuum analyze bench.events');
  await pool.query(`update dropship.destinations set compression = $1 where account_id = 'bench'`, [codec]);
  // s3: this process's CPU while a child exports (the local S3 it writes to, mostly), µs/row.
  const results = new Map<string, { cpu: number[]; exp: number[]; rate: number[]; rss: number[]; s3: number[] }>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const parent0 = process.cpuUsage();
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [...LAMBDA_NODE_FLAGS, ...(v.flags ?? []), v.bundle ?? bundle, 'bench'],
          { env: { ...process.env, ...LAMBDA_ENV, ...v.env }, maxBuffer: 1 << 26 },
          (err, stdout, stderr) => {
            // BENCH_CHILD_LOG: the children's stdout (e.g. with "flags": ["--trace-gc"]), as in bench.ts.
            if (process.env.BENCH_CHILD_LOG) appendFileSync(process.env.BENCH_CHILD_LOG, stdout);
            return err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout);
          },
        ),
      );
      const parentCpu = process.cpuUsage(parent0);
      const line = JSON.parse(out.trim().split('\n').at(-1)!);
      if (line.rows !== rows) throw new Error(`rows ${line.rows}`);
      const e = results.get(v.name) ?? { cpu: [], exp: [], rate: [], rss: [], s3: [] };
      e.s3.push(((parentCpu.user + parentCpu.system) / 1e6 / rows) * 1e6);
      e.cpu.push((line.cpuSeconds / rows) * 1e6);
      e.exp.push((line.exportCpuSeconds / rows) * 1e6);
      e.rate.push(rows / line.seconds);
      e.rss.push(line.maxRssBytes / 2 ** 20);
      results.set(v.name, e);
      process.stderr.write(
        `${v.name}: cpu ${e.cpu.at(-1)!.toFixed(2)} export ${e.exp.at(-1)!.toFixed(2)} µs/row, ${Math.round(e.rate.at(-1)!)} rows/s, ${e.rss.at(-1)!.toFixed(0)} MiB, local S3 ${e.s3.at(-1)!.toFixed(2)} µs/row\n`,
      );
    }
  }
  for (const [name, e] of results)
    console.log(
      `${name.padEnd(20)} median cpu ${median(e.cpu).toFixed(2)} export ${median(e.exp).toFixed(2)} µs/row  ${Math.round(median(e.rate))} rows/s  ${median(e.rss).toFixed(0)} MiB  local S3 ${median(e.s3).toFixed(2)} µs/row  [export ${e.exp.map((x) => x.toFixed(2)).join(' ')}]`,
    );
} finally {
  await harness.stop();
}
