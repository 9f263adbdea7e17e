/**
 * node --import tsx test/bench/cli.ts [--runs 5]    (also: npm run bench -- --cli, this section alone;
 * `npm run bench` prints its figures under `cli`)
 *
 * The `dropship` command's start-up, as a person or a script meets it (issue 28): each command in a
 * child process, `runs` times (median, 5 by default), wall time and CPU time (user + system of the
 * child, from the shell's `times`), beside the floors measured the same way in the same run:
 *   - `node -e ''`: Node's own start — the floor of `node src/cli/bin.mjs …`;
 *   - `npx node -e ''`: npm's start plus Node's — the floor of `npx dropship …`;
 *   - `dropship --help`, direct and through npx;
 *   - `dropship runs list` against the local stack's database;
 *   - `dropship export --account <one table of 100 rows>`: the whole command, and its overhead —
 *     the command's wall time minus the run's own (started → finished in the ledger).
 * The CLI runs as `npm ci` leaves it: the build in dist/cli/ (src/cli/build.mjs is run first, as
 * `npm ci`'s prepare step runs it), which src/cli/bin.mjs prefers while it is fresh.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { Registry } from '../../src/accounts/registry.js';
import { renderTable } from '../../src/cli/format.js';
import { setupCustomer } from '../../src/devstack/demo.js';
import { type LocalStack, REPO_ROOT } from '../../src/devstack/stack.js';
import { median, runStandalone } from './standalone.js';

/** One command's medians: wall and CPU seconds, and their ratio to `node -e ''`'s. */
export interface Timing {
  wall_s: number;
  cpu_s: number;
  wall_x_floor: number;
  cpu_x_floor: number;
}

