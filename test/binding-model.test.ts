import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../src/config/settings.js';
import { LocalStack } from '../src/devstack/stack.js';
import { Wiring } from '../src/run/wiring.js';
import { sequenceArb } from './binding-model/actions.js';
import { KNOWN_DAYS } from './binding-model/known.js';
import { Day, ModelContext, Receivers } from './binding-model/model.js';
import { duck } from './duck.js';

/**
 * Issue 22, the promise itself: a delivery is bound to the destination version it was opened for.
 * Seeded random days of an account (fast-check): the operator adds, updates (bucket, prefix, role,
 * schema, codec, change sets, table and column selection, plan), disables, enables, removes and
 * re-adds the same account id for ANOTHER customer (other bucket, role, schema), interleaved with
 * exports on both paths — in-process (`exportAccount`) and fan-out (`startFanOutRun` + `runTask`,
 * task messages delivered out of order, some twice) — kills (src/run/lifecycle/crash.ts points in hang mode:
 * a fan-out opener dies after opening or after sending, a worker dies after its task or before or
 * after the receipt PUT; a holder is killed while helping with another task; a receipt PUT fails and
 * leaves the run `finishing`; messages wait) and sweeps (runs and the webhook outbox). Every source row carries its
 * schema's token (`id` = `<schema>-<n>`, `customer` = `<schema>`). After EVERY step:
 *   (a) every object S3 recorded as created was written by a run (its session) into the bucket and
 *       prefix — and folder, with the role, tables, and codec — of the version that run opened for;
 *       status.json tells a customer only about that customer's runs;
 *   (b) every receipt in every bucket lists only keys that exist, under its own prefix and folder;
 *   (c) no Parquet file written holds a row or key (change-set deletes too) of another version,
 *       a column that version excludes, or another codec (read with DuckDB);
 *   (d) no receipt continues another generation's chain (a re-added account starts at sequence 1);
 *   (e) a customer's webhook URL receives only events of that customer's runs;
 *   (f) a run whose destination was changed or removed while it was open publishes no receipt.
 *
 * The days it found (test/binding-model/known.ts) are replayed, each as its own test, before the random ones.
 * `DROPSHIP_MODEL_RUNS` (default 200) random days, seed `DROPSHIP_MODEL_SEED` (printed on failure);
 * `DROPSHIP_MODEL_EXCLUDE` (e.g. `remove,readd,update-bucket`) leaves actions out, to look for
 * counterexamples of one kind, and `DROPSHIP_MODEL_INVARIANTS` (e.g. `ce`) lets only those invariants fail a day.
 */
const RUNS = Number(process.env.DROPSHIP_MODEL_RUNS ?? 200);
const SEED = Number(process.env.DROPSHIP_MODEL_SEED ?? 22_2026);
const EXCLUDE = new Set((process.env.DROPSHIP_MODEL_EXCLUDE ?? '').split(',').filter(Boolean));
const ONLY = process.env.DROPSHIP_MODEL_INVARIANTS;
/** The whole property, shrinking included (a failure found is reported with the smallest case so far). */
const LIMIT_MS = Number(process.env.DROPSHIP_MODEL_TIME_LIMIT_MS ?? Math.max(300_000, RUNS * 2_000));

let stack: LocalStack;
let wiring: Wiring;
let ctx: ModelContext;
let db: Awaited<ReturnType<typeof duck>>;
const hooks = new Receivers();
const savedEnv = { ...process.env };

beforeAll(async () => {
  stack = await LocalStack.start();
  const env = {
    ...stack.env(),
    DROPSHIP_S3_FORCE_PATH_STYLE: 'true',
    DROPSHIP_LOG_LEVEL: 'silent',
    // Nothing here fails transiently except what a step injects: no SDK retries to wait for.
    DROPSHIP_AWS_MAX_ATTEMPTS: '1',
    DROPSHIP_TASK_RETRY_SECONDS: '0',
    DROPSHIP_WEBHOOK_KEY: randomBytes(32).toString('base64'),
    DROPSHIP_WEBHOOK_ATTEMPTS: '1',
    // The customers' webhook receivers are on loopback: development mode.
    DROPSHIP_WEBHOOK_ALLOW_LOOPBACK: 'true',
    DROPSHIP_WEBHOOK_TIMEOUT_MS: '2000',
  };
  Object.assign(process.env, env);
  const settings = loadSettings(env);
  wiring = new Wiring({ settings, databaseUrl: stack.databaseUrl, poolMax: 8 });
  db = await duck();
  await hooks.start();
  ctx = new ModelContext(
    stack,
    await wiring.pool(),
    await wiring.registry(),
    await wiring.ledger(),
    settings,
    db,
    hooks,
  );
  if (ONLY) ctx.only = new Set(ONLY.split(''));
}, 120_000);

afterAll(async () => {
  await hooks.stop();
  db?.close();
  await wiring?.close();
  await stack?.stop();
  process.env = savedEnv;
});

describe('a delivery is bound to the destination version it was opened for (model-based, issue 22)', () => {
  let known = 0;
  it.each(KNOWN_DAYS)('a day it found: $name', async (s) => {
    const d = new Day(ctx, 100_000 + ++known);
    try {
      await d.play(s);
    } finally {
      await d.cleanup();
    }
  });

  it(
    `${RUNS} random days of operator actions, exports on both paths, kills and sweeps`,
    async () => {
      let day = 0;
      const started = performance.now();
      const property = fc.asyncProperty(sequenceArb(EXCLUDE), async (s) => {
        const d = new Day(ctx, ++day);
        try {
          await d.play(s);
        } finally {
          const t = performance.now();
          await d.cleanup();
          ctx.time('cleanup', performance.now() - t);
        }
      });
      try {
        await fc.assert(property, {
          seed: SEED,
          numRuns: RUNS,
          interruptAfterTimeLimit: LIMIT_MS,
          markInterruptAsFailure: true,
        });
      } catch (e) {
        console.log([...ctx.timings].map(([k, t]) => `${k} ${t.n}× ${(t.ms / t.n).toFixed(0)} ms`).join(', '));
        throw new Error(
          `the binding model failed (reproduce: DROPSHIP_MODEL_SEED=${SEED} DROPSHIP_MODEL_RUNS=${RUNS}${EXCLUDE.size ? ` DROPSHIP_MODEL_EXCLUDE=${[...EXCLUDE].join(',')}` : ''}${ONLY ? ` DROPSHIP_MODEL_INVARIANTS=${ONLY}` : ''})\n${(e as Error).message}`,
          { cause: e },
        );
      }
      const spent = [...ctx.timings].map(([k, t]) => `${k} ${t.n}× ${(t.ms / t.n).toFixed(0)} ms`).join(', ');
      console.log(
        `binding model: ${day} days in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${SEED}); ${spent}`,
      );
      expect(day).toBeGreaterThanOrEqual(RUNS);
    },
    LIMIT_MS + 60_000,
  );
});
