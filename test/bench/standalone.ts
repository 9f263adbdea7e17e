import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import type { LocalStack } from '../../src/devstack/stack.js';
import { startHarness } from '../kit/stack-harness.js';

/** The median of a bench's repeated measurements (the upper one of an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Runs one bench section on its own (`node --import tsx test/bench/<section>.ts --rows …`) when
 * `moduleUrl` is the script node was started with: a local stack, a migrated pool, the stack's
 * environment, `--name value` arguments; prints `{ bench, node, [key]: result }` as one JSON line.
 */
export async function runStandalone<T>(
  moduleUrl: string,
  bench: string,
  key: string,
  section: (ctx: { stack: LocalStack; pool: pg.Pool; arg: (name: string, fallback: string) => string }) => Promise<T>,
): Promise<void> {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(resolve(process.argv[1])).href) return;
  const arg = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
  };
  // The harness points this process at the stack (its environment, DROPSHIP_S3_FORCE_PATH_STYLE).
  const harness = await startHarness();
  try {
    const result = await section({ stack: harness.stack, pool: harness.pool, arg });
    process.stdout.write(`${JSON.stringify({ bench, node: process.version, [key]: result })}\n`);
  } finally {
    await harness.stop();
  }
}