export interface CliBench {
  runs: number;
  /** Which form of the CLI ran: the build in dist/cli ('built') or the TypeScript sources. */
  entry: 'built' | 'sources';
  load_1m: number;
  node_floor: Timing;
  npx_floor: Timing;
  help: Timing;
  npx_help: Timing;
  /** `npx dropship --help` minus npx's floor (the acceptance: ≤ 0.3 s). */
  npx_help_over_npx_floor_wall_s: number;
  runs_list: Timing;
  export_one_table: Timing & { run_s: number; overhead_wall_s: number };
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** Runs `cmd args` once under bash, which reports the child's CPU time with `times`. */
function timeOnce(
  cmd: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ wall: number; cpu: number; code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const script = '"$@" >/dev/null 2>"$ERR_FILE"; rc=$?; times >&2; exit $rc';
    const errFile = join(tmpdir(), `dropship-bench-cli-${process.pid}.err`);
    const t0 = performance.now();
    const child = spawn('bash', ['-c', script, 'bash', ...cmd], {
      cwd: REPO_ROOT,
      env: { ...env, ERR_FILE: errFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let times = '';
    child.stderr.on('data', (d) => {
      times += String(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - t0) / 1000;
      // `times`: the shell's own user/system, then its children's: "0m0.123s 0m0.045s".
      const line = times.trim().split('\n').at(-1) ?? '';
      const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      if (secs.length !== 2) return reject(new Error(`cannot read the CPU time from: ${times}`));
      const stderr = readFileSync(errFile, 'utf8');
      rmSync(errFile, { force: true });
      resolve({ wall, cpu: secs[0]! + secs[1]!, code: code ?? 1, stderr });
    });
  });
}

async function measure(
  name: string,
  cmd: string[],
  env: NodeJS.ProcessEnv,
  runs: number,
  expectCode = 0,
): Promise<{ wall: number; cpu: number }> {
  const walls: number[] = [];
  const cpus: number[] = [];
  await timeOnce(cmd, env); // warm the file cache; not counted
  for (let r = 0; r < runs; r++) {
    const t = await timeOnce(cmd, env);
    if (t.code !== expectCode) throw new Error(`${name}: exit ${t.code}, expected ${expectCode}\n${t.stderr}`);
    walls.push(t.wall);
    cpus.push(t.cpu);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

export async function benchCli(opts: { stack: LocalStack; pool: pg.Pool; runs: number }): Promise<CliBench> {
  const { stack, pool, runs } = opts;
  log(`\n== the dropship command's start-up (median of ${runs})`);
  // As `npm ci` leaves a checkout: the CLI built ahead.
  const build = spawnSync(process.execPath, ['src/cli/build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`src/cli/build.mjs failed:\n${build.stderr}`);
  const entry = build.stdout.includes('built the CLI') ? 'built' : 'sources';

  await pool.query(`drop schema if exists bench_cli cascade; create schema bench_cli;
    create table bench_cli.orders (id bigint primary key, total numeric(10,2));
    insert into bench_cli.orders select i, i * 1.5 from generate_series(1, 100) i;`);
  await setupCustomer(stack, new Registry(pool), {
    accountId: 'bench-cli',
    awsAccountId: '123456789077',
    bucket: 'bench-cli-data',
    schema: 'bench_cli',
  });

  // As a person's shell has it, pointed at the local stack (as test/kit/machine-env.ts runs the command).
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...stack.env(),
    DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
  };
  const node = process.execPath;
  const bin = 'src/cli/bin.mjs';
  const load = Number(loadavg()[0]!.toFixed(2));
  const nodeFloor = await measure('node -e', [node, '-e', ''], env, runs);
  const npxFloor = await measure('npx floor', ['npx', '--no-install', 'node', '-e', ''], env, runs);
  const help = await measure('dropship --help', [node, bin, '--help'], env, runs);
  const npxHelp = await measure('npx dropship --help', ['npx', '--no-install', 'dropship', '--help'], env, runs);
  const runsList = await measure('dropship runs list', [node, bin, 'runs', 'list'], env, runs);
  const exp = await measure('dropship export', [node, bin, 'export', '--account', 'bench-cli'], env, runs);
  const runSeconds = (
    await pool.query<{ s: number }>(
      `select extract(epoch from finished_at - started_at)::float8 as s from dropship.runs
        where account_id = 'bench-cli' and status = 'succeeded' order by started_at desc limit $1`,
      [runs],
    )
  ).rows.map((r) => r.s);
  if (runSeconds.length !== runs) throw new Error(`expected ${runs} succeeded runs of bench-cli`);
  const run_s = Number(median(runSeconds).toFixed(3));

  const r3 = (n: number): number => Number(n.toFixed(3));
  const timing = (t: { wall: number; cpu: number }): Timing => ({
    wall_s: r3(t.wall),
    cpu_s: r3(t.cpu),
    wall_x_floor: Number((t.wall / nodeFloor.wall).toFixed(2)),
    cpu_x_floor: Number((t.cpu / nodeFloor.cpu).toFixed(2)),
  });
  const result: CliBench = {
    runs,
    entry,
    load_1m: load,
    node_floor: timing(nodeFloor),
    npx_floor: timing(npxFloor),
    help: timing(help),
    npx_help: timing(npxHelp),
    npx_help_over_npx_floor_wall_s: r3(npxHelp.wall - npxFloor.wall),
    runs_list: timing(runsList),
    export_one_table: { ...timing(exp), run_s, overhead_wall_s: r3(exp.wall - run_s) },
  };
  const row = (name: string, t: Timing): string[] => [
    name,
    t.wall_s.toFixed(3),
    t.cpu_s.toFixed(3),
    `${t.wall_x_floor}×`,
    `${t.cpu_x_floor}×`,
  ];
  log(
    renderTable(
      ['command', 'wall s', 'CPU s', 'wall / node -e', 'CPU / node -e'],
      [
        row("node -e ''  (floor)", result.node_floor),
        row('dropship --help', result.help),
        row('dropship runs list', result.runs_list),
        row('dropship export --account (1 table, 100 rows)', result.export_one_table),
        row("npx node -e ''  (npx floor)", result.npx_floor),
        row('npx dropship --help', result.npx_help),
      ],
      [1, 2, 3, 4],
    ),
  );
  log(
    `(${entry === 'built' ? 'the CLI built in dist/cli' : 'the CLI from its TypeScript sources'}; load average at start: ${load}; ` +
      `npx dropship --help is ${result.npx_help_over_npx_floor_wall_s} s over npx's floor; ` +
      `the export's run took ${run_s} s of its ${result.export_one_table.wall_s} s: ${result.export_one_table.overhead_wall_s} s overhead)`,
  );
  return result;
}

await runStandalone(import.meta.url, 'dropship-cli', 'cli', ({ stack, pool, arg }) =>
  benchCli({ stack, pool, runs: Number(arg('runs', '5')) }),
);
